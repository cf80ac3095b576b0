"""mock_server/operator/docs.py: the /docs page, its bundled Swagger UI assets, the spec it loads, the token panel."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime

import pytest

from mock_helpers import ADMIN, SPEC, TOKENS, component_validator, operations, url
from mock_server.operator import docs

ERROR = component_validator("Error")
VERSION = docs.swagger_ui_version()


def _ops_allowed(entry: dict) -> list[str]:
    """What a token may call, worked out here from tokens.yaml and the spec's x-required-* (not by the
    code under test)."""
    allowed = []
    for item in SPEC["paths"].values():
        for op in item.values():
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            if set(entry.get("scopes", [])) & set(op["x-required-scopes"]) and \
                    entry["role"] in op["x-required-roles"]:
                allowed.append(op["operationId"])
    return allowed


def _rows(page: str) -> dict[str, str]:
    """token -> the text of its row in the panel."""
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        token = re.search(r"<code>([^<]+)</code>", row)
        if token:
            rows[token.group(1)] = row
    return rows


def test_swagger_ui_is_a_5x_bundle_that_renders_openapi_3_1():
    assert int(VERSION.split(".")[0]) >= 5, VERSION  # 4.x cannot render an OpenAPI 3.1 document
    assert SPEC["openapi"].startswith("3.1")


def test_page_loads_only_bundled_assets_under_a_strict_policy(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-cache"
    page = response.get_data(as_text=True)
    # Nothing from another origin: no absolute URL in any src/href.
    references = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert references and all(ref.startswith(("/docs/", "/__admin/")) for ref in references), references
    for ref in references:
        assert client.get(ref).status_code == 200, ref
    assert 'data-spec="/docs/openapi.json"' in page
    assert 'data-scheme="bearerAuth"' in page  # the spec's bearer scheme, which Authorize fills
    # The one inline script is allowed by its hash, and nothing else inline is.
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    inline = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy
    assert "validatorUrl: null" in inline[0]  # Swagger UI would otherwise call validator.swagger.io
    assert "persistAuthorization: true" in inline[0]


def test_docs_routes_need_no_token_and_are_outside_the_api(client, state):
    for path in ("/docs", "/docs/openapi.json", f"/docs/assets/{VERSION}/swagger-ui.css"):
        assert client.get(path).status_code == 200, path
        assert not path.startswith(url(""))
    assert not any(op.path.startswith("/docs") for op in state.spec.operations.values())


def test_trailing_slash_redirects_to_the_page(client):
    response = client.get("/docs/")
    assert response.status_code == 308
    assert response.headers["Location"] == "/docs"


def test_spec_for_the_page_names_the_origin_it_was_asked_from(client):
    response = client.get("/docs/openapi.json", base_url="http://mock.example.test:8123")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-cache"
    document = response.get_json()
    assert [server["url"] for server in document["servers"]] == ["http://mock.example.test:8123"]
    # Everything else is openapi.yaml unchanged.
    assert {k: v for k, v in document.items() if k != "servers"} == {k: v for k, v in SPEC.items() if k != "servers"}
    assert SPEC["servers"][0]["url"] == "http://127.0.0.1:4010"  # the file itself is untouched
    assert client.get("/docs/openapi.json").get_json()["servers"][0]["url"] == "http://localhost"


@pytest.mark.parametrize("host", ["a b", 'x"><script>', "localhost:99999999"])
def test_a_malformed_host_gives_a_relative_server_not_a_broken_url(client, host):
    # HTTP/1.0: http_guard's RFC 9112 Host rule is for HTTP/1.1, so these reach the docs blueprint.
    document = client.get("/docs/openapi.json", headers={"Host": host},
                          environ_overrides={"SERVER_PROTOCOL": "HTTP/1.0"}).get_json()
    assert [server["url"] for server in document["servers"]] == ["/"]


@pytest.mark.parametrize("host", ["a b", 'x"><script>'])
def test_a_malformed_host_over_http11_never_reaches_the_page(client, host):
    response = client.get("/docs/openapi.json", headers={"Host": host})
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"


def test_an_ipv6_host_keeps_its_brackets(client):
    document = client.get("/docs/openapi.json", headers={"Host": "[::1]:4010"}).get_json()
    assert document["servers"][0]["url"] == "http://[::1]:4010"


@pytest.mark.parametrize("name", sorted(docs.ASSETS))
def test_assets_are_served_with_type_caching_and_validators(client, name):
    path = f"/docs/assets/{VERSION}/{name}"
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == docs.ASSETS[name]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    cache = response.cache_control
    assert cache.public and cache.immutable and cache.max_age == docs.ASSET_MAX_AGE
    assert response.get_data() == (docs.swagger_ui_dist() / name).read_bytes()
    etag = response.headers["ETag"]
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    head = client.head(path)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(response.get_data())


def test_the_bundle_is_the_version_in_its_url(client):
    body = client.get(f"/docs/assets/{VERSION}/swagger-ui-bundle.js").get_data(as_text=True)
    assert "SwaggerUIBundle" in body
    assert len(body) > 500_000  # the whole standalone bundle, not a loader that fetches the rest


@pytest.mark.parametrize("path", [
    f"/docs/assets/{VERSION}/nope.js",
    f"/docs/assets/{VERSION}/index.html",  # in the wheel's dist, but not something the page uses
    f"/docs/assets/{VERSION}/oauth2-redirect.html",
    f"/docs/assets/{VERSION}/VERSION",
    "/docs/assets/4.15.5/swagger-ui-bundle.js",  # another version
    f"/docs/assets/{VERSION}/..%2F..%2Fapp.py",
    f"/docs/assets/{VERSION}/",
    "/docs/nothing",
])
def test_unknown_assets_are_404_in_the_error_schema(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    body = response.get_json()
    ERROR.validate(body)
    assert body["status"] == 404 and body["error"] == "not_found"


def test_docs_routes_refuse_other_methods_in_the_error_schema(client):
    response = client.post("/docs")
    assert response.status_code == 405
    ERROR.validate(response.get_json())


def test_token_panel_lists_every_token_with_what_it_may_call(client):
    page = client.get("/docs").get_data(as_text=True)
    rows = _rows(page)
    assert list(rows) == [entry["token"] for entry in TOKENS]
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)  # the app's clock (NOW in conftest) is about here
    for entry in TOKENS:
        row = rows[entry["token"]]
        assert f'data-token="{entry["token"]}"' in row  # the Use button
        assert entry["role"] in row and entry["user"]["name"] in row
        for scope in entry.get("scopes", []):
            assert scope in row
        allowed = _ops_allowed(entry)
        listed = re.findall(r"<code>(\w+)</code>", row)
        expires = entry.get("expires")
        if expires and datetime.fromisoformat(expires.replace("Z", "+00:00")) <= now:
            assert "expired" in row and "401" in row and not listed
        elif len(allowed) == len(operations()):
            assert f"every operation ({len(allowed)})" in row and not listed
        elif not allowed:
            assert "no operation" in row and "403" in row and not listed
        else:
            assert listed == allowed
            assert "403 on the others" in row


def test_token_panel_covers_each_case_of_the_fixture(client):
    """The fixture has tokens of every kind; if it stopped having them, the test above would prove less."""
    page = client.get("/docs").get_data(as_text=True)
    rows = _rows(page)
    assert "every operation (7)" in rows["mock-admin-token"]
    assert re.findall(r"<code>(\w+)</code>", rows["mock-user-readonly-token"]) == [
        "getRecentlyViewedDashboards", "getMostViewedDashboards", "getDashboardStats"]
    assert re.findall(r"<code>(\w+)</code>", rows["mock-auditor-token"]) == [
        "getDashboardAuditLogs", "getMappingAuditLogs", "getAuditLog"]
    assert "no operation" in rows["mock-noscope-token"]
    assert "expired" in rows["mock-expired-token"]


def test_token_panel_agrees_with_what_the_api_answers(client):
    """The panel's claims hold against the running app: an allowed call is 200, another is 403."""
    rows = _rows(client.get("/docs").get_data(as_text=True))
    readonly = rows["mock-user-readonly-token"]
    assert "getMostViewedDashboards" in readonly and "recordDashboardView" not in readonly
    headers = {"Authorization": "Bearer mock-user-readonly-token"}
    assert client.get(url("/dashboard/most-viewed"), headers=headers).status_code == 200
    assert client.post(url("/dashboard/00000000-0000-4000-8000-000000000000/view"),
                       headers=headers).status_code == 403
    assert client.get(url("/dashboard/most-viewed"), headers=ADMIN).status_code == 200


def test_tokens_are_hidden_when_the_mock_is_not_on_loopback(app_factory):
    client = app_factory(HOST="0.0.0.0").test_client()
    page = client.get("/docs").get_data(as_text=True)
    assert not any(entry["token"] in page for entry in TOKENS)
    assert "data-token=" not in page
    assert "hidden" in page and "Auditor" in page and "getAuditLog" in page  # roles and access still shown
