"""The generated dataset: deterministic, valid against openapi.yaml, internally consistent, plausibly skewed."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from mock_server.data import vocab
from mock_helpers import component_validator
from mock_server.data.generate import Sizes, generate
from mock_server.timestamps import iso, ms_from_iso

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
TOKENS = yaml.safe_load((ROOT / "fixtures" / "tokens.yaml").read_text(encoding="utf-8"))
ACCOUNT = TOKENS["account"]
FIXTURE_USERS = [{**t["user"], "role": t["role"]} for t in TOKENS["tokens"]]
ANCHOR = datetime(2026, 11, 25, tzinfo=UTC)
SEED = 20261125


def serialize(dataset) -> bytes:
    return json.dumps(dataclasses.asdict(dataset), ensure_ascii=False).encode("utf-8")


@pytest.fixture(scope="module")
def dataset():
    return generate(seed=SEED, anchor=ANCHOR, users=FIXTURE_USERS, account=ACCOUNT, sizes=Sizes())


# -- determinism ---------------------------------------------------------------------------------------

def test_same_seed_and_anchor_give_identical_bytes(dataset):
    again = generate(seed=SEED, anchor=ANCHOR, users=FIXTURE_USERS, account=ACCOUNT, sizes=Sizes())
    assert serialize(again) == serialize(dataset)


def test_fixture_user_order_does_not_matter(dataset):
    shuffled = list(reversed(FIXTURE_USERS))
    again = generate(seed=SEED, anchor=ANCHOR, users=shuffled, account=ACCOUNT, sizes=Sizes())
    assert serialize(again) == serialize(dataset)


def test_another_seed_or_anchor_gives_other_data(dataset):
    other_seed = generate(seed=SEED + 1, anchor=ANCHOR, users=FIXTURE_USERS, account=ACCOUNT, sizes=Sizes())
    assert serialize(other_seed) != serialize(dataset)
    assert {d["dashboardId"] for d in other_seed.dashboards}.isdisjoint(d["dashboardId"] for d in dataset.dashboards)
    later = generate(seed=SEED, anchor=ANCHOR + timedelta(days=3), users=FIXTURE_USERS, account=ACCOUNT,
                     sizes=Sizes())
    assert max(v["viewedAt"] for v in later.views) > max(v["viewedAt"] for v in dataset.views)


_CHILD = """
import dataclasses, hashlib, json, sys
from datetime import datetime, UTC
import yaml
from mock_server.data.generate import Sizes, generate
tokens = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
users = [{**t["user"], "role": t["role"]} for t in tokens["tokens"]]
ds = generate(seed=int(sys.argv[2]), anchor=datetime(2026, 11, 25, tzinfo=UTC), users=users,
              account=tokens["account"], sizes=Sizes())
print(hashlib.sha256(json.dumps(dataclasses.asdict(ds), ensure_ascii=False).encode("utf-8")).hexdigest())
"""


@pytest.mark.parametrize("env", [
    {"PYTHONHASHSEED": "1", "TZ": "Pacific/Auckland", "LC_ALL": "C.UTF-8"},
    {"PYTHONHASHSEED": "4242", "TZ": "America/Los_Angeles", "LANG": "tr_TR.UTF-8"},
])
def test_no_dependence_on_hash_seed_time_zone_or_locale(dataset, env):
    child_env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LANG", "TZ", "PYTHONHASHSEED")}
    child_env.update(env)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ROOT / "fixtures" / "tokens.yaml"), str(SEED)],
        cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == hashlib.sha256(serialize(dataset)).hexdigest()


# -- the spec's vocabulary -----------------------------------------------------------------------------

def test_enumerations_are_the_specs():
    schemas = SPEC["components"]["schemas"]
    assert list(vocab.TOOLS) == schemas["ToolName"]["enum"]
    assert list(vocab.AUDIT_TYPES) == schemas["AuditEntityType"]["enum"]
    assert list(vocab.AUDIT_ACTIONS) == schemas["AuditAction"]["enum"]
    spec_roles = {role for path in SPEC["paths"].values() for op in path.values()
                  if isinstance(op, dict) for role in op.get("x-required-roles", [])}
    assert set(vocab.ROLES) == spec_roles


def test_every_record_validates_against_the_spec(dataset):
    timestamp, object_id, uuid_schema = component_validator("Timestamp"), component_validator("ObjectId"), component_validator("Uuid")
    user_ref, mapping_ref, entry = component_validator("UserRef"), component_validator("ToolMappingRef"), component_validator("AuditLogEntry")
    summary = component_validator("DashboardSummary")
    for user in dataset.users:
        user_ref.validate({"userId": user["id"], "email": user["email"], "name": user["name"]})
        assert user["role"] in vocab.ROLES
        assert set(user) == {"id", "email", "name", "role"}
    for dashboard in dataset.dashboards:
        # The dataset holds a summary without its view figures; the figures are added only to satisfy
        # `required` here (the store's real summaries are validated in tests/store/test_contract.py).
        summary.validate({**dashboard, "viewCount": 1, "lastViewedAt": iso(ANCHOR)})
        assert set(dashboard) <= {"dashboardId", "name", "description", "owner", "tags", "kpiCount"}
    for mapping in dataset.mappings:
        mapping_ref.validate(mapping)
        assert set(mapping) == {"mappingId", "tool", "name"}
    for view in dataset.views:
        assert set(view) == {"_id", "dashboardId", "userId", "viewedAt"}
        object_id.validate(view["_id"])
        uuid_schema.validate(view["dashboardId"])
        object_id.validate(view["userId"])
        timestamp.validate(view["viewedAt"])
    declared = set(SPEC["components"]["schemas"]["AuditLogEntry"]["properties"])
    for item in dataset.audit_logs:
        entry.validate(item)
        assert set(item) <= declared, set(item) - declared


def test_ids_are_well_formed_and_unique(dataset):
    for key, rows in (("dashboardId", dataset.dashboards), ("mappingId", dataset.mappings)):
        ids = [row[key] for row in rows]
        assert len(set(ids)) == len(ids)
        for value in ids:
            assert str(uuid.UUID(value)) == value  # canonical lower-case hyphenated form
    for key, rows in (("id", dataset.users), ("_id", dataset.views), ("_id", dataset.audit_logs)):
        ids = [row[key] for row in rows]
        assert len(set(ids)) == len(ids)
        assert all(re.fullmatch(r"[0-9a-f]{24}", value) for value in ids)
    emails = [u["email"].lower() for u in dataset.users]
    assert len(set(emails)) == len(emails)
    names = [d["name"] for d in dataset.dashboards]
    assert len(set(names)) == len(names)


def test_object_ids_carry_their_records_time(dataset):
    for view in dataset.views:
        assert int(view["_id"][:8], 16) == ms_from_iso(view["viewedAt"]) // 1000
    for item in dataset.audit_logs:
        assert int(item["_id"][:8], 16) == ms_from_iso(item["createdAt"]) // 1000


# -- sizes ---------------------------------------------------------------------------------------------

def test_sizes_are_met(dataset):
    sizes = Sizes()
    assert len(dataset.users) == sizes.users
    assert len(dataset.dashboards) == sizes.dashboards
    assert len(dataset.mappings) == sizes.mappings
    assert len(dataset.views) == sizes.views
    assert len(dataset.audit_logs) == sizes.audit_logs
    assert dataset.account == ACCOUNT


@pytest.mark.parametrize("sizes", [
    Sizes(users=3, dashboards=2, mappings=1, views=7, audit_logs=5),
    Sizes(users=0, dashboards=0, mappings=0, views=0, audit_logs=0),
    Sizes(users=30, dashboards=1, mappings=0, views=50, audit_logs=400),
    Sizes(users=12, dashboards=300, mappings=200, views=2000, audit_logs=40),
    Sizes(dashboards=0, views=100, audit_logs=60),
])
def test_small_and_odd_sizes_stay_consistent(sizes):
    ds = generate(seed=5, anchor=ANCHOR, users=FIXTURE_USERS, account=ACCOUNT, sizes=sizes)
    assert len(ds.users) == max(sizes.users, len(FIXTURE_USERS))
    assert len(ds.dashboards) == sizes.dashboards
    assert len(ds.mappings) == sizes.mappings
    assert len(ds.views) == (sizes.views if sizes.dashboards else 0)
    assert len(ds.audit_logs) == sizes.audit_logs
    _assert_consistent(ds, ANCHOR)
    entry = component_validator("AuditLogEntry")
    for item in ds.audit_logs:
        entry.validate(item)


def test_negative_sizes_are_refused():
    with pytest.raises(ValueError):
        Sizes(views=-1)
    with pytest.raises(ValueError):
        Sizes(history_days=0)


# -- consistency ---------------------------------------------------------------------------------------

def _assert_consistent(ds, anchor: datetime) -> None:
    anchor_iso = iso(anchor)
    users = {u["id"]: u for u in ds.users}
    dashboards = {d["dashboardId"]: d for d in ds.dashboards}
    mappings = {m["mappingId"]: m for m in ds.mappings}
    views = {(v["userId"], v["dashboardId"], v["viewedAt"]) for v in ds.views}
    for d in ds.dashboards:
        owner = users[d["owner"]["userId"]]
        assert d["owner"] == {"userId": owner["id"], "email": owner["email"], "name": owner["name"]}
    for v in ds.views:
        assert v["userId"] in users and v["dashboardId"] in dashboards
        assert v["viewedAt"] < anchor_iso
    assert [v["viewedAt"] for v in ds.views] == sorted(v["viewedAt"] for v in ds.views)
    created: dict[str, str] = {}
    for item in ds.audit_logs:
        assert item["account"] == ds.account
        assert item["createdAt"] <= item["updatedAt"] < anchor_iso
        assert (item["__v"] == 0) == (item["createdAt"] == item["updatedAt"])
        user = users[item["user_id"]]
        assert item["user_email"] == user["email"]
        if item["type"] == "dashboard":
            d = dashboards[item["target_id"]]
            assert item["dashboard"] == {"dashboardId": d["dashboardId"], "name": d["name"]}
            assert "tool_mapping" not in item
        elif item["type"] == "tool_mapping":
            assert item["tool_mapping"] == mappings[item["target_id"]]
            assert "dashboard" not in item
        else:
            assert "dashboard" not in item and "tool_mapping" not in item
            if item["type"] in ("pipeline", "registry"):
                assert re.fullmatch(r"[0-9a-f]{24}", item["target_id"])
            else:
                assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", item["target_id"])
        if item["action"] == "view":
            assert item["type"] == "dashboard"
            assert (item["user_id"], item["target_id"], item["createdAt"]) in views
        if item["action"] == "create":
            assert item["target_id"] not in created, "created twice"
            created[item["target_id"]] = item["createdAt"]
    # Nothing happens to a target before its creation (views included).
    for item in ds.audit_logs:
        if item["target_id"] in created:
            assert item["createdAt"] >= created[item["target_id"]]
    for v in ds.views:
        if v["dashboardId"] in created:
            assert v["viewedAt"] > created[v["dashboardId"]]
    assert [(a["createdAt"], a["_id"]) for a in ds.audit_logs] == sorted((a["createdAt"], a["_id"])
                                                                          for a in ds.audit_logs)


def test_dataset_is_consistent(dataset):
    _assert_consistent(dataset, ANCHOR)


def test_fixture_users_are_included_unchanged_and_have_histories(dataset):
    by_id = {u["id"]: u for u in dataset.users}
    viewed = collections.defaultdict(set)
    for v in dataset.views:
        viewed[v["userId"]].add(v["dashboardId"])
    for user in FIXTURE_USERS:
        assert by_id[user["id"]] == user
        if user["role"] in vocab.VIEWER_ROLES:
            assert len(viewed[user["id"]]) >= 10, user["email"]  # a full first page of "recently viewed"
    assert {u["role"] for u in FIXTURE_USERS} - set(vocab.VIEWER_ROLES)  # the test sees non-viewers too


def test_only_roles_that_may_view_have_views(dataset):
    roles = {u["id"]: u["role"] for u in dataset.users}
    assert {roles[v["userId"]] for v in dataset.views} <= set(vocab.VIEWER_ROLES)
    viewing_entries = {roles[e["user_id"]] for e in dataset.audit_logs if e["action"] == "view"}
    assert viewing_entries <= set(vocab.VIEWER_ROLES)
    spec_viewers = SPEC["paths"]["/api/v2/insights/kpis/audit-logs/dashboard/{dashboardId}/view"]["post"]["x-required-roles"]
    assert list(vocab.VIEWER_ROLES) == spec_viewers


def test_every_view_since_the_oldest_view_entry_has_its_entry(dataset):
    entries = sorted((e["createdAt"], e["target_id"], e["user_id"]) for e in dataset.audit_logs if e["action"] == "view")
    assert entries
    since = [(v["viewedAt"], v["dashboardId"], v["userId"]) for v in dataset.views if v["viewedAt"] >= entries[0][0]]
    assert sorted(since) == entries
    assert len(entries) < len(dataset.views)  # older views have none: the audit history is shorter


def test_histories_are_coherent_over_time(dataset):
    """Dashboards and mappings stay listed, so none is deleted; a pipeline, registry entry or KPI may be, and
    then nothing follows its delete."""
    by_target = collections.defaultdict(list)
    for e in dataset.audit_logs:
        by_target[(e["type"], e["target_id"])].append(e)
    for (type_, _), entries in by_target.items():
        actions = [e["action"] for e in sorted(entries, key=lambda e: (e["createdAt"], e["_id"]))]
        if type_ in ("dashboard", "tool_mapping"):
            assert "delete" not in actions
        elif "delete" in actions:
            assert actions.index("delete") == len(actions) - 1
    removals = [e for e in dataset.audit_logs if "removedKpis" in e.get("details", {})]
    assert removals and all(e["action"] == "update" for e in removals)


def test_creations_are_in_the_log(dataset):
    created = {(a["type"], a["target_id"]) for a in dataset.audit_logs if a["action"] == "create"}
    assert {("dashboard", d["dashboardId"]) for d in dataset.dashboards} <= created
    assert {("tool_mapping", m["mappingId"]) for m in dataset.mappings} <= created
    kinds = collections.Counter((a["type"], a["action"]) for a in dataset.audit_logs)
    for pair in [("dashboard", a) for a in vocab.AUDIT_ACTIONS if a != "delete"] + [("tool_mapping", "update")]:
        assert kinds[pair] > 0, pair
    assert {t for t, _ in kinds} == set(vocab.AUDIT_TYPES)


def test_views_are_in_the_window_before_a_mid_day_anchor():
    anchor = datetime(2026, 3, 10, 13, 37, 21, 500000, tzinfo=UTC)
    sizes = Sizes(views=3000, history_days=30)
    ds = generate(seed=9, anchor=anchor, users=FIXTURE_USERS, account=ACCOUNT, sizes=sizes)
    start, end = iso(anchor - timedelta(days=30)), iso(anchor)
    assert all(start <= v["viewedAt"] < end for v in ds.views)
    assert any(v["viewedAt"][:10] == "2026-03-10" for v in ds.views)  # the anchor's own morning is used
    _assert_consistent(ds, anchor)


def test_popularity_is_skewed_and_weekdays_are_busier(dataset):
    per_dashboard = collections.Counter(v["dashboardId"] for v in dataset.views)
    counts = sorted((per_dashboard.get(d["dashboardId"], 0) for d in dataset.dashboards), reverse=True)
    median = counts[len(counts) // 2]
    assert counts[0] >= 5 * median  # a few dashboards are very popular
    assert counts[-1] == 0  # and some were never viewed
    days = collections.Counter(date.fromisoformat(v["viewedAt"][:10]).weekday() for v in dataset.views)
    weekday_avg = sum(days[d] for d in range(5)) / 5
    weekend_avg = (days[5] + days[6]) / 2
    assert weekday_avg > 2 * weekend_avg
