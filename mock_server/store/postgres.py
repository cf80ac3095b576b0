"""The PostgreSQL store: the state shared by replicas of the mock on several machines (`--database-url`).

The same tables, aggregates, orders and tie-breaks as the SQLite store (store/sqlite.py), in PostgreSQL's
dialect; the database does the concurrency, durability and cross-process consistency:
- A view is ONE transaction: the event, its `view` audit entry, and every aggregate (dashboard_totals,
  user_dashboard, dashboard_days, audit_counts), each an `INSERT ... ON CONFLICT ... DO UPDATE`, under READ
  COMMITTED: a writer that meets another's uncommitted row waits for it and then updates the committed value,
  so concurrent views of one dashboard from many replicas count exactly. The dashboard's new count comes
  back from that statement (RETURNING), inside the transaction. The statements are one PL/pgSQL function
  created with the schema (insights_mock_record_view, the counterpart of SQLite's view trigger), called in
  autocommit: one statement, one transaction, one round trip.
- Every write transaction (views, loads, scenario writes) also bumps the one row of `store_version` last,
  just before COMMIT; version() reads it with one query. A view acknowledged by one replica is committed with
  its bump, so the next request of any replica sees a new version and its response cache makes a new answer.
- Loads (load, load_scenario, ensure_loaded) hold the exclusive transaction-level advisory lock LOAD_LOCK;
  each view takes it shared first. So a view never meets a load half-way (it waits for it, then counts on the
  new data), no deadlock can form between them, and of several processes starting at once on an empty
  database exactly one loads (the others wait for its COMMIT, then find it loaded). The schema is created
  under another advisory lock. These are the database's locks: the store takes none of its own.
- Audit entries are stored as the JSON documents given (type `json`, which keeps the text as it is; `jsonb`
  would reorder the keys), and returned as stored. Text keys use COLLATE "C": byte order, as SQLite's.
- Reads are one statement each, in autocommit: one statement is one snapshot (an audit page and its total
  agree). A load truncates the tables, so reads on the database wait for its COMMIT.
- Connections: a psycopg_pool.ConnectionPool per process, opened at the first use. A forked child never
  uses, nor closes, its parent's connections (closing would end the parent's sessions): at fork the
  inherited sockets are pointed at /dev/null and a new pool is opened on first use in the child.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

try:
    import psycopg
    from psycopg.types.json import set_json_loads
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError:  # the `postgres` extra is not installed: PostgresStore says so
    psycopg = None

from mock_server.bulk import no_cyclic_gc
from mock_server.ids import object_id
from mock_server.store.base import AuditLogFilter, Dataset, Page, StoreError
from mock_server.store.sql import audit_list_params
from mock_server.timestamps import MS_PER_DAY, day_date, day_number, iso_ms, ms_from_iso, to_ms

SCHEMA_VERSION = "1"
SCHEMA_LOCK = 0x1A5C_0001  # pg_advisory_xact_lock keys: creating the schema
LOAD_LOCK = 0x1A5C_0002  # a load (exclusive) against views (shared)
DEFAULT_POOL_SIZE = 8  # connections per process (a gunicorn worker runs 4 threads)
CONNECT_TIMEOUT_S = 10

_UUID_TYPES = ("dashboard", "tool_mapping")  # target ids that are UUIDs, stored lower-case

_KEY = 'text COLLATE "C" NOT NULL'
_TABLES = (
    f"CREATE TABLE IF NOT EXISTS meta (key {_KEY} PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS store_version (one boolean PRIMARY KEY DEFAULT true CHECK (one),"
    " n bigint NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS users (id {_KEY} PRIMARY KEY, email text NOT NULL, name text NOT NULL, role text)",
    # head: the DashboardSummary without its two view figures, as JSON (keys in the spec's order)
    f"""CREATE TABLE IF NOT EXISTS dashboards (
        id {_KEY} PRIMARY KEY, name text NOT NULL, description text, owner_id {_KEY}, tags text NOT NULL,
        kpi_count integer NOT NULL, head json NOT NULL)""",
    f"CREATE TABLE IF NOT EXISTS mappings (id {_KEY} PRIMARY KEY, tool text NOT NULL, name text NOT NULL)",
    f"""CREATE TABLE IF NOT EXISTS views (
        id {_KEY}, dashboard_id {_KEY}, user_id {_KEY}, viewed_ms bigint NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS dashboard_totals (
        dashboard_id {_KEY} PRIMARY KEY, known boolean NOT NULL, view_count bigint NOT NULL,
        unique_viewers bigint NOT NULL, first_ms bigint NOT NULL, last_ms bigint NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS user_dashboard (
        user_id {_KEY}, dashboard_id {_KEY}, known boolean NOT NULL, last_ms bigint NOT NULL,
        PRIMARY KEY (user_id, dashboard_id))""",
    f"""CREATE TABLE IF NOT EXISTS dashboard_days (
        dashboard_id {_KEY}, day integer NOT NULL, views bigint NOT NULL, PRIMARY KEY (dashboard_id, day))""",
    f"""CREATE TABLE IF NOT EXISTS audit_logs (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id {_KEY}, type {_KEY}, target_id {_KEY},
        action {_KEY}, user_id {_KEY}, created_ms bigint NOT NULL, doc json NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS audit_counts (
        type {_KEY}, target_id {_KEY}, action {_KEY}, user_id {_KEY}, n bigint NOT NULL,
        PRIMARY KEY (type, target_id, action, user_id))""",
)
_OUR_TABLES = ("meta", "store_version", "users", "dashboards", "mappings", "views", "dashboard_totals",
               "user_dashboard", "dashboard_days", "audit_logs", "audit_counts")
_DATA_TABLES = _OUR_TABLES[2:]

# Secondary indexes, dropped and rebuilt around a bulk load; the orders match the ORDER BY clauses below.
_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS audit_logs_id ON audit_logs (id)",
    "CREATE INDEX IF NOT EXISTS audit_logs_target ON audit_logs (type, target_id, created_ms, id)",
    "CREATE INDEX IF NOT EXISTS audit_logs_target_action ON audit_logs (type, target_id, action, created_ms, id)",
    "CREATE INDEX IF NOT EXISTS audit_logs_target_user ON audit_logs (type, target_id, user_id, created_ms, id)",
    "CREATE INDEX IF NOT EXISTS audit_logs_target_user_action"
    " ON audit_logs (type, target_id, user_id, action, created_ms, id)",
    "CREATE INDEX IF NOT EXISTS dashboard_totals_rank"
    " ON dashboard_totals (known, view_count DESC, last_ms DESC, dashboard_id)",
    "CREATE INDEX IF NOT EXISTS user_dashboard_recent ON user_dashboard (user_id, known, last_ms DESC, dashboard_id)",
)
_INDEX_NAMES = tuple(stmt.split(" IF NOT EXISTS ")[1].split()[0] for stmt in _INDEXES)

_SQL_BUMP = "UPDATE store_version SET n = n + 1"

# -- a view: one call of this function, in autocommit: one statement, so one transaction ----------------------
# Its statements run in this order (so every view takes its row locks in the same order). The user's row
# before the totals: inserted (xmax = 0) means a new viewer of the dashboard, which the totals count; every
# row written stays locked until the COMMIT, so the count returned is exact. The version is bumped last: the
# one row every writer updates is held for the shortest time. The audit document has the field order datagen
# writes; an unknown dashboard has no name to show, so no `dashboard` reference. Server-side, because the
# round trips were most of a view's cost: one call took ~170-240 µs here where the same statements sent one
# by one took ~500 (and ~650 in psycopg's pipeline mode).
RECORD_VIEW_FUNCTION = "insights_mock_record_view"
NOT_LOADED_SQLSTATE = "IMV01"
_AUDIT_DOC = ("json_build_object('_id', p_audit_id, 'user_id', p_user, 'user_email', p_email, 'type', 'dashboard', "
              "'action', 'view', 'target_id', p_dashboard, 'account', v_account, {dashboard}"
              "'createdAt', p_stamp, 'updatedAt', p_stamp, '__v', 0)")
_DASHBOARD_REF = "'dashboard', json_build_object('dashboardId', p_dashboard, 'name', v_name), "
_SQL_CREATE_RECORD_VIEW = f"""
CREATE OR REPLACE FUNCTION {RECORD_VIEW_FUNCTION}(
    p_view_id text, p_audit_id text, p_dashboard text, p_user text, p_email text, p_ms bigint, p_day integer,
    p_stamp text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_account text;
    v_name text;
    v_known boolean;
    v_new_viewer boolean;
    v_count bigint;
BEGIN
    PERFORM pg_advisory_xact_lock_shared({LOAD_LOCK});  -- a load in progress finishes first
    SELECT value INTO v_account FROM meta WHERE key = 'account';
    IF v_account IS NULL THEN
        RAISE EXCEPTION 'record_view before any dataset was loaded' USING ERRCODE = '{NOT_LOADED_SQLSTATE}';
    END IF;
    SELECT name INTO v_name FROM dashboards WHERE id = p_dashboard;
    v_known := FOUND;
    INSERT INTO audit_logs (id, type, target_id, action, user_id, created_ms, doc)
    VALUES (p_audit_id, 'dashboard', p_dashboard, 'view', p_user, p_ms,
            CASE WHEN v_known THEN {_AUDIT_DOC.format(dashboard=_DASHBOARD_REF)}
                 ELSE {_AUDIT_DOC.format(dashboard="")} END);
    INSERT INTO views (id, dashboard_id, user_id, viewed_ms) VALUES (p_view_id, p_dashboard, p_user, p_ms);
    INSERT INTO user_dashboard AS r (user_id, dashboard_id, known, last_ms)
    VALUES (p_user, p_dashboard, v_known, p_ms)
    ON CONFLICT (user_id, dashboard_id) DO UPDATE SET last_ms = greatest(r.last_ms, excluded.last_ms)
    RETURNING (r.xmax = 0) INTO v_new_viewer;
    INSERT INTO dashboard_totals AS t (dashboard_id, known, view_count, unique_viewers, first_ms, last_ms)
    VALUES (p_dashboard, v_known, 1, CASE WHEN v_new_viewer THEN 1 ELSE 0 END, p_ms, p_ms)
    ON CONFLICT (dashboard_id) DO UPDATE SET
        view_count = t.view_count + 1,
        unique_viewers = t.unique_viewers + excluded.unique_viewers,
        first_ms = least(t.first_ms, excluded.first_ms),
        last_ms = greatest(t.last_ms, excluded.last_ms)
    RETURNING t.view_count INTO v_count;
    INSERT INTO dashboard_days AS x (dashboard_id, day, views) VALUES (p_dashboard, p_day, 1)
    ON CONFLICT (dashboard_id, day) DO UPDATE SET views = x.views + 1;
    INSERT INTO audit_counts AS c (type, target_id, action, user_id, n)
    VALUES ('dashboard', p_dashboard, 'view', p_user, 1)
    ON CONFLICT (type, target_id, action, user_id) DO UPDATE SET n = c.n + 1;
    {_SQL_BUMP};
    RETURN v_count;
END $$"""
SQL_RECORD_VIEW = (f"SELECT {RECORD_VIEW_FUNCTION}(%s::text, %s::text, %s::text, %s::text, %s::text, %s::bigint,"
                   " %s::integer, %s::text)")

# -- reads -------------------------------------------------------------------------------------------------
SQL_MOST_VIEWED = """
SELECT d.head, t.view_count, t.last_ms
FROM dashboard_totals AS t JOIN dashboards AS d ON d.id = t.dashboard_id
WHERE t.known
ORDER BY t.view_count DESC, t.last_ms DESC, t.dashboard_id
LIMIT %s"""

SQL_RECENTLY_VIEWED = """
SELECT d.head, t.view_count, r.last_ms
FROM user_dashboard AS r JOIN dashboards AS d ON d.id = r.dashboard_id
     JOIN dashboard_totals AS t ON t.dashboard_id = r.dashboard_id
WHERE r.user_id = %s AND r.known
ORDER BY r.last_ms DESC, r.dashboard_id
LIMIT %s"""

# One row: the totals (NULLs for an unknown dashboard) and the window's [day, views] pairs.
SQL_STATS = """
SELECT t.view_count, t.unique_viewers, t.first_ms, t.last_ms,
       (SELECT array_agg(ARRAY[x.day::bigint, x.views]) FROM dashboard_days AS x
        WHERE x.dashboard_id = %(id)s AND x.day BETWEEN %(first)s AND %(last)s)
FROM (SELECT 1) AS one LEFT JOIN dashboard_totals AS t ON t.dashboard_id = %(id)s"""

SQL_AUDIT_BY_ID = "SELECT doc FROM audit_logs WHERE id = %s"

SQL_SCENARIO = "SELECT key, value FROM meta WHERE key IN ('scenario', 'generation')"

# Aggregates of a freshly loaded event log: one GROUP BY each, as SQLite's load.
_SQL_BUILD_AGGREGATES = (
    """INSERT INTO user_dashboard (user_id, dashboard_id, known, last_ms)
       SELECT v.user_id, v.dashboard_id, EXISTS (SELECT 1 FROM dashboards AS d WHERE d.id = v.dashboard_id),
              max(v.viewed_ms)
       FROM views AS v GROUP BY v.user_id, v.dashboard_id""",
    """INSERT INTO dashboard_totals (dashboard_id, known, view_count, unique_viewers, first_ms, last_ms)
       SELECT v.dashboard_id, EXISTS (SELECT 1 FROM dashboards AS d WHERE d.id = v.dashboard_id), count(*),
              count(DISTINCT v.user_id), min(v.viewed_ms), max(v.viewed_ms)
       FROM views AS v GROUP BY v.dashboard_id""",
    f"""INSERT INTO dashboard_days (dashboard_id, day, views)
        SELECT dashboard_id,
               (viewed_ms - ((viewed_ms % {MS_PER_DAY}) + {MS_PER_DAY}) % {MS_PER_DAY}) / {MS_PER_DAY}, count(*)
        FROM views GROUP BY 1, 2""",
    """INSERT INTO audit_counts (type, target_id, action, user_id, n)
       SELECT type, target_id, action, user_id, count(*) FROM audit_logs GROUP BY 1, 2, 3, 4""",
)


def redact_url(url: str) -> str:
    """The URL without its password (in the authority or as a `password` query parameter)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            netloc = f"{userinfo.partition(':')[0]}@{hostport}"
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"])
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "(a database URL that cannot be parsed)"


def _target_key(target_type: str, target_id: str) -> str:
    return target_id.lower() if target_type in _UUID_TYPES else target_id


def _shape(filters: AuditLogFilter) -> tuple[bool, bool, bool, bool]:
    return (filters.action is not None, filters.user_id is not None, filters.created_from is not None,
            filters.created_to is not None)


_AUDIT_PAGE_SQL: dict[tuple[bool, ...], str] = {}


def audit_page_sql(filters: AuditLogFilter) -> str:
    """One statement: rows (total, doc), one per entry of the page in its order, or one (total, NULL) for an
    empty page (past the end, no row of the page is read). Named parameters: audit_list_params (sqlite.py)
    plus :limit and :offset. Without a time window the total comes from the per-target counters."""
    shape = _shape(filters)
    sql = _AUDIT_PAGE_SQL.get(shape)
    if sql is None:
        action, user, lo, hi = shape
        where = ["type = %(type)s", "target_id = %(target)s"]
        if action:
            where.append("action = %(action)s")
        if user:
            where.append("user_id = %(user)s")
        rows_where = list(where)
        if lo:
            rows_where.append("created_ms >= %(lo)s")
        if hi:
            rows_where.append("created_ms <= %(hi)s")
        if lo or hi:  # a time window cannot use the counters: count the index range
            count = f"SELECT count(*) FROM audit_logs WHERE {' AND '.join(rows_where)}"
        else:
            count = f"SELECT coalesce(sum(n), 0)::bigint FROM audit_counts WHERE {' AND '.join(where)}"
        sql = _AUDIT_PAGE_SQL[shape] = f"""
            SELECT c.total, p.doc FROM ({count}) AS c (total)
            LEFT JOIN LATERAL (
                SELECT doc, created_ms, id FROM audit_logs
                WHERE {' AND '.join(rows_where)} AND %(offset)s < c.total
                ORDER BY created_ms DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s) AS p ON true
            ORDER BY p.created_ms DESC, p.id DESC"""
    return sql


def _summary(head: dict, view_count: int, last_ms: int) -> dict:
    head["viewCount"] = view_count
    head["lastViewedAt"] = iso_ms(last_ms)
    return head


# Stores of this process, so that a forked child drops the connections it inherited (see _after_fork).
_STORES: weakref.WeakSet[PostgresStore] = weakref.WeakSet()
_INHERITED: list[Any] = []  # parents' pools in a forked child: kept (never used, never closed)


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._forget_parent_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class PostgresStore:
    """The Store of mock_server.store.base on PostgreSQL (psycopg 3). Build it with open_store(None, url)."""

    def __init__(self, url: str, *, pool_size: int = DEFAULT_POOL_SIZE):
        if psycopg is None:
            raise StoreError("--database-url needs psycopg 3 and psycopg_pool: pip install 'insights-mock[postgres]'")
        self.url = url
        self.shown_url = redact_url(url)
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._pool: ConnectionPool | None = None
        self._pid = os.getpid()
        self._conns: weakref.WeakSet = weakref.WeakSet()  # connections this process opened
        self._closed = False
        _STORES.add(self)
        self._init_schema()

    # -- connections -----------------------------------------------------------------------------------

    def _configure(self, conn) -> None:
        set_json_loads(orjson.loads, conn)
        self._conns.add(conn)

    def _get_pool(self) -> ConnectionPool:
        pool = self._pool
        if pool is not None and self._pid == os.getpid():
            return pool
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            if self._pid != os.getpid():  # without register_at_fork
                self._forget_parent_connections()
            if self._pool is None:
                self._probe()  # a clear error at once, where the pool would retry until its timeout
                pool = ConnectionPool(self.url, min_size=1, max_size=self._pool_size, open=False,
                                      kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
                                      configure=self._configure, name="insights-mock", timeout=60)
                try:
                    pool.open(wait=True, timeout=CONNECT_TIMEOUT_S + 5)
                except PoolTimeout as exc:
                    pool.close()
                    raise StoreError(f"cannot connect to {self.shown_url}: the pool could not open its "
                                     "connections in time") from exc
                self._pool = pool
            return self._pool

    def _probe(self) -> None:
        try:
            psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S).close()
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.shown_url}: {str(exc).strip() or type(exc).__name__}") from exc

    def _forget_parent_connections(self) -> None:
        """In a forked child: the parent's sockets must neither be used nor closed here (libpq's close sends
        Terminate, which would end the parent's session). Each is pointed at /dev/null, so that whatever
        finalises them later writes nowhere; the pool object is kept, unused."""
        if self._pool is not None:
            _INHERITED.append(self._pool)
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            for conn in list(self._conns):
                try:
                    if not conn.closed:
                        os.dup2(devnull, conn.pgconn.socket)
                except Exception:  # noqa: BLE001 - a broken connection has no socket left to protect
                    pass
        finally:
            os.close(devnull)
        self._pool, self._conns, self._pid = None, weakref.WeakSet(), os.getpid()
        self._lock = threading.Lock()

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if self._closed:
            raise StoreError("the store is closed")
        try:
            with self._get_pool().connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreError(f"no connection to {self.shown_url} free in time") from exc

    def _one(self, sql: str, params: Any = None) -> tuple | None:
        with self._connection() as conn:
            return conn.execute(sql, params).fetchone()

    def _all(self, sql: str, params: Any = None) -> list[tuple]:
        with self._connection() as conn:
            return conn.execute(sql, params).fetchall()

    @contextmanager
    def _write(self, lock: int | None = None) -> Iterator[Any]:
        """A write transaction (optionally under the advisory lock `lock`); the version is bumped last."""
        with self._connection() as conn, conn.transaction():
            if lock is not None:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            yield conn
            conn.execute(_SQL_BUMP)

    # -- schema ----------------------------------------------------------------------------------------

    def _init_schema(self) -> None:
        try:
            with self._connection() as conn:
                if self._schema_is_ours(conn):
                    return
            with self._connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                if self._schema_is_ours(conn):  # another process created it while we waited
                    return
                for statement in (*_TABLES, *_INDEXES, _SQL_CREATE_RECORD_VIEW):
                    conn.execute(statement)
                conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', %s)", (SCHEMA_VERSION,))
                conn.execute("INSERT INTO store_version (n) VALUES (0)")
        except StoreError:
            raise
        except psycopg.Error as exc:
            raise StoreError(f"{self.shown_url} cannot be used as an insights-mock database: {exc}") from exc

    def _schema_is_ours(self, conn) -> bool:
        tables = {name for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()}
        if "meta" in tables:
            try:
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            except psycopg.Error:
                row = None
            if row is None or row[0] != SCHEMA_VERSION or not set(_OUR_TABLES) <= tables:
                found = row[0] if row else "none"
                raise StoreError(f"{self.shown_url}: database schema version {found}, this insights-mock needs "
                                 f"PostgreSQL schema {SCHEMA_VERSION}; use an empty database (or drop its tables)")
            return True
        if tables:
            raise StoreError(f"{self.shown_url} holds tables of another application ({sorted(tables)[0]})")
        return False

    # -- loading ---------------------------------------------------------------------------------------

    def load(self, dataset: Dataset) -> None:
        with self._write(LOAD_LOCK) as conn:
            self._load(conn, dataset)

    def is_empty(self) -> bool:
        return self._one("SELECT 1 FROM meta WHERE key = 'loaded'") is None

    def ensure_loaded(self, make_dataset: Callable[[], Dataset]) -> bool:
        if not self.is_empty():
            return False
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOAD_LOCK,))
            # Re-checked under the lock: another process may have loaded (and committed) meanwhile.
            if conn.execute("SELECT 1 FROM meta WHERE key = 'loaded'").fetchone() is not None:
                return False
            self._load(conn, make_dataset())
            conn.execute(_SQL_BUMP)
            return True

    def _load(self, conn, dataset: Dataset) -> None:
        with no_cyclic_gc():
            self._bulk_insert(conn, dataset)

    @staticmethod
    def _bulk_insert(conn, dataset: Dataset) -> None:
        conn.execute("TRUNCATE " + ", ".join(_DATA_TABLES))
        for name in _INDEX_NAMES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        users: dict[str, tuple] = {}
        for u in dataset.users:
            uid = u["id"].lower()
            if uid in users:
                raise StoreError(f"the dataset lists user {uid} twice")
            users[uid] = (uid, u["email"], u["name"], u.get("role"))
        for d in dataset.dashboards:  # an owner missing from `users` still has a name and e-mail to show
            owner = d["owner"]
            users.setdefault(owner["userId"].lower(), (owner["userId"].lower(), owner["email"], owner["name"], None))
        with conn.cursor() as cur:
            with cur.copy("COPY users (id, email, name, role) FROM STDIN") as copy:
                for row in users.values():
                    copy.write_row(row)
            with cur.copy("COPY dashboards (id, name, description, owner_id, tags, kpi_count, head)"
                          " FROM STDIN") as copy:
                for d in dataset.dashboards:
                    copy.write_row(_dashboard_row(d, users))
            with cur.copy("COPY mappings (id, tool, name) FROM STDIN") as copy:
                for m in dataset.mappings:
                    copy.write_row((m["mappingId"].lower(), m["tool"], m["name"]))
            with cur.copy("COPY views (id, dashboard_id, user_id, viewed_ms) FROM STDIN") as copy:
                for v in dataset.views:
                    copy.write_row((v["_id"].lower(), v["dashboardId"].lower(), v["userId"].lower(),
                                    ms_from_iso(v["viewedAt"])))
            with cur.copy("COPY audit_logs (id, type, target_id, action, user_id, created_ms, doc) FROM STDIN") as copy:
                for entry in dataset.audit_logs:
                    copy.write_row(_audit_row(entry))
        for statement in (*_SQL_BUILD_AGGREGATES, *_INDEXES):
            conn.execute(statement)
        conn.execute("INSERT INTO meta (key, value) VALUES ('account', %s), ('loaded', '1')"
                     " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (dataset.account,))
        conn.execute("ANALYZE " + ", ".join(_DATA_TABLES))  # plans for the new sizes at once

    def counts(self) -> dict[str, int]:
        # count(*) scans, but only the operator's health endpoint asks, never an API request
        tables = ("users", "dashboards", "mappings", "views", "audit_logs")
        row = self._one("SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in tables))
        return dict(zip(tables, row))

    # -- reads: plain data -----------------------------------------------------------------------------------

    def recently_viewed(self, user_id: str, limit: int) -> list[dict]:
        return [_summary(*row) for row in self._all(SQL_RECENTLY_VIEWED, (user_id.lower(), limit))]

    def most_viewed(self, limit: int) -> list[dict]:
        return [_summary(*row) for row in self._all(SQL_MOST_VIEWED, (limit,))]

    def dashboard_stats(self, dashboard_id: str, today: date) -> dict:
        dashboard_id = dashboard_id.lower()
        last_day = day_number(today)
        first_day = last_day - 29
        view_count, unique, first_ms, last_ms, days = self._one(
            SQL_STATS, {"id": dashboard_id, "first": first_day, "last": last_day})
        per_day = {day: views for day, views in days or ()}
        daily = [{"date": day_date(d).isoformat(), "views": per_day.get(d, 0)} for d in range(first_day, last_day + 1)]
        return {
            "dashboardId": dashboard_id,
            "totalViews": view_count or 0,
            "uniqueViewers": unique or 0,
            "viewsLast7Days": sum(item["views"] for item in daily[-7:]),
            "viewsLast30Days": sum(item["views"] for item in daily),
            "firstViewedAt": iso_ms(first_ms) if first_ms is not None else None,
            "lastViewedAt": iso_ms(last_ms) if last_ms is not None else None,
            "dailyViews": daily,
        }

    def audit_logs(self, target_type: str, target_id: str, page: int, page_size: int,
                   filters: AuditLogFilter) -> Page:
        if page < 1 or page_size < 1:
            raise ValueError("page and page_size start at 1")
        params = audit_list_params(target_type, target_id, filters)
        params["limit"], params["offset"] = page_size, (page - 1) * page_size
        rows = self._all(audit_page_sql(filters), params)  # one statement: one snapshot
        return Page(items=[doc for _, doc in rows if doc is not None], total=rows[0][0])

    def audit_log(self, audit_log_id: str) -> dict | None:
        row = self._one(SQL_AUDIT_BY_ID, (audit_log_id.lower(),))
        return None if row is None else row[0]

    # -- writes ----------------------------------------------------------------------------------------

    def record_view(self, dashboard_id: str, user: dict, at: datetime) -> dict:
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        ms = to_ms(at)
        view_id, audit_id, stamp = object_id(at), object_id(at), iso_ms(ms)
        dashboard_id, user_id = dashboard_id.lower(), user["id"].lower()
        params = (view_id, audit_id, dashboard_id, user_id, user["email"], ms, ms // MS_PER_DAY, stamp)
        try:
            with self._connection() as conn:
                (count,) = conn.execute(SQL_RECORD_VIEW, params).fetchone()
        except psycopg.Error as exc:
            if exc.sqlstate == NOT_LOADED_SQLSTATE:
                raise StoreError("record_view before any dataset was loaded") from None
            raise
        return {"_id": view_id, "dashboardId": dashboard_id, "userId": user_id, "viewedAt": stamp,
                "viewCount": count}

    def version(self) -> int | None:
        """The count of committed writes (store_version), by any process or replica; None when the database
        cannot be asked (then the response cache keeps nothing, and the store's own error answers)."""
        try:
            row = self._one("SELECT n FROM store_version")
        except (psycopg.Error, StoreError):
            return None
        return None if row is None else row[0]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            pool.close()

    # -- scenarios ---------------------------------------------------------------------------------------

    def load_scenario(self, dataset: Dataset, name: str) -> int:
        with self._write(LOAD_LOCK) as conn:
            self._load(conn, dataset)
            row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            generation = (int(row[0]) if row else 0) + 1
            conn.execute("INSERT INTO meta (key, value) VALUES ('scenario', %s), ('generation', %s)"
                         " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (name, str(generation)))
        return generation

    def claim_scenario(self, name: str) -> tuple[str, int]:
        with self._write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('scenario', %s), ('generation', '0')"
                         " ON CONFLICT (key) DO NOTHING", (name,))
            rows = dict(conn.execute(SQL_SCENARIO).fetchall())
        return rows["scenario"], int(rows["generation"])

    def scenario_meta(self) -> tuple[str | None, int]:
        rows = dict(self._all(SQL_SCENARIO))
        return rows.get("scenario"), int(rows.get("generation", 0))


def _dashboard_row(d: dict, users: dict[str, tuple]) -> tuple:
    """A dashboards row; its head is the DashboardSummary's fixed part, keys in the spec's order, no
    `description` key without one, the owner as in `users`."""
    did, owner_id = d["dashboardId"].lower(), d["owner"]["userId"].lower()
    _, email, name, _ = users[owner_id]
    tags = list(d.get("tags", []))
    head: dict[str, Any] = {"dashboardId": did, "name": d["name"]}
    if d.get("description") is not None:
        head["description"] = d["description"]
    head.update(owner={"userId": owner_id, "email": email, "name": name}, tags=tags, kpiCount=d.get("kpiCount", 0))
    return (did, d["name"], d.get("description"), owner_id, orjson.dumps(tags).decode(), d.get("kpiCount", 0),
            orjson.dumps(head).decode())


def _audit_row(entry: dict) -> tuple:
    oid = entry["_id"].lower()
    if oid != entry["_id"]:
        entry = {**entry, "_id": oid}
    return (oid, entry["type"], _target_key(entry["type"], entry["target_id"]), entry["action"],
            entry["user_id"].lower(), ms_from_iso(entry["createdAt"]), orjson.dumps(entry).decode())
