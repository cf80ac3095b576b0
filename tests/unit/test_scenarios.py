"""mock_server/data/ scenarios.py, pins.py and runtime.py: the shipped scenario files, pins made consistent,
schema errors, precedence, workers following."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from mock_helpers import ADMIN, AUDITOR, NOW, ROOT, SMALL, SPEC, TOKENS, bearer, component_validator, operations, url
from mock_server.faults import Faults
from mock_server.data.scenarios import OBJECT_ID_PATTERN, UUID_PATTERN, ScenarioError, available, load, parse
from mock_server.timestamps import iso

SCENARIOS = ROOT / "fixtures" / "scenarios"
ANCHOR = datetime(2026, 11, 25, 12, tzinfo=UTC)
NO_SIZES = {key: None for key in SMALL}  # let the scenario's sizes apply (explicit sizes would win)
PINNED = "11111111-1111-4111-8111-111111111111"
NEVER = "22222222-2222-4222-8222-222222222222"
ONCE = "33333333-3333-4333-8333-333333333333"
MAPPING = "44444444-4444-4444-8444-444444444444"
VIEWERS = ("mock-admin-token", "mock-opsera-admin-token", "mock-poweruser-token", "mock-user-readonly-token",
           "mock-user-token")


# The default scenario pins the spec's example dashboard with its 9 views (fixtures/scenarios/default.yaml).
DEFAULT_PINNED_VIEWS = sum(len(d.get("viewTimes", [])) for d in yaml.safe_load(
    (ROOT / "fixtures" / "scenarios" / "default.yaml").read_text(encoding="utf-8"))["pins"]["dashboards"])


def at(**delta) -> str:
    return iso(ANCHOR - timedelta(**delta))


def test_the_shipped_scenarios_are_there_and_valid():
    assert {"default", "empty", "busy", "degraded", "pinned"} <= set(available(SCENARIOS))
    for name in available(SCENARIOS):
        assert load(SCENARIOS, name).description, f"{name}.yaml has no description"


def test_the_patterns_are_the_specs():
    from mock_helpers import SPEC
    schemas = SPEC["components"]["schemas"]
    assert schemas["Uuid"]["pattern"] == UUID_PATTERN and schemas["ObjectId"]["pattern"] == OBJECT_ID_PATTERN


def _every_operation(client, dashboard: str, mapping: str, audit_id: str) -> None:
    """Each operation once with a token allowed to call it; the test client validates every response."""
    params = {"dashboardId": dashboard, "mappingId": mapping, "auditLogId": audit_id}
    for op_id, method, path in operations():
        token = AUDITOR if "Log" in op_id or op_id.startswith("getAudit") else ADMIN
        response = client.open(path.format(**params), method=method, headers=token)
        assert response.status_code in (200, 404), (op_id, response.json)


@pytest.mark.parametrize("name", ["default", "empty", "degraded", "pinned"])
def test_every_operation_answers_by_the_spec_in_each_scenario(app_factory, name):
    app = app_factory(SCENARIO=name, ERROR_RATE=0, LATENCY="0")
    dataset = app.extensions["insights_mock"].default.make_dataset()
    dashboard = dataset.dashboards[0]["dashboardId"]
    mapping = dataset.mappings[0]["mappingId"]
    audit_id = dataset.audit_logs[0]["_id"] if dataset.audit_logs else "0123456789abcdef01234567"
    _every_operation(app.test_client(), dashboard, mapping, audit_id)


def test_empty_is_a_new_tenant(app_factory):
    app = app_factory(SCENARIO="empty", **NO_SIZES)
    client = app.test_client()
    counts = client.get("/__admin/health").json["counts"]
    assert counts == {"users": len(TOKENS), "dashboards": 2, "mappings": 1, "views": 0, "audit_logs": 0}
    starter = "0b7c5a3e-1f2d-4c8b-9a6e-5d4c3b2a1f00"
    for token in VIEWERS:
        assert client.get(url("/dashboard/recently-viewed"), headers=bearer(token)).json["data"] == []
    assert client.get(url("/dashboard/most-viewed"), headers=ADMIN).json["data"] == []
    stats = client.get(url(f"/dashboard/{starter}/stats"), headers=ADMIN).json["data"]
    assert stats["totalViews"] == 0 and stats["lastViewedAt"] is None and len(stats["dailyViews"]) == 30
    logs = client.get(url(f"/dashboard/{starter}/logs"), headers=AUDITOR).json
    assert logs["data"] == [] and logs["pagination"]["total_items"] == 0
    # The tenant's first view: the starter dashboard appears, named, with its audit entry.
    assert client.post(url(f"/dashboard/{starter}/view"), headers=ADMIN).status_code == 200
    recent = client.get(url("/dashboard/recently-viewed"), headers=ADMIN).json["data"]
    assert [(d["dashboardId"], d["name"], d["viewCount"]) for d in recent] == \
        [(starter, "Getting Started – DORA Metrics", 1)]
    entries = client.get(url(f"/dashboard/{starter}/logs"), headers=AUDITOR).json["data"]
    assert [(e["action"], e["dashboard"]["name"]) for e in entries] == [("view", "Getting Started – DORA Metrics")]


def test_pinned_dashboards_are_exact_and_consistent_everywhere(app_factory):
    client = app_factory(SCENARIO="pinned").test_client()
    top = client.get(url("/dashboard/most-viewed?limit=1"), headers=ADMIN).json["data"][0]
    assert top == {"dashboardId": PINNED, "name": "Pinned – Release Readiness",
                   "description": "The dashboard UI tests open first.",
                   "owner": {"userId": "65a000000000000000000001", "email": "grace.hopper@acme.example",
                             "name": "Grace Hopper"},
                   "tags": ["release", "pinned"], "kpiCount": 7, "viewCount": 5000, "lastViewedAt": at(hours=1)}
    stats = client.get(url(f"/dashboard/{PINNED}/stats"), headers=ADMIN).json["data"]
    # every token user whose role may view: the VIEWERS and the two Administrators of the 401/403 tokens
    assert (stats["totalViews"], stats["uniqueViewers"]) == (5000, len(VIEWERS) + 2)
    assert (stats["firstViewedAt"], stats["lastViewedAt"]) == (at(days=60), at(hours=1))
    assert stats["viewsLast30Days"] == sum(d["views"] for d in stats["dailyViews"]) > 0
    # The first token user made its newest view; each token user that may view has it in recently viewed.
    mine = client.get(url("/dashboard/recently-viewed?limit=100"), headers=ADMIN).json["data"]
    assert [d["lastViewedAt"] for d in mine if d["dashboardId"] == PINNED] == [at(hours=1)]
    for token in VIEWERS:
        listed = client.get(url("/dashboard/recently-viewed?limit=100"), headers=bearer(token)).json["data"]
        assert PINNED in [d["dashboardId"] for d in listed]
    # Its audit log: 5000 views, the create, the pinned share.
    logs = client.get(url(f"/dashboard/{PINNED}/logs?page_size=1&start_date=1970-01-01"), headers=AUDITOR).json
    assert logs["pagination"]["total_items"] == 5002
    views = client.get(url(f"/dashboard/{PINNED}/logs?action=view&page_size=1&start_date=1970-01-01"), headers=AUDITOR).json
    assert views["pagination"]["total_items"] == 5000 and views["data"][0]["createdAt"] == at(hours=1)
    share = client.get(url(f"/dashboard/{PINNED}/logs?action=share&start_date=1970-01-01"), headers=AUDITOR).json["data"]
    assert share == [{"_id": "65a0000000000000000000a1", "user_id": "65a000000000000000000001",
                      "user_email": "grace.hopper@acme.example", "type": "dashboard", "action": "share",
                      "target_id": PINNED, "account": "org-acme-acc0",
                      "dashboard": {"dashboardId": PINNED, "name": "Pinned – Release Readiness"},
                      "details": {"sharedWith": ["dana.kim@acme.example"], "permission": "edit"},
                      "createdAt": at(days=3), "updatedAt": at(days=3), "__v": 0}]
    create = client.get(url(f"/dashboard/{PINNED}/logs?action=create&start_date=1970-01-01"), headers=AUDITOR).json["data"]
    assert [(e["createdAt"], e["user_email"]) for e in create] == [(at(days=120), "grace.hopper@acme.example")]


def test_pinned_edge_cases_never_viewed_viewed_once_mapping_and_other_entries(app_factory):
    client = app_factory(SCENARIO="pinned").test_client()
    assert client.get(url(f"/dashboard/{NEVER}/stats"), headers=ADMIN).json["data"]["totalViews"] == 0
    assert NEVER not in [d["dashboardId"] for d in
                         client.get(url("/dashboard/most-viewed?limit=100"), headers=ADMIN).json["data"]]
    lee = client.get(url("/dashboard/recently-viewed?limit=100"), headers=bearer("mock-poweruser-token")).json
    once = [d for d in lee["data"] if d["dashboardId"] == ONCE]
    assert [(d["viewCount"], d["lastViewedAt"]) for d in once] == [(1, at(days=2))]
    admin = client.get(url("/dashboard/recently-viewed?limit=100"), headers=ADMIN).json["data"]
    assert ONCE not in [d["dashboardId"] for d in admin]
    mapping = client.get(url(f"/mapping/{MAPPING}/logs?start_date=1970-01-01"), headers=AUDITOR).json["data"]
    assert [(e["action"], e["__v"], e["tool_mapping"]["name"]) for e in mapping] == \
        [("update", 1, "Jira – PINNED project"), ("create", 0, "Jira – PINNED project")]
    assert mapping[0]["updatedAt"] == at(days=1) and mapping[1]["user_email"] == "grace.hopper@acme.example"
    pipeline = client.get(url("/65a0000000000000000000a3"), headers=AUDITOR).json["data"]
    assert (pipeline["type"], pipeline["action"], pipeline["target_id"], pipeline["createdAt"]) == \
        ("pipeline", "delete", "checkout-build-and-deploy", at(hours=5))
    assert "dashboard" not in pipeline and "tool_mapping" not in pipeline


def test_pinned_entities_match_the_spec_schemas(app_factory):
    dataset = app_factory(SCENARIO="pinned").extensions["insights_mock"].default.make_dataset()
    entry = component_validator("AuditLogEntry")
    for item in dataset.audit_logs[-200:]:
        entry.validate(item)
    for mapping in dataset.mappings:
        component_validator("ToolMappingRef").validate(mapping)


def test_busy_is_large_and_skewed():
    from mock_server.data.pins import build_dataset
    from mock_server.data.scenarios import settle
    from mock_server.config import load_config
    from mock_server.auth import TokenRegistry

    busy = load(SCENARIOS, "busy")
    settings = settle(busy, load_config({}, environ={}), set())
    assert settings.sizes.views >= 100_000 and settings.sizes.skew > 1.1
    tokens = TokenRegistry.from_file(ROOT / "fixtures" / "tokens.yaml")
    dataset = build_dataset(busy, settings, anchor=ANCHOR, users=tokens.users, account=tokens.account)
    per_dashboard: dict[str, int] = {}
    for view in dataset.views:
        per_dashboard[view["dashboardId"]] = per_dashboard.get(view["dashboardId"], 0) + 1
    ranked = sorted(per_dashboard.values(), reverse=True)
    assert len(dataset.dashboards) >= 500 and len(dataset.audit_logs) == settings.sizes.audit_logs
    assert sum(ranked[:10]) > 0.5 * len(dataset.views)  # heavy skew: ten dashboards take most views


def test_degraded_sets_latency_and_error_rate(app_factory):
    app = app_factory(SCENARIO="degraded")
    state = app.extensions["insights_mock"]
    assert (state.default.faults.latency, state.default.faults.error_rate) == ((200, 1500), 0.2)
    slept: list[float] = []
    state.default.faults.sleep = slept.append
    client = app.test_client()
    statuses = [client.get(url("/dashboard/most-viewed"), headers=ADMIN).status_code for _ in range(60)]
    assert {200, 500} == set(statuses) and 4 <= statuses.count(500) <= 24
    assert len(slept) == 60 and all(0.2 <= s <= 1.5 for s in slept)


def test_explicit_settings_win_over_the_scenario(app_factory):
    app = app_factory(SCENARIO="degraded", ERROR_RATE=0.0, VIEWS=50)
    state = app.extensions["insights_mock"]
    assert state.default.faults.error_rate == 0.0 and state.default.faults.latency == (200, 1500)
    assert state.default.store.counts()["views"] == 50
    health = app.test_client().get("/__admin/health").json
    assert health["scenario"] == "degraded" and health["errorRate"] == 0.0 and health["latency"] == "200-1500"


def test_a_scenario_switched_to_applies_as_written_and_explicit_settings_fill_the_rest(app_factory):
    app = app_factory(ERROR_RATE=0.0, LATENCY="5")  # SMALL sizes are explicit too
    client = app.test_client()
    assert client.get("/__admin/health").json["counts"]["views"] == SMALL["VIEWS"] + DEFAULT_PINNED_VIEWS
    client.post("/__admin/scenario", json={"name": "empty"})
    assert client.get("/__admin/health").json["counts"]["views"] == 0  # empty is empty, --views or not
    client.post("/__admin/scenario", json={"name": "degraded"})  # sets latency and rate, not sizes
    health = client.get("/__admin/health").json
    assert (health["errorRate"], health["latency"], health["counts"]["views"]) == (0.2, "200-1500", SMALL["VIEWS"])
    client.post("/__admin/scenario", json={"name": "default"})  # back to the start: the options refine it again
    health = client.get("/__admin/health").json
    assert (health["errorRate"], health["latency"]) == (0.0, "5")


def test_a_scenario_seed_applies_unless_one_is_given(tmp_path, app_factory):
    shutil.copy(SCENARIOS / "default.yaml", tmp_path / "default.yaml")
    (tmp_path / "seven.yaml").write_text("description: seed 7\nseed: 7\n")
    assert app_factory(SCENARIOS_DIR=str(tmp_path), SCENARIO="seven").extensions["insights_mock"].default.faults.seed == 7
    assert app_factory(SCENARIOS_DIR=str(tmp_path), SCENARIO="seven",
                       SEED=9).extensions["insights_mock"].default.faults.seed == 9


# --- errors ------------------------------------------------------------------------------------------------

def test_an_unknown_scenario_lists_the_available_ones(app_factory):
    with pytest.raises(ScenarioError) as caught:
        app_factory(SCENARIO="crowded")
    assert caught.value.status == 404
    assert "unknown scenario 'crowded'" in str(caught.value)
    assert "busy, default, degraded, empty, pinned" in str(caught.value)


@pytest.mark.parametrize("name", ["../tokens", "Busy", "a/b", "", "x" * 80])
def test_names_are_names_not_paths(name):
    with pytest.raises(ScenarioError, match="is not a name"):
        load(SCENARIOS, name)


@pytest.mark.parametrize("text, expected", [
    ("sizes: {views: -1}", "x.yaml: sizes.views: -1 is less than the minimum of 0"),
    ("sizez: {views: 1}", "x.yaml: (top level): Additional properties are not allowed ('sizez' was unexpected)"),
    ("pins: {dashboards: [{id: nope, name: A, owner: x@y.z}]}", "x.yaml: pins.dashboards[0].id: 'nope' does not match"),
    ("pins: {dashboards: [{id: 11111111-1111-4111-8111-111111111111, name: A}]}",
     "x.yaml: pins.dashboards[0]: 'owner' is a required property"),
    ("pins: {mappings: [{id: 11111111-1111-4111-8111-111111111111, name: A, tool: svn}]}",
     "x.yaml: pins.mappings[0].tool: 'svn' is not one of"),
    ("errorRate: 2", "x.yaml: errorRate: 2 is greater than the maximum of 1"),
    ("latency: 300-100", "x.yaml: latency: latency range '300-100' is backwards"),
    ("sizes: [1", "x.yaml: not valid YAML"),
    ("- 1", "x.yaml: (top level): [1] is not of type 'object'"),
])
def test_schema_errors_name_the_file_the_path_and_the_problem(text, expected):
    with pytest.raises(ScenarioError) as caught:
        parse(text, "x.yaml")
    assert expected in str(caught.value)


def test_every_problem_of_a_file_is_listed():
    with pytest.raises(ScenarioError) as caught:
        parse("skew: 9\nerrorRate: -1\n", "x.yaml")
    assert "x.yaml: errorRate" in str(caught.value) and "x.yaml: skew" in str(caught.value)


@pytest.mark.parametrize("pins, expected", [
    ("{dashboards: [{id: 11111111-1111-4111-8111-111111111111, name: A, owner: nobody@acme.example}]}",
     "pins.dashboards[0].owner: 'nobody@acme.example' is neither a token user nor a pinned user"),
    ("{dashboards: [{id: 11111111-1111-4111-8111-111111111111, name: A, owner: dana.kim@acme.example,"
     " views: 3, lastViewedAt: '2027-01-01T00:00:00Z'}]}",
     "pins.dashboards[0].lastViewedAt: '2027-01-01T00:00:00Z' is not before the data's anchor"),
    ("{dashboards: [{id: 11111111-1111-4111-8111-111111111111, name: A, owner: dana.kim@acme.example,"
     " views: 3, lastViewedAt: yesterday}]}",
     "neither an ISO 8601 instant nor an offset like -2h"),
    ("{dashboards: [{id: 11111111-1111-4111-8111-111111111111, name: A, owner: dana.kim@acme.example,"
     " views: 3, createdAt: -1h, lastViewedAt: -2h}]}",
     "pins.dashboards[0].createdAt: the dashboard must be created before its first view"),
    ("{dashboards: [{id: 11111111-1111-4111-8111-111111111111, name: A, owner: dana.kim@acme.example},"
     " {id: 11111111-1111-4111-8111-111111111111, name: B, owner: dana.kim@acme.example}]}",
     "pins.dashboards[1].id: dashboard 11111111-1111-4111-8111-111111111111 is pinned twice"),
    ("{users: [{id: 64b7f0c2a1e3d4c5b6a79801, email: x@acme.example, name: X}]}",
     "pins.users[0]: id already belongs to another user (a token user)"),
    ("{auditEntries: [{id: 65a0000000000000000000a1, type: dashboard, action: update,"
     " target: 11111111-1111-4111-8111-111111111111, user: dana.kim@acme.example, timestamp: -1d}]}",
     "pins.auditEntries[0].target: 11111111-1111-4111-8111-111111111111 is not a pinned dashboard"),
    ("{auditEntries: [{id: 65a0000000000000000000a1, type: tool_mapping, action: update,"
     " target: jira, user: dana.kim@acme.example, timestamp: -1d}]}",
     "pins.auditEntries[0].target: a tool_mapping target is a UUID"),
])
def test_inconsistent_pins_are_refused_with_their_path(tmp_path, app_factory, pins, expected):
    (tmp_path / "bad.yaml").write_text(f"pins: {pins}\n")
    with pytest.raises(ScenarioError) as caught:
        app_factory(SCENARIOS_DIR=str(tmp_path), SCENARIO="bad")
    assert f"{tmp_path / 'bad.yaml'}: " in str(caught.value) and expected in str(caught.value)


def test_a_view_of_an_unknown_dashboard_may_be_pinned_as_an_audit_entry(tmp_path, app_factory):
    (tmp_path / "ok.yaml").write_text(
        "pins: {auditEntries: [{id: 65a0000000000000000000b1, type: dashboard, action: view,"
        " target: 99999999-9999-4999-8999-999999999999, user: kai.berg@acme.example,"
        " timestamp: '2026-11-20T08:00:00Z'}]}\n")
    client = app_factory(SCENARIOS_DIR=str(tmp_path), SCENARIO="ok").test_client()
    entry = client.get(url("/65a0000000000000000000b1"), headers=AUDITOR).json["data"]
    assert entry["createdAt"] == "2026-11-20T08:00:00.000Z" and "dashboard" not in entry
    assert entry["user_id"] == "64b7f0c2a1e3d4c5b6a79804"


# --- runtime switch --------------------------------------------------------------------------------------

def test_switching_at_runtime_replaces_data_and_faults(app_factory):
    app = app_factory(**NO_SIZES, NOW=NOW)
    client = app.test_client()
    assert client.get("/__admin/scenario").json["name"] == "default"
    switched = client.post("/__admin/scenario", json={"name": "empty"})
    assert switched.status_code == 200
    body = switched.json
    assert body["status"] == "switched" and body["scenario"] == "empty"
    assert body["counts"] == {"users": len(TOKENS), "dashboards": 2, "mappings": 1, "views": 0, "audit_logs": 0}
    assert client.get(url("/dashboard/most-viewed"), headers=ADMIN).json["data"] == []
    current = client.get("/__admin/scenario").json
    assert current["name"] == "empty" and current["generation"] == 1
    assert {"default", "empty", "busy", "degraded", "pinned"} <= set(current["available"])
    assert client.post("/__admin/scenario", json={"name": "degraded"}).json["scenario"] == "degraded"
    assert app.extensions["insights_mock"].default.faults.error_rate == 0.2
    assert client.get("/__admin/health").json["errorRate"] == 0.2
    # A reset regenerates the current scenario, not the start-up one.
    assert client.post("/__admin/reset").json["scenario"] == "degraded"


@pytest.mark.parametrize("kwargs", [{"data": "not json"}, {"json": ["empty"]}, {"json": {"name": 3}},
                                    {"json": {}}, {"json": {"name": "empty", "extra": 1}}, {}])
def test_bad_switch_bodies_are_a_400_in_the_error_schema(client, kwargs):
    response = client.post("/__admin/scenario", **kwargs)
    assert response.status_code == 400
    component_validator("Error").validate(response.json)
    assert "available: busy, default, degraded, empty, pinned" in response.json["details"][0]["message"]
    assert client.get("/__admin/scenario").json["name"] == "default"


def test_an_unknown_or_broken_scenario_switch_changes_nothing(tmp_path, app_factory):
    shutil.copy(SCENARIOS / "default.yaml", tmp_path / "default.yaml")
    (tmp_path / "broken.yaml").write_text("sizes: {views: lots}\n")
    app = app_factory(SCENARIOS_DIR=str(tmp_path))
    client = app.test_client()
    before = client.get("/__admin/health").json["counts"]
    unknown = client.post("/__admin/scenario", json={"name": "crowded"})
    assert unknown.status_code == 404 and unknown.json["error"] == "not_found"
    assert "available in" in unknown.json["details"][0]["message"]
    broken = client.post("/__admin/scenario", json={"name": "broken"})
    assert broken.status_code == 400 and broken.json["error"] == "invalid_scenario"
    assert any("sizes.views: 'lots' is not of type 'integer'" in d["message"] for d in broken.json["details"])
    for response in (unknown, broken):
        component_validator("Error").validate(response.json)
    assert client.get("/__admin/health").json["counts"] == before
    assert client.get("/__admin/scenario").json["name"] == "default"


def test_the_scenario_endpoints_are_guarded_like_the_others(app_factory):
    client = app_factory(HOST="0.0.0.0", ADMIN_TOKEN="s3cret-admin").test_client()
    assert client.get("/__admin/scenario").status_code == 401
    assert client.post("/__admin/scenario", json={"name": "empty"}).status_code == 401
    assert client.post("/__admin/scenario", json={"name": "empty"},
                       headers=bearer("s3cret-admin")).status_code == 200
    assert app_factory(HOST="0.0.0.0").test_client().get("/__admin/scenario").status_code == 401  # locked


# --- several processes on one database ----------------------------------------------------------------------

def test_workers_sharing_a_database_follow_a_switch_and_a_reset(tmp_path, app_factory):
    db = str(tmp_path / "mock.db")
    first = app_factory(DB=db, SCENARIO_SYNC_S=0)
    second = app_factory(DB=db, SCENARIO_SYNC_S=0)
    a, b = first.test_client(), second.test_client()
    assert a.post("/__admin/scenario", json={"name": "degraded"}).status_code == 200
    # The other worker: same data (shared file) and, after its next request, the scenario's faults.
    health = b.get("/__admin/health").json
    assert (health["scenario"], health["errorRate"], health["latency"]) == ("degraded", 0.2, "200-1500")
    state_b = second.extensions["insights_mock"]
    assert state_b.default.faults.error_rate == 0.2
    # A reset through one worker restarts the fault RNG of every worker (it used to be only the answering one).
    state_b.default.faults.draw()
    state_b.default.faults.draw()
    assert a.post("/__admin/reset").status_code == 200
    b.get("/__admin/health")
    assert state_b.default.faults.draw() == Faults(seed=42, latency=(200, 1500), error_rate=0.2).draw()
    assert b.get("/__admin/scenario").json["generation"] == 2


def test_a_worker_checks_the_generation_at_most_once_per_interval(tmp_path, app_factory, monkeypatch):
    db = str(tmp_path / "mock.db")
    app = app_factory(DB=db, SCENARIO_SYNC_S=3600)
    state = app.extensions["insights_mock"]
    calls = []
    real = state.default.store.scenario_meta
    monkeypatch.setattr(state.default.store, "scenario_meta", lambda: calls.append(1) or real())
    client = app.test_client()
    for _ in range(20):
        client.get(url("/dashboard/most-viewed"), headers=ADMIN)
    assert calls == []  # within the interval, no database read for the sync
    state.default.scenarios._checked -= 7200  # noqa: SLF001 - the interval has passed
    client.get(url("/dashboard/most-viewed"), headers=ADMIN)
    assert calls == [1]


def test_a_database_file_keeps_its_scenario_for_a_worker_started_later(tmp_path, app_factory):
    db = str(tmp_path / "mock.db")
    first = app_factory(DB=db).test_client()
    first.post("/__admin/scenario", json={"name": "empty"})
    late = app_factory(DB=db)  # configured with the default scenario, as gunicorn restarts a worker
    assert late.extensions["insights_mock"].default.scenarios.name == "empty"
    assert late.test_client().get("/__admin/health").json["counts"]["views"] == 0


# -- the spec's example entities -----------------------------------------------------------------------------

EXAMPLE_DASHBOARD = "123e4567-e89b-12d3-a456-426614174000"
EXAMPLE_ENTRY = "507f1f77bcf86cd799439011"
EXAMPLE_MAPPING = "8d3e2f10-4b5c-4a6d-9e7f-0a1b2c3d4e5f"


def _example(path: str, method: str = "get") -> dict:
    return SPEC["paths"]["/api/v2/insights/kpis/audit-logs" + path][method]["responses"]["200"]["content"][
        "application/json"]["example"]["data"]


@pytest.mark.parametrize("scenario", ["default", "pinned"])
def test_the_specs_example_ids_answer_with_the_examples_data(app_factory, scenario):
    """NOW is the day after the examples' last view (2026-11-25), so the pinned day-relative times come out as
    the examples' instants, and every figure and field can be compared with the spec."""
    client = app_factory(SCENARIO=scenario).test_client()
    stats = client.get(url(f"/dashboard/{EXAMPLE_DASHBOARD}/stats"), headers=ADMIN).json["data"]
    assert stats == _example("/dashboard/{dashboardId}/stats")
    entry = client.get(url(f"/{EXAMPLE_ENTRY}"), headers=AUDITOR).json["data"]
    assert entry == _example("/{auditLogId}")
    logs = client.get(url(f"/mapping/{EXAMPLE_MAPPING}/logs?start_date=1970-01-01"), headers=AUDITOR).json["data"]
    assert _example("/mapping/{mappingId}/logs")[0] in logs
    # the view POST example: one more view makes 10
    assert client.post(url(f"/dashboard/{EXAMPLE_DASHBOARD}/view"), headers=ADMIN).json["data"]["viewCount"] == \
        _example("/dashboard/{dashboardId}/view", "post")["viewCount"]


def test_day_relative_pins_keep_the_day_figures_at_any_hour(app_factory):
    for hour in (0, 13, 23):
        client = app_factory(SCENARIO="default", NOW=datetime(2026, 11, 25, hour, 59, tzinfo=UTC)).test_client()
        stats = client.get(url(f"/dashboard/{EXAMPLE_DASHBOARD}/stats"), headers=ADMIN).json["data"]
        assert (stats["totalViews"], stats["uniqueViewers"], stats["viewsLast7Days"], stats["viewsLast30Days"]) == \
            (9, 3, 4, 9)
