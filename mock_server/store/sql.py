"""The SQLite store's SQL: the schema, the one definition of what a view writes, the reads and the bulk load.

Reads must cost the same at 6 000 and at 1 000 000 views. So the figures the API shows are aggregates
kept up to date by each view, in the view's own transaction: per dashboard (total, unique viewers,
first/last view), per (user, dashboard) (the user's last view), per (dashboard, UTC day) (daily series,
7/30-day sums) and per audit target (entry counts by action and user). Every hot query reads an index in
the order it returns rows and stops at LIMIT; tests/store/test_sqlite.py checks the plans with EXPLAIN
QUERY PLAN. Plans are pinned (INDEXED BY, CROSS JOIN) rather than left to the planner.

The event logs (views, audit entries) are kept too, and a load builds the aggregates from them (one GROUP
BY per aggregate). They are most of the database, so their rows are narrow: a target (type, id) and a user
id are small integers (`targets`, `people`), an event's ObjectId is its 12 bytes (a BLOB sorts as its lower-case
hex does, so the lists' `id DESC` is unchanged), and an audit entry is its id, instants and keys plus two
shared documents, the entry without its own id and instants (`bodies`) and its details (`details`): a
million entries hold a few thousand of each. Together they give back the JSON document that was loaded,
key for key and in its order (store/sqlite_rows.py makes the rows, audit_doc() the document). An in-memory
database of 1M views and 1M entries went from 1.1 GB (a JSON copy of each entry, text keys and ids in five
indexes) to 235 MB.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from mock_server.store.base import AuditLogFilter
from mock_server.timestamps import MS_PER_DAY, to_ms

SCHEMA_VERSION = "5"  # 3: no dashboards.head; 4: sessions; 5: narrow event rows (integer keys, shared bodies,
# ObjectIds as their 12 bytes)

_UUID_TYPES = ("dashboard", "tool_mapping")  # target ids that are UUIDs, stored lower-case

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, role TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dashboards (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT, owner_id TEXT NOT NULL,
    tags TEXT NOT NULL, kpi_count INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mappings (
    id TEXT PRIMARY KEY, tool TEXT NOT NULL, name TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS targets (
    tid INTEGER PRIMARY KEY, type TEXT NOT NULL, target_id TEXT NOT NULL, UNIQUE (type, target_id));
CREATE TABLE IF NOT EXISTS people (pid INTEGER PRIMARY KEY, user_id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS bodies (bid INTEGER PRIMARY KEY, body BLOB NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS details (did INTEGER PRIMARY KEY, body BLOB NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS views (
    id BLOB NOT NULL, tid INTEGER NOT NULL, pid INTEGER NOT NULL, viewed_ms INTEGER NOT NULL);
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
    seq INTEGER PRIMARY KEY, id BLOB NOT NULL, tid INTEGER NOT NULL, action TEXT NOT NULL,
    pid INTEGER NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER, bid INTEGER NOT NULL, did INTEGER);
CREATE TABLE IF NOT EXISTS audit_counts (
    tid INTEGER NOT NULL, action TEXT NOT NULL, pid INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (tid, action, pid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
    name TEXT PRIMARY KEY, incarnation TEXT NOT NULL, scenario TEXT, now_ms INTEGER,
    created_ms INTEGER NOT NULL, last_used_ms INTEGER NOT NULL) WITHOUT ROWID;
"""

# Secondary indexes, dropped and rebuilt around a bulk load (building once is much faster than updating
# them row by row). The orders match the ORDER BY clauses below exactly.
INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS audit_logs_id ON audit_logs (id)",
    "CREATE INDEX IF NOT EXISTS audit_logs_target ON audit_logs (tid, created_ms, id)",
    "CREATE INDEX IF NOT EXISTS audit_logs_target_action ON audit_logs (tid, action, created_ms, id)",
    "CREATE INDEX IF NOT EXISTS audit_logs_target_user ON audit_logs (tid, pid, created_ms, id)",
    "CREATE INDEX IF NOT EXISTS audit_logs_target_user_action ON audit_logs (tid, pid, action, created_ms, id)",
    ("CREATE INDEX IF NOT EXISTS dashboard_totals_rank"
     " ON dashboard_totals (known, view_count DESC, last_ms DESC, dashboard_id)"),
    "CREATE INDEX IF NOT EXISTS user_dashboard_recent ON user_dashboard (user_id, known, last_ms DESC, dashboard_id)",
)
INDEX_NAMES = tuple(stmt.split(" IF NOT EXISTS ")[1].split()[0] for stmt in INDEXES)

DATA_TABLES = ("users", "dashboards", "mappings", "targets", "people", "bodies", "details", "views",
               "dashboard_totals", "user_dashboard", "dashboard_days", "audit_logs", "audit_counts")

# -- a view: the ONE definition of what it writes ---------------------------------------------------------
#
# record_view inserts one row into a per-connection TEMP inbox; the inbox's TEMP trigger writes the event,
# every aggregate and the `view` audit entry, then empties the inbox. Both are made on every connection
# (VIEW_APPLY, run when it opens); they are TEMP, so the file's schema is unchanged and loads, which insert
# into the main tables, never fire them. Unqualified names in a TEMP trigger resolve to main.
# record_view runs, in one BEGIN IMMEDIATE transaction: INSERT_VIEW, then VIEW_COUNT (the new total).
VIEW_APPLY = (
    """CREATE TEMP TABLE IF NOT EXISTS view_inbox (
        seq INTEGER PRIMARY KEY, view_id BLOB NOT NULL, dashboard_id TEXT NOT NULL, user_id TEXT NOT NULL,
        user_email TEXT NOT NULL, ms INTEGER NOT NULL, day INTEGER NOT NULL, audit_id BLOB NOT NULL,
        body TEXT)""",
    """CREATE TEMP TRIGGER IF NOT EXISTS view_inbox_apply AFTER INSERT ON view_inbox BEGIN
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
        INSERT OR IGNORE INTO targets (type, target_id) VALUES ('dashboard', NEW.dashboard_id);
        INSERT OR IGNORE INTO people (user_id) VALUES (NEW.user_id);
        INSERT INTO views (id, tid, pid, viewed_ms)
        VALUES (NEW.view_id, (SELECT tid FROM targets WHERE type = 'dashboard' AND target_id = NEW.dashboard_id),
                (SELECT pid FROM people WHERE user_id = NEW.user_id), NEW.ms);
        INSERT INTO dashboard_days (dashboard_id, day, views) VALUES (NEW.dashboard_id, NEW.day, 1)
        ON CONFLICT (dashboard_id, day) DO UPDATE SET views = views + 1;
        -- the audit document without its id and instants (audit_doc() puts them back at these nulls), field
        -- order as datagen writes it; an unknown dashboard has no name to show, so no `dashboard` reference.
        -- Made once, here, for the two statements below that read it.
        UPDATE view_inbox SET body = (
            SELECT CASE WHEN name IS NULL THEN
                   json_object('_id', NULL, 'user_id', NEW.user_id, 'user_email', NEW.user_email,
                               'type', 'dashboard', 'action', 'view', 'target_id', NEW.dashboard_id,
                               'account', account, 'createdAt', NULL, 'updatedAt', NULL, '__v', 0)
               ELSE
                   json_object('_id', NULL, 'user_id', NEW.user_id, 'user_email', NEW.user_email,
                               'type', 'dashboard', 'action', 'view', 'target_id', NEW.dashboard_id,
                               'account', account,
                               'dashboard', json_object('dashboardId', NEW.dashboard_id, 'name', name),
                               'createdAt', NULL, 'updatedAt', NULL, '__v', 0)
               END
            FROM (SELECT (SELECT value FROM meta WHERE key = 'account') AS account,
                         (SELECT name FROM dashboards WHERE id = NEW.dashboard_id) AS name))
        WHERE seq = NEW.seq;
        INSERT OR IGNORE INTO bodies (body) SELECT body FROM view_inbox WHERE seq = NEW.seq;
        INSERT INTO audit_logs (id, tid, action, pid, created_ms, updated_ms, bid, did)
        VALUES (NEW.audit_id,
                (SELECT tid FROM targets WHERE type = 'dashboard' AND target_id = NEW.dashboard_id), 'view',
                (SELECT pid FROM people WHERE user_id = NEW.user_id), NEW.ms, NEW.ms,
                (SELECT bid FROM bodies WHERE body = (SELECT body FROM view_inbox WHERE seq = NEW.seq)), NULL);
        INSERT INTO audit_counts (tid, action, pid, n)
        VALUES ((SELECT tid FROM targets WHERE type = 'dashboard' AND target_id = NEW.dashboard_id), 'view',
                (SELECT pid FROM people WHERE user_id = NEW.user_id), 1)
        ON CONFLICT (tid, action, pid) DO UPDATE SET n = n + 1;
        DELETE FROM view_inbox WHERE seq = NEW.seq;
    END""",
)

INSERT_VIEW = """
INSERT INTO view_inbox (view_id, dashboard_id, user_id, user_email, ms, day, audit_id)
VALUES (?, ?, ?, ?, ?, ?, ?)"""

VIEW_COUNT = "SELECT view_count FROM dashboard_totals WHERE dashboard_id = ?"

# -- reads -------------------------------------------------------------------------------------------------

# A DashboardSummary's columns: the dashboard, its owner, then the two figures that move with each view.
_SUMMARY = "d.id, d.name, d.description, u.id, u.email, u.name, d.tags, d.kpi_count, t.view_count"

MOST_VIEWED = f"""
SELECT {_SUMMARY}, t.last_ms
FROM dashboard_totals AS t INDEXED BY dashboard_totals_rank
CROSS JOIN dashboards AS d CROSS JOIN users AS u
WHERE t.known = 1 AND d.id = t.dashboard_id AND u.id = d.owner_id
ORDER BY t.view_count DESC, t.last_ms DESC, t.dashboard_id
LIMIT ?"""

RECENTLY_VIEWED = f"""
SELECT {_SUMMARY}, r.last_ms
FROM user_dashboard AS r INDEXED BY user_dashboard_recent
CROSS JOIN dashboards AS d CROSS JOIN users AS u CROSS JOIN dashboard_totals AS t
WHERE r.user_id = ? AND r.known = 1 AND d.id = r.dashboard_id AND u.id = d.owner_id
  AND t.dashboard_id = r.dashboard_id
ORDER BY r.last_ms DESC, r.dashboard_id
LIMIT ?"""

STATS_TOTALS = """
SELECT view_count, unique_viewers, first_ms, last_ms FROM dashboard_totals WHERE dashboard_id = :id"""
STATS_DAYS = """
SELECT day, views FROM dashboard_days WHERE dashboard_id = :id AND day BETWEEN :first AND :last"""

# An audit entry's row as audit_doc() reads it: id, instants, the shared body and details.
_AUDIT_ROW = "a.id, a.created_ms, a.updated_ms, b.body, x.body"
_AUDIT_JOIN = "CROSS JOIN bodies AS b LEFT JOIN details AS x ON x.did = a.did"

AUDIT_BY_ID = f"""
SELECT {_AUDIT_ROW} FROM audit_logs AS a INDEXED BY audit_logs_id {_AUDIT_JOIN}
WHERE a.id = ? AND b.bid = a.bid"""


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
    where = ["tid = (SELECT tid FROM targets WHERE type = :type AND target_id = :target)"]
    if action:
        where.append("action = :action")
    if user:
        where.append("pid = (SELECT pid FROM people WHERE user_id = :user)")
    if lo:
        where.append("created_ms >= :lo")
    if hi:
        where.append("created_ms <= :hi")
    condition = " AND ".join(where)
    rows = (f"SELECT {_AUDIT_ROW} FROM audit_logs AS a INDEXED BY {index} {_AUDIT_JOIN}"
            f" WHERE {' AND '.join('a.' + w for w in where)} AND b.bid = a.bid"
            " ORDER BY a.created_ms DESC, a.id DESC LIMIT :limit OFFSET :offset")
    if lo or hi:
        # A time window cannot use the per-target counters: count the index range (what was asked for).
        return rows, f"SELECT count(*) FROM audit_logs INDEXED BY {index} WHERE {condition}", False
    return rows, f"SELECT coalesce(sum(n), 0) FROM audit_counts WHERE {condition}", True


def audit_list_params(target_type: str, target_id: str, filters: AuditLogFilter) -> dict[str, Any]:
    params: dict[str, Any] = {"type": target_type, "target": target_key(target_type, target_id)}
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


def target_key(target_type: str, target_id: str) -> str:
    return target_id.lower() if target_type in _UUID_TYPES else target_id


# -- the bulk load ----------------------------------------------------------------------------------------

INSERT_USER = "INSERT INTO users (id, email, name, role) VALUES (?, ?, ?, ?)"
INSERT_OWNER = "INSERT OR IGNORE INTO users (id, email, name, role) VALUES (?, ?, ?, NULL)"  # not in `users`
INSERT_DASHBOARD = """
INSERT INTO dashboards (id, name, description, owner_id, tags, kpi_count) VALUES (?, ?, ?, ?, ?, ?)"""
INSERT_MAPPING = "INSERT INTO mappings (id, tool, name) VALUES (?, ?, ?)"
INSERT_TARGET = "INSERT INTO targets (tid, type, target_id) VALUES (?, ?, ?)"
INSERT_PERSON = "INSERT INTO people (pid, user_id) VALUES (?, ?)"
INSERT_BODY = "INSERT INTO bodies (bid, body) VALUES (?, ?)"
INSERT_DETAILS = "INSERT INTO details (did, body) VALUES (?, ?)"
INSERT_VIEW_EVENT = "INSERT INTO views (id, tid, pid, viewed_ms) VALUES (?, ?, ?, ?)"
INSERT_AUDIT = """
INSERT INTO audit_logs (id, tid, action, pid, created_ms, updated_ms, bid, did) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""

# The aggregates of a freshly loaded event log: a few GROUP BYs instead of a million upserts. They give
# what VIEW_APPLY's upserts give view by view (tests/store/test_contract.py compares both with a model).
# Each GROUP BY over a million rows is a sort, the larger part of a load, so there are as few as can be, and
# they sort small integers (the text ids are joined to the few groups afterwards): the views are grouped
# once per (user, dashboard) into a TEMP table, from which the per-user rows and the per-dashboard totals
# are both read (a dashboard's unique viewers are its pairs); the audit counts are built after the indexes
# (BUILD_AFTER_INDEXES), grouped in the order of audit_logs_target_user_action so that they stream out of
# that covering index instead of being sorted again.
BUILD_AGGREGATES = (
    """CREATE TEMP TABLE load_pairs AS
       SELECT p.user_id AS user_id, t.target_id AS dashboard_id,
              t.target_id IN (SELECT id FROM dashboards) AS known, g.n, g.first_ms, g.last_ms
       FROM (SELECT pid, tid, count(*) AS n, min(viewed_ms) AS first_ms, max(viewed_ms) AS last_ms
             FROM views GROUP BY pid, tid) AS g
       CROSS JOIN people AS p CROSS JOIN targets AS t
       WHERE p.pid = g.pid AND t.tid = g.tid""",
    """INSERT INTO user_dashboard (user_id, dashboard_id, known, last_ms)
       SELECT user_id, dashboard_id, known, last_ms FROM temp.load_pairs""",
    """INSERT INTO dashboard_totals (dashboard_id, known, view_count, unique_viewers, first_ms, last_ms)
       SELECT dashboard_id, max(known), sum(n), count(*), min(first_ms), max(last_ms)
       FROM temp.load_pairs GROUP BY dashboard_id""",
    "DROP TABLE temp.load_pairs",
    f"""INSERT INTO dashboard_days (dashboard_id, day, views)
       SELECT t.target_id, g.day, g.n
       FROM (SELECT tid, (viewed_ms - ((viewed_ms % {MS_PER_DAY}) + {MS_PER_DAY}) % {MS_PER_DAY}) / {MS_PER_DAY}
                    AS day, count(*) AS n
             FROM views GROUP BY 1, 2) AS g
       CROSS JOIN targets AS t WHERE t.tid = g.tid""",
)
BUILD_AFTER_INDEXES = (
    """INSERT INTO audit_counts (tid, action, pid, n)
       SELECT tid, action, pid, count(*)
       FROM audit_logs INDEXED BY audit_logs_target_user_action GROUP BY tid, pid, action""",
)

LOADED = "SELECT 1 FROM meta WHERE key = 'loaded'"
SCENARIO = "SELECT key, value FROM meta WHERE key IN ('scenario', 'generation')"
SET_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"
CLAIM_META = "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)"
