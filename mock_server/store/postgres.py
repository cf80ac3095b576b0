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

import orjson

try:
    import psycopg
    from psycopg import sql as pgsql
    from psycopg.types.json import set_json_loads
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError:  # the `postgres` extra is not installed: PostgresStore says so
    psycopg = None

from mock_server.bulk import no_cyclic_gc
from mock_server.ids import object_id
from mock_server.store.base import AuditLogFilter, Dataset, Page, Store, StoreError, dashboard_stats, stats_window
from mock_server.store.postgres_load import bulk_insert
from mock_server.store.sessions import SessionTable
from mock_server.store.sql import audit_list_params
from mock_server.store.postgres_sql import (SCHEMA_VERSION, SCHEMA_LOCK, DEFAULT_POOL_SIZE, CONNECT_TIMEOUT_S, _TABLES, _OUR_TABLES, _INDEXES, _SQL_BUMP, NOT_LOADED_SQLSTATE, create_record_view_sql, load_lock_key, SESSIONS_LOCK, SQL_RECORD_VIEW, SQL_MOST_VIEWED, SQL_RECENTLY_VIEWED, SQL_STATS, SQL_AUDIT_BY_ID, SQL_SCENARIO, redact_url, audit_page_sql, _summary,
    copy_statements, sibling_schema)
from mock_server.timestamps import MS_PER_DAY, iso_ms, to_ms

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

    def __init__(self, url: str, *, pool_size: int = DEFAULT_POOL_SIZE, schema: str | None = None,
                 share: PostgresStore | None = None):
        if psycopg is None:
            raise StoreError("--database-url needs psycopg 3 and psycopg_pool: pip install 'insights-mock[postgres]'")
        self.url = url
        self.shown_url = redact_url(url)
        # A sibling (schema given) lives in its own schema of the same database and borrows the connections
        # of `share`, the store that owns the pool: 64 sessions do not mean 64 pools.
        self.schema = schema
        self._owner = share if share is not None else self
        self._load_lock = load_lock_key(schema)
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._pool: ConnectionPool | None = None
        self._pid = os.getpid()
        self._conns: weakref.WeakSet = weakref.WeakSet()  # connections this process opened
        self._paths: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # connection -> schema it is set to
        self._closed = False
        _STORES.add(self)
        self._init_schema()
        self.sessions = SessionTable(lambda: self._write(SESSIONS_LOCK), self._connection, mark="%s")

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
        self._paths = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if self._closed:
            raise StoreError("the store is closed")
        owner = self._owner
        try:
            with owner._get_pool().connection() as conn:
                if owner._paths.get(conn) != self.schema:  # the last user of this connection was another schema
                    if self.schema is None:
                        conn.execute("RESET search_path")
                    else:
                        conn.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(self.schema)))
                    owner._paths[conn] = self.schema
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
                if self.schema is not None:
                    conn.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pgsql.Identifier(self.schema)))
                if self._schema_is_ours(conn):  # another process created it while we waited
                    return
                # One string, one round trip (no parameters: the simple query protocol takes several
                # statements): a session's schema is made while its first request waits.
                conn.execute(";\n".join((*_TABLES, *_INDEXES, create_record_view_sql(self._load_lock),
                                         f"INSERT INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')",
                                         "INSERT INTO store_version (n) VALUES (0)")))
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
        with self._write(self._load_lock) as conn:
            self._load(conn, dataset)

    def is_empty(self) -> bool:
        return self._one("SELECT 1 FROM meta WHERE key = 'loaded'") is None

    def ensure_loaded(self, make_dataset: Callable[[], Dataset]) -> bool:
        if not self.is_empty():
            return False
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._load_lock,))
            # Re-checked under the lock: another process may have loaded (and committed) meanwhile.
            if conn.execute("SELECT 1 FROM meta WHERE key = 'loaded'").fetchone() is not None:
                return False
            self._load(conn, make_dataset())
            conn.execute(_SQL_BUMP)
            return True

    def _load(self, conn, dataset: Dataset) -> None:
        with no_cyclic_gc():
            bulk_insert(conn, dataset)

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
        first_day, last_day = stats_window(today)
        view_count, unique, first_ms, last_ms, days = self._one(
            SQL_STATS, {"id": dashboard_id, "first": first_day, "last": last_day})
        totals = (view_count, unique, first_ms, last_ms) if view_count is not None else None
        return dashboard_stats(dashboard_id, today, totals, {day: views for day, views in days or ()})

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

    # -- siblings: the stores of sessions and templates, in schemas of the same database --------------------

    def sibling(self, key: str, *, copy_of: Store | None = None) -> Store:
        """The store named `key` in the schema `im_<key>` of this database, sharing this store's pool; a new
        one is filled with a copy of `copy_of` (INSERT ... SELECT from its schema: no Python in between).
        Of several processes opening it at once, one copies under the schema's load lock, the others find it
        loaded."""
        store = PostgresStore(self.url, schema=sibling_schema(key), share=self._owner)
        if copy_of is not None and store.is_empty():
            with store._connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (store._load_lock,))
                if conn.execute("SELECT 1 FROM meta WHERE key = 'loaded'").fetchone() is None:
                    for statement in copy_statements(copy_of.schema):
                        conn.execute(statement)
                    conn.execute(_SQL_BUMP)
        return store

    def drop_sibling(self, key: str) -> None:
        """Drop the sibling `key`'s schema (a replica still holding it meets errors until it notices, see
        mock_server.sessions)."""
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(pgsql.Identifier(sibling_schema(key))))

    # -- scenarios ---------------------------------------------------------------------------------------

    def load_scenario(self, dataset: Dataset, name: str) -> int:
        with self._write(self._load_lock) as conn:
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
