"""The SQLite store, tested directly (no HTTP): semantics, agreement of derived figures, query plans,
durability and concurrency across threads and processes."""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_helpers import component_validator
from mock_server.data.generate import Sizes, generate
from mock_server.store import AuditLogFilter, Dataset, StoreError, open_store
from mock_server.store import sqlite as sqlite_store
from mock_server.timestamps import day_date, day_number, iso_ms, ms_from_iso, to_ms

ROOT = Path(__file__).resolve().parents[1]
SPEC = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
TOKENS = yaml.safe_load((ROOT / "fixtures" / "tokens.yaml").read_text(encoding="utf-8"))
FIXTURE_USERS = [{**t["user"], "role": t["role"]} for t in TOKENS["tokens"]]
ACCOUNT = TOKENS["account"]
ANCHOR = datetime(2026, 11, 25, tzinfo=UTC)
TODAY = date(2026, 11, 25)
SMALL = Sizes(users=12, dashboards=8, mappings=4, views=400, audit_logs=300)
UNKNOWN = "0f0e0d0c-0b0a-4908-8706-050403020100"
DANA = FIXTURE_USERS[0]


def small_dataset(seed: int = 3) -> Dataset:
    return generate(seed=seed, anchor=ANCHOR, users=FIXTURE_USERS, account=ACCOUNT, sizes=SMALL)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return small_dataset()


@pytest.fixture(params=["memory", "file"])
def store(request, dataset, tmp_path):
    s = open_store(None if request.param == "memory" else str(tmp_path / "mock.db"))
    s.load(dataset)
    yield s
    s.close()


# -- a naive model of the expected answers -------------------------------------------------------------

class Model:
    """Everything recomputed from the raw view events, the slow obvious way."""

    def __init__(self, dashboards: list[dict], views: list[tuple[str, str, int]]):
        self.dashboards = {d["dashboardId"]: d for d in dashboards}
        self.views = list(views)  # (user_id, dashboard_id, ms)

    def record(self, user_id: str, dashboard_id: str, ms: int) -> None:
        self.views.append((user_id, dashboard_id, ms))

    def of(self, dashboard_id: str) -> list[tuple[str, str, int]]:
        return [v for v in self.views if v[1] == dashboard_id]

    def stats(self, dashboard_id: str, today: date) -> dict:
        views = self.of(dashboard_id)
        per_day = collections.Counter(day_date(ms // 86_400_000) for _, _, ms in views)
        days = [today - timedelta(days=29 - i) for i in range(30)]
        daily = [{"date": d.isoformat(), "views": per_day.get(d, 0)} for d in days]
        return {
            "dashboardId": dashboard_id,
            "totalViews": len(views),
            "uniqueViewers": len({u for u, _, _ in views}),
            "viewsLast7Days": sum(x["views"] for x in daily[-7:]),
            "viewsLast30Days": sum(x["views"] for x in daily),
            "firstViewedAt": iso_ms(min(ms for _, _, ms in views)) if views else None,
            "lastViewedAt": iso_ms(max(ms for _, _, ms in views)) if views else None,
            "dailyViews": daily,
        }

    def most_viewed(self) -> list[tuple[str, int, str]]:
        rows = []
        for dashboard_id in self.dashboards:
            views = self.of(dashboard_id)
            if views:
                rows.append((dashboard_id, len(views), max(ms for _, _, ms in views)))
        rows.sort(key=lambda r: (-r[1], -r[2], r[0]))
        return [(d, n, iso_ms(last)) for d, n, last in rows]

    def recently_viewed(self, user_id: str) -> list[tuple[str, int, str]]:
        last: dict[str, int] = {}
        for u, d, ms in self.views:
            if u == user_id and d in self.dashboards:
                last[d] = max(last.get(d, ms), ms)
        rows = sorted(last.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(d, len(self.of(d)), iso_ms(ms)) for d, ms in rows]


def model_of(dataset: Dataset) -> Model:
    return Model(dataset.dashboards, [(v["userId"], v["dashboardId"], ms_from_iso(v["viewedAt"]))
                                      for v in dataset.views])


def brief(items: list[dict]) -> list[tuple[str, int, str]]:
    return [(i["dashboardId"], i["viewCount"], i["lastViewedAt"]) for i in items]


# -- reads against the model ---------------------------------------------------------------------------

def test_fresh_store_is_empty_and_loading_marks_it(tmp_path, dataset):
    s = open_store(str(tmp_path / "fresh.db"))
    assert s.is_empty()
    assert s.most_viewed(10) == []
    s.load(Dataset(account=ACCOUNT))  # the "empty" scenario still counts as loaded
    assert not s.is_empty()
    assert s.most_viewed(10) == []
    s.close()


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


def test_summaries_carry_the_dashboard_and_its_owner(store, dataset):
    by_id = {d["dashboardId"]: d for d in dataset.dashboards}
    validator = component_validator("DashboardSummary")
    for item in store.most_viewed(100) + store.recently_viewed(DANA["id"], 100):
        validator.validate(item)
        source = by_id[item["dashboardId"]]
        assert {k: v for k, v in item.items() if k not in ("viewCount", "lastViewedAt")} == source


def test_stats_match_the_model(store, dataset):
    model = model_of(dataset)
    validator = component_validator("DashboardStats")
    for dashboard_id in list(model.dashboards) + [UNKNOWN]:
        for today in (TODAY, TODAY - timedelta(days=40), date(2026, 11, 24)):
            stats = store.dashboard_stats(dashboard_id, today)
            validator.validate(stats)
            assert stats == model.stats(dashboard_id, today)


def test_stats_of_an_unknown_dashboard_are_zeros(store):
    stats = store.dashboard_stats(UNKNOWN, TODAY)
    assert stats["totalViews"] == stats["uniqueViewers"] == stats["viewsLast7Days"] == stats["viewsLast30Days"] == 0
    assert stats["firstViewedAt"] is None and stats["lastViewedAt"] is None
    assert [d["date"] for d in stats["dailyViews"]] == [(TODAY - timedelta(days=29 - i)).isoformat()
                                                        for i in range(30)]
    assert all(d["views"] == 0 for d in stats["dailyViews"])


# -- record_view ---------------------------------------------------------------------------------------

def test_record_view_counts_everywhere(store, dataset):
    model = model_of(dataset)
    target = model.most_viewed()[-1][0]  # the least viewed of the viewed ones
    before = store.dashboard_stats(target, TODAY)["totalViews"]
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
    entry = page.items[0]
    component_validator("AuditLogEntry").validate(entry)
    name = model.dashboards[target]["name"]
    assert {k: entry[k] for k in ("user_id", "user_email", "type", "action", "target_id", "account",
                                  "createdAt", "updatedAt", "__v")} == {
        "user_id": DANA["id"], "user_email": DANA["email"], "type": "dashboard", "action": "view",
        "target_id": target, "account": ACCOUNT, "createdAt": event["viewedAt"],
        "updatedAt": event["viewedAt"], "__v": 0}
    assert entry["dashboard"] == {"dashboardId": target, "name": name}
    assert store.audit_log(entry["_id"]) == entry


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


def test_record_view_before_any_load_is_an_error(tmp_path):
    s = open_store(None)
    with pytest.raises(StoreError):
        s.record_view(UNKNOWN, DANA, ANCHOR)
    s.close()


# -- audit log -----------------------------------------------------------------------------------------

def _expected_entries(dataset: Dataset, type_: str, target: str, action=None, user=None, lo=None, hi=None):
    rows = [e for e in dataset.audit_logs if e["type"] == type_ and e["target_id"] == target
            and (action is None or e["action"] == action) and (user is None or e["user_id"] == user)
            and (lo is None or e["createdAt"] >= lo) and (hi is None or e["createdAt"] <= hi)]
    return sorted(rows, key=lambda e: (e["createdAt"], e["_id"]), reverse=True)


def test_audit_logs_order_paging_and_totals(store, dataset):
    counts = collections.Counter((e["type"], e["target_id"]) for e in dataset.audit_logs)
    (type_, target), _ = counts.most_common(1)[0]
    expected = _expected_entries(dataset, type_, target)
    pages, page = [], 1
    while True:
        result = store.audit_logs(type_, target, page, 7, AuditLogFilter())
        assert result.total == len(expected)
        if not result.items:
            break
        pages.extend(result.items)
        page += 1
    assert pages == expected
    assert page - 1 == -(-len(expected) // 7)
    past = store.audit_logs(type_, target, 10_000, 1000, AuditLogFilter())
    assert past.items == [] and past.total == len(expected)


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
                    flt = AuditLogFilter(
                        created_from=_dt(bounds[0]), created_to=_dt(bounds[1]), action=action,
                        user_id=user.upper() if user else None)
                    want = _expected_entries(dataset, type_, target, action, user, *bounds)
                    asked = target.upper() if type_ != "pipeline" else target  # UUIDs: any case
                    got = store.audit_logs(type_, asked, 1, 1000, flt)
                    assert (got.total, got.items) == (len(want), want), (type_, action, user, bounds)
                    for item in got.items[:3]:
                        validator.validate(item)


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


def test_audit_log_by_id_is_case_insensitive(store, dataset):
    entry = dataset.audit_logs[17]
    assert store.audit_log(entry["_id"]) == entry
    assert store.audit_log(entry["_id"].upper()) == entry
    assert store.audit_log("ffffffffffffffffffffffff") is None


def test_unknown_targets_give_empty_pages(store):
    page = store.audit_logs("tool_mapping", UNKNOWN, 1, 50, AuditLogFilter())
    assert (page.items, page.total) == ([], 0)


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- query plans: flat cost as data grows --------------------------------------------------------------

def _filters():
    at = datetime(2026, 11, 1, tzinfo=UTC)
    for action in (None, "view"):
        for user in (None, DANA["id"]):
            for lo in (None, at):
                for hi in (None, at):
                    yield AuditLogFilter(created_from=lo, created_to=hi, action=action, user_id=user)


def _hot_queries():
    """The ordered row queries inside each read (the statements that run wrap them: see below)."""
    yield "most viewed", sqlite_store.MOST_VIEWED_ROWS, (10,)
    yield "recently viewed", sqlite_store.RECENTLY_VIEWED_ROWS, (DANA["id"], 10)
    yield "stats", sqlite_store.SQL_STATS, {"id": UNKNOWN, "first": 1, "last": 30}
    yield "audit by id", sqlite_store.SQL_AUDIT_BY_ID, ("ffffffffffffffffffffffff",)
    for flt in _filters():
        rows, count, _ = sqlite_store.audit_list_sql(flt)
        params = sqlite_store.audit_list_params("dashboard", UNKNOWN, flt)
        yield f"audit page {flt}", rows, {**params, "limit": 50, "offset": 0}
        yield f"audit count {flt}", count, params


def _plan(conn, sql, params) -> list[str]:
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


@pytest.fixture(scope="module")
def plans_db(tmp_path_factory, dataset):
    path = tmp_path_factory.mktemp("plans") / "plans.db"
    s = open_store(str(path))
    s.load(dataset)
    conn = sqlite3.connect(path)
    yield conn
    conn.close()
    s.close()


def test_hot_queries_search_indexes_and_never_sort(plans_db):
    for name, sql, params in _hot_queries():
        plan = [step for step in _plan(plans_db, sql, params)
                # the frame of the stats row: one constant row holding two scalar subqueries
                if step != "SCAN CONSTANT ROW" and not step.startswith("SCALAR SUBQUERY")]
        assert plan, name
        for step in plan:
            assert step.startswith("SEARCH "), (name, plan)  # never a full SCAN of a table or index
            assert "TEMP B-TREE" not in step, (name, plan)  # ORDER BY served by the index order


def test_each_list_read_runs_its_rows_as_an_ordered_co_routine(plans_db):
    """What keeps a list's JSON array in the rows' order (see _json_array): the wrapper reads the ordered
    subquery as a co-routine, front to back, and sorts nothing itself."""
    wrapped = [("most viewed", sqlite_store.SQL_MOST_VIEWED, (10,)),
               ("recently viewed", sqlite_store.SQL_RECENTLY_VIEWED, (DANA["id"], 10))]
    for flt in _filters():
        params = sqlite_store.audit_list_params("dashboard", UNKNOWN, flt)
        wrapped.append((f"audit page {flt}", sqlite_store.audit_page_sql(flt), {**params, "limit": 5, "offset": 0}))
    for name, sql, params in wrapped:
        plan = _plan(plans_db, sql, params)
        assert any(step.startswith("CO-ROUTINE") for step in plan), (name, plan)
        assert not any("TEMP B-TREE" in step for step in plan), (name, plan)
        scans = [step for step in plan if step.startswith("SCAN ")]
        assert scans and all("SUBQUERY" in step.upper() or step.startswith("SCAN CONSTANT ROW")
                             for step in scans), (name, plan)


def test_counts_without_a_time_window_come_from_the_counters():
    for action in (None, "view"):
        for user in (None, DANA["id"]):
            _, count, from_counters = sqlite_store.audit_list_sql(AuditLogFilter(action=action, user_id=user))
            assert from_counters and "audit_counts" in count


# -- the version: what the response cache checks at every request ----------------------------------------

def test_every_write_moves_the_version_and_reads_do_not(store, dataset):
    version = store.version()
    assert version is not None
    store.most_viewed(5)
    store.dashboard_stats(UNKNOWN, TODAY)
    store.audit_logs("dashboard", UNKNOWN, 1, 5, AuditLogFilter())
    assert store.version() == version
    target = dataset.dashboards[0]["dashboardId"]
    writes = {
        "record_view": lambda: store.record_view(target, DANA, ANCHOR),
        "claim_scenario": lambda: store.claim_scenario("default"),
        "load_scenario": lambda: store.load_scenario(dataset_again(), "busy"),
        "load": lambda: store.load(dataset_again()),
    }
    for name, write in writes.items():
        write()
        moved = store.version()
        assert moved is not None and moved != version, name
        version = moved


def dataset_again() -> Dataset:
    return small_dataset()  # views and audit entries may be one-shot: a new dataset for every load


@pytest.mark.parametrize("known", [True, False], ids=["ring", "direct"])
def test_the_version_is_none_while_a_write_is_under_way(store, dataset, monkeypatch, known):
    seen = []
    insert, record = store._insert_views, sqlite_store._PendingView.record

    def spying_insert(conn, views):
        seen.append(store.version())
        return insert(conn, views)

    def spying_record(view, slot, count):  # the ring's append makes the record inside the write
        seen.append(store.version())
        return record(view, slot, count)

    monkeypatch.setattr(store, "_insert_views", spying_insert)
    monkeypatch.setattr(sqlite_store._PendingView, "record", spying_record)
    before = store.version()
    store.record_view(dataset.dashboards[0]["dashboardId"] if known else UNKNOWN, DANA, ANCHOR)
    assert seen == [None]
    assert store.version() not in (None, before)


def test_a_write_through_another_store_on_the_file_moves_this_ones_version(tmp_path, dataset):
    path = str(tmp_path / "mock.db")
    one = open_store(path)
    one.load(small_dataset())
    two = open_store(path)  # as a second gunicorn worker opens it
    try:
        version = one.version()
        assert two.version() == version
        two.record_view(dataset.dashboards[0]["dashboardId"], DANA, ANCHOR)
        assert one.version() not in (None, version)
    finally:
        one.close()
        two.close()


# -- the file: persistence, settings, foreign files ----------------------------------------------------

def test_state_survives_reopening_the_file(tmp_path, dataset):
    path = str(tmp_path / "persist.db")
    s = open_store(path)
    assert s.ensure_loaded(lambda: dataset) is True
    event = s.record_view(UNKNOWN, DANA, ANCHOR)
    s.close()
    again = open_store(path)
    assert not again.is_empty()
    assert again.ensure_loaded(lambda: pytest.fail("must not generate again")) is False
    assert again.dashboard_stats(UNKNOWN, TODAY)["totalViews"] == event["viewCount"] == 1
    assert again.most_viewed(100) == brief_free(again.most_viewed(100))
    again.close()


def brief_free(items):  # identity helper, keeps the assertion above readable
    return items


def test_file_uses_wal_and_the_chosen_durability(tmp_path):
    s = open_store(str(tmp_path / "pragmas.db"))
    with s._conns.connection() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == sqlite_store.DEFAULT_BUSY_TIMEOUT_MS
    s.close()
    full = open_store(str(tmp_path / "full.db"), synchronous="FULL")
    with full._conns.connection() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    full.close()
    with pytest.raises(ValueError):
        open_store(None, synchronous="SOMETIMES")


@pytest.mark.skipif(sqlite_store.fcntl is None, reason="the checkpointer goes with the flock turns (POSIX)")
def test_the_checkpointer_lets_the_wal_start_over(tmp_path, dataset, monkeypatch):
    monkeypatch.setattr(sqlite_store._Checkpointer, "EVERY_VIEWS", 10**9)  # the thread stays asleep: we call it
    monkeypatch.setattr(sqlite_store._Checkpointer, "RESTART_FRAMES", 200)
    path = tmp_path / "wal.db"
    s = open_store(str(path))
    s.load(dataset)
    try:
        with s._conns.connection() as conn:
            assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == sqlite_store.WAL_AUTOCHECKPOINT_PAGES
        counts = [s.record_view(UNKNOWN, DANA, ANCHOR + timedelta(seconds=i))["viewCount"] for i in range(100)]
        assert counts == list(range(1, 101))
        with s._conns.connection() as conn:
            frames_before = _wal_frames(conn)
            s._checkpointer.checkpoint(conn)
        assert frames_before > 200 and s.write_stats()["checkpoints"] == 1
        event = s.record_view(UNKNOWN, DANA, ANCHOR)  # the first writer after it starts the WAL over
        assert event["viewCount"] == 101
        with s._conns.connection() as conn:
            assert _wal_frames(conn) < frames_before / 10
    finally:
        s.close()
    other = sqlite3.connect(path)  # everything is in the file (copied back or in the WAL)
    try:
        assert other.execute("SELECT view_count FROM dashboard_totals WHERE dashboard_id = ?",
                             (UNKNOWN,)).fetchone()[0] == 101
        assert other.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        other.close()


def _wal_frames(conn) -> int:
    # The WAL's frame count: a PASSIVE checkpoint reports it (and copies what it can, harmless here).
    return conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]


@pytest.mark.skipif(sqlite_store.fcntl is None, reason="the checkpointer goes with the flock turns (POSIX)")
def test_the_checkpointer_thread_runs_as_views_are_written(tmp_path, dataset, monkeypatch):
    monkeypatch.setattr(sqlite_store._Checkpointer, "EVERY_VIEWS", 4)
    monkeypatch.setattr(sqlite_store._Checkpointer, "RESTART_FRAMES", 1)
    s = open_store(str(tmp_path / "thread.db"))
    s.load(dataset)
    try:
        deadline = time.monotonic() + 30
        n = 0
        while s.write_stats()["checkpoints"] < 2 and time.monotonic() < deadline:
            n += 1
            assert s.record_view(UNKNOWN, DANA, ANCHOR)["viewCount"] == n
            time.sleep(0.005)
        assert s.write_stats()["checkpoints"] >= 2
    finally:
        s.close()


def test_foreign_and_future_files_are_refused(tmp_path):
    not_db = tmp_path / "notes.txt"
    not_db.write_text("hello, this is not a database\n" * 100)
    with pytest.raises(StoreError):
        open_store(str(not_db))
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StoreError, match="another application"):
        open_store(str(other))
    future = tmp_path / "future.db"
    open_store(str(future)).close()
    with sqlite3.connect(future) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99"):
        open_store(str(future))


def test_closed_store_refuses_work(tmp_path):
    for path in (None, str(tmp_path / "closed.db")):
        s = open_store(path)
        s.close()
        with pytest.raises(StoreError):
            s.is_empty()


def test_load_replaces_everything(store, dataset):
    store.record_view(UNKNOWN, DANA, ANCHOR)
    other = small_dataset(seed=4)
    store.load(other)
    assert brief(store.most_viewed(100)) == model_of(other).most_viewed()
    assert store.dashboard_stats(UNKNOWN, TODAY)["totalViews"] == 0
    assert store.audit_log(dataset.audit_logs[0]["_id"]) is None


# -- concurrency ---------------------------------------------------------------------------------------

def _record_many(store, dashboard_id: str, user: dict, calls: int, out: list, errors: list) -> None:
    for i in range(calls):
        try:
            out.append(store.record_view(dashboard_id, user, ANCHOR + timedelta(seconds=i))["viewCount"])
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on any
            errors.append(repr(exc))


def _record_in_threads(store, dashboard_id: str, users: list[dict], calls: int) -> tuple[list[int], list[str]]:
    """One thread per user, each recording `calls` views; the counts answered and any errors."""
    counts: list[int] = []
    errors: list[str] = []
    threads = [threading.Thread(target=_record_many, args=(store, dashboard_id, u, calls, counts, errors))
               for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return counts, errors


def _process_worker(store, dashboard_id: str, users: list[dict], calls: int, queue) -> None:
    # `store` was opened by the parent before the fork: the pool must notice and open its own connections.
    queue.put(_record_in_threads(store, dashboard_id, users, calls))


def test_views_written_in_one_group_get_their_own_counts_and_one_failure_stays_its_own(tmp_path, dataset):
    s = open_store(str(tmp_path / "group.db"))
    s.load(dataset)
    try:
        def pending(dashboard_id):
            return sqlite_store._PendingView(dashboard_id, DANA["id"], DANA["email"], to_ms(ANCHOR),
                                             sqlite_store.object_id(ANCHOR), sqlite_store.object_id(ANCHOR))
        batch = [pending(UNKNOWN), pending(None), pending(UNKNOWN)]  # None breaks a NOT NULL column

        s._write_views(batch)
        assert [batch[0].outcome()["viewCount"], batch[2].outcome()["viewCount"]] == [1, 2]
        with pytest.raises(sqlite3.IntegrityError):
            batch[1].outcome()
        assert s.dashboard_stats(UNKNOWN, TODAY)["totalViews"] == 2
    finally:
        s.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forked workers, as gunicorn runs them")
def test_processes_and_threads_never_lose_or_repeat_a_count(tmp_path, dataset):
    s = open_store(str(tmp_path / "busy.db"))
    s.load(dataset)
    target = model_of(dataset).most_viewed()[0][0]
    base = s.dashboard_stats(target, TODAY)["totalViews"]
    users = dataset.users[:4]
    processes, threads_per, calls = 3, 4, 25
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_process_worker, args=(s, target, users[:threads_per], calls, queue))
               for _ in range(processes)]
    for w in workers:
        w.start()
    # The parent writes at the same time, through the same store object.
    parent_counts: list[int] = []
    parent_errors: list[str] = []
    _record_many(s, target, DANA, calls, parent_counts, parent_errors)
    results = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    counts = parent_counts + [c for got, _ in results for c in got]
    errors = parent_errors + [e for _, errs in results for e in errs]
    assert errors == []
    total_calls = (processes * threads_per + 1) * calls
    assert len(counts) == total_calls
    assert sorted(counts) == list(range(base + 1, base + total_calls + 1))  # unique, none lost
    assert s.dashboard_stats(target, TODAY)["totalViews"] == base + total_calls
    views = s.audit_logs("dashboard", target, 1, 1, AuditLogFilter(action="view", created_from=ANCHOR))
    assert views.total == total_calls
    s.close()


def test_threads_share_an_in_memory_store(dataset):
    s = open_store(None)
    s.load(dataset)
    counts, errors = _record_in_threads(s, UNKNOWN, dataset.users[:6], 50)
    assert errors == []
    assert sorted(counts) == list(range(1, 301))
    assert s.dashboard_stats(UNKNOWN, TODAY)["uniqueViewers"] == 6
    s.close()


def _ensure_loaded_worker(path: str, barrier, calls, results, busy_timeout_ms: int, slow_s: float) -> None:
    barrier.wait(timeout=60)
    # Opened after the barrier: some workers open the file while another creates the schema or loads.
    store = open_store(path, busy_timeout_ms=busy_timeout_ms)

    def make() -> Dataset:
        with calls.get_lock():
            calls.value += 1
        time.sleep(slow_s)  # a big dataset: others wait longer than their busy timeout
        return small_dataset()

    results.put(store.ensure_loaded(make))
    store.close()


@pytest.mark.parametrize("busy_timeout_ms, slow_s", [(10_000, 0.0), (100, 1.0)])
def test_workers_starting_together_load_once(tmp_path, busy_timeout_ms, slow_s):
    path = str(tmp_path / "start.db")
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters, like gunicorn workers without --preload
    n = 4
    barrier, calls, results = ctx.Barrier(n), ctx.Value("i", 0), ctx.Queue()
    workers = [ctx.Process(target=_ensure_loaded_worker,
                           args=(path, barrier, calls, results, busy_timeout_ms, slow_s)) for _ in range(n)]
    for w in workers:
        w.start()
    loaded = sorted(results.get(timeout=180) for _ in workers)
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    assert loaded == [False] * (n - 1) + [True]
    assert calls.value == 1
    s = open_store(path)
    assert brief(s.most_viewed(100)) == model_of(small_dataset()).most_viewed()
    s.close()


def _record_until_killed(path: str, dashboard_id: str, conn) -> None:
    store = open_store(path)
    for i in range(100_000):  # bounded; the parent kills us long before
        conn.send(store.record_view(dashboard_id, DANA, ANCHOR + timedelta(milliseconds=i))["viewCount"])


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_acknowledged_views_survive_kill_9(tmp_path, dataset):
    path = str(tmp_path / "crash.db")
    s = open_store(path)
    s.load(dataset)
    s.close()
    ctx = multiprocessing.get_context("spawn")
    parent_end, child_end = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_record_until_killed, args=(path, UNKNOWN, child_end))
    child.start()
    acknowledged = 0
    while acknowledged < 200:
        assert parent_end.poll(60), "the writer stopped answering"
        acknowledged = parent_end.recv()
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    while parent_end.poll(0.2):  # acknowledgements sent just before the kill
        acknowledged = parent_end.recv()
    s = open_store(path)
    total = s.dashboard_stats(UNKNOWN, TODAY)["totalViews"]
    assert acknowledged <= total <= acknowledged + 1  # at most the one in flight
    with s._conns.connection() as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    s.close()


# -- property: every derived figure agrees with the events ---------------------------------------------

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


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_dashboards=st.integers(min_value=1, max_value=len(_DASH_IDS)),
       initial=st.lists(_view, max_size=25), records=st.lists(_record, max_size=20),
       today_offset=st.integers(min_value=-3, max_value=1))
def test_derived_figures_agree_with_the_events(n_dashboards, initial, records, today_offset):
    users, dashboards = _small_world(n_dashboards)
    views = [{"_id": f"{i:024x}", "dashboardId": _DASH_IDS[d % n_dashboards], "userId": _USER_IDS[u],
              "viewedAt": iso_ms(ms)} for i, (u, d, ms) in enumerate(initial)]
    s = open_store(None)
    try:
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
            assert listed == ([stats["totalViews"]] if stats["totalViews"] and dashboard_id in model.dashboards
                              else [])
            logged = s.audit_logs("dashboard", dashboard_id, 1, 1000, AuditLogFilter(action="view"))
            assert logged.total == len(logged.items) == sum(1 for _, d, _ in records
                                                            if candidates[d % len(candidates)] == dashboard_id)
        for user in users:
            assert brief(s.recently_viewed(user["id"], 100)) == model.recently_viewed(user["id"])
            assert len(s.recently_viewed(user["id"], 2)) == min(2, len(model.recently_viewed(user["id"])))
        assert day_number(today) - 29 == day_number(date.fromisoformat(
            s.dashboard_stats(candidates[0], today)["dailyViews"][0]["date"]))
    finally:
        s.close()


def test_the_sqlite_store_has_the_interfaces_signatures():
    import inspect

    from mock_server.store.base import Store

    methods = [name for name, value in vars(Store).items() if callable(value) and not name.startswith("_")]
    assert {"load", "is_empty", "ensure_loaded", "recently_viewed", "most_viewed", "dashboard_stats",
            "record_view", "audit_logs", "audit_log", "close"} <= set(methods)
    for name in methods:
        assert inspect.signature(getattr(sqlite_store.SQLiteStore, name)) == inspect.signature(getattr(Store, name)), name
