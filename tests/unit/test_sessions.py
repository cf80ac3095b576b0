"""mock_server/sessions/: each session named by X-Mock-Session (or the mock_session cookie) has its own state.

Parallel sessions record views and read every operation and operator endpoint, and see only their own; the
default session is untouched; limits, TTL, names, CORS and the frozen clock. The same with several workers
on one file and with PostgreSQL replicas: tests/system/test_sessions_shared.py."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask.testing import FlaskClient

from mock_helpers import ADMIN, NOW, ROOT, UNKNOWN_UUID, bearer, url
from mock_server.timestamps import iso

USER = bearer("mock-user-token")
READER = {**ADMIN, **bearer("mock-opsera-admin-token")}  # Opsera Administrator: may read the audit logs too


def plain(app) -> FlaskClient:
    """A client that does not check answers against the spec: the session's own errors (400 for a bad name,
    503 at the limit) are the mock's, not the vendor's, and no operation documents them."""
    return FlaskClient(app)


def as_session(name: str | None, headers: dict) -> dict:
    return {**headers, "X-Mock-Session": name} if name is not None else dict(headers)


def reads(client, name: str | None, dashboard: str, mapping: str) -> dict:
    """What every read operation answers in one session (dashboard logs and the entry read as an Opsera
    Administrator, who may read them)."""
    h = as_session(name, ADMIN)
    r = as_session(name, READER)
    stats = client.get(url(f"/dashboard/{dashboard}/stats"), headers=h).json["data"]
    recent = client.get(url("/dashboard/recently-viewed?limit=50"), headers=h).json["data"]
    most = client.get(url("/dashboard/most-viewed?limit=50"), headers=h).json["data"]
    logs = client.get(url(f"/dashboard/{dashboard}/logs?pageSize=100"), headers=r).json
    mapping_logs = client.get(url(f"/mapping/{mapping}/logs?pageSize=100"), headers=r).json
    return {"stats": stats, "recent": {d["dashboardId"]: d["viewCount"] for d in recent},
            "most": {d["dashboardId"]: d["viewCount"] for d in most},
            "logs": logs, "mapping_logs": mapping_logs}


@pytest.fixture
def ids(app):
    dataset = app.extensions["insights_mock"].default.make_dataset()
    return dataset.dashboards[0]["dashboardId"], dataset.mappings[0]["mappingId"]


def test_parallel_sessions_see_only_their_own_views_in_every_operation(app, ids):
    client = app.test_client()
    dashboard, mapping = ids
    before = reads(client, None, dashboard, mapping)
    base = before["stats"]["totalViews"]
    wanted = {"s1": 1, "s2": 3, "s3": 5, "s4": 7}

    def work(name: str) -> tuple[str, list[str], dict]:
        client_of_thread = app.test_client()
        recorded = []
        for _ in range(wanted[name]):
            response = client_of_thread.post(url(f"/dashboard/{dashboard}/view"), headers=as_session(name, ADMIN))
            assert response.status_code == 200
            recorded.append(response.json["data"]["viewCount"])
        return name, recorded, reads(client_of_thread, name, dashboard, mapping)

    with ThreadPoolExecutor(len(wanted)) as pool:
        results = list(pool.map(work, wanted))
    for name, recorded, seen in results:
        n = wanted[name]
        assert recorded == list(range(base + 1, base + n + 1)), name  # counted in its own data only
        assert seen["stats"]["totalViews"] == base + n
        assert seen["stats"]["viewsLast7Days"] == before["stats"]["viewsLast7Days"] + n
        assert seen["recent"][dashboard] == base + n and next(iter(seen["recent"])) == dashboard
        assert seen["most"][dashboard] == base + n
        assert seen["logs"]["pagination"]["totalItems"] == before["logs"]["pagination"]["totalItems"] + n
        mine = [e for e in seen["logs"]["data"] if e["action"] == "view"][:n]
        assert len(mine) == n and all(e["user_id"] == "64b7f0c2a1e3d4c5b6a79801" for e in mine)
        assert seen["mapping_logs"] == before["mapping_logs"]  # the same seed: the same data
        # The entry a view made is found in its session, and in no other.
        entry = seen["logs"]["data"][0]["_id"]
        assert client.get(url(f"/{entry}"), headers=as_session(name, READER)).status_code == 200
        others = [other for other in wanted if other != name]
        assert plain(app).get(url(f"/{entry}"), headers=as_session(others[0], READER)).status_code == 404
        assert plain(app).get(url(f"/{entry}"), headers=READER).status_code == 404
    assert reads(client, None, dashboard, mapping) == before  # the default session: unchanged


def test_a_session_is_made_from_the_seed_and_answers_like_a_fresh_mock(app, ids):
    client = app.test_client()
    dashboard, mapping = ids
    assert reads(client, "fresh", dashboard, mapping) == reads(client, None, dashboard, mapping)


def test_the_answer_names_the_session_that_gave_it(app):
    client = app.test_client()
    named = client.get(url("/dashboard/most-viewed"), headers={**ADMIN, "X-Mock-Session": "echo",
                                                                "Origin": "http://localhost:5173"})
    assert named.headers["X-Mock-Session"] == "echo"
    assert "X-Mock-Session" in named.headers["Access-Control-Expose-Headers"]  # a page's script may read it
    assert "X-Mock-Session" not in client.get(url("/dashboard/most-viewed"), headers=ADMIN).headers


def test_the_journal_is_per_session_and_clearing_one_leaves_the_others(app, ids):
    client = app.test_client()
    dashboard, _ = ids
    for name, n in (("j1", 2), ("j2", 3)):
        for _ in range(n):
            client.get(url(f"/dashboard/{dashboard}/stats"), headers=as_session(name, ADMIN))
    client.get(url("/dashboard/most-viewed"), headers=ADMIN)
    seen = {name: client.get("/__admin/requests", headers=as_session(name, {})).json for name in ("j1", "j2")}
    assert (seen["j1"]["count"], seen["j2"]["count"]) == (2, 3)
    assert seen["j1"]["session"] == "j1" and all("/stats" in e["path"] for e in seen["j1"]["entries"])
    assert client.get("/__admin/sessions/j2/requests").json["count"] == 3
    assert client.delete("/__admin/requests", headers=as_session("j1", {})).json["session"] == "j1"
    assert client.get("/__admin/requests", headers=as_session("j1", {})).json["count"] == 0
    assert client.get("/__admin/sessions/j2/requests").json["count"] == 3
    assert client.get("/__admin/requests").json["count"] == 1  # the default session's own request
    client.delete("/__admin/sessions/j2/requests")
    assert client.get("/__admin/sessions/j2/requests").json["count"] == 0


def test_reset_and_scenario_switch_act_on_one_session(app, ids):
    client = app.test_client()
    dashboard, _ = ids
    base = client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]["totalViews"]
    for name in ("r1", "r2"):
        client.post(url(f"/dashboard/{dashboard}/view"), headers=as_session(name, ADMIN))
    assert client.post("/__admin/reset", headers=as_session("r1", {})).json["session"] == "r1"
    total = {name: client.get(url(f"/dashboard/{dashboard}/stats"), headers=as_session(name, ADMIN)).json["data"]
             ["totalViews"] for name in ("r1", "r2")}
    assert total == {"r1": base, "r2": base + 1}
    switched = client.post("/__admin/sessions/r2/scenario", json={"name": "empty"})
    assert switched.status_code == 200 and switched.json["scenario"] == "empty"
    assert client.get(url("/dashboard/most-viewed"), headers=as_session("r2", ADMIN)).json["data"] == []
    assert client.get(url("/dashboard/most-viewed"), headers=as_session("r1", ADMIN)).json["data"] != []
    assert client.get(url("/dashboard/most-viewed"), headers=ADMIN).json["data"] != []
    assert client.get("/__admin/scenario").json["name"] == "default"
    assert client.get("/__admin/scenario", headers=as_session("r2", {})).json["name"] == "empty"
    listed = {s["name"]: s for s in client.get("/__admin/sessions").json["sessions"]}
    assert listed["r2"]["scenario"] == "empty" and listed["r1"]["scenario"] == "default"


def test_faults_draw_from_the_sessions_own_rng(app_factory, tmp_path):
    """Two sessions with the same error rate fail on the same requests whatever the other one does."""
    scenarios = tmp_path / "scenarios"
    shutil.copytree(ROOT / "fixtures" / "scenarios", scenarios)
    (scenarios / "flaky.yaml").write_text("description: half fail\nerrorRate: 0.5\n")

    def pattern(app, name: str, interleave: str | None) -> list[int]:
        client = plain(app)
        codes = []
        for _ in range(16):
            codes.append(client.get(url("/dashboard/most-viewed"), headers=as_session(name, ADMIN)).status_code)
            if interleave is not None:
                client.get(url("/dashboard/most-viewed"), headers=as_session(interleave, ADMIN))
        return codes

    alone = app_factory(SCENARIOS_DIR=str(scenarios))
    plain(alone).post("/__admin/sessions", json={"name": "x", "scenario": "flaky"})
    together = app_factory(SCENARIOS_DIR=str(scenarios))
    for name in ("x", "y"):
        plain(together).post("/__admin/sessions", json={"name": name, "scenario": "flaky"})
    expected = pattern(alone, "x", None)
    assert 500 in expected and 200 in expected
    assert pattern(together, "x", "y") == expected
    assert set(pattern(together, "default", None)) == {200}  # the default session has no error rate


def test_operator_endpoints_list_get_create_and_delete_sessions(app, ids):
    client = app.test_client()
    dashboard, _ = ids
    client.get(url("/dashboard/most-viewed"), headers=as_session("listed", ADMIN))
    listing = client.get("/__admin/sessions").json
    assert listing["max"] == 64 and listing["count"] == 1 and listing["default"]["name"] == "default"
    (one,) = listing["sessions"]
    assert one["name"] == "listed" and one["scenario"] == "default" and one["sizes"]["views"] == 600
    assert one["created"] <= one["lastUsed"]
    got = client.get("/__admin/sessions/listed").json
    assert got["name"] == "listed" and got["counts"]["views"] == 600
    assert plain(app).get("/__admin/sessions/never-made").status_code == 404
    created = client.post("/__admin/sessions", json={"name": "made", "scenario": "empty"})
    assert created.status_code == 201 and created.json["scenario"] == "empty"
    again = plain(app).post("/__admin/sessions", json={"name": "made"})
    assert again.status_code == 409 and again.json["error"] == "conflict"
    unknown = plain(app).post("/__admin/sessions", json={"name": "other", "scenario": "no-such"})
    assert unknown.status_code == 404 and "available" in unknown.json["details"][0]["message"]
    assert plain(app).get("/__admin/sessions/other").status_code == 404  # nothing made for a refused one
    client.post(url(f"/dashboard/{dashboard}/view"), headers=as_session("listed", ADMIN))
    assert client.delete("/__admin/sessions/listed").json == {"status": "deleted", "name": "listed"}
    assert plain(app).delete("/__admin/sessions/listed").status_code == 404
    refused = plain(app).delete("/__admin/sessions/default")
    assert refused.status_code == 400 and refused.json["status"] == 400
    # Named again, it is a new session, made afresh from the seed.
    fresh = client.get(url(f"/dashboard/{dashboard}/stats"), headers=as_session("listed", ADMIN)).json["data"]
    assert fresh["totalViews"] == client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"][
        "totalViews"]


@pytest.mark.parametrize("name", ["", "with space", "-leading-dash", "x" * 49, "a/b", "ü"])
def test_a_bad_session_name_is_a_400_in_the_error_body(app, name):
    response = plain(app).get(url("/dashboard/most-viewed"), headers={**ADMIN, "X-Mock-Session": name})
    assert response.status_code == 400
    body = response.json
    assert body["error"] == "invalid_session" and body["status"] == 400 and body["requestId"]
    assert body["details"][0]["name"] == "X-Mock-Session"
    admin = plain(app).get("/__admin/requests", headers={"X-Mock-Session": name})
    assert admin.status_code == 400 and admin.json["error"] == "invalid_session"


def test_the_cookie_names_a_session_and_the_header_wins(app, ids):
    client = app.test_client()
    dashboard, _ = ids
    base = client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]["totalViews"]
    client.set_cookie("mock_session", "from-cookie")
    client.post(url(f"/dashboard/{dashboard}/view"), headers=ADMIN)
    assert client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]["totalViews"] == base + 1
    header = client.get(url(f"/dashboard/{dashboard}/stats"), headers=as_session("from-header", ADMIN))
    assert header.json["data"]["totalViews"] == base
    client.delete_cookie("mock_session")
    assert client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]["totalViews"] == base


def test_past_the_limit_an_idle_session_is_dropped_or_a_busy_mock_says_which_limit(app_factory, ids):
    app = app_factory(MAX_SESSIONS=2, SESSION_BUSY_S=0.3)
    client = plain(app)
    dashboard = app.extensions["insights_mock"].default.make_dataset().dashboards[0]["dashboardId"]
    for name in ("a", "b"):
        assert client.post(url(f"/dashboard/{dashboard}/view"), headers=as_session(name, ADMIN)).status_code == 200
    refused = client.get(url("/dashboard/most-viewed"), headers=as_session("c", ADMIN))
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.json["error"] == "session_limit" and "--max-sessions 2" in refused.json["message"]
    assert refused.json["status"] == 503 and refused.json["requestId"]
    time.sleep(0.35)  # both idle now
    client.get(url("/dashboard/most-viewed"), headers=as_session("b", ADMIN))  # b is busy again, a is not
    assert client.get(url("/dashboard/most-viewed"), headers=as_session("c", ADMIN)).status_code == 200
    names = [s["name"] for s in client.get("/__admin/sessions").json["sessions"]]
    assert names == ["b", "c"]  # a, the least recently used idle one, was dropped
    assert client.get("/__admin/sessions/a").status_code == 404


def test_an_unused_session_expires_after_its_ttl(app_factory):
    app = app_factory(SESSION_TTL=0.3)
    client = plain(app)
    dashboard = app.extensions["insights_mock"].default.make_dataset().dashboards[0]["dashboardId"]
    stats = url(f"/dashboard/{dashboard}/stats")
    base = client.get(stats, headers=ADMIN).json["data"]["totalViews"]
    client.post(url(f"/dashboard/{dashboard}/view"), headers=as_session("short", ADMIN))
    assert [s["name"] for s in client.get("/__admin/sessions").json["sessions"]] == ["short"]
    time.sleep(0.45)
    assert client.get("/__admin/sessions").json["sessions"] == []
    assert client.get(stats, headers=as_session("short", ADMIN)).json["data"]["totalViews"] == base  # made anew


def test_sessions_can_be_turned_off(app_factory):
    app = app_factory(MAX_SESSIONS=0)
    response = plain(app).get(url("/dashboard/most-viewed"), headers=as_session("any", ADMIN))
    assert response.status_code == 503 and "--max-sessions 0" in response.json["message"]
    assert plain(app).get(url("/dashboard/most-viewed"), headers=ADMIN).status_code == 200


def test_a_browser_may_send_the_session_header(app):
    preflight = plain(app).options(url("/dashboard/most-viewed"), headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, x-mock-session"})
    assert preflight.status_code == 200
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"authorization", "x-mock-session"}
    admin = plain(app).options("/__admin/requests", headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-mock-session"})
    assert admin.headers["Access-Control-Allow-Headers"].lower() == "x-mock-session"


def test_a_frozen_clock_stamps_every_view_at_the_anchor(app_factory):
    app = app_factory(FREEZE_CLOCK=True)
    client = app.test_client()
    dashboard = app.extensions["insights_mock"].default.make_dataset().dashboards[0]["dashboardId"]
    stamps = [client.post(url(f"/dashboard/{dashboard}/view"), headers=ADMIN).json["data"]["viewedAt"]
              for _ in range(2)]
    time.sleep(0.02)
    assert stamps == [NOW, NOW]
    assert client.get("/__admin/health").json["now"] == NOW and client.get("/__admin/health").json["frozenClock"]


def test_a_session_may_have_its_own_frozen_now(app):
    client = app.test_client()
    made = client.post("/__admin/sessions", json={"name": "screenshot", "now": "2026-10-01T08:30:00Z"})
    assert made.status_code == 201 and made.json["now"] == "2026-10-01T08:30:00.000Z" and made.json["frozenClock"]
    viewed = client.post(url(f"/dashboard/{UNKNOWN_UUID}/view"), headers=as_session("screenshot", ADMIN)).json
    assert viewed["data"]["viewedAt"] == "2026-10-01T08:30:00.000Z"
    stats = client.get(url(f"/dashboard/{UNKNOWN_UUID}/stats"), headers=as_session("screenshot", ADMIN)).json
    assert stats["data"]["dailyViews"][-1] == {"date": "2026-10-01", "views": 1}
    recent = client.get(url("/dashboard/recently-viewed"), headers=as_session("screenshot", ADMIN)).json["data"]
    assert all(d["lastViewedAt"] <= "2026-10-01T08:30:00.000Z" for d in recent)  # the data ends at its now
    default = client.get(url(f"/dashboard/{UNKNOWN_UUID}/stats"), headers=ADMIN).json["data"]
    assert default["totalViews"] == 0 and default["dailyViews"][-1]["date"] == iso(
        app.extensions["insights_mock"].clock.now())[:10]
    bad = plain(app).post("/__admin/sessions", json={"name": "later", "now": "tomorrow"})
    assert bad.status_code == 400 and bad.json["details"][0]["name"] == "now"
