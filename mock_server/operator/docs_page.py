"""The /docs page itself (docs.py serves it): the operator panel (fixture tokens, session, scenario, forced
code, journal), then Swagger UI. One constant inline script, allowed by its hash in the page's CSP."""

from __future__ import annotations

import base64
import hashlib
import html

from ..auth import TokenRegistry, may_call
from ..spec import Spec

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
    validatorUrl: null,
    // The panel's forced code: Try it out asks the mock for that documented response (Prefer: code=N).
    requestInterceptor: function (req) {
      var code = document.getElementById("mock-code").value;
      if (code && req.url.indexOf("/api/") !== -1) { req.headers["Prefer"] = "code=" + code; }
      return req;
    }
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
  // Scenario and journal: the operator API of the session in use (the cookie goes with these requests too).
  var status = document.getElementById("mock-status");
  var scenario = document.getElementById("mock-scenario");
  function say(text) { status.textContent = text; }
  function admin(method, path, body) {
    return fetch(path, {method: method, headers: body ? {"Content-Type": "application/json"} : {},
                        body: body ? JSON.stringify(body) : undefined})
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) { throw new Error(j.message); } return j; }); });
  }
  function loadScenarios() {
    admin("GET", "/__admin/scenario").then(function (j) {
      scenario.textContent = "";
      j.available.forEach(function (name) {
        var option = document.createElement("option");
        option.value = option.textContent = name;
        option.selected = name === j.name;
        scenario.appendChild(option);
      });
    }).catch(function (e) { say("operator API: " + e.message); });
  }
  scenario.addEventListener("change", function () {
    admin("POST", "/__admin/scenario", {name: scenario.value})
      .then(function (j) { say("session " + j.session + " switched to " + j.scenario); })
      .catch(function (e) { say(e.message); });
  });
  document.getElementById("mock-session-form").addEventListener("submit", loadScenarios);
  document.getElementById("mock-journal-show").addEventListener("click", function () {
    admin("GET", "/__admin/requests?limit=10").then(function (j) {
      var body = document.getElementById("mock-journal");
      body.textContent = "";
      j.entries.forEach(function (e) {
        var row = document.createElement("tr");
        [e.method, e.path, String(e.status), e.operationId || ""].forEach(function (text) {
          var cell = document.createElement("td");
          cell.textContent = text;
          row.appendChild(cell);
        });
        body.appendChild(row);
      });
      say(j.count + " request(s) in the journal of session " + j.session);
    }).catch(function (e) { say(e.message); });
  });
  loadScenarios();
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
.mock-panel label { margin-right: 12px; }
.mock-panel #mock-status { margin-left: 8px; color: #555; }
"""


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
<details open id="mock-operator">
<summary>Operator panel (this browser's session of the mock)</summary>
<form id="mock-session-form" class="mock-session">
<label>Session <input id="mock-session-name" placeholder="default" maxlength="48" size="24"></label>
<button type="submit">Use session</button> in use: <code id="mock-session-current">default</code>.
Each session has its own data, scenario, faults and journal (<code>X-Mock-Session</code> or the
<code>mock_session</code> cookie); <a href="/__admin/sessions">/__admin/sessions</a> lists them.
</form>
<p><label>Scenario <select id="mock-scenario"></select></label>
<label>Forced code for Try it out <select id="mock-code">
<option value="">none</option><option>400</option><option>401</option><option>403</option><option>404</option>
<option>500</option></select></label> (<code>Prefer: code=N</code>: the operation's documented example)
<button type="button" id="mock-journal-show">Show the last 10 requests</button>
<output id="mock-status"></output></p>
<table class="mock-journal"><tbody id="mock-journal"></tbody></table>
</details>
</section>
<div id="swagger-ui" data-spec="/docs/openapi.json" data-scheme="{esc(bearer_scheme(spec))}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>{_INIT_SCRIPT}</script>
</body>
</html>
"""
