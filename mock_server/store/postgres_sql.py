"""The PostgreSQL store's schema and statements (store/postgres.py runs them): the same tables, aggregates and
orders as SQLite's (store/sql.py), in PostgreSQL's dialect, and the one definition of what a view writes
(the PL/pgSQL function insights_mock_record_view)."""

from __future__ import annotations

import zlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mock_server.store.base import AuditLogFilter
from mock_server.timestamps import MS_PER_DAY, iso_ms

SCHEMA_VERSION = "2"  # 2: sessions
SCHEMA_LOCK = 0x1A5C_0001  # pg_advisory_xact_lock keys: creating the schema
LOAD_LOCK = 0x1A5C_0002  # a load (exclusive) against views (shared)
SESSIONS_LOCK = 0x1A5C_0004  # a claim of the session registry
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
    f"""CREATE TABLE IF NOT EXISTS sessions (
        name {_KEY} PRIMARY KEY, incarnation text NOT NULL, scenario text, now_ms bigint,
        created_ms bigint NOT NULL, last_used_ms bigint NOT NULL)""",
)
_OUR_TABLES = ("meta", "store_version", "users", "dashboards", "mappings", "views", "dashboard_totals",
               "user_dashboard", "dashboard_days", "audit_logs", "audit_counts", "sessions")
_DATA_TABLES = _OUR_TABLES[2:-1]  # what a load replaces (not the session registry)

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
_SQL_CREATE_RECORD_VIEW_TEMPLATE = f"""
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
    PERFORM pg_advisory_xact_lock_shared(__LOAD_LOCK__);  -- a load in progress finishes first
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


def create_record_view_sql(load_lock: int) -> str:
    """The function's definition for a schema whose loads take the advisory lock `load_lock`."""
    return _SQL_CREATE_RECORD_VIEW_TEMPLATE.replace("__LOAD_LOCK__", str(load_lock))


def load_lock_key(schema: str | None) -> int:
    """The advisory lock a load of `schema` takes (None: the database's own schema, LOAD_LOCK). One per
    schema, so that a session's load never makes the views of another session wait."""
    if schema is None:
        return LOAD_LOCK
    return (0x1A5C_0003 << 32) | zlib.crc32(schema.encode())


def sibling_schema(key: str) -> str:
    """The schema of a session's (or template's) store: a quoted identifier, so any session name fits."""
    return f"im_{key}"


def copy_statements(source_schema: str | None) -> list[str]:
    """Fill this schema, never loaded (so its tables are empty), with the data of `source_schema`, inside the
    caller's transaction. DELETE, not TRUNCATE: on empty tables it costs nothing, where TRUNCATE makes new
    files for every table and index (45 ms of a session's creation here). The indexes stay: updating them
    for a few thousand rows costs less than dropping and building them again."""
    source = '"' + source_schema.replace('"', '""') + '"' if source_schema else "public"
    return [*(f"DELETE FROM {table}" for table in _DATA_TABLES),
            *(f"INSERT INTO {table} OVERRIDING SYSTEM VALUE SELECT * FROM {source}.{table}" for table in _DATA_TABLES),
            # the copied entries keep their seq; the next view's entry must come after them
            "SELECT setval(pg_get_serial_sequence('audit_logs', 'seq'), coalesce(max(seq), 0) + 1, false)"
            " FROM audit_logs",
            f"INSERT INTO meta (key, value) SELECT key, value FROM {source}.meta WHERE key IN ('account', 'loaded')"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            "ANALYZE " + ", ".join(_DATA_TABLES)]


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
