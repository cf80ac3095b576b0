"""The SQLite store: one in-memory database per store, or a WAL file shared by processes.

Why it is shaped like this:
- Reads must cost the same at 6 000 and at 1 000 000 views. So the figures the API shows are aggregates
  kept up to date by each write, in the same transaction as the event itself: per dashboard (total, unique
  viewers, first/last view), per (user, dashboard) (the user's last view), per (dashboard, UTC day) (daily
  series, 7/30-day sums) and per audit target (entry counts by action and user). Every hot query reads an
  index in the order it returns rows and stops at LIMIT; tests/test_store_sqlite.py checks the plans
  with EXPLAIN QUERY PLAN. Plans are pinned (INDEXED BY, CROSS JOIN) rather than left to the planner.
- A view of a known dashboard, on a file, is answered from the view ring (store/view_ring.py): its count
  comes from counts shared by every process, the view is appended to a mapped file, and a thread writes the
  ring into SQLite in batches (_fold: one statement per table, _SQL_FOLD). Every read writes what is
  pending first (_reader), and so does every other write (_write), so no answer misses a view answered
  before it, by any process. Any other view (an unknown dashboard, in memory, a full ring) is written at
  once: one statement into a TEMP inbox whose TEMP trigger writes everything (_TEMP_SCHEMA), in a write
  transaction. Writes of a file take turns across processes (_WriterTurns) and use BEGIN IMMEDIATE
  (busy_timeout makes other programs' writers wait). Each change is counted (store/changes.py: version(),
  what the response cache checks at every request); a fold changes no answer, so it is not.
- Durability: WAL with synchronous=NORMAL. A transaction is in the WAL (the OS's page cache) when COMMIT
  returns, so a process killed with -9 loses no acknowledged view; only an OS crash or power cut could drop
  the last commits, which a local mock does not need to survive. FULL would add an fsync to every view.
  Checkpoints (and their fsyncs) run in a thread of their own, off the write turn (_Checkpointer).
- The event logs (views, audit entries) are kept too: they are the truth the aggregates are built from at
  load time, and an audit entry is returned as the JSON document it was stored as.
- In memory, a store is one connection behind a lock (private to the store, shared by its threads); with a
  file, a small pool of connections per process, dropped in a forked child (SQLite handles must not cross
  fork).
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import orjson

try:
    import fcntl
except ImportError:  # not POSIX: writers wait in SQLite's busy handler instead
    fcntl = None

from mock_server.bulk import no_cyclic_gc
from mock_server.ids import object_id
from mock_server.store.base import AuditLogFilter, Dataset, Page
from mock_server.store.changes import Changes
from mock_server.store.file_lock import FileLock
from mock_server.store.view_ring import MAX_SLOTS, ViewRing
from mock_server.timestamps import MS_PER_DAY, day_date, day_number, iso_ms, ms_from_iso, to_ms

SCHEMA_VERSION = "2"  # 2: dashboards.head
DEFAULT_BUSY_TIMEOUT_MS = 10_000
WAL_AUTOCHECKPOINT_PAGES = 10_000  # SQLite's own checkpoint (40 MB of WAL) only if _Checkpointer falls behind
WAL_SIZE_LIMIT_BYTES = 16 << 20
DEFAULT_LOAD_WAIT_S = 600.0  # how long ensure_loaded waits for another process's (big) load

_UUID_TYPES = ("dashboard", "tool_mapping")  # target ids that are UUIDs, stored lower-case


class StoreError(RuntimeError):
    """The database cannot be used (not ours, another schema version, locked for too long)."""


_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, role TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dashboards (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT, owner_id TEXT NOT NULL,
    tags TEXT NOT NULL, kpi_count INTEGER NOT NULL, head TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mappings (
    id TEXT PRIMARY KEY, tool TEXT NOT NULL, name TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS views (
    id TEXT NOT NULL, dashboard_id TEXT NOT NULL, user_id TEXT NOT NULL, viewed_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dashboard_totals (
    dashboard_id TEXT PRIMARY KEY, known INTEGER NOT NULL, view_count INTEGER NOT NULL,
    unique_viewers INTEGER NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_dashboard (
    user_id TEXT NOT NULL, dashboard_id TEXT NOT NULL, known INTEGER NOT NULL, last_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, dashboard_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dashboard_days (
    dashboard_id TEXT NOT NULL, day INTEGER NOT NULL, views INTEGER NOT NULL,
    PRIMARY KEY (dashboard_id, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_logs (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL, target_id TEXT NOT NULL,
    action TEXT NOT NULL, user_id TEXT NOT NULL, created_ms INTEGER NOT NULL, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS audit_counts (
    type TEXT NOT NULL, target_id TEXT NOT NULL, action TEXT NOT NULL, user_id TEXT NOT NULL,
    n INTEGER NOT NULL, PRIMARY KEY (type, target_id, action, user_id)) WITHOUT ROWID;
"""

# Secondary indexes, dropped and rebuilt around a bulk load (building once is much faster than updating
# them row by row). The orders match the ORDER BY clauses below exactly.
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

# Reads: one statement, one row. sqlite3 releases the GIL around every step of a statement, once per row
# fetched; with a worker's other threads waiting for it, each release is a hand-off (a futex wake, later a
# spurious wake-up). With four threads in process, one row per read answers 1.4-1.9x the calls of the same
# rows fetched one by one, at the same cost alone (bench/read_cost.py; figures in bench/README.md). So a
# list is one JSON array, built by SQLite from an ordered, limited subquery and embedded in the answer as
# it is (orjson.Fragment). The subquery has a LIMIT, so SQLite cannot flatten it into the aggregate: it runs as
# a co-routine that yields rows in its ORDER BY order, and the aggregate concatenates them in that order
# (test_store_sqlite checks the plans and the orders).


def _json_array(inner: str, column: str) -> str:
    """One row: the `column` values (JSON texts) of the ordered subquery `inner`, as one JSON array text."""
    return f"SELECT '[' || coalesce(group_concat({column}, ','), '') || ']' FROM ({inner})"


def _iso_sql(ms: str) -> str:
    """SQL for timestamps.iso_ms of an epoch-ms integer >= 0: `2026-11-20T09:15:02.123Z`."""
    return f"(strftime('%Y-%m-%dT%H:%M:%S', {ms} / 1000, 'unixepoch') || printf('.%03dZ', {ms} % 1000))"


# A DashboardSummary is the dashboard's fixed part, made once at load (dashboards.head: the JSON object
# up to kpiCount, without its closing brace), then the two figures that move with each view. Keys in the
# order of the spec's schema; no `description` key for a dashboard without one; the owner as in `users`.
_SQL_DASHBOARD_HEADS = """
UPDATE dashboards SET head = (
    SELECT substr(j, 1, length(j) - 1) FROM (
        SELECT CASE WHEN dashboards.description IS NULL THEN {bare} ELSE {described} END AS j
        FROM users AS u WHERE u.id = dashboards.owner_id))""".format(**{
    key: "json_object('dashboardId', dashboards.id, 'name', dashboards.name, "
         + ("'description', dashboards.description, " if key == "described" else "")
         + "'owner', json_object('userId', u.id, 'email', u.email, 'name', u.name), "
           "'tags', json(dashboards.tags), 'kpiCount', dashboards.kpi_count)"
    for key in ("bare", "described")})


def _summary_sql(last_ms: str) -> str:
    """A DashboardSummary as JSON text: the head of dashboard `d`, then `t`'s count and a last view."""
    return f"""d.head || ',"viewCount":' || t.view_count || ',"lastViewedAt":"' || {_iso_sql(last_ms)} || '"}}'"""


# The ordered rows of each list (their plans are checked on their own); SQL_* below are what runs.
MOST_VIEWED_ROWS = f"""
SELECT {_summary_sql("t.last_ms")} AS item
FROM dashboard_totals AS t INDEXED BY dashboard_totals_rank
CROSS JOIN dashboards AS d
WHERE t.known = 1 AND d.id = t.dashboard_id
ORDER BY t.view_count DESC, t.last_ms DESC, t.dashboard_id
LIMIT ?"""

RECENTLY_VIEWED_ROWS = f"""
SELECT {_summary_sql("r.last_ms")} AS item
FROM user_dashboard AS r INDEXED BY user_dashboard_recent
CROSS JOIN dashboards AS d CROSS JOIN dashboard_totals AS t
WHERE r.user_id = ? AND r.known = 1 AND d.id = r.dashboard_id AND t.dashboard_id = r.dashboard_id
ORDER BY r.last_ms DESC, r.dashboard_id
LIMIT ?"""

SQL_MOST_VIEWED = _json_array(MOST_VIEWED_ROWS, "item")
SQL_RECENTLY_VIEWED = _json_array(RECENTLY_VIEWED_ROWS, "item")

# The totals (or NULL) and the days of the window, one row: [count, unique, first, last] and [[day, views]..].
SQL_STATS = """
SELECT (SELECT json_array(view_count, unique_viewers, first_ms, last_ms)
        FROM dashboard_totals WHERE dashboard_id = :id),
       (SELECT json_group_array(json_array(day, views))
        FROM dashboard_days WHERE dashboard_id = :id AND day BETWEEN :first AND :last)"""

SQL_AUDIT_BY_ID = "SELECT doc FROM audit_logs WHERE id = ?"

# A view is written by ONE statement: its batch goes into a per-connection TEMP table whose TEMP trigger
# writes the event, every aggregate and the audit entry, and notes the dashboard's new count on the inbox
# row. Why one statement: the turn to write is shared by every process (see _WriterTurns), and sqlite3
# releases the GIL around each statement step and reset; each time, the writer may wait for the GIL (up to
# the switch interval) behind request threads of its process while the other process waits for the turn.
# Nine statements per view were ~27 such hand-offs inside the turn; now a batch pays three, and the counts
# are read back after the turn.
# The trigger is TEMP (connection-local) and on a TEMP table, so the file's schema is unchanged and loads,
# which insert into the main tables, never fire it. Unqualified names in a TEMP trigger resolve to main.
_TEMP_SCHEMA = (
    """CREATE TEMP TABLE IF NOT EXISTS view_inbox (
        seq INTEGER PRIMARY KEY, view_id TEXT NOT NULL, dashboard_id TEXT NOT NULL, user_id TEXT NOT NULL,
        user_email TEXT NOT NULL, ms INTEGER NOT NULL, day INTEGER NOT NULL, stamp TEXT NOT NULL,
        audit_id TEXT NOT NULL, view_count INTEGER)""",
    """CREATE TEMP TRIGGER IF NOT EXISTS view_inbox_write AFTER INSERT ON view_inbox BEGIN
        SELECT RAISE(ABORT, 'record_view before any dataset was loaded')
            WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'account');
        -- totals first: a new viewer is one without a user_dashboard row yet
        INSERT INTO dashboard_totals (dashboard_id, known, view_count, unique_viewers, first_ms, last_ms)
        VALUES (NEW.dashboard_id, EXISTS (SELECT 1 FROM dashboards WHERE id = NEW.dashboard_id), 1,
                NOT EXISTS (SELECT 1 FROM user_dashboard
                            WHERE user_id = NEW.user_id AND dashboard_id = NEW.dashboard_id),
                NEW.ms, NEW.ms)
        ON CONFLICT (dashboard_id) DO UPDATE SET
            view_count = view_count + 1,
            unique_viewers = unique_viewers + excluded.unique_viewers,
            first_ms = min(first_ms, excluded.first_ms),
            last_ms = max(last_ms, excluded.last_ms);
        INSERT INTO user_dashboard (user_id, dashboard_id, known, last_ms)
        VALUES (NEW.user_id, NEW.dashboard_id, EXISTS (SELECT 1 FROM dashboards WHERE id = NEW.dashboard_id),
                NEW.ms)
        ON CONFLICT (user_id, dashboard_id) DO UPDATE SET last_ms = max(last_ms, excluded.last_ms);
        INSERT INTO views (id, dashboard_id, user_id, viewed_ms)
        VALUES (NEW.view_id, NEW.dashboard_id, NEW.user_id, NEW.ms);
        INSERT INTO dashboard_days (dashboard_id, day, views) VALUES (NEW.dashboard_id, NEW.day, 1)
        ON CONFLICT (dashboard_id, day) DO UPDATE SET views = views + 1;
        -- the audit document, field order as datagen writes it; an unknown dashboard has no name to show,
        -- so no `dashboard` reference
        INSERT INTO audit_logs (id, type, target_id, action, user_id, created_ms, doc)
        SELECT NEW.audit_id, 'dashboard', NEW.dashboard_id, 'view', NEW.user_id, NEW.ms,
               CASE WHEN name IS NULL THEN
                   json_object('_id', NEW.audit_id, 'user_id', NEW.user_id, 'user_email', NEW.user_email,
                               'type', 'dashboard', 'action', 'view', 'target_id', NEW.dashboard_id,
                               'account', account, 'createdAt', NEW.stamp, 'updatedAt', NEW.stamp, '__v', 0)
               ELSE
                   json_object('_id', NEW.audit_id, 'user_id', NEW.user_id, 'user_email', NEW.user_email,
                               'type', 'dashboard', 'action', 'view', 'target_id', NEW.dashboard_id,
                               'account', account,
                               'dashboard', json_object('dashboardId', NEW.dashboard_id, 'name', name),
                               'createdAt', NEW.stamp, 'updatedAt', NEW.stamp, '__v', 0)
               END
        FROM (SELECT (SELECT value FROM meta WHERE key = 'account') AS account,
                     (SELECT name FROM dashboards WHERE id = NEW.dashboard_id) AS name);
        INSERT INTO audit_counts (type, target_id, action, user_id, n)
        VALUES ('dashboard', NEW.dashboard_id, 'view', NEW.user_id, 1)
        ON CONFLICT (type, target_id, action, user_id) DO UPDATE SET n = n + 1;
        UPDATE view_inbox SET view_count = (SELECT view_count FROM dashboard_totals
                                            WHERE dashboard_id = NEW.dashboard_id)
        WHERE seq = NEW.seq;
    END""",
)
# The ring's pending views (store/view_ring.py) are written set by set: the batch into a TEMP table, then one
# statement per table, grouped (a fold's views are mostly of a few dashboards), in the same order and with
# the same effect as the inbox trigger's rows one by one. Seven statements per fold, whatever its size.
_FOLD_TABLE = """CREATE TEMP TABLE IF NOT EXISTS view_fold (
    seq INTEGER PRIMARY KEY, view_id TEXT NOT NULL, dashboard_id TEXT NOT NULL, user_id TEXT NOT NULL,
    user_email TEXT NOT NULL, ms INTEGER NOT NULL, day INTEGER NOT NULL, stamp TEXT NOT NULL,
    audit_id TEXT NOT NULL)"""
_SQL_FOLD = (
    # totals first: a new viewer is one without a user_dashboard row yet
    """INSERT INTO dashboard_totals (dashboard_id, known, view_count, unique_viewers, first_ms, last_ms)
       SELECT b.dashboard_id, EXISTS (SELECT 1 FROM dashboards WHERE id = b.dashboard_id), count(*),
              count(DISTINCT CASE WHEN NOT EXISTS (SELECT 1 FROM user_dashboard AS r
                                                   WHERE r.user_id = b.user_id AND r.dashboard_id = b.dashboard_id)
                                  THEN b.user_id END),
              min(b.ms), max(b.ms)
       FROM temp.view_fold AS b WHERE true GROUP BY b.dashboard_id
       ON CONFLICT (dashboard_id) DO UPDATE SET
           view_count = view_count + excluded.view_count,
           unique_viewers = unique_viewers + excluded.unique_viewers,
           first_ms = min(first_ms, excluded.first_ms),
           last_ms = max(last_ms, excluded.last_ms)""",
    """INSERT INTO user_dashboard (user_id, dashboard_id, known, last_ms)
       SELECT b.user_id, b.dashboard_id, EXISTS (SELECT 1 FROM dashboards WHERE id = b.dashboard_id), max(b.ms)
       FROM temp.view_fold AS b WHERE true GROUP BY b.user_id, b.dashboard_id
       ON CONFLICT (user_id, dashboard_id) DO UPDATE SET last_ms = max(last_ms, excluded.last_ms)""",
    """INSERT INTO views (id, dashboard_id, user_id, viewed_ms)
       SELECT view_id, dashboard_id, user_id, ms FROM temp.view_fold ORDER BY seq""",
    """INSERT INTO dashboard_days (dashboard_id, day, views)
       SELECT dashboard_id, day, count(*) FROM temp.view_fold WHERE true GROUP BY dashboard_id, day
       ON CONFLICT (dashboard_id, day) DO UPDATE SET views = views + excluded.views""",
    """INSERT INTO audit_logs (id, type, target_id, action, user_id, created_ms, doc)
       SELECT b.audit_id, 'dashboard', b.dashboard_id, 'view', b.user_id, b.ms,
              CASE WHEN d.name IS NULL THEN
                  json_object('_id', b.audit_id, 'user_id', b.user_id, 'user_email', b.user_email,
                              'type', 'dashboard', 'action', 'view', 'target_id', b.dashboard_id,
                              'account', m.value, 'createdAt', b.stamp, 'updatedAt', b.stamp, '__v', 0)
              ELSE
                  json_object('_id', b.audit_id, 'user_id', b.user_id, 'user_email', b.user_email,
                              'type', 'dashboard', 'action', 'view', 'target_id', b.dashboard_id,
                              'account', m.value,
                              'dashboard', json_object('dashboardId', b.dashboard_id, 'name', d.name),
                              'createdAt', b.stamp, 'updatedAt', b.stamp, '__v', 0)
              END
       FROM temp.view_fold AS b LEFT JOIN dashboards AS d ON d.id = b.dashboard_id
            LEFT JOIN meta AS m ON m.key = 'account'
       ORDER BY b.seq""",
    """INSERT INTO audit_counts (type, target_id, action, user_id, n)
       SELECT 'dashboard', dashboard_id, 'view', user_id, count(*) FROM temp.view_fold WHERE true
       GROUP BY dashboard_id, user_id
       ON CONFLICT (type, target_id, action, user_id) DO UPDATE SET n = n + excluded.n""",
    "DELETE FROM temp.view_fold",
)
_FOLD_CHUNK = 64
# The ring is written into SQLite by a thread once this many views wait. A fold costs ~0.7 ms whatever its
# size (a transaction, a commit, seven statements) plus ~15 µs per view: ~26 µs per view at 64, ~18 at 256,
# but a read that finds views pending writes them itself, so it waits for a smaller fold (bench/README.md).
FOLD_EVERY = 64


@lru_cache(maxsize=_FOLD_CHUNK)
def _sql_fold_batch(n: int) -> str:
    return ("INSERT INTO temp.view_fold (view_id, dashboard_id, user_id, user_email, ms, day, stamp, audit_id)"
            " VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * n))


# A batch of n views: n rows of plain parameters (sqlite3 caches the statement of each n).
_INBOX_COLUMNS = "view_id, dashboard_id, user_id, user_email, ms, day, stamp, audit_id"


@lru_cache(maxsize=64)
def _sql_inbox_batch(n: int) -> str:
    return f"INSERT INTO view_inbox ({_INBOX_COLUMNS}) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * n)


_SQL_INBOX_TAKE = "DELETE FROM view_inbox RETURNING seq, view_count"
_SQL_INSERT_AUDIT = """
INSERT INTO audit_logs (id, type, target_id, action, user_id, created_ms, doc) VALUES (?, ?, ?, ?, ?, ?, ?)"""

# Aggregates of a freshly loaded event log (one GROUP BY each instead of a million upserts), and the
# dashboards' heads.
_SQL_BUILD_AGGREGATES = (
    _SQL_DASHBOARD_HEADS,
    """INSERT INTO user_dashboard (user_id, dashboard_id, known, last_ms)
       SELECT v.user_id, v.dashboard_id, v.dashboard_id IN (SELECT id FROM dashboards), max(v.viewed_ms)
       FROM views AS v GROUP BY v.user_id, v.dashboard_id""",
    """INSERT INTO dashboard_totals (dashboard_id, known, view_count, unique_viewers, first_ms, last_ms)
       SELECT v.dashboard_id, v.dashboard_id IN (SELECT id FROM dashboards), count(*),
              count(DISTINCT v.user_id), min(v.viewed_ms), max(v.viewed_ms)
       FROM views AS v GROUP BY v.dashboard_id""",
    f"""INSERT INTO dashboard_days (dashboard_id, day, views)
       SELECT dashboard_id, (viewed_ms - ((viewed_ms % {MS_PER_DAY}) + {MS_PER_DAY}) % {MS_PER_DAY}) / {MS_PER_DAY},
              count(*)
       FROM views GROUP BY 1, 2""",
    """INSERT INTO audit_counts (type, target_id, action, user_id, n)
       SELECT type, target_id, action, user_id, count(*) FROM audit_logs GROUP BY 1, 2, 3, 4""",
)

_DATA_TABLES = ("users", "dashboards", "mappings", "views", "dashboard_totals", "user_dashboard",
                "dashboard_days", "audit_logs", "audit_counts")


def _shape(filters: AuditLogFilter) -> tuple[bool, bool, bool, bool]:
    return (filters.action is not None, filters.user_id is not None, filters.created_from is not None,
            filters.created_to is not None)


def audit_list_sql(filters: AuditLogFilter) -> tuple[str, str, bool]:
    """(rows SQL, count SQL, whether the count reads audit_counts) for a filter combination.

    Named parameters (audit_list_params): :type, :target, then :action, :user, :lo, :hi as the filters
    need them; the rows query also takes :limit and :offset. Only fixed fragments are concatenated; every
    value is a parameter.
    """
    return _audit_list_sql(*_shape(filters))


@lru_cache(maxsize=16)
def _audit_list_sql(action: bool, user: bool, lo: bool, hi: bool) -> tuple[str, str, bool]:
    if user and action:
        index = "audit_logs_target_user_action"
    elif user:
        index = "audit_logs_target_user"
    elif action:
        index = "audit_logs_target_action"
    else:
        index = "audit_logs_target"
    where = ["type = :type", "target_id = :target"]
    if action:
        where.append("action = :action")
    if user:
        where.append("user_id = :user")
    if lo:
        where.append("created_ms >= :lo")
    if hi:
        where.append("created_ms <= :hi")
    condition = " AND ".join(where)
    rows = (f"SELECT doc FROM audit_logs INDEXED BY {index} WHERE {condition}"
            " ORDER BY created_ms DESC, id DESC LIMIT :limit OFFSET :offset")
    if lo or hi:
        # A time window cannot use the per-target counters: count the index range (what was asked for).
        return rows, f"SELECT count(*) FROM audit_logs INDEXED BY {index} WHERE {condition}", False
    return rows, f"SELECT coalesce(sum(n), 0) FROM audit_counts WHERE {condition}", True


def audit_page_sql(filters: AuditLogFilter) -> str:
    """One statement, one row: the total, then the page as a JSON array text (`[]` past the end, without
    reading any row). One statement is also one snapshot: the page and its total agree."""
    return _audit_page_sql(*_shape(filters))


@lru_cache(maxsize=16)
def _audit_page_sql(*shape: bool) -> str:
    rows, count, _ = _audit_list_sql(*shape)
    return (f"SELECT total, CASE WHEN :offset < total THEN ({_json_array(rows, 'doc')}) ELSE '[]' END"
            f" FROM (SELECT ({count}) AS total)")


def audit_list_params(target_type: str, target_id: str, filters: AuditLogFilter) -> dict[str, Any]:
    params: dict[str, Any] = {"type": target_type, "target": _target_key(target_type, target_id)}
    if filters.action is not None:
        params["action"] = filters.action
    if filters.user_id is not None:
        params["user"] = filters.user_id.lower()
    if filters.created_from is not None:
        params["lo"] = _ceil_ms(filters.created_from)
    if filters.created_to is not None:
        params["hi"] = to_ms(filters.created_to)
    return params


def _ceil_ms(at: datetime) -> int:
    # `from` is inclusive: 10:00:00.0005 admits 10:00:00.001, not 10:00:00.000.
    return to_ms(at) + (1 if at.microsecond % 1000 else 0)


def _target_key(target_type: str, target_id: str) -> str:
    return target_id.lower() if target_type in _UUID_TYPES else target_id


@lru_cache(maxsize=16)
def _day_texts(first_day: int, last_day: int) -> tuple[str, ...]:
    """The ISO dates of a stats window; the same window serves a whole day of requests."""
    return tuple(day_date(d).isoformat() for d in range(first_day, last_day + 1))


class _SingleConnection:
    """In memory: one connection, one user at a time (private to the store, so nothing else sees it)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]):
        self._conn = connect()
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise StoreError("the store is closed")
            yield self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class _Pool:
    """A database file: idle connections reused across threads; a forked child starts its own."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]):
        self._connect = connect
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._idle: list[sqlite3.Connection] = []
        self._owned: list[sqlite3.Connection] = []
        self._inherited: list[sqlite3.Connection] = []  # kept, never used nor closed, in a forked child
        self._closed = False

    def _acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            if self._pid != os.getpid():
                self._inherited.extend(self._owned)
                self._idle, self._owned, self._pid = [], [], os.getpid()
            if self._idle:
                return self._idle.pop()
        conn = self._connect()
        with self._lock:
            self._owned.append(conn)
        return conn

    def _release(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if conn.in_transaction:  # never hand on a connection left mid-transaction
                conn.rollback()
            if not self._closed and any(c is conn for c in self._owned):
                self._idle.append(conn)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = self._acquire()
        try:
            yield conn
        finally:
            self._release(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._pid == os.getpid():
                for conn in self._owned:
                    conn.close()
            self._idle, self._owned = [], []


class _PendingView:
    """A view on its way into the store: the inputs, then the ViewEvent or the exception."""

    __slots__ = ("dashboard_id", "user_id", "user_email", "ms", "view_id", "audit_id", "result", "error")

    def __init__(self, dashboard_id: str, user_id: str, user_email: str, ms: int, view_id: str, audit_id: str):
        self.dashboard_id, self.user_id, self.user_email, self.ms = dashboard_id, user_id, user_email, ms
        self.view_id, self.audit_id = view_id, audit_id
        self.result: dict | None = None
        self.error: BaseException | None = None

    def done(self, count: int) -> dict:
        self.result = {"_id": self.view_id, "dashboardId": self.dashboard_id, "userId": self.user_id,
                       "viewedAt": iso_ms(self.ms), "viewCount": count}
        return self.result

    def failed(self, error: BaseException) -> None:
        self.error = error

    def outcome(self) -> dict:
        if self.error is not None:
            raise self.error
        if self.result is None:
            raise StoreError("the write of this view was interrupted")
        return self.result

    def record(self, slot: int, count: int) -> bytes:
        """The view as the ring keeps it (store/view_ring.py; read back by SQLiteStore._fold_into)."""
        return orjson.dumps((slot, count, self.view_id, self.dashboard_id, self.user_id, self.user_email,
                             self.ms, self.audit_id))


class _WriterTurns:
    """The writes of one database file take turns: a FileLock (store/file_lock.py) on the database file,
    which wakes a waiter the moment the writer before it is done, where SQLite's busy handler would have it
    sleep and retry in steps of milliseconds. Every write of the store takes the turn (loads, scenarios, the
    ring's folds), so that one writer at a time counts its change (store/changes.py); other programs writing
    the file still meet SQLite's own locking and busy timeout."""

    def __init__(self, path: str):
        self._lock = FileLock(path)
        # Figures for bench/write_cost.py: this process's folds of the view ring (plain adds under the turn).
        self.turns = self.views = self.max_batch = 0
        self.wait_s = self.hold_s = 0.0

    def exclusive(self) -> AbstractContextManager[None]:
        """The turn: for the store's writes and the checkpointer's short pass."""
        return self._lock.held()

    def count(self, batch: int, wait_s: float, hold_s: float) -> None:
        self.turns += 1
        self.views += batch
        self.max_batch = max(self.max_batch, batch)
        self.wait_s += wait_s
        self.hold_s += hold_s

    def stats(self) -> dict:
        return {"turns": self.turns, "views": self.views, "max_batch": self.max_batch,
                "wait_s": self.wait_s, "hold_s": self.hold_s}

    def close(self) -> None:
        self._lock.close()


class _ProcessThread:
    """A daemon thread of this process that runs `work()` each time it is woken, started at the first wake (a
    forked child starts its own: threads do not survive fork). An error of SQLite, of the store or of the OS
    is left for the next wake; `finish()` runs in the thread when it ends."""

    def __init__(self, name: str, work: Callable[[], None], finish: Callable[[], None] | None = None):
        self._name, self._work, self._finish = name, work, finish
        self._lock = threading.Lock()
        self._pid = 0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def wake(self) -> None:
        if self._pid != os.getpid():
            with self._lock:
                if self._closed:
                    return
                if self._pid != os.getpid():
                    self._pid, self._wake = os.getpid(), threading.Event()
                    self._thread = threading.Thread(target=self._run, args=(self._wake,), name=self._name,
                                                    daemon=True)
                    self._thread.start()
        self._wake.set()

    def _run(self, wake: threading.Event) -> None:
        try:
            while True:
                wake.wait()
                wake.clear()
                if self._closed:
                    return
                try:
                    self._work()
                except (sqlite3.Error, StoreError, OSError):
                    pass
        finally:
            if self._finish is not None:
                self._finish()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread, mine = self._thread, self._pid == os.getpid()
        if thread is not None and mine:
            self._wake.set()
            thread.join(timeout=5)


class _Checkpointer:
    """WAL checkpoints off the write turn.

    SQLite's own checkpoint runs inside the COMMIT that crosses wal_autocheckpoint, i.e. inside a write turn
    that every process waits for: some 4 ms (two fsyncs) every ~60 views, about a third of what a view write
    cost. Here a thread per process copies the WAL back in two passes: the bulk outside the turn (writers
    go on), then, once the WAL is long, what was committed meanwhile, inside a turn (few pages), so that the
    WAL is wholly copied with no commit after it and the next writer starts it over from the beginning. The
    first pass (PASSIVE) never waits for readers or writers; the second (RESTART) waits for readers still on
    the WAL (requests read for milliseconds). SQLite's own checkpoint stays, at a higher threshold
    (WAL_AUTOCHECKPOINT_PAGES), as the bound should this thread fall behind."""

    # Views written by this process between checkpoints (a view alone writes ~20 WAL pages, fewer in a
    # batch). Rarer passes copy each hot page fewer times: every 32 cost ~20 us more CPU per view than every
    # 128, here.
    EVERY_VIEWS = 128
    # The pass inside a turn costs two fsyncs (1.5-5 ms here) whatever it copies: only once the WAL holds this
    # many frames (8 MB of 4 KiB pages) does it run and let the WAL start over.
    RESTART_FRAMES = 2000

    def __init__(self, connect: Callable[[], sqlite3.Connection], turns: _WriterTurns):
        self._connect = connect
        self._turns = turns
        self._due = 0
        self._local = threading.local()  # the thread's connection (a forked child's thread opens its own)
        self._thread = _ProcessThread("insights-mock-checkpoint", self._pass, self._release)
        self.runs, self.turn_s = 0, 0.0  # figures for bench/write_cost.py

    def after_turn(self, views: int) -> None:
        """Count the views written into the database; every EVERY_VIEWS, wake the thread."""
        self._due += views  # only the turn holder of this process gets here
        if self._due < self.EVERY_VIEWS:
            return
        self._due = 0
        self._thread.wake()

    def _pass(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        self.checkpoint(conn)  # on failure, the next wake tries again; SQLite's own checkpoint bounds the WAL

    def _release(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """The two passes (what the thread does when woken)."""
        _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames < self.RESTART_FRAMES:
            return
        with self._turns.exclusive():
            started = time.perf_counter()
            # RESTART: also waits for readers still on the WAL, so that the next writer starts it over (after
            # a bare PASSIVE pass that is left to chance: the other process's checkpoint running at that
            # moment is enough to make the writer carry on at the end of the WAL).
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
            self.turn_s += time.perf_counter() - started
        self.runs += 1

    def close(self) -> None:
        self._thread.close()


class SQLiteStore:
    """The Store of mock_server.store.base on SQLite. Build it with open_store()."""

    def __init__(self, db_path: str | None, *, synchronous: str = "NORMAL",
                 busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, load_wait_s: float = DEFAULT_LOAD_WAIT_S):
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.db_path = db_path
        self._synchronous = synchronous.upper()
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._load_wait_s = load_wait_s
        self._closed = False
        self._turns: _WriterTurns | None = None
        if db_path is None:  # one connection behind a lock: writers already take turns
            self._conns: _SingleConnection | _Pool = _SingleConnection(lambda: self._connect(":memory:"))
        else:
            self._conns = _Pool(lambda: self._connect(db_path))
        self._checkpointer: _Checkpointer | None = None
        # Every write takes the turn (_write, _write_views), so the count of changes has one writer at a time.
        self._changes = Changes(f"{db_path}-changes" if db_path is not None else None)
        self._ring: ViewRing | None = None
        self._slots: dict[str, int] = {}
        self._slots_of: tuple[bytes, int] | None = None  # (ring ident, layout) self._slots was read for
        self._folder: _ProcessThread | None = None
        if db_path is not None and fcntl is not None:
            self._turns = _WriterTurns(db_path)  # its descriptor is opened at the first turn: after _read()
            self._ring = ViewRing(f"{db_path}-views")
        self._init_schema()
        if self._turns is not None:
            self._checkpointer = _Checkpointer(lambda: self._connect(db_path), self._turns)
            self._folder = _ProcessThread("insights-mock-fold", self._fold)
            atexit.register(_fold_at_exit, weakref.ref(self))  # weak: the registration outlives the store

    # -- connections and transactions ------------------------------------------------------------------

    def _connect(self, target: str) -> sqlite3.Connection:
        """Open and configure a connection, retrying while another process creates the file: switching a new
        file to WAL needs a lock for which SQLite may answer "database is locked" at once, busy timeout or not."""
        deadline = time.monotonic() + self._load_wait_s
        pause = 0.01
        while True:
            try:
                return self._connect_once(target)
            except StoreError as exc:
                locked = isinstance(exc.__cause__, sqlite3.OperationalError) and (
                    "locked" in str(exc.__cause__) or "busy" in str(exc.__cause__))
                if not locked or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    def _connect_once(self, target: str) -> sqlite3.Connection:
        conn = None
        try:
            conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False,
                                   timeout=self._busy_timeout_ms / 1000)
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            if target != ":memory:":
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise StoreError(f"{target}: could not switch to WAL mode (got {mode})")
            if target != ":memory:" and fcntl is not None:  # _Checkpointer checkpoints; this is the bound
                conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
            if target != ":memory:":  # the WAL file shrinks back when it starts over (after a big load)
                conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA cache_size = -32000")
            for statement in (*_TEMP_SCHEMA, _FOLD_TABLE):
                conn.execute(statement)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise StoreError(f"{target} cannot be used as an insights-mock database: {exc}") from exc
        return conn

    @contextmanager
    def _write(self, recount: Callable[[], bool] | None = None) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: the write lock is taken before anything is read, so read-modify-write is atomic
        across processes. In the write turn and the view ring's lock: one writer at a time counts its
        change, and the ring's pending views are written first, so that the write comes after them. Then
        the ring's counts are rebuilt from the database, unless `recount()` says this write left them as
        they were."""
        turn = self._turns.exclusive() if self._turns is not None else nullcontext()
        ring = self._ring
        with turn, ring.lock() if ring is not None else nullcontext(), self._conns.connection() as conn, \
                self._changes.writing():
            with _immediate(conn):
                folded = self._fold_into(conn) if ring is not None else None
                yield conn
                if ring is not None:
                    ident = self._ring_ident(conn)
                    counts = self._ring_counts(conn) if recount is None or recount() or ident != ring.ident else None
            if ring is not None:
                if folded is not None:
                    ring.mark_folded(folded)
                if counts is not None:
                    ring.rebuild(ident, counts, self._db_folded(conn))

    # -- the view ring (store/view_ring.py): views answered, written into SQLite in batches ----------------

    def _ring_ident(self, conn: sqlite3.Connection) -> bytes:
        """In a write transaction: the ring id the database names, made if it names none, or names a ring
        that is not this file's (a ring file of another database, or older than it)."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'ring_id'").fetchone()
        if row is not None and bytes.fromhex(row[0]) == self._ring.ident and self._ring.written >= self._db_folded(conn):
            return bytes.fromhex(row[0])
        ident = os.urandom(16)
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('ring_id', ?)", (ident.hex(),))
        return ident

    @staticmethod
    def _ring_counts(conn: sqlite3.Connection) -> list[int]:
        """The view count of each known dashboard, in slot order (_read_slots reads the same order)."""
        return [count for (count,) in conn.execute(
            "SELECT coalesce(t.view_count, 0) FROM dashboards AS d LEFT JOIN dashboard_totals AS t"
            " ON t.dashboard_id = d.id ORDER BY d.id LIMIT ?", (MAX_SLOTS,))]

    @staticmethod
    def _db_folded(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = 'ring_folded'").fetchone()
        return int(row[0]) if row is not None else 0

    def _fold_into(self, conn: sqlite3.Connection) -> int | None:
        """In a write transaction, under the turn: write the ring's pending views into the database, and
        return the sequence number to mark folded once that commits (None: the ring is not this database's,
        or the schema is being made)."""
        ring = self._ring
        if conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'").fetchone() is None:
            return None
        row = conn.execute("SELECT value FROM meta WHERE key = 'ring_id'").fetchone()
        if row is None or bytes.fromhex(row[0]) != ring.ident:
            return None
        start, end = self._db_folded(conn), ring.written
        if end <= start:
            return start
        params: list = []
        n = 0
        for seq in range(start, end):
            _, _, view_id, dashboard_id, user_id, email, ms, audit_id = orjson.loads(ring.record(seq))
            params += (view_id, dashboard_id, user_id, email, ms, ms // MS_PER_DAY, iso_ms(ms), audit_id)
            n += 1
            if n == _FOLD_CHUNK:
                conn.execute(_sql_fold_batch(n), params)
                params, n = [], 0
        if n:
            conn.execute(_sql_fold_batch(n), params)
        for statement in _SQL_FOLD:
            conn.execute(statement)
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('ring_folded', ?)", (str(end),))
        return end

    def _fold(self) -> None:
        """Write the ring's pending views into the database: a read's catch-up, and the folder thread.
        Not a change of the data (the views were counted when appended): the version does not move."""
        ring = self._ring
        asked = time.perf_counter()
        with self._turns.exclusive(), self._conns.connection() as conn:
            if not ring.pending():
                return
            got, before = time.perf_counter(), ring.folded
            with _immediate(conn):
                end = self._fold_into(conn)
            if end is not None:
                ring.mark_folded(end)
                self._turns.count(end - before, got - asked, time.perf_counter() - got)
        if end is None:  # the ring is not this database's yet: a write starts it over
            self._with_write_lock(lambda conn: None)
        elif self._checkpointer is not None:
            self._checkpointer.after_turn(end - before)

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A connection for a read that sees every view answered before it: pending ones are written first."""
        if self._ring is not None and self._ring.pending():
            self._fold()
        with self._conns.connection() as conn:
            yield conn

    def _append(self, view: _PendingView) -> dict | None:
        """record_view's fast path: the view of a known dashboard appended to the ring, with its count.
        None: nothing was appended (an unknown dashboard, a full ring), the caller writes it into SQLite."""
        ring = self._ring
        with ring.lock():
            if self._slots_of != (ring.ident, ring.layout) and not self._read_slots():
                return None
            slot = self._slots.get(view.dashboard_id)
            if slot is None:
                return None
            with self._changes.writing():
                count = ring.append(slot, lambda count: view.record(slot, count))
            if count is None:
                return None
            pending = ring.written - ring.folded
        if pending >= FOLD_EVERY:
            self._folder.wake()
        return view.done(count)

    def _read_slots(self) -> bool:
        """Under the ring's lock: the slot of each known dashboard (False: the database names another ring)."""
        ring = self._ring
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'ring_id'").fetchone()
            if row is None or bytes.fromhex(row[0]) != ring.ident:
                return False
            ids = [i for (i,) in conn.execute("SELECT id FROM dashboards ORDER BY id LIMIT ?", (MAX_SLOTS,))]
        self._slots = {dashboard_id: slot for slot, dashboard_id in enumerate(ids)}
        self._slots_of = (ring.ident, ring.layout)
        return True

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One snapshot for the statements of one answer (a page and its total agree)."""
        with self._conns.connection() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def _with_write_lock(self, work: Callable[[sqlite3.Connection], object]) -> object:
        """Run `work` in a write transaction. Another process of this store writing (a big load) holds the
        write turn, and this one waits for the turn as long as it takes; past busy_timeout, up to
        load_wait_s, it waits for a lock held by another program."""
        deadline = time.monotonic() + self._load_wait_s
        while True:
            try:
                with self._write() as conn:
                    return work(conn)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise StoreError(f"{self.db_path}: still locked by another process after "
                                     f"{self._load_wait_s:.0f} s") from exc

    def _init_schema(self) -> None:
        # Read first: a file another process is loading right now already has its schema, and a reader
        # does not wait for that writer.
        with self._read() as conn:
            if self._schema_is_ours(conn):
                return
        self._with_write_lock(self._create_schema)

    def _schema_is_ours(self, conn: sqlite3.Connection) -> bool:
        if conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'").fetchone():
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None or row[0] != SCHEMA_VERSION:
                found = row[0] if row else "none"
                raise StoreError(f"{self.db_path}: database schema version {found}, this insights-mock "
                                 f"needs {SCHEMA_VERSION}; delete the file to start afresh")
            return True
        other = conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table' LIMIT 1").fetchone()
        if other is not None:
            raise StoreError(f"{self.db_path} holds tables of another application ({other[0]})")
        return False

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        if self._schema_is_ours(conn):  # another process created it while we waited for the lock
            return
        for statement in _TABLES.split(";"):
            if statement.strip():
                conn.execute(statement)
        for statement in _INDEXES:
            conn.execute(statement)
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))

    # -- loading ---------------------------------------------------------------------------------------

    def load(self, dataset: Dataset) -> None:
        with self._write() as conn:
            self._load(conn, dataset)

    def is_empty(self) -> bool:
        with self._read() as conn:
            return conn.execute("SELECT 1 FROM meta WHERE key = 'loaded'").fetchone() is None

    def counts(self) -> dict[str, int]:
        # COUNT(*) scans, but only the operator's health endpoint asks, never an API request
        if self._ring is not None and self._ring.pending():
            self._fold()
        with self._read() as conn:
            return {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                    for table in ("users", "dashboards", "mappings", "views", "audit_logs")}

    def ensure_loaded(self, make_dataset: Callable[[], Dataset]) -> bool:
        if not self.is_empty():
            return False

        def load_if_empty(conn: sqlite3.Connection) -> bool:
            # Re-checked under the write lock: another worker may have loaded meanwhile.
            if conn.execute("SELECT 1 FROM meta WHERE key = 'loaded'").fetchone() is not None:
                return False
            self._load(conn, make_dataset())
            return True

        return bool(self._with_write_lock(load_if_empty))

    def _load(self, conn: sqlite3.Connection, dataset: Dataset) -> None:
        with no_cyclic_gc():
            self._bulk_insert(conn, dataset)

    def _bulk_insert(self, conn: sqlite3.Connection, dataset: Dataset) -> None:
        for name in _INDEX_NAMES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        for table in _DATA_TABLES:
            conn.execute(f"DELETE FROM {table}")
        conn.executemany(
            "INSERT INTO users (id, email, name, role) VALUES (?, ?, ?, ?)",
            ((u["id"].lower(), u["email"], u["name"], u.get("role")) for u in dataset.users))
        # An owner missing from `users` still has a name and e-mail to show.
        conn.executemany(
            "INSERT OR IGNORE INTO users (id, email, name, role) VALUES (?, ?, ?, NULL)",
            ((d["owner"]["userId"].lower(), d["owner"]["email"], d["owner"]["name"]) for d in dataset.dashboards))
        conn.executemany(
            "INSERT INTO dashboards (id, name, description, owner_id, tags, kpi_count) VALUES (?, ?, ?, ?, ?, ?)",
            ((d["dashboardId"].lower(), d["name"], d.get("description"), d["owner"]["userId"].lower(),
              orjson.dumps(list(d.get("tags", []))).decode(), d.get("kpiCount", 0)) for d in dataset.dashboards))
        conn.executemany(
            "INSERT INTO mappings (id, tool, name) VALUES (?, ?, ?)",
            ((m["mappingId"].lower(), m["tool"], m["name"]) for m in dataset.mappings))
        conn.executemany(
            "INSERT INTO views (id, dashboard_id, user_id, viewed_ms) VALUES (?, ?, ?, ?)",
            ((v["_id"].lower(), v["dashboardId"].lower(), v["userId"].lower(), ms_from_iso(v["viewedAt"]))
             for v in dataset.views))
        conn.executemany(_SQL_INSERT_AUDIT, (_audit_row(e) for e in dataset.audit_logs))
        for statement in _SQL_BUILD_AGGREGATES:
            conn.execute(statement)
        for statement in _INDEXES:
            conn.execute(statement)
        conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         [("account", dataset.account), ("loaded", "1")])

    # -- reads -----------------------------------------------------------------------------------------

    def recently_viewed(self, user_id: str, limit: int, *, raw: bool = False) -> Any:
        return self._one_row(SQL_RECENTLY_VIEWED, (user_id.lower(), limit), raw)

    def most_viewed(self, limit: int, *, raw: bool = False) -> Any:
        return self._one_row(SQL_MOST_VIEWED, (limit,), raw)

    def _one_row(self, sql: str, params: Any, raw: bool) -> Any:
        with self._reader() as conn:  # one statement: its own snapshot
            (text,) = conn.execute(sql, params).fetchone()
        return orjson.Fragment(text) if raw else orjson.loads(text)

    def dashboard_stats(self, dashboard_id: str, today: date) -> dict:
        dashboard_id = dashboard_id.lower()
        last_day = day_number(today)
        first_day = last_day - 29
        with self._reader() as conn:
            totals, days = conn.execute(SQL_STATS, {"id": dashboard_id, "first": first_day,
                                                    "last": last_day}).fetchone()
        per_day = dict(orjson.loads(days))
        daily = [{"date": text, "views": per_day.get(d, 0)}
                 for d, text in zip(range(first_day, last_day + 1), _day_texts(first_day, last_day))]
        views_30 = sum(item["views"] for item in daily)
        views_7 = sum(item["views"] for item in daily[-7:])
        view_count, unique, first_ms, last_ms = orjson.loads(totals) if totals else (0, 0, None, None)
        return {
            "dashboardId": dashboard_id,
            "totalViews": view_count,
            "uniqueViewers": unique,
            "viewsLast7Days": views_7,
            "viewsLast30Days": views_30,
            "firstViewedAt": iso_ms(first_ms) if first_ms is not None else None,
            "lastViewedAt": iso_ms(last_ms) if last_ms is not None else None,
            "dailyViews": daily,
        }

    def audit_logs(self, target_type: str, target_id: str, page: int, page_size: int,
                   filters: AuditLogFilter, *, raw: bool = False) -> Page:
        if page < 1 or page_size < 1:
            raise ValueError("page and page_size start at 1")
        params = audit_list_params(target_type, target_id, filters)
        params["limit"], params["offset"] = page_size, (page - 1) * page_size
        with self._reader() as conn:  # one statement: one snapshot for the page and its total
            total, items = conn.execute(audit_page_sql(filters), params).fetchone()
        return Page(items=orjson.Fragment(items) if raw else orjson.loads(items), total=total)

    def audit_log(self, audit_log_id: str, *, raw: bool = False) -> Any:
        with self._reader() as conn:  # one statement: its own snapshot
            row = conn.execute(SQL_AUDIT_BY_ID, (audit_log_id.lower(),)).fetchone()
        if row is None:
            return None
        return orjson.Fragment(row[0]) if raw else orjson.loads(row[0])

    # -- writes ----------------------------------------------------------------------------------------

    def record_view(self, dashboard_id: str, user: dict, at: datetime) -> dict:
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        view = _PendingView(dashboard_id.lower(), user["id"].lower(), user["email"], to_ms(at),
                            object_id(at), object_id(at))
        ring = self._ring
        if ring is not None and self._append(view) is not None:
            return view.outcome()

        def known() -> bool:  # under the ring's lock: does the ring count this dashboard (or may it)?
            return self._slots_of != (ring.ident, ring.layout) or view.dashboard_id in self._slots

        self._write_views([view], recount=known if ring is not None else None)
        return view.outcome()

    def _write_views(self, views: list[_PendingView], recount: Callable[[], bool] | None = None) -> None:
        """Write views into SQLite at once, each with its own count: the slow path of record_view (and
        bench/write_cost.py's batches). One failing view does not fail the others."""
        with self._write(recount) as conn:
            self._finish(conn, views, self._insert_views(conn, views))
        if self._checkpointer is not None:
            self._checkpointer.after_turn(len(views))

    def _insert_views(self, conn: sqlite3.Connection, views: list[_PendingView]) -> dict[int, BaseException]:
        """Insert `views`; {index: exception} of those not written. One failing view must not fail the
        others: if the batch fails, each is written alone (still in this turn)."""
        try:
            conn.execute(_sql_inbox_batch(len(views)), self._batch_params(views))
            return {}
        except Exception as exc:  # noqa: BLE001 - given to the view's own caller
            if len(views) == 1:
                return {0: _store_error(exc)}
        errors = {}
        for i, view in enumerate(views):
            try:
                conn.execute(_sql_inbox_batch(1), self._batch_params([view]))
            except Exception as exc:  # noqa: BLE001 - given to the view's own caller
                errors[i] = _store_error(exc)
        return errors

    @staticmethod
    def _batch_params(views: list[_PendingView]) -> list:
        params: list = []
        for v in views:
            params += (v.view_id, v.dashboard_id, v.user_id, v.user_email, v.ms, v.ms // MS_PER_DAY, iso_ms(v.ms),
                       v.audit_id)
        return params

    @staticmethod
    def _finish(conn: sqlite3.Connection, views: list[_PendingView], errors: dict[int, BaseException]) -> None:
        """Hand each view its ViewEvent (or its exception). The inbox is connection-local (TEMP): reading and
        emptying it takes no lock on the database file. Its last rows are this batch's written views, in
        order (rows left by an interrupted earlier batch sort before them)."""
        rows = sorted(conn.execute(_SQL_INBOX_TAKE).fetchall())
        written = [view for i, view in enumerate(views) if i not in errors]
        counts = [count for _, count in rows[len(rows) - len(written):]] if written else []
        for i, view in enumerate(views):
            if i in errors:
                view.failed(errors[i])
        for view, count in zip(written, counts):
            view.done(count)

    def write_stats(self) -> dict | None:
        """This process's folds of the view ring on a file (None in memory): turns (folds), views, max_batch,
        wait_s (waiting for the turn), hold_s (holding it), checkpoints and checkpoint_turn_s (their short
        passes inside a turn). For bench/write_cost.py."""
        if self._turns is None:
            return None
        stats = self._turns.stats()
        if self._checkpointer is not None:
            stats.update(checkpoints=self._checkpointer.runs, checkpoint_turn_s=self._checkpointer.turn_s)
        return stats

    def version(self) -> int | None:
        """Moves with every write of the data, by any process sharing the file; None while one is under way
        (mock_server.store.changes). A memory load: cheap enough to ask at every request."""
        return self._changes.value()

    def fold_pending(self) -> None:
        """Write the views still in the ring into the database file, so that the file alone holds every view
        (on reopening, the ring's views are written anyway). At close() and at interpreter exit: a gunicorn
        worker stops without closing its app's store."""
        if self._closed or self._ring is None or not self._ring.pending():
            return
        try:
            self._fold()
        except (sqlite3.Error, StoreError, OSError):
            pass  # they stay in the ring, which the next start writes

    def close(self) -> None:
        if self._folder is not None:
            self._folder.close()
        self.fold_pending()
        self._closed = True
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._conns.close()
        if self._turns is not None:
            self._turns.close()
        self._changes.close()
        if self._ring is not None:
            self._ring.close()

    # -- scenarios (mock_server.scenarios): which one the data is, and a generation every process follows --

    def load_scenario(self, dataset: Dataset, name: str) -> int:
        def work(conn: sqlite3.Connection) -> int:
            self._load(conn, dataset)
            return self._set_scenario(conn, name)

        return int(self._with_write_lock(work))

    def claim_scenario(self, name: str) -> tuple[str, int]:
        def work(conn: sqlite3.Connection) -> tuple[str, int]:
            conn.executemany("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                             [("scenario", name), ("generation", "0")])
            return self._scenario_row(conn)

        return self._with_write_lock(work)  # type: ignore[return-value]

    def scenario_meta(self) -> tuple[str | None, int]:
        with self._conns.connection() as conn:  # autocommit: one statement needs no snapshot
            return self._scenario_row(conn)

    @staticmethod
    def _scenario_row(conn: sqlite3.Connection) -> tuple[str | None, int]:
        rows = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('scenario', 'generation')").fetchall())
        return rows.get("scenario"), int(rows.get("generation", 0))

    @staticmethod
    def _set_scenario(conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        generation = (int(row[0]) if row else 0) + 1
        conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         [("scenario", name), ("generation", str(generation))])
        return generation


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction: BEGIN IMMEDIATE takes the write lock before anything is read (read-modify-write
    is atomic across processes); committed at the end, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _fold_at_exit(ref: weakref.ref) -> None:
    store = ref()
    if store is not None:
        store.fold_pending()


def _store_error(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.IntegrityError) and "before any dataset" in str(exc):
        return StoreError("record_view before any dataset was loaded")
    return exc


def _audit_row(entry: dict) -> tuple:
    oid = entry["_id"].lower()
    if oid != entry["_id"]:
        entry = {**entry, "_id": oid}
    return (oid, entry["type"], _target_key(entry["type"], entry["target_id"]), entry["action"],
            entry["user_id"].lower(), ms_from_iso(entry["createdAt"]), orjson.dumps(entry))


def open_store(db_path: str | None, *, synchronous: str = "NORMAL",
               busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
               load_wait_s: float = DEFAULT_LOAD_WAIT_S) -> SQLiteStore:
    """The SQLite store: None = in memory (private to this store, shared by its threads); a path = that file
    in WAL mode, shared by every process that opens it. Raises StoreError if the file is not usable."""
    return SQLiteStore(db_path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms,
                       load_wait_s=load_wait_s)
