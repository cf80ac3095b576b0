"""What only the SQLite store has (the contract is test_contract.py): query plans that stay flat as data
grows, the file's settings and companions, foreign files, a writer killed with -9, a store object crossing
fork, the version while a write is under way, and waiting for another process's long load."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mock_server.store import AuditLogFilter, Dataset, StoreError, open_store
from mock_server.store import connections, sql
from mock_server.store import sqlite as sqlite_store

from .model import ANCHOR, DANA, TODAY, UNKNOWN, brief, model_of, small_dataset, start_together


@pytest.fixture
def file_store(tmp_path):
    s = open_store(str(tmp_path / "mock.db"))
    s.load(small_dataset())
    yield s
    s.close()


# -- query plans: flat cost as data grows ------------------------------------------------------------------

def _filters():
    at = datetime(2026, 11, 1, tzinfo=UTC)
    for action in (None, "view"):
        for user in (None, DANA["id"]):
            for lo in (None, at):
                for hi in (None, at):
                    yield AuditLogFilter(created_from=lo, created_to=hi, action=action, user_id=user)


def _hot_queries():
    yield "most viewed", sql.MOST_VIEWED, (10,)
    yield "recently viewed", sql.RECENTLY_VIEWED, (DANA["id"], 10)
    yield "stats totals", sql.STATS_TOTALS, {"id": UNKNOWN}
    yield "stats days", sql.STATS_DAYS, {"id": UNKNOWN, "first": 1, "last": 30}
    yield "audit by id", sql.AUDIT_BY_ID, ("ffffffffffffffffffffffff",)
    yield "a view's count", sql.VIEW_COUNT, (UNKNOWN,)
    for flt in _filters():
        rows, count, _ = sql.audit_list_sql(flt)
        params = sql.audit_list_params("dashboard", UNKNOWN, flt)
        yield f"audit page {flt}", rows, {**params, "limit": 50, "offset": 0}
        yield f"audit count {flt}", count, params


@pytest.fixture(scope="module")
def plans_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("plans") / "plans.db"
    s = open_store(str(path))
    s.load(small_dataset())
    conn = sqlite3.connect(path)
    yield conn
    conn.close()
    s.close()


def test_hot_queries_search_indexes_and_never_sort(plans_db):
    for name, statement, params in _hot_queries():
        plan = [row[3] for row in plans_db.execute("EXPLAIN QUERY PLAN " + statement, params)]
        assert plan, name
        for step in plan:
            if step.startswith("SCALAR SUBQUERY"):  # a target's or user's integer key, looked up (SEARCH) below
                continue
            assert step.startswith("SEARCH "), (name, plan)  # never a full SCAN of a table or index
            assert "TEMP B-TREE" not in step, (name, plan)  # ORDER BY served by the index order


def test_counts_without_a_time_window_come_from_the_counters():
    for action in (None, "view"):
        for user in (None, DANA["id"]):
            _, count, from_counters = sql.audit_list_sql(AuditLogFilter(action=action, user_id=user))
            assert from_counters and "audit_counts" in count


# -- the file: settings, companions, foreign files -----------------------------------------------------------

def test_file_uses_wal_the_chosen_durability_and_sqlites_own_checkpoints(tmp_path):
    s = open_store(str(tmp_path / "pragmas.db"))
    with s._conns.connection() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == sqlite_store.DEFAULT_BUSY_TIMEOUT_MS
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # SQLite's default
    s.close()
    full = open_store(str(tmp_path / "full.db"), synchronous="FULL")
    with full._conns.connection() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    full.close()
    with pytest.raises(ValueError):
        open_store(None, synchronous="SOMETIMES")


def test_the_wal_stays_bounded_and_no_thread_is_started(tmp_path):
    threads = set(threading.enumerate())
    path = tmp_path / "wal.db"
    s = open_store(str(path))
    s.load(small_dataset())
    try:
        counts = [s.record_view(UNKNOWN, DANA, ANCHOR + timedelta(seconds=i))["viewCount"] for i in range(600)]
        assert counts == list(range(1, 601))
        assert set(threading.enumerate()) == threads
        # SQLite's autocheckpoint (1000 pages) copies the WAL back, and the next writer starts it over.
        assert os.path.getsize(f"{path}-wal") < 8 << 20
    finally:
        s.close()
    other = sqlite3.connect(path)
    try:
        assert other.execute("SELECT view_count FROM dashboard_totals WHERE dashboard_id = ?",
                             (UNKNOWN,)).fetchone()[0] == 600
        assert other.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        other.close()


def test_writers_that_never_pause_still_let_the_wal_start_over(tmp_path, monkeypatch):
    """Four threads writing back to back never leave SQLite a moment to start the WAL over (it grew to 30-85 MB
    in this test without bound_wal); past the bound, a writer empties it."""
    monkeypatch.setattr(connections, "WAL_TRUNCATE_BYTES", 2 << 20)
    path = tmp_path / "busy.db"
    s = open_store(str(path))
    s.load(small_dataset())
    peaks: list[int] = []

    def write() -> None:
        for _ in range(600):
            s.record_view(UNKNOWN, DANA, ANCHOR)
            peaks.append(os.path.getsize(f"{path}-wal"))

    threads = [threading.Thread(target=write) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert s.dashboard_stats(UNKNOWN, TODAY)["totalViews"] == 2400
        # A WAL file shrinks only when a checkpoint truncates it, so each fall of more than 1 MB between two
        # samples is one start-over (a sample taken late by a thread switch is stale by kilobytes, not
        # megabytes). How high the WAL climbs between start-overs depends on the machine's load (it peaked at
        # 11 MB on a loaded CI machine with a 2 MB bound), so the test counts start-overs, not a peak.
        starts_over = sum(1 for before, after in zip(peaks, peaks[1:]) if before - after > 1 << 20)
        assert starts_over >= 5, (starts_over, max(peaks))  # 77 here on a quiet machine; 2 without bound_wal
    finally:
        s.close()


def test_a_file_has_sqlites_companions_and_the_write_count_only(file_store):
    file_store.record_view(UNKNOWN, DANA, ANCHOR)
    db = Path(file_store.db_path)
    names = {p.name for p in db.parent.iterdir()}
    assert {db.name, db.name + "-changes"} <= names <= {db.name, db.name + "-wal", db.name + "-shm",
                                                        db.name + "-changes"}


def test_foreign_and_other_version_files_are_refused(tmp_path):
    not_db = tmp_path / "notes.txt"
    not_db.write_text("hello, this is not a database\n" * 100)
    with pytest.raises(StoreError):
        open_store(str(not_db))
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StoreError, match="another application"):
        open_store(str(other))
    for version in ("99", "2"):
        path = tmp_path / f"v{version}.db"
        open_store(str(path)).close()
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
        with pytest.raises(StoreError, match=f"schema version {version}"):
            open_store(str(path))


# -- the version while a write is under way --------------------------------------------------------------------

@pytest.mark.parametrize("where", ["memory", "file"])
def test_the_version_is_none_while_a_write_is_under_way(tmp_path, where):
    s = open_store(None if where == "memory" else str(tmp_path / "mock.db"))
    s.load(small_dataset())
    seen = []
    try:
        with s._conns.connection() as conn:  # the connection the next write will use (one thread)
            conn.set_trace_callback(lambda statement: seen.append((statement.split()[0], s.version())))
        before = s.version()
        s.record_view(UNKNOWN, DANA, ANCHOR)
        after = s.version()
        with s._conns.connection() as conn:
            conn.set_trace_callback(None)
        steps = [step for step in seen if step[0] in ("BEGIN", "INSERT", "SELECT", "COMMIT")]
        names = [name for name, _ in steps]
        assert (names[0], names[-1]) == ("BEGIN", "COMMIT") and {"INSERT", "SELECT"} <= set(names), names
        assert steps[0] == ("BEGIN", before)  # traced before it runs: not under way yet
        assert [v for _, v in steps[1:]] == [None] * (len(steps) - 1)  # the view's statements and COMMIT
        assert after is not None and after != before
    finally:
        s.close()


def test_a_failed_write_ends_its_count(tmp_path):
    s = open_store(str(tmp_path / "mock.db"))
    try:
        before = s.version()
        with pytest.raises(StoreError):
            s.record_view(UNKNOWN, DANA, ANCHOR)  # nothing loaded: rolled back
        assert s.version() not in (None, before)
    finally:
        s.close()


# -- processes -------------------------------------------------------------------------------------------------

def _use_inherited_store(store, dashboard_id: str, queue) -> None:
    # `store` was opened by the parent before the fork: its pool must open the child's own connections.
    counts = [store.record_view(dashboard_id, DANA, ANCHOR)["viewCount"] for _ in range(20)]
    queue.put(counts)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forked workers, as gunicorn runs them")
def test_a_store_object_crossing_fork_opens_the_childs_own_connections(file_store):
    file_store.record_view(UNKNOWN, DANA, ANCHOR)  # the parent's pool holds a connection
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    children = [ctx.Process(target=_use_inherited_store, args=(file_store, UNKNOWN, queue)) for _ in range(2)]
    for child in children:
        child.start()
    mine = [file_store.record_view(UNKNOWN, DANA, ANCHOR)["viewCount"] for _ in range(20)]
    theirs = [c for _ in children for c in queue.get(timeout=120)]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert sorted(mine + theirs) == list(range(2, 62))
    assert file_store.dashboard_stats(UNKNOWN, TODAY)["totalViews"] == 61


def _ensure_loaded_worker(path: str, barrier, calls, results, busy_timeout_ms: int, slow_s: float) -> None:
    barrier.wait(timeout=60)
    store = open_store(path, busy_timeout_ms=busy_timeout_ms)  # opened while another creates or loads

    def make() -> Dataset:
        with calls.get_lock():
            calls.value += 1
        time.sleep(slow_s)  # a big dataset: the others wait longer than their busy timeout
        return small_dataset()

    results.put(store.ensure_loaded(make))
    store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forked workers, as gunicorn runs them")
def test_a_load_longer_than_the_busy_timeout_is_waited_for(tmp_path):
    path = str(tmp_path / "start.db")
    loaded, calls = start_together(_ensure_loaded_worker,
                                   lambda barrier, calls, results: (path, barrier, calls, results, 100, 1.0))
    assert loaded == [False, False, False, True]
    assert calls == 1
    s = open_store(path)
    assert brief(s.most_viewed(100)) == model_of(small_dataset()).most_viewed()
    s.close()


def _record_until_killed(path: str, dashboard_id: str, conn) -> None:
    store = open_store(path)
    for i in range(100_000):  # bounded; the parent kills us long before
        conn.send(store.record_view(dashboard_id, DANA, ANCHOR + timedelta(milliseconds=i))["viewCount"])


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_acknowledged_views_survive_kill_9(tmp_path):
    path = str(tmp_path / "crash.db")
    s = open_store(path)
    s.load(small_dataset())
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


def test_an_id_that_is_no_object_id_is_refused_and_the_loaded_data_stays(file_store):
    """The event ids are kept as their 12 bytes (store/sqlite_rows.py): a dataset with another id is refused
    whole, with the id named, and the data loaded before it is still there."""
    file_store.load(small_dataset())
    before = file_store.counts()
    bad = small_dataset()
    bad.audit_logs = [*bad.audit_logs[:5], {**bad.audit_logs[5], "_id": "entry-6"}]
    with pytest.raises(StoreError, match="audit entry _id 'entry-6' is not an ObjectId"):
        file_store.load(bad)
    assert file_store.counts() == before
