"""/docs: the interactive API reference of openapi.yaml (Swagger UI), served by the mock itself, offline.

The Swagger UI assets come from the flask-swagger-ui wheel (its dist/ folder, Swagger UI 5.x: the first
major that renders OpenAPI 3.1; swagger-ui-bundle on PyPI still ships 4.15). Only its files are used, not
its blueprint: this one serves a fixed list of assets under a versioned URL (cached for a year, immutable),
and builds the page itself:

  GET /docs                          the page: a panel of the fixture tokens, then Swagger UI
  GET /docs/openapi.json             the spec with `servers` set to the origin the page was loaded from,
                                     so "Try it out" calls this mock whatever host and port it runs on
  GET /docs/assets/<version>/<name>  Swagger UI's script, stylesheet and icons

Like /openapi.yaml these routes are outside the API prefix and need no token. The token panel is derived
from the tokens file and the spec's x-required-* through auth.authorize, the same check requests get, so
it cannot drift from what the mock does. Tokens are shown only while the mock listens on loopback: on a
shared host the page still says which role can call what, but not the secrets.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from importlib.resources import files
from pathlib import Path

import orjson
from flask import Blueprint, Response, current_app, redirect, request

from .admin import is_loopback
from .docs_page import CONTENT_SECURITY_POLICY, render_page
from ..errors import NotFound
from ..spec import Spec
from ..state import State

# What the page loads from the bundle; anything else under /docs/assets is a 404.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
ASSET_MAX_AGE = 365 * 24 * 3600  # the URL carries the Swagger UI version, so a cached copy never goes stale

def swagger_ui_dist() -> Path:
    return Path(str(files("flask_swagger_ui") / "dist"))


def swagger_ui_version() -> str:
    marker = swagger_ui_dist() / "VERSION"
    if marker.exists():
        return marker.read_text(encoding="ascii").strip().lstrip("v")
    return metadata.version("flask-swagger-ui")  # released in step with the Swagger UI it bundles


def blueprint() -> Blueprint:
    bp = Blueprint("docs", __name__)
    dist, version = swagger_ui_dist(), swagger_ui_version()

    def page() -> Response:
        state = State.current()
        body = render_page(state.spec, state.tokens, now=state.clock.now(), version=version,
                           show_tokens=is_loopback(current_app.config["HOST"]))
        response = Response(body, mimetype="text/html")
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def spec_for_page() -> Response:
        # werkzeug gives no host for a malformed Host header; "/" then resolves against the spec's own URL.
        origin = request.host_url.rstrip("/") if request.host else "/"
        response = Response(orjson.dumps(page_spec(State.current().spec, origin)), mimetype="application/json")
        response.headers["Cache-Control"] = "no-cache"
        return response

    loaded: dict[str, tuple[bytes, str]] = {}  # name -> (content, etag), read on first use, per app

    def asset(asset_version: str, name: str) -> Response:
        if asset_version != version or name not in ASSETS:
            raise NotFound("Not Found - No such asset of the API reference",
                           details=[{"message": f"GET /docs loads the API reference (Swagger UI {version})"}])
        if name not in loaded:
            content = (dist / name).read_bytes()
            loaded[name] = content, hashlib.sha256(content).hexdigest()[:32]
        content, etag = loaded[name]
        # Bytes, not send_file: the app's after-request hook reads every body, which a file passthrough
        # does not allow.
        response = Response(content, content_type=ASSETS[name])
        response.set_etag(etag)
        response.cache_control.public = True
        response.cache_control.max_age = ASSET_MAX_AGE
        response.cache_control.immutable = True
        return response.make_conditional(request)

    bp.add_url_rule("/docs", endpoint="page", view_func=page, methods=["GET"])
    bp.add_url_rule("/docs/", endpoint="slash", view_func=lambda: redirect("/docs", 308), methods=["GET"])
    bp.add_url_rule("/docs/openapi.json", endpoint="spec", view_func=spec_for_page, methods=["GET"])
    bp.add_url_rule("/docs/assets/<asset_version>/<name>", endpoint="asset", view_func=asset, methods=["GET"])
    return bp


def page_spec(spec: Spec, origin: str) -> dict:
    """The spec as the page gets it: one server, the origin the page came from (openapi.yaml names
    127.0.0.1:4010, which is right only for the default port)."""
    return {**spec.document, "servers": [{"url": origin, "description": "this mock (where this page came from)"}]}
