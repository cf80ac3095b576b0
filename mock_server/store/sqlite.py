"""The SQLite store: one in-memory database per store, or a WAL file shared by the processes of a machine.

Concurrency, durability and cross-process consistency are SQLite's: every write is one BEGIN IMMEDIATE
transaction (store/connections.py), every read one statement or one read transaction. A view is one
transaction holding its event, its `view` audit entry and every aggregate, written by the one definition
in store/sql.py (VIEW_APPLY); the count it returns is read in that transaction. Each write is also counted
(store/changes.py): version(), what the response cache checks at every request. What leaves the store is
plain data (dicts, lists, strings, numbers); serialising is the HTTP layer's job.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

import orjson

from mock_server.ids import object_id
from mock_server.store import sql
from mock_server.store.base import AuditLogFilter, Dataset, Page, Store, StoreError, dashboard_stats, stats_window
from mock_server.store.changes import Changes
from mock_server.store.sessions import SessionTable
from mock_server.store.sqlite_rows import audit_doc, oid_bytes
from mock_server.store.sqlite_rows import load as load_rows
from mock_server.store.connections import (Pool, SingleConnection, bound_wal, connect, immediate,
                                           snapshot)
from mock_server.timestamps import MS_PER_DAY, iso_ms, to_ms

__all__ = ["DEFAULT_BUSY_TIMEOUT_MS", "DEFAULT_LOAD_WAIT_S", "SQLiteStore", "StoreError", "open_store"]

DEFAULT_BUSY_TIMEOUT_MS = 10_000
DEFAULT_LOAD_WAIT_S = 600.0  # how long a write waits for another process's (big) load


class SQLiteStore:
    """The Store of mock_server.store.base on SQLite. Build it with open_store()."""

    def __init__(self, db_path: str | None, *, synchronous: str = "NORMAL",
                 busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, load_wait_s: float = DEFAULT_LOAD_WAIT_S):
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.db_path = db_path
        self._load_wait_s = load_wait_s

        def connect_one() -> sqlite3.Connection:
            return connect(db_path or ":memory:", busy_timeout_ms=busy_timeout_ms,
                           synchronous=synchronous.upper(), wait_s=load_wait_s)

        self._conns: SingleConnection | Pool = SingleConnection(connect_one) if db_path is None else Pool(connect_one)
        self._changes = Changes(f"{db_path}-changes" if db_path is not None else None)
        self._options = {"synchronous": synchronous, "busy_timeout_ms": busy_timeout_ms, "load_wait_s": load_wait_s}
        self._init_schema()
        self.sessions = SessionTable(self._write, self._conns.connection)

    # -- transactions ----------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), counted by version()."""
        with self._conns.connection() as conn:
            with immediate(conn, self._changes, self._load_wait_s):
                yield conn
            if self.db_path is not None:
                bound_wal(conn, f"{self.db_path}-wal")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: the statements of one answer read one state (a page and its total agree)."""
        with self._conns.connection() as conn, snapshot(conn):
            yield conn

    def _init_schema(self) -> None:
        # Read first: a file another process is loading right now already has its schema, and a reader
        # does not wait for that writer.
        with self._read() as conn:
            if self._schema_is_ours(conn):
                return
        with self._write() as conn:
            if not self._schema_is_ours(conn):  # another process may have made it while we waited
                for statement in sql.TABLES.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                for statement in sql.INDEXES:
                    conn.execute(statement)
                conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (sql.SCHEMA_VERSION,))

    def _schema_is_ours(self, conn: sqlite3.Connection) -> bool:
        if conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'").fetchone():
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None or row[0] != sql.SCHEMA_VERSION:
                found = row[0] if row else "none"
                raise StoreError(f"{self.db_path}: database schema version {found}, this insights-mock "
                                 f"needs {sql.SCHEMA_VERSION}; delete the file to start afresh")
            return True
        other = conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table' LIMIT 1").fetchone()
        if other is not None:
            raise StoreError(f"{self.db_path} holds tables of another application ({other[0]})")
        return False

    # -- loading ---------------------------------------------------------------------------------------

    def load(self, dataset: Dataset) -> None:
        with self._write() as conn:
            load_rows(conn, dataset)

    def is_empty(self) -> bool:
        with self._conns.connection() as conn:  # one statement: its own snapshot
            return conn.execute(sql.LOADED).fetchone() is None

    def ensure_loaded(self, make_dataset: Callable[[], Dataset]) -> bool:
        if not self.is_empty():
            return False
        with self._write() as conn:
            if conn.execute(sql.LOADED).fetchone() is not None:  # another process loaded meanwhile
                return False
            load_rows(conn, make_dataset())
            return True

    def counts(self) -> dict[str, int]:
        # COUNT(*) scans, but only the operator's health endpoint asks, never an API request
        with self._read() as conn:
            return {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                    for table in ("users", "dashboards", "mappings", "views", "audit_logs")}

    # -- reads -----------------------------------------------------------------------------------------

    def recently_viewed(self, user_id: str, limit: int) -> list[dict]:
        with self._conns.connection() as conn:  # one statement: its own snapshot
            rows = conn.execute(sql.RECENTLY_VIEWED, (user_id.lower(), limit)).fetchall()
        return [_summary(row) for row in rows]

    def most_viewed(self, limit: int) -> list[dict]:
        with self._conns.connection() as conn:
            rows = conn.execute(sql.MOST_VIEWED, (limit,)).fetchall()
        return [_summary(row) for row in rows]

    def dashboard_stats(self, dashboard_id: str, today: date) -> dict:
        dashboard_id = dashboard_id.lower()
        first_day, last_day = stats_window(today)
        params = {"id": dashboard_id, "first": first_day, "last": last_day}
        with self._read() as conn:
            totals = conn.execute(sql.STATS_TOTALS, params).fetchone()
            per_day = dict(conn.execute(sql.STATS_DAYS, params).fetchall())
        return dashboard_stats(dashboard_id, today, totals, per_day)

    def audit_logs(self, target_type: str, target_id: str, page: int, page_size: int,
                   filters: AuditLogFilter) -> Page:
        if page < 1 or page_size < 1:
            raise ValueError("page and page_size start at 1")
        if filters.excludes(target_type):
            return Page(items=[], total=0)
        params = sql.audit_list_params(target_type, target_id, filters)
        params["limit"], params["offset"] = page_size, (page - 1) * page_size
        rows_sql, count_sql, _ = sql.audit_list_sql(filters)
        with self._read() as conn:
            (total,) = conn.execute(count_sql, params).fetchone()
            rows = conn.execute(rows_sql, params).fetchall() if params["offset"] < total else []
        return Page(items=[audit_doc(row) for row in rows], total=total)

    def audit_log(self, audit_log_id: str) -> dict | None:
        try:
            key = oid_bytes(audit_log_id, "audit entry id")
        except StoreError:  # no entry has such an id
            return None
        with self._conns.connection() as conn:
            row = conn.execute(sql.AUDIT_BY_ID, (key,)).fetchone()
        return audit_doc(row) if row is not None else None

    # -- writes ----------------------------------------------------------------------------------------

    def record_view(self, dashboard_id: str, user: dict, at: datetime) -> dict:
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        dashboard_id, user_id, ms = dashboard_id.lower(), user["id"].lower(), to_ms(at)
        view_id, stamp = object_id(at), iso_ms(ms)
        with self._write() as conn:
            try:
                conn.execute(sql.INSERT_VIEW, (bytes.fromhex(view_id), dashboard_id, user_id, user["email"], ms,
                                               ms // MS_PER_DAY, bytes.fromhex(object_id(at))))
            except sqlite3.IntegrityError as exc:
                if "before any dataset" in str(exc):
                    raise StoreError("record_view before any dataset was loaded") from exc
                raise
            (count,) = conn.execute(sql.VIEW_COUNT, (dashboard_id,)).fetchone()
        return {"_id": view_id, "dashboardId": dashboard_id, "userId": user_id, "viewedAt": stamp,
                "viewCount": count}

    # -- siblings: the stores of sessions and templates, beside this one (mock_server.sessions) ---------------

    def sibling(self, key: str, *, copy_of: Store | None = None) -> Store:
        """The store named `key` beside this one: a new in-memory database, or the file `key`.sqlite in the
        directory `<db>.sessions`. A new one is filled with a copy of `copy_of` (SQLite's backup: a few ms at
        the default sizes), made under a temporary name and linked into place, so that of several processes
        opening it at once each finds either nothing or the whole copy."""
        if self.db_path is None:
            store = SQLiteStore(None, **self._options)
            if copy_of is not None:
                with copy_of._read() as source, store._conns.connection() as target:
                    source.backup(target)
            return store
        path = self._sibling_path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if copy_of is not None and not os.path.exists(path):
            temporary = f"{path}.new-{os.getpid()}-{threading.get_ident()}"
            target = sqlite3.connect(temporary)
            try:
                with copy_of._read() as source:
                    source.backup(target)
            finally:
                target.close()
            try:
                os.link(temporary, path)  # atomic: fails if another process made it first
            except FileExistsError:
                pass
            finally:
                os.unlink(temporary)
        return SQLiteStore(path, **self._options)

    def drop_sibling(self, key: str) -> None:
        """Delete the sibling `key` (its handles should be closed first; a process still holding one goes on
        with a deleted file until it notices, see mock_server.sessions)."""
        if self.db_path is None:
            return  # an in-memory database goes with its last handle
        path = self._sibling_path(key)
        for suffix in ("", "-wal", "-shm", "-changes"):
            try:
                os.unlink(path + suffix)
            except FileNotFoundError:
                pass

    def _sibling_path(self, key: str) -> str:
        return os.path.join(f"{self.db_path}.sessions", f"{key}.sqlite")

    def version(self) -> int | None:
        """Moves with every write of the data, by any process sharing the file; None while one is under way
        (mock_server.store.changes). A memory load: cheap enough to ask at every request."""
        return self._changes.value()

    def close(self) -> None:
        self._conns.close()
        self._changes.close()

    # -- scenarios (mock_server.data.runtime): which one the data is, and a generation every process follows --

    def load_scenario(self, dataset: Dataset, name: str) -> int:
        with self._write() as conn:
            load_rows(conn, dataset)
            row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            generation = (int(row[0]) if row else 0) + 1
            conn.executemany(sql.SET_META, [("scenario", name), ("generation", str(generation))])
            return generation

    def claim_scenario(self, name: str) -> tuple[str, int]:
        with self._write() as conn:
            conn.executemany(sql.CLAIM_META, [("scenario", name), ("generation", "0")])
            return _scenario_row(conn)  # type: ignore[return-value]

    def scenario_meta(self) -> tuple[str | None, int]:
        with self._conns.connection() as conn:  # one statement: its own snapshot
            return _scenario_row(conn)


def _scenario_row(conn: sqlite3.Connection) -> tuple[str | None, int]:
    rows = dict(conn.execute(sql.SCENARIO).fetchall())
    return rows.get("scenario"), int(rows.get("generation", 0))


def _summary(row: tuple) -> dict:
    """A DashboardSummary of a MOST_VIEWED / RECENTLY_VIEWED row: keys in the order of the spec's schema, no
    `description` key for a dashboard without one, the owner as in `users`."""
    dashboard_id, name, description, owner_id, email, owner_name, tags, kpi_count, view_count, last_ms = row
    owner = {"userId": owner_id, "email": email, "name": owner_name}
    if description is None:
        return {"dashboardId": dashboard_id, "name": name, "owner": owner, "tags": orjson.loads(tags),
                "kpiCount": kpi_count, "viewCount": view_count, "lastViewedAt": iso_ms(last_ms)}
    return {"dashboardId": dashboard_id, "name": name, "description": description, "owner": owner,
            "tags": orjson.loads(tags), "kpiCount": kpi_count, "viewCount": view_count,
            "lastViewedAt": iso_ms(last_ms)}


def open_store(db_path: str | None, *, synchronous: str = "NORMAL",
               busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
               load_wait_s: float = DEFAULT_LOAD_WAIT_S) -> SQLiteStore:
    """The SQLite store: None = in memory (private to this store, shared by its threads); a path = that file
    in WAL mode, shared by every process that opens it. Raises StoreError if the file is not usable."""
    return SQLiteStore(db_path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms,
                       load_wait_s=load_wait_s)
