"""admin.py: /__admin/reset and /__admin/health, and who may call them."""

from __future__ import annotations

import pytest

from mock_helpers import ADMIN, NOW, UNKNOWN_UUID, bearer, url
from mock_server.operator.admin import is_loopback


def test_health_reports_status_seed_and_time(client, generated):
    response = client.get("/__admin/health")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "ok"
    assert body["seed"] == 42
    assert body["anchor"] == NOW
    assert body["now"] >= NOW
    assert body["operations"] == 7
    assert body["validateResponses"] is True
    counts = body["counts"]
    assert counts == {"users": len(generated.users), "dashboards": len(generated.dashboards),
                      "mappings": len(generated.mappings), "views": len(generated.views),
                      "audit_logs": len(generated.audit_logs)}


def test_reset_restores_the_generated_state(client, generated):
    dashboard = generated.dashboards[0]["dashboardId"]
    before = client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]
    for _ in range(3):
        client.post(url(f"/dashboard/{dashboard}/view"), headers=ADMIN)
    client.post(url(f"/dashboard/{UNKNOWN_UUID}/view"), headers=ADMIN)
    assert client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]["totalViews"] == \
        before["totalViews"] + 3
    response = client.post("/__admin/reset")
    assert response.status_code == 200
    assert response.json["status"] == "reset" and response.json["seed"] == 42
    assert client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"] == before
    assert client.get(url(f"/dashboard/{UNKNOWN_UUID}/stats"), headers=ADMIN).json["data"]["totalViews"] == 0


def test_reset_is_post_only(client):
    assert client.get("/__admin/reset").status_code == 405
    assert client.post("/__admin/health").status_code == 405


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True),
                                            ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                            ("192.168.1.20", False), ("::", False), ("example.org", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_off_loopback_without_an_admin_token_the_operator_api_is_locked_and_says_how_to_unlock_it(app_factory):
    client = app_factory(HOST="0.0.0.0").test_client()
    for response in (client.post("/__admin/reset"), client.get("/__admin/scenario"),
                     client.get("/__admin/requests"), client.delete("/__admin/requests", headers=ADMIN)):
        assert response.status_code == 401
        assert response.json["error"] == "invalid_token"
        assert "MOCK_ADMIN_TOKEN" in response.json["message"]
        assert "MOCK_ADMIN_TOKEN" in response.json["details"][0]["message"]
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="insights-admin"'


def test_open_health_is_the_default_sessions_only_so_no_one_makes_sessions_through_it(app_factory):
    client = app_factory(HOST="0.0.0.0").test_client()
    response = client.get("/__admin/health", headers={"X-Mock-Session": "test-7"})
    assert response.status_code == 401 and "MOCK_ADMIN_TOKEN" in response.json["message"]
    assert client.get("/__admin/health", headers={"X-Mock-Session": "default"}).status_code == 200
    client.set_cookie("mock_session", "test-7")  # the cookie names a session as the header does
    assert client.get("/__admin/health").status_code == 401
    unlocked = app_factory(HOST="0.0.0.0", ADMIN_TOKEN="s3cret-admin").test_client()
    named = unlocked.get("/__admin/health", headers={"X-Mock-Session": "test-7", **bearer("s3cret-admin")})
    assert named.status_code == 200 and named.json["session"] == "test-7"


@pytest.mark.parametrize("extra", [{}, {"ADMIN_TOKEN": "s3cret-admin"}])
@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_health_is_open_for_probes_locked_or_not(app_factory, host, extra):
    client = app_factory(HOST=host, **extra).test_client()
    response = client.get("/__admin/health")
    assert response.status_code == 200 and response.json["status"] == "ok"
    assert "s3cret-admin" not in response.get_data(as_text=True)


def test_off_loopback_the_admin_token_is_required(app_factory):
    client = app_factory(HOST="0.0.0.0", ADMIN_TOKEN="s3cret-admin").test_client()
    missing = client.post("/__admin/reset")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/__admin/reset", headers=bearer("wrong")).status_code == 401
    assert client.post("/__admin/reset", headers=ADMIN).status_code == 401  # API tokens are not admin tokens
    assert client.post("/__admin/reset", headers=bearer("s3cret-admin")).status_code == 200
    assert client.get("/__admin/scenario", headers={"Authorization": "bearer s3cret-admin"}).status_code == 200
    assert "s3cret-admin" not in missing.get_data(as_text=True)
    assert "MOCK_ADMIN_TOKEN" in missing.json["message"]  # which secret, not its value


def test_a_set_admin_token_is_required_on_loopback_too(app_factory):
    client = app_factory(ADMIN_TOKEN="s3cret-admin").test_client()
    assert client.get("/__admin/scenario").status_code == 401
    assert client.get("/__admin/scenario", headers=bearer("s3cret-admin")).status_code == 200


def test_admin_preflight_needs_no_token(app_factory):
    client = app_factory(HOST="0.0.0.0", ADMIN_TOKEN="s3cret-admin").test_client()
    response = client.options("/__admin/reset", headers={"Origin": "http://localhost:3000",
                                                          "Access-Control-Request-Method": "POST"})
    assert response.status_code == 200


def test_health_reports_the_scenario_the_journal_and_reload(client):
    body = client.get("/__admin/health").json
    assert body["scenario"] == "default" and body["latency"] is None and body["errorRate"] == 0.0
    assert body["journal"] == {"size": 200, "shared": False}
    assert body["reload"] == {"enabled": False}
    assert client.post("/__admin/reset").json["scenario"] == "default"


def test_new_admin_endpoints_answer_only_their_methods(client):
    assert client.put("/__admin/scenario", json={"name": "empty"}).status_code == 405
    assert client.post("/__admin/requests").status_code == 405
    assert client.delete("/__admin/scenario").status_code == 405
