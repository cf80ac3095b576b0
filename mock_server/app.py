"""create_app(test_config=None): the Flask app of the mock, and the request pipeline every API call takes.

Pipeline of an API request (before the handler runs):
  1. request id (echo a sane X-Request-Id or make one), body size limit (413)
  2. the route was matched at routing time; the endpoint maps to its spec operation (a dict built at start)
  3. faults: parse Prefer / __code (400 if malformed), wait (Prefer delay or server-wide latency), serve a
     forced code (before authentication, like Prism), or fail by the server-wide error rate (500)
  4. authentication (401), then authorisation from the spec's x-required-* (403)
  5. parameter validation against the spec (400), giving the handler typed parameters
Auth comes before validation, as most real APIs do: a caller without access learns nothing about inputs.

After every response: in dev/test mode it is validated against the spec. A mismatch is a bug of the mock
and fails loudly: with TESTING it raises ResponseContractError (the test fails); otherwise it is logged at
ERROR and the client gets a 500 `response_validation_failed` instead of a body that breaks the contract.
Then the security headers, X-Request-Id, and one access-log line.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_cors import CORS
from werkzeug.exceptions import RequestEntityTooLarge

from . import access_log, ids
from .api import handlers, json_response, register_api
from .auth import Principal, TokenRegistry, authorize, forced_challenge
from .config import explicit_keys, load_config
from .datagen import Sizes
from .errors import (CONTRACT_VIOLATION, ApiError, InternalError, contract_violation, error_response,
                     register_error_handlers)
from .faults import Faults
from .http_guard import HostGuard
from .journal import RAW_BODY_CAP, Journal, Redactor
from .pipeline import ApiPipeline
from .response_cache import ResponseCache
from .scenarios import ScenarioRuntime
from .spec import Operation, Spec, load_spec
from .store import open_store
from .store.base import Dataset, Store
from .validation import RequestValidator, ResponseValidator

EXTENSION = "insights_mock"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_logger = logging.getLogger("insights_mock")


class Clock:
    """The app's notion of now. With an anchor from NOW the clock starts there and runs at real speed,
    so data, "today" and new views line up with the generated history; otherwise it is real UTC time."""

    def __init__(self, anchor: datetime | None) -> None:
        self._anchor = anchor
        self._started = time.monotonic()

    def now(self) -> datetime:
        if self._anchor is None:
            return datetime.now(UTC)
        return self._anchor + timedelta(seconds=time.monotonic() - self._started)

    def today(self) -> date:
        return self.now().date()


@dataclass
class MockState:
    """Everything per app (app.extensions["insights_mock"]); nothing of it is module-level."""

    config: dict[str, Any]
    spec: Spec
    tokens: TokenRegistry
    store: Store
    clock: Clock
    faults: Faults
    anchor: datetime
    endpoints: dict[str, Operation]
    request_validators: dict[str, RequestValidator]
    response_validator: ResponseValidator | None
    scenarios: ScenarioRuntime
    journal: Journal
    response_cache: ResponseCache | None  # GET answers reused while the data is unchanged
    _reset_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sizes(self) -> Sizes:
        return self.scenarios.settings.sizes

    def make_dataset(self) -> Dataset:
        """The scenario's data, in lists."""
        return self.scenarios.make_dataset()

    def stream_dataset(self) -> Dataset:
        """The same data with views and audit entries made as the store loads them (flat memory)."""
        return self.scenarios.make_dataset(streaming=True)

    # The checks of every API call, in order: authenticate (401), then admit (403, then 400). Two steps, so that
    # a refused caller is still known to the access log and the journal.
    def authenticate(self, authorization: str | None) -> Principal:
        return self.tokens.authenticate(authorization, self.clock.now())

    def admit(self, op: Operation, principal: Principal, path_args: dict[str, str], query) -> dict[str, Any]:
        """Authorisation (403), then the parameters (400); returns the typed parameters. They may be shared
        by later requests with the same method, path and query (the fast path keeps them): never mutated."""
        authorize(principal, op)
        return self.request_validators[op.operation_id].parse(path_args, query)

    @staticmethod
    def request_id(incoming: str) -> str:
        """A sane X-Request-Id of the client, echoed; otherwise a new one."""
        return incoming if _REQUEST_ID.fullmatch(incoming) else ids.request_id()

    @staticmethod
    def api_headers(request_id: str) -> list[tuple[str, str]]:
        """The headers of every answer of an operation, besides Content-Type and Content-Length."""
        return [("X-Content-Type-Options", "nosniff"), ("X-Request-Id", request_id), ("Cache-Control", "no-store")]

    def reset(self) -> None:
        """Regenerate the scenario's data from its seed and the anchor; restart the fault RNG (in every
        process sharing the database: the scenario generation moves)."""
        with self._reset_lock:
            self.scenarios.reset(self)


def create_app(test_config: dict[str, Any] | None = None, *, carry: MockState | None = None) -> Flask:
    """The app. `carry` (mock_server.reload) is the state of the app this one replaces: its store (data,
    recorded views) and journal are kept."""
    config = load_config(test_config)
    app = Flask("mock_server")
    app.config.update(config)

    spec = load_spec(config["SPEC_FILE"])
    tokens = TokenRegistry.from_file(config["TOKENS_FILE"])
    anchor = config["NOW"] or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if carry is not None:
        anchor = carry.anchor
    scenarios = ScenarioRuntime(directory=config["SCENARIOS_DIR"], name=config["SCENARIO"], config=config,
                                explicit=explicit_keys(test_config), anchor=anchor, users=tokens.users,
                                account=tokens.account,
                                sync_interval_s=config.get("SCENARIO_SYNC_S", 0.1))
    faults = scenarios.faults()

    register_error_handlers(app)
    endpoints = register_api(app, spec)
    from .admin import blueprint as admin_blueprint
    from .docs import blueprint as docs_blueprint

    app.register_blueprint(admin_blueprint())
    app.register_blueprint(docs_blueprint())
    app.add_url_rule("/openapi.yaml", endpoint="openapi", view_func=_serve_spec, methods=["GET"])

    store = carry.store if carry is not None else open_store(config["DB"], config["DATABASE_URL"])
    secrets = [token for token, _ in tokens.entries()] + [config["ADMIN_TOKEN"] or ""]
    journal = Journal(config["JOURNAL_SIZE"], secrets, config.get("JOURNAL_DIR"))
    if carry is not None:  # keep what was recorded; redact the new file's tokens and the old ones' too
        journal = carry.journal
        journal.redactor = Redactor([*journal.redactor.secrets, *secrets])
    state = MockState(
        config=config, spec=spec, tokens=tokens, store=store,
        clock=carry.clock if carry is not None else Clock(config["NOW"]), faults=faults,
        anchor=anchor, endpoints=endpoints,
        request_validators={op.operation_id: RequestValidator(op, spec) for op in spec.operations.values()},
        response_validator=ResponseValidator(spec) if config["VALIDATE_RESPONSES"] else None,
        scenarios=scenarios, journal=journal,
        response_cache=ResponseCache(store.version) if config["RESPONSE_CACHE"] else None,
    )
    app.extensions[EXTENSION] = state
    store.ensure_loaded(state.stream_dataset)
    scenarios.start(state)

    # Registered before CORS: Flask runs after_request functions in reverse, so ours sees CORS's headers.
    app.before_request(_before_request)
    app.after_request(_after_request)
    origins = list(config["CORS_ORIGINS"])
    CORS(app, origins=origins, methods=["GET", "HEAD", "POST", "DELETE", "OPTIONS"],
         allow_headers=["Authorization", "Content-Type", "Prefer", "X-Request-Id"],
         expose_headers=["X-Request-Id", "WWW-Authenticate", "Preference-Applied"],
         supports_credentials=False, max_age=600, vary_header=True,
         # No Origin header, no CORS headers; with "*" configured answer "*" rather than echo the origin.
         always_send=False, send_wildcard=True)
    _only_with_origin(app, cors_after=app.after_request_funcs[None][-1])
    if config["FAST_PATH"]:
        app.wsgi_app = ApiPipeline(state, app.wsgi_app, handlers(spec), testing=app.testing)
    app.wsgi_app = HostGuard(app.wsgi_app)  # RFC 9112's Host rules, before anything else (http_guard.py)
    return app


def mock_state() -> MockState:
    return current_app.extensions[EXTENSION]


def _serve_spec() -> Response:
    return Response(mock_state().spec.raw, mimetype="application/yaml")


def _request_id(req) -> str:
    return MockState.request_id(req.headers.get("X-Request-Id", ""))


def _only_with_origin(app: Flask, cors_after) -> None:
    """Run flask-cors's after_request only for requests with an Origin header: without one it adds nothing
    (always_send=False), yet would still match the path against its resources on every request."""
    def cors_if_origin(response: Response) -> Response:
        return cors_after(response) if "HTTP_ORIGIN" in request.environ else response

    funcs = app.after_request_funcs[None]
    funcs[funcs.index(cors_after)] = cors_if_origin


def _before_request() -> Response | None:
    # The proxies are resolved once: each attribute through `request` or `g` is a context lookup.
    req, ctx = request._get_current_object(), g._get_current_object()
    ctx.started = time.perf_counter()
    ctx.request_id = _request_id(req)
    state = current_app.extensions[EXTENSION]
    state.scenarios.sync(state)
    _drain_body(req, current_app.config["MAX_CONTENT_LENGTH"])

    op = state.endpoints.get(req.endpoint or "")
    if op is None or req.method == "OPTIONS":  # automatic OPTIONS and CORS preflight: no auth
        return None
    ctx.operation = op

    headers = req.headers
    plan = state.faults.plan(headers.getlist("Prefer"), req.args, op.documented_codes)
    ctx.preference_applied = plan.applied
    latency_ms, fail = state.faults.draw()
    state.faults.wait(plan.delay_ms if plan.delay_ms is not None else latency_ms)
    if plan.code is not None:
        return _forced(op, plan.code)
    if fail:
        raise InternalError(details=[{"message": f"Injected by the server-wide error rate "
                                                 f"({state.faults.error_rate})"}])

    ctx.principal = state.authenticate(headers.get("Authorization"))
    ctx.params = state.admit(op, ctx.principal, req.view_args or {}, req.args)
    return None


def _drain_body(req, limit: int) -> None:
    """Refuse a body over the limit (413) and read any other: no operation uses a body, but an unread one
    would be taken for the next request on a kept-alive connection."""
    length = req.content_length
    if length is not None:
        if length > limit:
            raise RequestEntityTooLarge()
        if length:
            req.get_data()
    elif "wsgi.input_terminated" in req.environ:
        # A chunked body, de-chunked by the server. Counted here: werkzeug's own limit stops reading at the
        # limit without complaint when the body ends exactly there, and lets the rest through unread.
        stream, received = req.environ["wsgi.input"], 0
        while chunk := stream.read(65536):
            received += len(chunk)
            if received > limit:
                raise RequestEntityTooLarge()


def _forced(op: Operation, code: int) -> Response:
    """The documented response `code` of the operation, with its example body (Prism's behaviour)."""
    example = op.responses[code].example
    if code < 400:
        return json_response(example, code)
    body = example if isinstance(example, dict) else {}
    raise ApiError(body.get("message"), error=body.get("error"), status=code, details=body.get("details"),
                   headers=forced_challenge(op, code))


def _after_request(response: Response) -> Response:
    req, ctx = request._get_current_object(), g._get_current_object()
    state = current_app.extensions[EXTENSION]
    op = ctx.get("operation")
    if state.response_validator is not None and req.method != "OPTIONS":
        problems = state.response_validator.problems(op, response.status_code, response.mimetype,
                                                     response.headers, response.get_data())
        if problems:
            response = _contract_violation(op, response.status_code, problems)
    headers = response.headers
    request_id = ctx.get("request_id") or _request_id(req)
    if op is not None:
        for name, value in state.api_headers(request_id):
            headers[name] = value
        if ctx.get("preference_applied"):
            headers["Preference-Applied"] = ctx.preference_applied
    else:
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Request-Id"] = request_id
    principal = ctx.get("principal")
    access_log.log_request(
        method=req.method, path=req.path, status=response.status_code,
        duration_ms=(time.perf_counter() - ctx.get("started", time.perf_counter())) * 1000,
        operation_id=op.operation_id if op is not None else None,
        user_id=principal.user_id if principal is not None else None, request_id=ctx.get("request_id"))
    if state.journal.enabled and not req.path.startswith("/__admin/"):
        _journal(state.journal, response, op, principal)
    return response


def _request_body() -> bytes:
    # Only a body already read and admitted (_drain_body): a refused one (413) is not read again here.
    length = request.content_length
    if not length or length > current_app.config["MAX_CONTENT_LENGTH"]:
        return b""
    return request.get_data(cache=True)


def _journal(journal: Journal, response: Response, op: Operation | None, principal) -> None:
    # Raw copies only: redaction (the costly part) happens when the journal is read (see journal.py).
    body = b"" if response.is_streamed or response.direct_passthrough else response.get_data()
    journal.record(
        t_ns=time.time_ns(), worker=journal.pid, method=request.method, path=request.path,
        query=list(request.args.items(multi=True)), request_headers=list(request.headers.items()),
        request_body=_request_body(), request_mimetype=request.mimetype or None, status=response.status_code,
        response_headers=list(response.headers.items()), response_body=body[:RAW_BODY_CAP],
        response_size=len(body), response_mimetype=response.mimetype,
        duration_ms=(time.perf_counter() - g.get("started", 0)) * 1000, request_id=g.get("request_id"),
        operation_id=op.operation_id if op is not None else None,
        user=principal.user["email"] if principal is not None else None)


def _contract_violation(op: Operation | None, status: int, problems: list[str]) -> Response:
    where = op.operation_id if op is not None else f"{request.method} {request.path}"
    details = contract_violation(where, status, problems, testing=current_app.testing)
    return error_response(500, *CONTRACT_VIOLATION, details=details)
