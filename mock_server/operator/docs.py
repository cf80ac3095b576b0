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

import base64
import hashlib
import html
from importlib import metadata
from importlib.resources import files
from pathlib import Path

import orjson
from flask import Blueprint, Response, current_app, redirect, request

from .admin import is_loopback
from ..auth import TokenRegistry, may_call
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

# Constant, so the page's Content-Security-Policy can allow exactly this inline script by its hash.
_INIT_SCRIPT = """
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  var ui = SwaggerUIBundle({
    url: root.dataset.spec,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    persistAuthorization: true,
    displayOperationId: true,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
    validatorUrl: null
  });
  window.ui = ui;
  // The session of "Try it out": a same-origin request carries the mock_session cookie (mock_server.sessions).
  var input = document.getElementById("mock-session-name");
  var shown = document.getElementById("mock-session-current");
  function current() {
    var found = document.cookie.split("; ").filter(function (c) { return c.indexOf("mock_session=") === 0; })[0];
    return found ? decodeURIComponent(found.slice("mock_session=".length)) : "";
  }
  function show() { shown.textContent = current() || "default"; input.value = current(); }
  document.getElementById("mock-session-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var name = input.value.trim();
    document.cookie = name && name !== "default"
      ? "mock_session=" + encodeURIComponent(name) + "; path=/; SameSite=Lax"
      : "mock_session=; path=/; max-age=0; SameSite=Lax";
    show();
  });
  show();
  document.querySelectorAll("button[data-token]").forEach(function (button) {
    button.addEventListener("click", function () {
      ui.preauthorizeApiKey(root.dataset.scheme, button.dataset.token);
      document.querySelectorAll("button[data-token]").forEach(function (b) { b.textContent = "Use"; });
      button.textContent = "In use";
    });
  });
});
"""
_INIT_HASH = base64.b64encode(hashlib.sha256(_INIT_SCRIPT.encode()).digest()).decode()
# Everything from this origin, nothing from anywhere else: the page works offline and cannot leak a token.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"script-src 'self' 'sha256-{_INIT_HASH}'; "
    "style-src 'self' 'unsafe-inline'; "  # Swagger UI sets style attributes from React
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_STYLE = """
body { margin: 0; background: #fafafa; font-family: sans-serif; }
.mock-panel { max-width: 1460px; margin: 0 auto; padding: 12px 20px 0; color: #3b4151; font-size: 14px; }
.mock-panel summary { cursor: pointer; font-weight: bold; font-size: 15px; }
.mock-panel p { margin: 6px 0; }
.mock-panel table { border-collapse: collapse; margin: 6px 0 4px; width: 100%; }
.mock-panel th, .mock-panel td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #e0e0e0;
  vertical-align: top; }
.mock-panel code { font-size: 13px; }
.mock-panel td.nowrap { white-space: nowrap; }
.mock-panel button { font-size: 12px; padding: 1px 8px; cursor: pointer; }
.mock-panel .mock-session { margin: 6px 0 0; }
"""


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


def bearer_scheme(spec: Spec) -> str:
    schemes = spec.document.get("components", {}).get("securitySchemes", {})
    for name, scheme in schemes.items():
        if scheme.get("type") == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
            return name
    return next(iter(schemes), "bearerAuth")


def token_access(spec: Spec, tokens: TokenRegistry, now) -> list[dict]:
    """For each fixture token: its user, role, scopes and the operations it may call, by the same
    authorize() a request goes through. `expired` tokens are answered 401 whatever they could call."""
    rows = []
    for token, principal in tokens.entries():
        rows.append({
            "token": token,
            "user": principal.user,
            "role": principal.role,
            "scopes": sorted(principal.scopes),
            "expired": principal.expires is not None and principal.expires <= now,
            "allowed": [op.operation_id for op in spec.operations.values() if may_call(principal, op)],
        })
    return rows


def render_page(spec: Spec, tokens: TokenRegistry, *, now, version: str, show_tokens: bool) -> str:
    esc = html.escape
    title = spec.document.get("info", {}).get("title", "API")
    assets = f"/docs/assets/{esc(version)}"
    total = len(spec.operations)
    rows = []
    for row in token_access(spec, tokens, now):
        if row["expired"]:
            can = "nothing: expired, 401 on every operation"
        elif len(row["allowed"]) == total:
            can = f"every operation ({total})"
        elif not row["allowed"]:
            can = "no operation: 403 on every one"
        else:
            can = ", ".join(f"<code>{esc(op_id)}</code>" for op_id in row["allowed"]) + "; 403 on the others"
        if show_tokens:
            token_cell = (f'<button type="button" data-token="{esc(row["token"])}">Use</button> '
                          f'<code>{esc(row["token"])}</code>')
        else:
            token_cell = "<em>hidden</em>"
        user = row["user"]
        rows.append(
            f'<tr><td class="nowrap">{token_cell}</td>'
            f'<td class="nowrap" title="{esc(user["email"])}">{esc(user["name"])}</td>'
            f"<td class=\"nowrap\">{esc(row['role'])}</td><td>{esc(' '.join(row['scopes']) or '-')}</td><td>{can}</td></tr>")
    if show_tokens:
        how = ("Click <b>Authorize</b> and paste a token (or press <b>Use</b> beside one), then open an "
               "operation, <b>Try it out</b>, <b>Execute</b>: the request goes to this mock. The choice is "
               "kept in this browser across reloads.")
    else:
        how = ("This mock listens on a non-loopback address, so its tokens are not shown here; they are in "
               "its tokens file. Click <b>Authorize</b> and paste one.")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{esc(title)} - insights-mock</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="{assets}/favicon-16x16.png" sizes="16x16">
<style>{_STYLE}</style>
</head>
<body>
<section class="mock-panel" id="mock-tokens">
<details open>
<summary>Fixture tokens of this mock (Authorization: Bearer &lt;token&gt;)</summary>
<p>{how} Each operation's description says which scopes and roles it needs (<code>x-required-scopes</code>,
<code>x-required-roles</code>); a token lacking them gets 403, a missing or expired one 401.</p>
<table>
<thead><tr><th>token</th><th>user</th><th>role</th><th>scopes</th><th>may call</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
</details>
<form id="mock-session-form" class="mock-session">
<label>Session <input id="mock-session-name" placeholder="default" maxlength="48" size="24"></label>
<button type="submit">Use session</button> in use: <code id="mock-session-current">default</code>.
Each session has its own data, scenario, faults and journal (<code>X-Mock-Session</code> or the
<code>mock_session</code> cookie); <a href="/__admin/sessions">/__admin/sessions</a> lists them.
</form>
</section>
<div id="swagger-ui" data-spec="/docs/openapi.json" data-scheme="{esc(bearer_scheme(spec))}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>{_INIT_SCRIPT}</script>
</body>
</html>
"""
