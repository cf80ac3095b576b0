"""The SQLite store's event logs in narrow rows: a load turns views and audit entries into them, audit_doc()
turns an entry's row back into the document it was loaded as.

A view is (id, tid, pid, viewed_ms); an audit entry is (id, tid, action, pid, created_ms, updated_ms, bid,
did). tid and pid are the small integers of the target (type, id) and of the user id (tables `targets`,
`people`); bid is the entry's `body`, the document with null in place of its `_id`, of `createdAt`, of an
`updatedAt` kept in updated_ms and of its `details`, which have their own table (did). A million generated
entries share a few thousand bodies and details (a user's views of one dashboard have one body), so an entry
costs its id, two instants and a few integers instead of a JSON copy of itself. Ids are ObjectIds (the spec's
pattern, which scenarios check) kept as their 12 bytes: oid_bytes() refuses any other id with a StoreError.

Nothing is lost: an instant that iso_ms() would not write back exactly (another form, or not a string) stays
in the body as it came, and so does a null `details`; keys keep their order. The `view` entries a
record_view writes make their body in SQL (store/sql.py, VIEW_APPLY) with the same placeholders.
"""

from __future__ import annotations

import sqlite3

import orjson

from mock_server.bulk import no_cyclic_gc
from mock_server.store import sql
from mock_server.store.base import Dataset, StoreError
from mock_server.timestamps import canonical_ms, iso_ms, ms_from_iso


def oid_bytes(object_id: str, what: str) -> bytes:
    """The 12 bytes of an ObjectId (24 hex digits, either case)."""
    if len(object_id) == 24:
        try:
            return bytes.fromhex(object_id)
        except ValueError:
            pass
    raise StoreError(f"{what} {object_id!r} is not an ObjectId (24 hexadecimal digits)")


def audit_doc(row: tuple) -> dict:
    """The document of an audit row read as sql._AUDIT_ROW: (id, created_ms, updated_ms, body, details)."""
    oid, created_ms, updated_ms, body, details = row
    doc = orjson.loads(body)
    doc["_id"] = oid.hex()
    if doc.get("createdAt", "") is None:
        doc["createdAt"] = iso_ms(created_ms)
    if updated_ms is not None:
        doc["updatedAt"] = iso_ms(updated_ms)
    if details is not None:
        doc["details"] = orjson.loads(details)
    return doc


class Rows:
    """The rows of one load, and the integers of the targets, people, bodies and details it meets, numbered
    as they are met (the keys tables are written at the end, by write_keys())."""

    def __init__(self) -> None:
        self.targets: dict[tuple[str, str], int] = {}
        self.people: dict[str, int] = {}
        self.bodies: dict[bytes, int] = {}
        self.details: dict[bytes, int] = {}

    def _tid(self, target_type: str, target_id: str) -> int:
        key = (target_type, sql.target_key(target_type, target_id))
        tid = self.targets.get(key)
        if tid is None:
            tid = self.targets[key] = len(self.targets) + 1
        return tid

    def _pid(self, user_id: str) -> int:
        user_id = user_id.lower()
        pid = self.people.get(user_id)
        if pid is None:
            pid = self.people[user_id] = len(self.people) + 1
        return pid

    def view(self, view: dict) -> tuple:
        return (oid_bytes(view["_id"], "view _id"), self._tid("dashboard", view["dashboardId"]), self._pid(view["userId"]),
                ms_from_iso(view["viewedAt"]))

    def audit(self, entry: dict) -> tuple:
        body = dict(entry)  # the caller's entry stays as it is
        body["_id"] = None
        created = entry["createdAt"]
        created_ms = canonical_ms(created)
        if created_ms is None:
            created_ms = ms_from_iso(created)  # another form of an instant: the body keeps it as it came
        else:
            body["createdAt"] = None
        updated_ms = None
        if "updatedAt" in entry:
            updated = entry["updatedAt"]
            updated_ms = created_ms if updated == created and body["createdAt"] is None else canonical_ms(updated)
            if updated_ms is not None:
                body["updatedAt"] = None
        did = None
        if entry.get("details") is not None:
            blob = orjson.dumps(entry["details"])
            did = self.details.get(blob)
            if did is None:
                did = self.details[blob] = len(self.details) + 1
            body["details"] = None
        blob = orjson.dumps(body)
        bid = self.bodies.get(blob)
        if bid is None:
            bid = self.bodies[blob] = len(self.bodies) + 1
        return (oid_bytes(entry["_id"], "audit entry _id"), self._tid(entry["type"], entry["target_id"]), entry["action"],
                self._pid(entry["user_id"]), created_ms, updated_ms, bid, did)

    def write_keys(self, conn: sqlite3.Connection) -> None:
        conn.executemany(sql.INSERT_TARGET, ((tid, t, key) for (t, key), tid in self.targets.items()))
        conn.executemany(sql.INSERT_PERSON, ((pid, user_id) for user_id, pid in self.people.items()))
        conn.executemany(sql.INSERT_BODY, ((bid, blob) for blob, bid in self.bodies.items()))
        conn.executemany(sql.INSERT_DETAILS, ((did, blob) for blob, did in self.details.items()))


def load(conn: sqlite3.Connection, dataset: Dataset) -> None:
    """Replace everything with `dataset`, inside the caller's write transaction: the events, then the
    aggregates built from them and the indexes (building once is much faster than updating them row by
    row; sql.BUILD_AFTER_INDEXES reads an index)."""
    with no_cyclic_gc():
        for name in sql.INDEX_NAMES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        for table in sql.DATA_TABLES:
            conn.execute(f"DELETE FROM {table}")
        conn.executemany(sql.INSERT_USER, ((u["id"].lower(), u["email"], u["name"], u.get("role"))
                                           for u in dataset.users))
        conn.executemany(sql.INSERT_OWNER, ((d["owner"]["userId"].lower(), d["owner"]["email"], d["owner"]["name"])
                                            for d in dataset.dashboards))
        conn.executemany(sql.INSERT_DASHBOARD, (
            (d["dashboardId"].lower(), d["name"], d.get("description"), d["owner"]["userId"].lower(),
             orjson.dumps(list(d.get("tags", []))).decode(), d.get("kpiCount", 0)) for d in dataset.dashboards))
        conn.executemany(sql.INSERT_MAPPING, ((m["mappingId"].lower(), m["tool"], m["name"])
                                              for m in dataset.mappings))
        rows = Rows()
        conn.executemany(sql.INSERT_VIEW_EVENT, map(rows.view, dataset.views))
        conn.executemany(sql.INSERT_AUDIT, map(rows.audit, dataset.audit_logs))
        rows.write_keys(conn)
        for statement in (*sql.BUILD_AGGREGATES, *sql.INDEXES, *sql.BUILD_AFTER_INDEXES):
            conn.execute(statement)
        conn.executemany(sql.SET_META, [("account", dataset.account), ("loaded", "1")])

