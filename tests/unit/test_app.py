"""app.py: the factory, the request pipeline, the response contract check, headers, CORS, determinism."""

from __future__ import annotations

import io
import logging

import jsonschema_rs
import pytest
from flask import Flask
from flask.testing import FlaskClient

from mock_helpers import ADMIN, SPEC, SPEC_PATH, UNKNOWN_OBJECT_ID, UNKNOWN_UUID, bearer, operations, url
from mock_server import create_app
from mock_server.errors import ResponseContractError


def test_create_app_routes_every_operation_to_the_handler_named_after_it(app):
    assert isinstance(app, Flask)
    router = app.wsgi_app.app.api.router  # HostGuard(ByPrefix(ApiPipeline, Flask))
    assert sorted(router.routes) == sorted(op_id for op_id, _, _ in operations())
    for op_id, method, path in operations():
        concrete = path.replace("{dashboardId}", UNKNOWN_UUID).replace("{mappingId}", UNKNOWN_UUID) \
            .replace("{auditLogId}", UNKNOWN_OBJECT_ID)
        route, _ = router.match(method, concrete)
        assert route.op.operation_id == route.handler.__name__ == op_id
        assert (route.op.method, route.op.path) == (method, path)
    assert not any(rule.rule.startswith("/api/") for rule in app.url_map.iter_rules())  # Flask serves no API path


def test_state_is_per_app(app_factory):
    first, second = app_factory(), app_factory()
    assert first.extensions["insights_mock"] is not second.extensions["insights_mock"]
    a, b = first.test_client(), second.test_client()
    a.post(url(f"/dashboard/{UNKNOWN_UUID}/view"), headers=ADMIN)
    assert a.get(url(f"/dashboard/{UNKNOWN_UUID}/stats"), headers=ADMIN).json["data"]["totalViews"] == 1
    assert b.get(url(f"/dashboard/{UNKNOWN_UUID}/stats"), headers=ADMIN).json["data"]["totalViews"] == 0


def _all_gets(client, generated) -> list[bytes]:
    dashboard = generated.dashboards[0]["dashboardId"]
    mapping = generated.mappings[0]["mappingId"]
    entry = generated.audit_logs[0]["_id"]
    paths = ["/dashboard/recently-viewed?limit=100", "/dashboard/most-viewed?limit=100",
             f"/dashboard/{dashboard}/stats", f"/dashboard/{dashboard}/logs?pageSize=1000",
             f"/mapping/{mapping}/logs?pageSize=1000", f"/{entry}", f"/dashboard/{UNKNOWN_UUID}/stats"]
    bodies = []
    for token in ("mock-admin-token", "mock-poweruser-token"):
        for path in paths:
            response = client.get(url(path), headers=bearer(token))
            assert response.status_code == 200
            bodies.append(response.get_data())
    return bodies


def test_same_seed_and_now_give_identical_responses(app_factory):
    first, second = app_factory(SEED=11), app_factory(SEED=11)
    generated = first.extensions["insights_mock"].default.make_dataset()
    assert _all_gets(first.test_client(), generated) == _all_gets(second.test_client(), generated)


def test_another_seed_gives_other_data(app_factory):
    bodies = []
    for seed in (11, 12):
        client = app_factory(SEED=seed).test_client()
        bodies.append(client.get(url("/dashboard/most-viewed?limit=100"), headers=ADMIN).get_data())
    assert bodies[0] != bodies[1]


def test_the_spec_is_served_as_is(client):
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert response.get_data() == SPEC_PATH.read_bytes()


@pytest.mark.parametrize("method, path, headers", [
    ("GET", url("/dashboard/most-viewed"), ADMIN),
    ("GET", url("/dashboard/most-viewed"), {}),
    ("GET", url("/dashboard/not-a-uuid/stats"), ADMIN),
    ("GET", "/nowhere", {}),
    ("DELETE", url("/dashboard/most-viewed"), ADMIN),
    ("GET", "/__admin/health", {}),
    ("GET", "/openapi.yaml", {}),
])
def test_every_response_has_nosniff_and_a_request_id(client, method, path, headers):
    response = client.open(path, method=method, headers=headers)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    rid = response.headers["X-Request-Id"]
    assert rid
    if response.status_code >= 400:
        assert response.json["requestId"] == rid


def test_a_sane_request_id_is_echoed_and_an_odd_one_replaced(client):
    response = client.get(url("/dashboard/most-viewed"), headers={"X-Request-Id": "abc-123.x:y_z"})
    assert response.headers["X-Request-Id"] == "abc-123.x:y_z"
    response = client.get(url("/dashboard/most-viewed"), headers={"X-Request-Id": "<script>" + "x" * 200})
    assert response.headers["X-Request-Id"] != "<script>" + "x" * 200
    assert response.json["requestId"] == response.headers["X-Request-Id"]


def test_api_responses_are_not_cached(client):
    assert client.get(url("/dashboard/most-viewed"), headers=ADMIN).headers["Cache-Control"] == "no-store"


def test_unknown_path_is_a_404_in_the_error_schema(client):
    response = client.get("/api/v2/insights/kpis/audit-logs/dashboard/x/y/z", headers=ADMIN)
    assert response.status_code == 404
    body = response.json
    assert (body["status"], body["error"]) == (404, "not_found")
    assert set(body) <= {"status", "error", "message", "details", "requestId"}


def test_wrong_method_is_a_405_that_keeps_allow(client):
    response = client.put(url(f"/dashboard/{UNKNOWN_UUID}/view"), headers=ADMIN)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, OPTIONS" or set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    assert response.json["error"] == "method_not_allowed"
    assert client.get(url(f"/dashboard/{UNKNOWN_UUID}/view"), headers=ADMIN).status_code == 405


def test_a_body_over_the_limit_is_a_413(app_factory):
    app = app_factory(MAX_CONTENT_LENGTH=1024)
    client = app.test_client()
    # openapi.yaml documents no 413 for recordDashboardView, so openapi-core cannot judge this one response:
    # a plain client, and the body checked against the spec's Error schema directly.
    response = FlaskClient(app).post(url(f"/dashboard/{UNKNOWN_UUID}/view"), headers=ADMIN, data=b"x" * 1025)
    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"
    error_schema = {"$ref": "#/components/schemas/Error", "components": SPEC["components"]}
    assert jsonschema_rs.validator_for(error_schema, validate_formats=True).is_valid(response.json)
    assert "1024" in response.json["details"][0]["message"]
    assert client.get(url(f"/dashboard/{UNKNOWN_UUID}/stats"), headers=ADMIN).json["data"]["totalViews"] == 0
    assert client.post(url(f"/dashboard/{UNKNOWN_UUID}/view"), headers=ADMIN, data=b"x" * 1024).status_code == 200


@pytest.mark.parametrize("size, status", [(1024, 200), (1025, 413), (70_000, 413)])
def test_a_chunked_body_is_held_to_the_limit_too(app_factory, size, status):
    """A chunked body has no Content-Length; the server de-chunks it and says so (wsgi.input_terminated)."""
    app = app_factory(MAX_CONTENT_LENGTH=1024)
    response = FlaskClient(app).post(
        url(f"/dashboard/{UNKNOWN_UUID}/view"), headers={**ADMIN, "Transfer-Encoding": "chunked"},
        input_stream=io.BytesIO(b"x" * size), environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == status


def test_head_and_plain_options_work_without_a_token(client):
    head = client.head(url("/dashboard/most-viewed"), headers=ADMIN)
    assert head.status_code == 200 and head.get_data() == b""
    options = client.options(url("/dashboard/most-viewed"))
    assert options.status_code == 200
    assert "GET" in options.headers["Allow"]


def test_an_unexpected_exception_is_a_500_without_a_traceback(app, client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(app.extensions["insights_mock"].default.store, "most_viewed", broken)
    with caplog.at_level(logging.ERROR):
        response = client.get(url("/dashboard/most-viewed"), headers=ADMIN)
    assert response.status_code == 500
    body = response.json
    assert (body["error"], body["message"]) == ("internal_error", "Internal server error - Unexpected server-side issue")
    text = response.get_data(as_text=True)
    assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert any("secret internals" in str(r.exc_info) for r in caplog.records if r.exc_info)


def test_a_response_off_the_spec_raises_under_testing(app, monkeypatch):
    monkeypatch.setattr(app.extensions["insights_mock"].default.store, "most_viewed", lambda limit, **_: [{"dashboardId": 1}])
    with pytest.raises(ResponseContractError, match="getMostViewedDashboards"):
        FlaskClient(app).get(url("/dashboard/most-viewed"), headers=ADMIN)


def test_a_response_off_the_spec_is_a_logged_500_outside_testing(app_factory, monkeypatch, caplog):
    app = app_factory(TESTING=False)
    monkeypatch.setattr(app.extensions["insights_mock"].default.store, "most_viewed", lambda limit, **_: [{"dashboardId": 1}])
    with caplog.at_level(logging.ERROR, logger="insights_mock"):
        response = app.test_client().get(url("/dashboard/most-viewed"), headers=ADMIN)
    assert response.status_code == 500
    assert response.json["error"] == "response_validation_failed"
    assert any("does not match openapi.yaml" in r.getMessage() for r in caplog.records)


def test_without_response_validation_the_body_passes_through(app_factory, monkeypatch):
    app = app_factory(VALIDATE_RESPONSES=False)
    monkeypatch.setattr(app.extensions["insights_mock"].default.store, "most_viewed", lambda limit, **_: [{"dashboardId": 1}])
    response = FlaskClient(app).get(url("/dashboard/most-viewed"), headers=ADMIN)  # no openapi-core here
    assert response.status_code == 200 and response.json["data"] == [{"dashboardId": 1}]


def test_the_openapi_core_second_opinion_catches_drift(app_factory, monkeypatch):
    """The conftest client must fail a test on an off-spec body even when the app's own check is off."""
    app = app_factory(VALIDATE_RESPONSES=False)
    monkeypatch.setattr(app.extensions["insights_mock"].default.store, "most_viewed", lambda limit, **_: [{"dashboardId": 1}])
    with pytest.raises(pytest.fail.Exception, match="openapi-core rejects"):
        app.test_client().get(url("/dashboard/most-viewed"), headers=ADMIN)


# --- CORS ----------------------------------------------------------------------------------------------------

def test_preflight_from_a_local_frontend(client):
    response = client.options(url(f"/dashboard/{UNKNOWN_UUID}/view"), headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, prefer, content-type"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "prefer", "content-type"} <= allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Origin" in response.headers.get("Vary", "")


def test_cors_headers_on_actual_responses_errors_included(client):
    ok = client.get(url("/dashboard/most-viewed"), headers={**ADMIN, "Origin": "http://127.0.0.1:3000"})
    assert ok.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:3000"
    assert "X-Request-Id" in ok.headers["Access-Control-Expose-Headers"]
    denied = client.get(url("/dashboard/most-viewed"), headers={"Origin": "http://127.0.0.1:3000"})
    assert denied.status_code == 401
    assert denied.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:3000"
    assert "WWW-Authenticate" in denied.headers["Access-Control-Expose-Headers"]


def test_other_origins_are_not_reflected(client):
    response = client.get(url("/dashboard/most-viewed"), headers={**ADMIN, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in client.get(url("/dashboard/most-viewed"), headers=ADMIN).headers


def test_configured_origins_and_the_wildcard(app_factory):
    client = app_factory(CORS_ORIGINS="https://app.example").test_client()
    headers = {**ADMIN, "Origin": "https://app.example"}
    assert client.get(url("/dashboard/most-viewed"), headers=headers).headers["Access-Control-Allow-Origin"] == \
        "https://app.example"
    assert "Access-Control-Allow-Origin" not in client.get(
        url("/dashboard/most-viewed"), headers={**ADMIN, "Origin": "http://localhost:3000"}).headers
    wildcard = app_factory(CORS_ORIGINS="*").test_client()
    response = wildcard.get(url("/dashboard/most-viewed"), headers={**ADMIN, "Origin": "https://any.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_create_app_accepts_no_config():
    """create_app() with nothing uses defaults and the environment (fresh app, default sizes)."""
    app = create_app()
    try:
        assert app.extensions["insights_mock"].config["SEED"] == 42 or app.config["SEED"] is not None
        assert app.test_client().get(url(f"/{UNKNOWN_OBJECT_ID}"), headers=ADMIN).status_code == 404
    finally:
        app.extensions["insights_mock"].default.store.close()


def test_a_local_frontend_may_clear_the_journal(client):
    """DELETE /__admin/requests from a dev page: the preflight allows DELETE, the answer carries CORS headers."""
    origin = {"Origin": "http://localhost:5173"}
    preflight = client.options("/__admin/requests", headers={**origin, "Access-Control-Request-Method": "DELETE"})
    assert preflight.status_code == 200 and "DELETE" in preflight.headers["Access-Control-Allow-Methods"]
    cleared = client.delete("/__admin/requests", headers=origin)
    assert cleared.status_code == 200 and cleared.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"


def test_the_root_sends_a_browser_to_the_api_reference(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/docs"
    assert client.get("/", follow_redirects=True).mimetype == "text/html"
