"""The operator endpoints, the only part served by Flask: /__admin/* (admin.py; described by
operator-openapi.yaml, served at /__admin/openapi.yaml), /docs (docs.py) and /openapi.yaml. They share the
API's CORS policy, its error renderer, its access log and (but for /__admin, which is the developer looking,
not the app) its journal."""

from __future__ import annotations

import time
from typing import Any

import orjson
from flask import Flask, Response, g, redirect, request

from .. import access_log
from ..http.cors import is_preflight
from ..http.errors import render
from ..journal import RAW_BODY_CAP
from ..resources import data_root
from ..state import EXTENSION, State


OPERATOR_SPEC = "operator-openapi.yaml"  # beside openapi.yaml (setup.py bundles both)


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status=status, mimetype="application/json")


def operator_app(state: State, flask_config: dict[str, Any]) -> Flask:
    from . import admin, docs, sessions  # they use json_response from here

    app = Flask("mock_server")
    app.config.update(flask_config)
    app.extensions[EXTENSION] = state
    app.register_error_handler(Exception, _error)
    app.register_blueprint(admin.blueprint())
    app.register_blueprint(sessions.blueprint())
    app.register_blueprint(docs.blueprint())
    app.add_url_rule("/openapi.yaml", endpoint="openapi", view_func=_serve_spec, methods=["GET"])
    # The operator API's own description; outside the admin blueprint, so as open as /openapi.yaml: it holds
    # no secret, and says how to unlock the rest.
    operator_spec = (data_root() / OPERATOR_SPEC).read_bytes()
    app.add_url_rule("/__admin/openapi.yaml", endpoint="operator_openapi", methods=["GET"],
                     view_func=lambda: Response(operator_spec, mimetype="application/yaml"))
    # A person opening the mock's address in a browser wants the API reference, not a JSON 404.
    app.add_url_rule("/", endpoint="root", view_func=lambda: redirect("/docs", 302), methods=["GET"])
    app.before_request(_before)
    app.after_request(_after)
    return app


def _serve_spec() -> Response:
    return Response(State.current().spec.raw, mimetype="application/yaml")


def _before() -> None:
    g.started = time.perf_counter()
    g.request_id = State.request_id(request.headers.get("X-Request-Id", ""))
    state = State.current()
    state.default.scenarios.sync()  # follow a switch or reset made by another worker: health shows it at once
    limit = state.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        from werkzeug.exceptions import RequestEntityTooLarge

        raise RequestEntityTooLarge()
    request.get_data(cache=True)  # read whatever was sent: an unread body would be the next request's


def _error(exc: Exception) -> Response:
    state = State.current()
    rendered = render(exc, None, method=request.method, path=request.path, request_id=g.get("request_id"),
                      max_content_length=state.config["MAX_CONTENT_LENGTH"], testing=state.testing)
    response = json_response(rendered.body, rendered.status)
    response.headers.extend(rendered.headers)
    return response


def _after(response: Response) -> Response:
    state = State.current()
    headers, environ = response.headers, request.environ
    origin = environ.get("HTTP_ORIGIN")
    if is_preflight(request.method, origin, environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")):
        headers.extend(state.cors.preflight(origin, environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"),
                                            environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")))
    else:
        headers.extend(state.cors.actual(origin))
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Request-Id"] = g.request_id
    duration_ms = (time.perf_counter() - g.started) * 1000
    access_log.log_request(method=request.method, path=request.path, status=response.status_code,
                           duration_ms=duration_ms, operation_id=None, user_id=None, request_id=g.request_id)
    journal = state.default.journal  # /docs and /openapi.yaml belong to no session
    if journal.enabled and not request.path.startswith("/__admin/"):
        body = b"" if response.is_streamed or response.direct_passthrough else response.get_data()
        journal.record_wsgi(
            environ, t_ns=time.time_ns(), worker=journal.pid, request_body=request.get_data(cache=True),
            status=response.status_code, response_headers=list(headers.items()), response_body=body[:RAW_BODY_CAP],
            response_size=len(body), response_mimetype=response.mimetype, duration_ms=duration_ms,
            request_id=g.request_id, operation_id=None, user=None)
    return response
