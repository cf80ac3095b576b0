"""The PostgreSQL store against a real server (the session's `postgres_url`, tests/conftest.py): the SQLite
store's behavioural checks, then what only a shared server has to show: several stores (replicas) on one
database, concurrent writers, processes starting together, forked children."""

from __future__ import annotations

import gc
import inspect
import multiprocessing
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server.store import AuditLogFilter, Dataset, StoreError, open_store
from mock_server.store import postgres as pg_store
from mock_server.store.base import Store
from mock_server.testing.postgres import create_database
from mock_server.timestamps import ms_from_iso

# The SQLite store's behavioural tests, run here on a loaded PostgresStore (this module's `store` fixture).
# tests/store/test_contract.py will run them over both stores; then this block goes.
from test_store_sqlite import (  # noqa: F401 - collected by pytest as tests of this module
    ACCOUNT, ANCHOR, DANA, TODAY, UNKNOWN, Model, _DASH_IDS, _UNKNOWN_IDS, _record, _small_world, _view, brief,
    model_of, small_dataset,
    test_a_view_of_an_unknown_dashboard_counts_but_is_not_listed, test_an_older_view_does_not_move_last_viewed_back,
    test_audit_log_by_id_is_case_insensitive, test_audit_log_filters_are_inclusive_and_combine,
    test_audit_logs_order_paging_and_totals, test_every_write_moves_the_version_and_reads_do_not,
    test_load_replaces_everything, test_most_viewed_matches_the_model, test_record_view_counts_everywhere,
    test_recently_viewed_matches_the_model, test_stats_match_the_model, test_stats_of_an_unknown_dashboard_are_zeros,
    test_sub_millisecond_bounds_round_inwards, test_summaries_carry_the_dashboard_and_its_owner,
    test_unknown_targets_give_empty_pages,
)


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


def test_the_postgres_store_has_the_interfaces_methods():
    """Every method of base.Store with its parameters; the reads also take the keyword `raw` today's handlers
    pass (mock_server/api), which changes nothing: the store returns plain data."""
    for name, value in vars(Store).items():
        if not callable(value) or name.startswith("_"):
            continue
        ours = inspect.signature(getattr(pg_store.PostgresStore, name))
        params = [p for p in ours.parameters.values() if p.name != "raw"]
        assert [p.name for p in params] == list(inspect.signature(value).parameters), name


def test_fresh_store_is_empty_and_loading_marks_it(make_postgres_store):
    s = make_postgres_store()
    assert s.is_empty()
    assert s.most_viewed(10) == []
    assert s.counts() == {"users": 0, "dashboards": 0, "mappings": 0, "views": 0, "audit_logs": 0}
    s.load(Dataset(account=ACCOUNT))  # the "empty" scenario still counts as loaded
    assert not s.is_empty()
    assert s.most_viewed(10) == []


def test_record_view_before_any_load_is_an_error(make_postgres_store):
    s = make_postgres_store()
    with pytest.raises(StoreError, match="before any dataset"):
        s.record_view(UNKNOWN, DANA, ANCHOR)
    assert s.dashboard_stats(UNKNOWN, TODAY)["totalViews"] == 0  # rolled back whole


def test_closed_store_refuses_work(make_postgres_store):
    s = make_postgres_store()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.is_empty()
    assert s.version() is None


def test_audit_documents_keep_their_key_order(store, dataset):
    """Stored as `json` (jsonb would sort the keys): an entry comes back with its keys as given."""
    entry = dataset.audit_logs[5]
    assert list(store.audit_log(entry["_id"])) == list(entry)
    event = store.record_view(dataset.dashboards[0]["dashboardId"], DANA, ANCHOR)
    page = store.audit_logs("dashboard", event["dashboardId"], 1, 1, AuditLogFilter(action="view"))
    assert list(page.items[0]) == ["_id", "user_id", "user_email", "type", "action", "target_id", "account",
                                   "dashboard", "createdAt", "updatedAt", "__v"]


def test_counts_and_state_survive_a_new_store_on_the_database(make_postgres_store, dataset):
    s = make_postgres_store()
    assert s.ensure_loaded(lambda: small_dataset()) is True
    event = s.record_view(UNKNOWN, DANA, ANCHOR)
    assert s.counts() == {"users": len(dataset.users), "dashboards": len(dataset.dashboards),
                          "mappings": len(dataset.mappings), "views": len(dataset.views) + 1,
                          "audit_logs": len(dataset.audit_logs) + 1}
    s.close()
    again = make_postgres_store(s.url)
    assert not again.is_empty()
    assert again.ensure_loaded(lambda: pytest.fail("must not generate again")) is False
    assert again.dashboard_stats(UNKNOWN, TODAY)["totalViews"] == event["viewCount"] == 1


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

def test_two_stores_on_one_database_see_each_others_writes_at_once(make_postgres_store, dataset):
    one = make_postgres_store()
    one.load(small_dataset())
    two = make_postgres_store(one.url)  # as a second replica opens it
    target = dataset.dashboards[0]["dashboardId"]
    version = two.version()
    assert one.version() == version is not None
    event = one.record_view(target, DANA, ANCHOR + timedelta(hours=3))
    assert two.version() not in (None, version)
    assert two.dashboard_stats(target, TODAY)["totalViews"] == event["viewCount"]
    assert two.recently_viewed(DANA["id"], 1)[0]["dashboardId"] == target
    assert two.audit_log(two.audit_logs("dashboard", target, 1, 1, AuditLogFilter()).items[0]["_id"])["createdAt"] \
        == event["viewedAt"]
    version = one.version()
    assert two.record_view(target, DANA, ANCHOR)["viewCount"] == event["viewCount"] + 1
    assert one.version() not in (None, version)
    version = one.version()
    assert two.load_scenario(small_dataset(seed=5), "busy") == 1
    assert one.scenario_meta() == ("busy", 1)
    assert one.version() not in (None, version)
    assert brief(one.most_viewed(100)) == model_of(small_dataset(seed=5)).most_viewed()


def _record_many(store, dashboard_id: str, user: dict, calls: int, out: list, errors: list) -> None:
    for i in range(calls):
        try:
            out.append(store.record_view(dashboard_id, user, ANCHOR + timedelta(seconds=i))["viewCount"])
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on any
            errors.append(repr(exc))


def _record_in_threads(stores: list, dashboard_id: str, users: list[dict], calls: int):
    counts: list[int] = []
    errors: list[str] = []
    threads = [threading.Thread(target=_record_many, args=(stores[i % len(stores)], dashboard_id, u, calls,
                                                           counts, errors)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return counts, errors


def test_eight_threads_on_two_stores_count_exactly(make_postgres_store, dataset):
    one = make_postgres_store()
    one.load(dataset)
    two = make_postgres_store(one.url)
    target = model_of(dataset).most_viewed()[0][0]
    base = one.dashboard_stats(target, TODAY)
    users = [dict(DANA, id=f"{i:024x}", email=f"u{i}@acme.example") for i in range(8)]
    counts, errors = _record_in_threads([one, two], target, users, 40)
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
    queue.put(_record_in_threads([store], dashboard_id, users, calls))


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
    _record_many(s, target, DANA, 25, parent_counts, parent_errors)  # the parent writes meanwhile
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


def _ensure_loaded_worker(url: str, barrier, calls, results, slow_s: float) -> None:
    barrier.wait(timeout=60)
    store = pg_store.PostgresStore(url)  # some create the schema while others wait for it, or load

    def make() -> Dataset:
        with calls.get_lock():
            calls.value += 1
        time.sleep(slow_s)  # a big dataset: the others wait for it
        return small_dataset()

    results.put(store.ensure_loaded(make))
    store.close()


@pytest.mark.parametrize("slow_s", [0.0, 1.0])
def test_processes_starting_together_load_once(fresh_database, slow_s):
    url = fresh_database()
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters, like replicas starting together
    n = 4
    barrier, calls, results = ctx.Barrier(n), ctx.Value("i", 0), ctx.Queue()
    workers = [ctx.Process(target=_ensure_loaded_worker, args=(url, barrier, calls, results, slow_s))
               for _ in range(n)]
    for w in workers:
        w.start()
    loaded = sorted(results.get(timeout=180) for _ in workers)
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    assert loaded == [False] * (n - 1) + [True]
    assert calls.value == 1
    s = pg_store.PostgresStore(url)
    try:
        assert brief(s.most_viewed(100)) == model_of(small_dataset()).most_viewed()
    finally:
        s.close()


# -- property: every derived figure agrees with the events (as test_store_sqlite's, on one database) ----------

@pytest.fixture(scope="module")
def property_store(postgres_url):
    s = pg_store.PostgresStore(create_database(postgres_url, f"test_property_{os.getpid()}"))
    yield s
    s.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(n_dashboards=st.integers(min_value=1, max_value=len(_DASH_IDS)),
       initial=st.lists(_view, max_size=25), records=st.lists(_record, max_size=20),
       today_offset=st.integers(min_value=-3, max_value=1))
def test_derived_figures_agree_with_the_events(property_store, n_dashboards, initial, records, today_offset):
    s = property_store
    users, dashboards = _small_world(n_dashboards)
    views = [{"_id": f"{i:024x}", "dashboardId": _DASH_IDS[d % n_dashboards], "userId": users[u]["id"],
              "viewedAt": pg_store.iso_ms(ms)} for i, (u, d, ms) in enumerate(initial)]
    s.load(Dataset(account=ACCOUNT, users=users, dashboards=dashboards, views=views))
    model = Model(dashboards, [(v["userId"], v["dashboardId"], ms_from_iso(v["viewedAt"])) for v in views])
    candidates = _DASH_IDS[:n_dashboards] + _UNKNOWN_IDS
    for u, d, ms in records:
        dashboard_id = candidates[d % len(candidates)]
        event = s.record_view(dashboard_id, users[u], datetime.fromtimestamp(ms / 1000, UTC))
        model.record(users[u]["id"], dashboard_id, ms)
        assert event["viewCount"] == len(model.of(dashboard_id))
    today = TODAY + timedelta(days=today_offset)
    assert brief(s.most_viewed(100)) == model.most_viewed()
    for dashboard_id in candidates:
        assert s.dashboard_stats(dashboard_id, today) == model.stats(dashboard_id, today)
        logged = s.audit_logs("dashboard", dashboard_id, 1, 1000, AuditLogFilter(action="view"))
        assert logged.total == len(logged.items) == sum(1 for _, d, _ in records
                                                        if candidates[d % len(candidates)] == dashboard_id)
    for user in users:
        assert brief(s.recently_viewed(user["id"], 100)) == model.recently_viewed(user["id"])


# -- the throwaway server of the tests (mock_server/testing/postgres.py) --------------------------------------

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
