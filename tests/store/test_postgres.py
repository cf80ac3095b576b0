"""The PostgreSQL store against a real server (the session's `postgres_url`, tests/conftest.py), beyond the
contract both stores pass (test_contract.py runs it on the "postgres" kind too): what only a shared server has
to show: several stores (replicas) on one
database, concurrent writers, processes starting together, forked children."""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time

import psycopg
import pytest

from mock_server.store import AuditLogFilter, Dataset, StoreError, open_store
from mock_server.store import postgres as pg_store

from .model import (ANCHOR, DANA, TODAY, UNKNOWN, model_of, record_in_threads, record_many,
                    small_dataset)



@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return small_dataset()


@pytest.fixture
def store(make_postgres_store, dataset):
    s = make_postgres_store()
    s.load(dataset)
    return s


# -- the store on its own --------------------------------------------------------------------------------

def test_open_store_with_a_url_gives_the_postgres_store(fresh_database):
    url = fresh_database()
    s = open_store(None, url)
    try:
        assert isinstance(s, pg_store.PostgresStore)
    finally:
        s.close()
    with pytest.raises(StoreError, match="cannot both"):
        open_store("/tmp/x.db", url)


def test_audit_documents_keep_their_key_order(store, dataset):
    """Stored as `json` (jsonb would sort the keys): an entry comes back with its keys as given."""
    entry = dataset.audit_logs[5]
    assert list(store.audit_log(entry["_id"])) == list(entry)
    event = store.record_view(dataset.dashboards[0]["dashboardId"], DANA, ANCHOR)
    page = store.audit_logs("dashboard", event["dashboardId"], 1, 1, AuditLogFilter(action="view"))
    assert list(page.items[0]) == ["_id", "user_id", "user_email", "type", "action", "target_id", "account",
                                   "dashboard", "createdAt", "updatedAt", "__v"]


def test_foreign_future_and_unreachable_databases_are_refused(postgres_url, fresh_database):
    foreign = fresh_database()
    with psycopg.connect(foreign, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id integer)")
    with pytest.raises(StoreError, match="another application"):
        pg_store.PostgresStore(foreign)

    future = fresh_database()
    pg_store.PostgresStore(future).close()
    with psycopg.connect(future, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99"):
        pg_store.PostgresStore(future)

    # nothing listens on port 1; the message names the URL, not its password
    with pytest.raises(StoreError) as refused:
        pg_store.PostgresStore("postgresql://mock:s3cret-pw@127.0.0.1:1/insights")
    assert "postgresql://mock@127.0.0.1:1/insights" in str(refused.value)
    assert "s3cret-pw" not in str(refused.value)


def test_redact_url_drops_passwords_only():
    assert pg_store.redact_url("postgresql://u:p@h:5/d?sslmode=require&password=q") == \
        "postgresql://u@h:5/d?sslmode=require"
    assert pg_store.redact_url("postgresql://h/d") == "postgresql://h/d"


# -- one database, several stores (replicas) ----------------------------------------------------------------

def test_eight_threads_on_two_stores_count_exactly(make_postgres_store, dataset):
    one = make_postgres_store()
    one.load(dataset)
    two = make_postgres_store(one.url)
    target = model_of(dataset).most_viewed()[0][0]
    base = one.dashboard_stats(target, TODAY)
    users = [dict(DANA, id=f"{i:024x}", email=f"u{i}@acme.example") for i in range(8)]
    counts, errors = record_in_threads([one, two], target, users, 40)
    assert errors == []
    assert sorted(counts) == list(range(base["totalViews"] + 1, base["totalViews"] + 321))  # unique, none lost
    stats = two.dashboard_stats(target, TODAY)
    assert stats["totalViews"] == base["totalViews"] + 320
    assert stats["uniqueViewers"] == base["uniqueViewers"] + 8  # new viewers counted once each, concurrently
    logged = one.audit_logs("dashboard", target, 1, 1, AuditLogFilter(action="view", created_from=ANCHOR))
    assert logged.total == 320
    assert one.audit_logs("dashboard", target, 1, 1, AuditLogFilter(user_id=users[3]["id"])).total == 40


def test_views_during_loads_neither_fail_nor_deadlock(make_postgres_store, dataset):
    """A load holds the load lock; views take it shared first: they wait for the load, then count on the new
    data. The aggregates agree with the event log afterwards."""
    s = make_postgres_store()
    s.load(dataset)
    stop = threading.Event()
    errors: list[str] = []

    def keep_viewing(user):
        while not stop.is_set():
            try:
                s.record_view(UNKNOWN, user, ANCHOR)
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))
                return

    threads = [threading.Thread(target=keep_viewing, args=(u,)) for u in dataset.users[:4]]
    for t in threads:
        t.start()
    try:
        for seed in (4, 5, 6):
            time.sleep(0.1)
            s.load(small_dataset(seed=seed))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert errors == []
    stats = s.dashboard_stats(UNKNOWN, TODAY)
    assert stats["totalViews"] == s.audit_logs("dashboard", UNKNOWN, 1, 1, AuditLogFilter()).total > 0


def _fork_worker(store, dashboard_id: str, users: list[dict], calls: int, queue) -> None:
    # `store` was opened by the parent before the fork: the child opens its own connections.
    queue.put(record_in_threads([store], dashboard_id, users, calls))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forked workers, as gunicorn runs them")
def test_forked_processes_and_threads_never_lose_or_repeat_a_count(make_postgres_store, dataset):
    s = make_postgres_store()
    s.load(dataset)
    target = model_of(dataset).most_viewed()[0][0]
    base = s.dashboard_stats(target, TODAY)["totalViews"]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_fork_worker, args=(s, target, dataset.users[:4], 25, queue)) for _ in range(3)]
    for w in workers:
        w.start()
    parent_counts: list[int] = []
    parent_errors: list[str] = []
    record_many(s, target, DANA, 25, parent_counts, parent_errors)  # the parent writes meanwhile
    results = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    counts = parent_counts + [c for got, _ in results for c in got]
    assert parent_errors + [e for _, errs in results for e in errs] == []
    assert sorted(counts) == list(range(base + 1, base + 13 * 25 + 1))
    assert s.dashboard_stats(target, TODAY)["totalViews"] == base + 13 * 25


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_never_ends_its_parents_sessions(make_postgres_store, dataset):
    """The child drops every inherited connection (they are finalised here, which would send libpq's
    Terminate on the parent's sockets): the parent's pooled connections keep working."""
    s = make_postgres_store()
    s.load(dataset)
    s.record_view(UNKNOWN, DANA, ANCHOR)  # the pool is open, its connection in use before the fork
    pid = os.fork()
    if pid == 0:  # the child: finalise the parent's pool and connections, then write on its own
        code = 1
        try:
            pg_store._INHERITED.clear()
            gc.collect()
            code = 0 if s.record_view(UNKNOWN, DANA, ANCHOR)["viewCount"] == 2 else 1
            s.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert s.record_view(UNKNOWN, DANA, ANCHOR)["viewCount"] == 3  # the parent's connections still serve


def test_without_the_server_binaries_the_launcher_names_the_package(monkeypatch):
    from mock_server.testing import postgres as launcher

    monkeypatch.setattr(launcher.glob, "glob", lambda pattern: [])
    assert launcher.server_bin_dir() is None
    with pytest.raises(launcher.PostgresUnavailable, match="apt-get install postgresql"):
        with launcher.running_postgres():
            pass


def test_the_launcher_finds_the_newest_server_by_glob():
    from mock_server.testing import postgres as launcher

    found = launcher.server_bin_dir()
    if found is None:
        pytest.skip(launcher.INSTALL_HINT)
    assert found.match("/usr/lib/postgresql/*/bin") and (found / "pg_ctl").exists()
