"""The PostgreSQL store's bulk load (store/postgres.py): COPY of a Dataset, aggregates and indexes built after."""

from __future__ import annotations

from typing import Any

import orjson

from mock_server.store.base import Dataset, StoreError
from mock_server.store.postgres_sql import (_DATA_TABLES, _INDEX_NAMES, _INDEXES, _SQL_BUILD_AGGREGATES,
                                            _target_key)
from mock_server.timestamps import ms_from_iso


def bulk_insert(conn, dataset: Dataset) -> None:
    """Replace the data with `dataset` inside the caller's transaction: COPY the events, then build the
    aggregates and indexes from them (once, not row by row)."""
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
