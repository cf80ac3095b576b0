"""The store contract (mock_server/store/base.py), tested through the interface alone, against every kind of
store (conftest.py): answers against a naive model, orders and tie-breaks, what one view changes, paging,
the version, loads and scenarios, two stores on one database, and exact counts under concurrent writers."""

from __future__ import annotations

import collections
import inspect
import multiprocessing
import os
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_helpers import component_validator
from mock_server.store import AuditLogFilter, Dataset, Page, Store, StoreError
from mock_server.timestamps import day_number, iso_ms, ms_from_iso, to_ms

from .conftest import open_kind
from .model import (ACCOUNT, ANCHOR, DANA, TODAY, UNKNOWN, Model, brief, model_of, record_in_threads, record_many,
                    small_dataset, start_together)

shared_database = pytest.mark.shared_database


def test_the_store_has_the_interfaces_signatures(store):
    methods = [name for name, value in vars(Store).items() if callable(value) and not name.startswith("_")]
    assert {"load", "is_empty", "ensure_loaded", "counts", "recently_viewed", "most_viewed", "dashboard_stats",
            "record_view", "audit_logs", "audit_log", "version", "close", "load_scenario", "claim_scenario",
            "scenario_meta"} <= set(methods)
    for name in methods:
        assert inspect.signature(getattr(type(store), name)) == inspect.signature(getattr(Store, name)), name


# -- loading ---------------------------------------------------------------------------------------------

def test_a_fresh_store_is_empty_and_an_empty_load_counts_as_loaded(make_store):
    s = make_store()
    assert s.is_empty()
    assert s.most_viewed(10) == []
    assert s.scenario_meta() == (None, 0)
    s.load(Dataset(account=ACCOUNT))  # the "empty" scenario still counts as loaded
    assert not s.is_empty()
    assert s.most_viewed(10) == []
    assert s.counts() == {"users": 0, "dashboards": 0, "mappings": 0, "views": 0, "audit_logs": 0}


def test_counts_are_the_rows_loaded_and_recorded(store, dataset):
    assert store.counts() == {"users": len(dataset.users), "dashboards": len(dataset.dashboards),
                              "mappings": len(dataset.mappings), "views": len(list(dataset.views)),
                              "audit_logs": len(list(dataset.audit_logs))}
    store.record_view(UNKNOWN, DANA, ANCHOR)
    counts = store.counts()
    assert (counts["views"], counts["audit_logs"]) == (len(dataset.views) + 1, len(dataset.audit_logs) + 1)


def test_load_replaces_everything(store, dataset):
    store.record_view(UNKNOWN, DANA, ANCHOR)
    other = small_dataset(seed=4)
    store.load(other)
    assert brief(store.most_viewed(100)) == model_of(small_dataset(seed=4)).most_viewed()
    assert store.dashboard_stats(UNKNOWN, TODAY)["totalViews"] == 0
    assert store.audit_log(dataset.audit_logs[0]["_id"]) is None
    assert store.counts()["views"] == len(small_dataset(seed=4).views)


def test_ensure_loaded_loads_once(make_store, dataset):
    s = make_store()
    calls = []

    def make() -> Dataset:
        calls.append(1)
        return small_dataset()

    assert s.ensure_loaded(make) is True
    assert s.ensure_loaded(make) is False
    assert calls == [1]
    assert brief(s.most_viewed(100)) == model_of(dataset).most_viewed()


@shared_database
def test_state_survives_reopening(make_store, dataset):
    s = make_store()
    assert s.ensure_loaded(small_dataset) is True
    event = s.record_view(UNKNOWN, DANA, ANCHOR)
    s.close()
    again = make_store()
    assert not again.is_empty()
    assert again.ensure_loaded(lambda: pytest.fail("must not generate again")) is False
    assert again.dashboard_stats(UNKNOWN, TODAY)["totalViews"] == event["viewCount"] == 1
    assert brief(again.most_viewed(100)) == model_of(dataset).most_viewed()


def test_a_closed_store_refuses_work(make_store):
    s = make_store()
    s.close()
    with pytest.raises(StoreError):
        s.is_empty()


# -- reads against the model -------------------------------------------------------------------------------

def test_most_viewed_matches_the_model(store, dataset):
    expected = model_of(dataset).most_viewed()
    assert brief(store.most_viewed(100)) == expected[:100]
    assert brief(store.most_viewed(3)) == expected[:3]
    never = set(model_of(dataset).dashboards) - {d for d, _, _ in expected}
    assert never, "the generated data should include dashboards nobody viewed"


def test_recently_viewed_matches_the_model(store, dataset):
    model = model_of(dataset)
    for user in dataset.users:
        assert brief(store.recently_viewed(user["id"], 100)) == model.recently_viewed(user["id"])
    viewable = len(model.most_viewed())  # every viewable dashboard: the token user saw them all
    assert len(store.recently_viewed(DANA["id"], 5)) == 5
    assert len(store.recently_viewed(DANA["id"], 100)) == viewable
    assert store.recently_viewed(DANA["id"].upper(), 5) == store.recently_viewed(DANA["id"], 5)
    assert store.recently_viewed("aaaaaaaaaaaaaaaaaaaaaaaa", 10) == []


def test_summaries_are_plain_data_carrying_the_dashboard_and_its_owner(store, dataset):
    by_id = {d["dashboardId"]: d for d in dataset.dashboards}
    validator = component_validator("DashboardSummary")
    items = store.most_viewed(100) + store.recently_viewed(DANA["id"], 100)
    assert type(items) is list and all(type(item) is dict for item in items)
    for item in items:
        validator.validate(item)
        assert {k: v for k, v in item.items() if k not in ("viewCount", "lastViewedAt")} == by_id[item["dashboardId"]]
        assert list(item)[-2:] == ["viewCount", "lastViewedAt"]


def test_stats_match_the_model(store, dataset):
    model = model_of(dataset)
    validator = component_validator("DashboardStats")
    for dashboard_id in list(model.dashboards) + [UNKNOWN]:
        for today in (TODAY, TODAY - timedelta(days=40), date(2026, 11, 24)):
            stats = store.dashboard_stats(dashboard_id, today)
            validator.validate(stats)
            assert stats == model.stats(dashboard_id, today)
    one = next(iter(model.dashboards))
    assert store.dashboard_stats(one.upper(), TODAY) == store.dashboard_stats(one, TODAY)


def test_stats_of_an_unknown_dashboard_are_zeros(store):
    stats = store.dashboard_stats(UNKNOWN, TODAY)
    assert stats["totalViews"] == stats["uniqueViewers"] == stats["viewsLast7Days"] == stats["viewsLast30Days"] == 0
    assert stats["firstViewedAt"] is None and stats["lastViewedAt"] is None
    assert [d["date"] for d in stats["dailyViews"]] == [(TODAY - timedelta(days=29 - i)).isoformat()
                                                        for i in range(30)]
    assert all(d["views"] == 0 for d in stats["dailyViews"])


# -- record_view -------------------------------------------------------------------------------------------

def test_a_view_changes_stats_lists_and_the_audit_log_at_once(store, dataset):
    model = model_of(dataset)
    target = model.most_viewed()[-1][0]  # the least viewed of the viewed ones
    before = store.dashboard_stats(target, TODAY)["totalViews"]
    logged_before = store.audit_logs("dashboard", target, 1, 1, AuditLogFilter()).total
    at = ANCHOR + timedelta(hours=2, milliseconds=7)
    event = store.record_view(target, DANA, at)
    component_validator("ViewEvent").validate(event)
    assert event["viewCount"] == before + 1
    assert event["dashboardId"] == target and event["userId"] == DANA["id"]
    assert event["viewedAt"] == "2026-11-25T02:00:00.007Z"
    model.record(DANA["id"], target, to_ms(at))
    assert store.dashboard_stats(target, TODAY) == model.stats(target, TODAY)
    assert brief(store.most_viewed(100)) == model.most_viewed()
    assert brief(store.recently_viewed(DANA["id"], 100)) == model.recently_viewed(DANA["id"])
    assert store.recently_viewed(DANA["id"], 1)[0]["dashboardId"] == target

    page = store.audit_logs("dashboard", target, 1, 1, AuditLogFilter())
    assert page.total == logged_before + 1
    entry = page.items[0]
    component_validator("AuditLogEntry").validate(entry)
    assert {k: entry[k] for k in ("user_id", "user_email", "type", "action", "target_id", "account",
                                  "createdAt", "updatedAt", "__v")} == {
        "user_id": DANA["id"], "user_email": DANA["email"], "type": "dashboard", "action": "view",
        "target_id": target, "account": ACCOUNT, "createdAt": event["viewedAt"],
        "updatedAt": event["viewedAt"], "__v": 0}
    assert entry["dashboard"] == {"dashboardId": target, "name": model.dashboards[target]["name"]}
    assert entry["_id"] != event["_id"]
    assert store.audit_log(entry["_id"]) == entry


def test_a_new_viewer_counts_once_among_unique_viewers(store, dataset):
    target = model_of(dataset).most_viewed()[0][0]
    newcomer = {"id": "5f5f5f5f5f5f5f5f5f5f5f5f", "email": "new@acme.example", "name": "New", "role": "User"}
    before = store.dashboard_stats(target, TODAY)["uniqueViewers"]
    store.record_view(target, newcomer, ANCHOR)
    store.record_view(target, newcomer, ANCHOR + timedelta(seconds=1))
    assert store.dashboard_stats(target, TODAY)["uniqueViewers"] == before + 1
    assert [i["dashboardId"] for i in store.recently_viewed(newcomer["id"], 10)] == [target]


def test_a_view_of_an_unknown_dashboard_counts_but_is_not_listed(store):
    listed_before = store.most_viewed(100)
    first = store.record_view(UNKNOWN.upper(), DANA, ANCHOR + timedelta(minutes=1))
    second = store.record_view(UNKNOWN, DANA, ANCHOR + timedelta(minutes=2))
    assert (first["viewCount"], second["viewCount"]) == (1, 2)
    assert first["dashboardId"] == UNKNOWN  # ids are stored in their canonical lower-case form
    stats = store.dashboard_stats(UNKNOWN, TODAY)
    assert (stats["totalViews"], stats["uniqueViewers"], stats["dailyViews"][-1]["views"]) == (2, 1, 2)
    assert store.most_viewed(100) == listed_before
    assert UNKNOWN not in [i["dashboardId"] for i in store.recently_viewed(DANA["id"], 100)]
    page = store.audit_logs("dashboard", UNKNOWN, 1, 10, AuditLogFilter())
    assert page.total == 2
    assert all("dashboard" not in e for e in page.items)  # no name to show for an unknown dashboard
    for e in page.items:
        component_validator("AuditLogEntry").validate(e)


def test_an_older_view_does_not_move_last_viewed_back(store, dataset):
    target = model_of(dataset).most_viewed()[0][0]
    before = store.dashboard_stats(target, TODAY)
    event = store.record_view(target, DANA, ANCHOR - timedelta(days=200))
    after = store.dashboard_stats(target, TODAY)
    assert after["lastViewedAt"] == before["lastViewedAt"]
    assert after["firstViewedAt"] == event["viewedAt"]
    assert after["totalViews"] == before["totalViews"] + 1
    assert after["viewsLast30Days"] == before["viewsLast30Days"]


def test_ties_break_as_documented(make_store):
    """Equal counts and instants: most viewed and recently viewed by dashboardId ascending, audit entries by
    _id descending."""
    s = make_store()
    users, dashboards = _small_world(3)
    s.load(Dataset(account=ACCOUNT, users=users, dashboards=dashboards))
    first, second, third = sorted(d["dashboardId"] for d in dashboards)
    for dashboard_id in (third, first, second):  # recorded out of order, all at one instant
        s.record_view(dashboard_id, users[0], ANCHOR)
    assert [i["dashboardId"] for i in s.most_viewed(10)] == [first, second, third]
    assert [i["dashboardId"] for i in s.recently_viewed(users[0]["id"], 10)] == [first, second, third]
    s.record_view(second, users[1], ANCHOR - timedelta(days=1))  # more views beat a later one
    assert [i["dashboardId"] for i in s.most_viewed(10)] == [second, first, third]
    s.record_view(first, users[1], ANCHOR)
    s.record_view(first, users[2], ANCHOR)
    entries = s.audit_logs("dashboard", first, 1, 10, AuditLogFilter()).items
    assert len(entries) == 3 and len({e["createdAt"] for e in entries}) == 1
    assert [e["_id"] for e in entries] == sorted((e["_id"] for e in entries), reverse=True)


def test_a_naive_instant_is_utc(store):
    event = store.record_view(UNKNOWN, DANA, datetime(2026, 11, 25, 8, 30))
    assert event["viewedAt"] == "2026-11-25T08:30:00.000Z"


def test_record_view_before_any_load_is_an_error_and_writes_nothing(make_store):
    s = make_store()
    with pytest.raises(StoreError):
        s.record_view(UNKNOWN, DANA, ANCHOR)
    assert s.is_empty()
    s.load(Dataset(account=ACCOUNT))
    assert s.dashboard_stats(UNKNOWN, TODAY)["totalViews"] == 0


# -- audit log ---------------------------------------------------------------------------------------------

def _expected_entries(dataset: Dataset, type_: str, target: str, action=None, user=None, lo=None, hi=None):
    rows = [e for e in dataset.audit_logs if e["type"] == type_ and e["target_id"] == target
            and (action is None or e["action"] == action) and (user is None or e["user_id"] == user)
            and (lo is None or e["createdAt"] >= lo) and (hi is None or e["createdAt"] <= hi)]
    return sorted(rows, key=lambda e: (e["createdAt"], e["_id"]), reverse=True)


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_audit_logs_order_paging_and_totals(store, dataset):
    counts = collections.Counter((e["type"], e["target_id"]) for e in dataset.audit_logs)
    (type_, target), _ = counts.most_common(1)[0]
    expected = _expected_entries(dataset, type_, target)
    pages, page = [], 1
    while True:
        result = store.audit_logs(type_, target, page, 7, AuditLogFilter())
        assert result.total == len(expected)
        assert type(result.items) is list and all(type(e) is dict for e in result.items)
        if not result.items:
            break
        pages.extend(result.items)
        page += 1
    assert pages == expected
    assert page - 1 == -(-len(expected) // 7)
    past = store.audit_logs(type_, target, 10_000, 1000, AuditLogFilter())
    assert past.items == [] and past.total == len(expected)


def test_audit_pages_start_at_one(store):
    for page, size in ((0, 10), (1, 0)):
        with pytest.raises(ValueError):
            store.audit_logs("dashboard", UNKNOWN, page, size, AuditLogFilter())


def test_audit_log_filters_are_inclusive_and_combine(store, dataset):
    validator = component_validator("AuditLogEntry")
    targets = sorted({(e["type"], e["target_id"]) for e in dataset.audit_logs})
    mapping = next(t for t in targets if t[0] == "tool_mapping")
    pipeline = next(t for t in targets if t[0] == "pipeline")
    dashboard = collections.Counter((e["type"], e["target_id"]) for e in dataset.audit_logs
                                    if e["type"] == "dashboard").most_common(1)[0][0]
    for type_, target in (dashboard, mapping, pipeline):
        entries = _expected_entries(dataset, type_, target)
        mid = entries[len(entries) // 2]
        lo, hi = entries[-1]["createdAt"], mid["createdAt"]  # exact instants of entries: inclusive ends
        for action in (None, "view", "update", mid["action"]):
            for user in (None, mid["user_id"]):
                for bounds in ((None, None), (lo, None), (None, hi), (lo, hi), (hi, hi)):
                    flt = AuditLogFilter(created_from=_dt(bounds[0]), created_to=_dt(bounds[1]), action=action,
                                         user_id=user.upper() if user else None)
                    want = _expected_entries(dataset, type_, target, action, user, *bounds)
                    asked = target.upper() if type_ != "pipeline" else target  # UUIDs: any case
                    got = store.audit_logs(type_, asked, 1, 1000, flt)
                    assert (got.total, got.items) == (len(want), want), (type_, action, user, bounds)
                    for item in got.items[:3]:
                        validator.validate(item)


def test_the_type_filter_keeps_a_targets_own_type_and_nothing_else(store, dataset):
    targets = collections.Counter((e["type"], e["target_id"]) for e in dataset.audit_logs)
    for wanted in ("dashboard", "tool_mapping", "pipeline"):
        type_, target = next(t for t, _ in targets.most_common() if t[0] == wanted)
        everything = store.audit_logs(type_, target, 1, 1000, AuditLogFilter())
        assert everything.total > 0
        assert store.audit_logs(type_, target, 1, 1000, AuditLogFilter(type=type_)) == everything
        assert store.audit_logs(type_, target, 1, 1000, AuditLogFilter(type=type_, action=everything.items[0]["action"])) \
            == store.audit_logs(type_, target, 1, 1000, AuditLogFilter(action=everything.items[0]["action"]))
        other = "registry" if type_ != "registry" else "kpi"
        assert store.audit_logs(type_, target, 1, 1000, AuditLogFilter(type=other)) == Page(items=[], total=0)


def test_sub_millisecond_bounds_round_inwards(store, dataset):
    entry = next(e for e in dataset.audit_logs if e["type"] == "dashboard")
    at = _dt(entry["createdAt"])
    just_after = at + timedelta(microseconds=500)
    just_before = at - timedelta(microseconds=500)
    found = store.audit_logs("dashboard", entry["target_id"], 1, 1000,
                             AuditLogFilter(created_from=just_before, created_to=just_after)).items
    assert entry in found
    assert entry not in store.audit_logs("dashboard", entry["target_id"], 1, 1000,
                                         AuditLogFilter(created_from=just_after)).items
    assert entry not in store.audit_logs("dashboard", entry["target_id"], 1, 1000,
                                         AuditLogFilter(created_to=just_before)).items


def test_audit_log_by_id_is_case_insensitive_and_plain(store, dataset):
    entry = dataset.audit_logs[17]
    found = store.audit_log(entry["_id"])
    assert type(found) is dict and found == entry
    assert store.audit_log(entry["_id"].upper()) == entry
    assert store.audit_log("ffffffffffffffffffffffff") is None
    assert store.audit_log("not-an-object-id") is None  # what a store cannot hold it has not got


def test_an_entry_comes_back_as_it_was_loaded_whatever_its_form(make_store):
    """Entries a scenario may bring: instants in another form, no updatedAt, null or nested details, keys in
    another order, fields the vendor may add. Each comes back equal, keys in the order it had (the SQLite
    store keeps entries as shared parts, sqlite_rows.py: nothing may fall between them)."""
    base = small_dataset()
    odd = [
        {"__v": 3, "_id": "AAAAAAAAAAAAAAAAAAAAAA01", "type": "pipeline", "action": "update", "target_id": "p-1",
         "user_id": DANA["id"], "user_email": DANA["email"], "createdAt": "2026-11-20T09:15:02Z",
         "updatedAt": "2026-11-20T09:15:02Z", "details": None, "vendorExtra": {"a": [1, 2]}},
        {"_id": "aaaaaaaaaaaaaaaaaaaaaa02", "user_id": DANA["id"].upper(), "type": "pipeline", "action": "create",
         "target_id": "p-1", "createdAt": "2026-11-20T09:15:02.123Z", "details": {"nested": {"x": None}}},
        {"_id": "aaaaaaaaaaaaaaaaaaaaaa03", "user_id": DANA["id"], "type": "pipeline", "action": "delete",
         "target_id": "p-1", "createdAt": "2026-11-20T09:15:03.000Z", "updatedAt": None, "__v": 0},
        {"_id": "aaaaaaaaaaaaaaaaaaaaaa04", "user_id": DANA["id"], "type": "pipeline", "action": "update",
         "target_id": "p-1", "createdAt": "2026-11-20T09:15:04.000+00:00", "updatedAt": "2026-11-21T00:00:00.000Z"},
    ]
    store = make_store()
    store.load(Dataset(account=base.account, users=base.users, dashboards=base.dashboards, mappings=base.mappings,
                       views=base.views, audit_logs=[*base.audit_logs, *odd]))
    for entry in odd:
        expected = {**entry, "_id": entry["_id"].lower()}
        found = store.audit_log(entry["_id"])
        assert found == expected and list(found) == list(expected), (found, expected)
    page = store.audit_logs("pipeline", "p-1", 1, 10, AuditLogFilter(created_from=datetime(2026, 11, 20, tzinfo=UTC)))
    assert [e["_id"] for e in page.items] == [f"aaaaaaaaaaaaaaaaaaaaaa0{i}" for i in (4, 3, 2, 1)]
    assert page.items[0] == odd[3]


def test_unknown_targets_give_empty_pages(store):
    page = store.audit_logs("tool_mapping", UNKNOWN, 1, 50, AuditLogFilter())
    assert (page.items, page.total) == ([], 0)


# -- the version: what the response cache checks at every request -------------------------------------------

def test_every_write_moves_the_version_and_reads_do_not(store, dataset):
    version = store.version()
    assert version is not None
    store.most_viewed(5)
    store.recently_viewed(DANA["id"], 5)
    store.dashboard_stats(UNKNOWN, TODAY)
    store.audit_logs("dashboard", UNKNOWN, 1, 5, AuditLogFilter())
    store.audit_log("ffffffffffffffffffffffff")
    store.counts()
    store.scenario_meta()
    store.is_empty()
    assert store.version() == version
    target = dataset.dashboards[0]["dashboardId"]
    writes = {
        "record_view": lambda: store.record_view(target, DANA, ANCHOR),
        "record_view of an unknown dashboard": lambda: store.record_view(UNKNOWN, DANA, ANCHOR),
        "claim_scenario": lambda: store.claim_scenario("default"),
        "load_scenario": lambda: store.load_scenario(small_dataset(), "busy"),
        "load": lambda: store.load(small_dataset()),
        "ensure_loaded (nothing to do)": None,
    }
    for name, write in writes.items():
        if write is None:
            assert store.ensure_loaded(small_dataset) is False
            assert store.version() == version, name  # no write, no move
            continue
        write()
        moved = store.version()
        assert moved is not None and moved != version, name
        version = moved


@shared_database
def test_a_write_through_another_store_moves_this_ones_version(make_store, dataset):
    one = make_store()
    one.load(small_dataset())
    two = make_store()  # as a second gunicorn worker opens it
    version = one.version()
    assert version is not None
    two.record_view(dataset.dashboards[0]["dashboardId"], DANA, ANCHOR)
    assert one.version() not in (None, version)


# -- two stores on one database ----------------------------------------------------------------------------

@shared_database
def test_a_second_store_sees_the_first_ones_writes_at_once(make_store, dataset):
    one, two = make_store(), make_store()
    one.load(small_dataset())
    assert not two.is_empty()
    target = model_of(dataset).most_viewed()[-1][0]
    assert brief(two.most_viewed(100)) == model_of(dataset).most_viewed()  # read before: nothing stale after
    event = one.record_view(target, DANA, ANCHOR + timedelta(hours=1))
    assert two.dashboard_stats(target, TODAY)["totalViews"] == event["viewCount"]
    assert two.recently_viewed(DANA["id"], 1)[0]["dashboardId"] == target
    assert two.audit_logs("dashboard", target, 1, 1, AuditLogFilter()).items[0]["createdAt"] == event["viewedAt"]
    assert two.record_view(target, DANA, ANCHOR)["viewCount"] == event["viewCount"] + 1
    assert one.dashboard_stats(target, TODAY)["totalViews"] == event["viewCount"] + 1
    assert two.claim_scenario("default") == ("default", 0)
    assert one.scenario_meta() == ("default", 0)
    assert one.load_scenario(small_dataset(seed=4), "busy") == 1
    assert two.scenario_meta() == ("busy", 1)
    assert brief(two.most_viewed(100)) == model_of(small_dataset(seed=4)).most_viewed()


# -- scenarios ---------------------------------------------------------------------------------------------

def test_claim_load_scenario_and_meta(store):
    assert store.scenario_meta() == (None, 0)
    assert store.claim_scenario("default") == ("default", 0)
    assert store.claim_scenario("busy") == ("default", 0)  # already claimed: the recorded one wins
    assert store.scenario_meta() == ("default", 0)
    assert store.load_scenario(small_dataset(seed=4), "busy") == 1
    assert store.scenario_meta() == ("busy", 1)
    assert brief(store.most_viewed(100)) == model_of(small_dataset(seed=4)).most_viewed()
    assert store.load_scenario(Dataset(account=ACCOUNT), "empty") == 2
    assert store.scenario_meta() == ("empty", 2)
    assert store.most_viewed(10) == [] and not store.is_empty()


# -- concurrency -------------------------------------------------------------------------------------------

def test_threads_recording_at_once_count_exactly(store, dataset):
    target = model_of(dataset).most_viewed()[0][0]
    base = store.dashboard_stats(target, TODAY)["totalViews"]
    logged = store.audit_logs("dashboard", target, 1, 1, AuditLogFilter(action="view")).total
    counts, errors = record_in_threads(store, target, dataset.users[:6], 40)
    assert errors == []
    assert sorted(counts) == list(range(base + 1, base + 241))  # each count answered once: none lost
    assert store.dashboard_stats(target, TODAY)["totalViews"] == base + 240
    assert store.audit_logs("dashboard", target, 1, 1, AuditLogFilter(action="view")).total == logged + 240


def _process_worker(kind: str, database, dashboard_id: str, users: list[dict], calls: int, barrier, queue) -> None:
    store = open_kind(kind, database)  # the child's own store on the shared database
    try:
        barrier.wait(timeout=60)
        queue.put(record_in_threads(store, dashboard_id, users, calls))
    finally:
        store.close()


@shared_database
@pytest.mark.skipif(not hasattr(os, "fork"), reason="forked workers, as gunicorn runs them")
def test_processes_and_threads_recording_at_once_count_exactly(make_store, database, dataset):
    s = make_store()
    s.load(small_dataset())
    target = model_of(dataset).most_viewed()[0][0]
    base = s.dashboard_stats(target, TODAY)["totalViews"]
    processes, threads_per, calls = 3, 3, 25
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=_process_worker, args=(make_store.kind, database, target,
                                                         dataset.users[:threads_per], calls, barrier, queue))
               for _ in range(processes)]
    for w in workers:
        w.start()
    parent_counts: list[int] = []
    parent_errors: list[str] = []
    record_many(s, target, DANA, calls, parent_counts, parent_errors)  # the parent writes meanwhile too
    results = [queue.get(timeout=180) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    counts = parent_counts + [c for got, _ in results for c in got]
    errors = parent_errors + [e for _, errs in results for e in errs]
    assert errors == []
    total_calls = (processes * threads_per + 1) * calls
    assert sorted(counts) == list(range(base + 1, base + total_calls + 1))  # unique, none lost
    assert s.dashboard_stats(target, TODAY)["totalViews"] == base + total_calls
    views = s.audit_logs("dashboard", target, 1, 1, AuditLogFilter(action="view", created_from=ANCHOR))
    assert views.total == total_calls


def _ensure_loaded_worker(kind: str, database, barrier, calls, results, slow_s: float) -> None:
    barrier.wait(timeout=60)
    store = open_kind(kind, database)  # opened after the barrier: some open while another loads

    def make() -> Dataset:
        with calls.get_lock():
            calls.value += 1
        time.sleep(slow_s)  # a big dataset: the others wait
        return small_dataset()

    results.put(store.ensure_loaded(make))
    store.close()


@shared_database
@pytest.mark.skipif(not hasattr(os, "fork"), reason="forked workers, as gunicorn runs them")
def test_stores_starting_together_load_once(make_store, database):
    loaded, calls = start_together(_ensure_loaded_worker,
                                   lambda barrier, calls, results: (make_store.kind, database, barrier, calls,
                                                                    results, 0.5))
    assert loaded == [False, False, False, True]
    assert calls == 1
    assert brief(make_store().most_viewed(100)) == model_of(small_dataset()).most_viewed()


# -- property: every derived figure agrees with the events -------------------------------------------------

_USER_IDS = [f"64b7f0c2a1e3d4c5b6a7980{i}" for i in range(4)]
_DASH_IDS = [f"{i:08x}-0000-4000-8000-00000000000{i}" for i in range(1, 6)]
_UNKNOWN_IDS = ["aaaaaaaa-0000-4000-8000-000000000001", "00000000-0000-4000-8000-0000000000ff"]
_BASE_MS = to_ms(ANCHOR)
# Coarse instants (6-hour steps) so that ties, same-day views and views outside the 30 days all happen.
_instant = st.integers(min_value=-45 * 4, max_value=4).map(lambda k: _BASE_MS + k * 6 * 3_600_000)
_view = st.tuples(st.sampled_from(range(len(_USER_IDS))), st.sampled_from(range(len(_DASH_IDS))), _instant)
_record = st.tuples(st.sampled_from(range(len(_USER_IDS))),
                    st.sampled_from(range(len(_DASH_IDS) + len(_UNKNOWN_IDS))), _instant)


def _small_world(n_dashboards: int) -> tuple[list[dict], list[dict]]:
    users = [{"id": uid, "email": f"u{i}@acme.example", "name": f"User {i}", "role": "User"}
             for i, uid in enumerate(_USER_IDS)]
    dashboards = [{"dashboardId": did, "name": f"Dashboard {i}", "owner": {
        "userId": users[i % len(users)]["id"], "email": users[i % len(users)]["email"],
        "name": users[i % len(users)]["name"]}, "tags": ["t"], "kpiCount": i}
        for i, did in enumerate(_DASH_IDS[:n_dashboards])]
    return users, dashboards


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(n_dashboards=st.integers(min_value=1, max_value=len(_DASH_IDS)),
       initial=st.lists(_view, max_size=25), records=st.lists(_record, max_size=20),
       today_offset=st.integers(min_value=-3, max_value=1))
def test_derived_figures_agree_with_the_events(store, n_dashboards, initial, records, today_offset):
    """What a load builds (its aggregates) and what each view adds agree with the events, whatever they are.
    One store for every example: each load replaces everything."""
    s = store
    users, dashboards = _small_world(n_dashboards)
    views = [{"_id": f"{i:024x}", "dashboardId": _DASH_IDS[d % n_dashboards], "userId": _USER_IDS[u],
              "viewedAt": iso_ms(ms)} for i, (u, d, ms) in enumerate(initial)]
    s.load(Dataset(account=ACCOUNT, users=users, dashboards=dashboards, views=views))
    model = Model(dashboards, [(v["userId"], v["dashboardId"], ms_from_iso(v["viewedAt"])) for v in views])
    candidates = _DASH_IDS[:n_dashboards] + _UNKNOWN_IDS
    for u, d, ms in records:
        dashboard_id = candidates[d % len(candidates)]
        event = s.record_view(dashboard_id, users[u], datetime.fromtimestamp(ms / 1000, UTC))
        model.record(users[u]["id"], dashboard_id, ms)
        assert event["viewCount"] == len(model.of(dashboard_id))

    today = TODAY + timedelta(days=today_offset)
    most = s.most_viewed(100)
    assert brief(most) == model.most_viewed()
    for dashboard_id in candidates:
        stats = s.dashboard_stats(dashboard_id, today)
        assert stats == model.stats(dashboard_id, today)
        assert sum(d["views"] for d in stats["dailyViews"]) == stats["viewsLast30Days"]
        listed = [m["viewCount"] for m in most if m["dashboardId"] == dashboard_id]
        assert listed == ([stats["totalViews"]] if stats["totalViews"] and dashboard_id in model.dashboards else [])
        logged = s.audit_logs("dashboard", dashboard_id, 1, 1000, AuditLogFilter(action="view"))
        assert logged.total == len(logged.items) == sum(1 for _, d, _ in records
                                                        if candidates[d % len(candidates)] == dashboard_id)
    for user in users:
        assert brief(s.recently_viewed(user["id"], 100)) == model.recently_viewed(user["id"])
        assert len(s.recently_viewed(user["id"], 2)) == min(2, len(model.recently_viewed(user["id"])))
    assert day_number(today) - 29 == day_number(date.fromisoformat(
        s.dashboard_stats(candidates[0], today)["dailyViews"][0]["date"]))
