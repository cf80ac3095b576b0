"""The session registry: which sessions exist, in the database every worker and replica shares.

One table (`sessions`) in the default store's database. Each claim is one write transaction of that database
(SQLite's BEGIN IMMEDIATE, PostgreSQL's transaction under an advisory lock), so the count against the limit,
the eviction and the insert are atomic across processes: two workers meeting a new session at once make it
once. A session's data lives elsewhere (a sibling store: mock_server.sessions); the registry only says that it
exists, which incarnation it is (a new one after a delete), its scenario and its frozen `now`, and when it was
made and last used.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any


class SessionLimitError(RuntimeError):
    """Every live session was used within the busy window: none may be dropped for a new one."""

    def __init__(self, limit: int, busy_s: float) -> None:
        super().__init__(f"{limit} sessions are live and each was used in the last {busy_s:g} s")
        self.limit, self.busy_s = limit, busy_s


@dataclass(frozen=True)
class SessionRecord:
    name: str
    incarnation: str  # new at every creation: a worker holding an older one knows its copy is gone
    scenario: str | None  # None: the scenario the server started with
    now_ms: int | None  # a frozen clock (and the data's anchor), or None for the server's clock
    created_ms: int
    last_used_ms: int


@dataclass(frozen=True)
class Claim:
    record: SessionRecord
    created: bool
    dropped: list[SessionRecord]  # removed from the registry by this claim (expired, or evicted): drop their data


_COLUMNS = "name, incarnation, scenario, now_ms, created_ms, last_used_ms"

Transaction = Callable[[], AbstractContextManager[Any]]


class SessionTable:
    """The registry over a DB-API connection factory. `write()` opens one write transaction that serialises
    claims across processes; `read()` a connection for one statement. `mark` is the driver's placeholder."""

    def __init__(self, write: Transaction, read: Transaction, mark: str = "?") -> None:
        self._write, self._read, self._mark = write, read, mark

    def _sql(self, text: str) -> str:
        return text.replace("?", self._mark)

    def claim(self, name: str, *, at_ms: int, limit: int, ttl_ms: int, busy_ms: int, create: bool = True,
              scenario: str | None = None, now_ms: int | None = None) -> Claim | None:
        """Mark `name` used at `at_ms`, making it if it does not exist (unless not `create`: then None).
        Sessions idle for `ttl_ms` are removed first; past `limit` the least recently used session idle for
        at least `busy_ms` is removed, or SessionLimitError. `scenario` and `now_ms` apply to a new session."""
        with self._write() as conn:
            dropped = self._expire(conn, at_ms, ttl_ms)
            row = conn.execute(self._sql(f"SELECT {_COLUMNS} FROM sessions WHERE name = ?"), (name,)).fetchone()
            if row is not None:
                conn.execute(self._sql("UPDATE sessions SET last_used_ms = ? WHERE name = ?"), (at_ms, name))
                return Claim(SessionRecord(*row[:5], at_ms), False, dropped)
            if not create:
                return None
            (count,) = conn.execute("SELECT COUNT(*) FROM sessions").fetchone()
            if count >= limit:
                victim = conn.execute(self._sql(
                    f"SELECT {_COLUMNS} FROM sessions WHERE last_used_ms <= ? ORDER BY last_used_ms, name LIMIT 1"),
                    (at_ms - busy_ms,)).fetchone()
                if victim is None:
                    raise SessionLimitError(limit, busy_ms / 1000)
                conn.execute(self._sql("DELETE FROM sessions WHERE name = ?"), (victim[0],))
                dropped.append(SessionRecord(*victim))
            record = SessionRecord(name, uuid.uuid4().hex, scenario, now_ms, at_ms, at_ms)
            conn.execute(self._sql(f"INSERT INTO sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"),
                         (record.name, record.incarnation, record.scenario, record.now_ms, record.created_ms,
                          record.last_used_ms))
            return Claim(record, True, dropped)

    def _expire(self, conn, at_ms: int, ttl_ms: int) -> list[SessionRecord]:
        cutoff = at_ms - ttl_ms
        records = [SessionRecord(*row) for row in conn.execute(
            self._sql(f"SELECT {_COLUMNS} FROM sessions WHERE last_used_ms < ? ORDER BY name"), (cutoff,)).fetchall()]
        if records:
            conn.execute(self._sql("DELETE FROM sessions WHERE last_used_ms < ?"), (cutoff,))
        return records

    def expire(self, at_ms: int, ttl_ms: int) -> list[SessionRecord]:
        """Remove the sessions idle for `ttl_ms`; what they were."""
        with self._write() as conn:
            return self._expire(conn, at_ms, ttl_ms)

    def get(self, name: str) -> SessionRecord | None:
        with self._read() as conn:
            row = conn.execute(self._sql(f"SELECT {_COLUMNS} FROM sessions WHERE name = ?"), (name,)).fetchone()
        return SessionRecord(*row) if row is not None else None

    def touch(self, name: str, at_ms: int) -> bool:
        """Mark a session used; False if it no longer exists."""
        with self._write() as conn:
            cursor = conn.execute(self._sql("UPDATE sessions SET last_used_ms = ? WHERE name = ?"), (at_ms, name))
            return cursor.rowcount > 0

    def update(self, name: str, *, scenario: str | None) -> None:
        """Record the scenario a session switched to (a worker opening it later starts from that one)."""
        with self._write() as conn:
            conn.execute(self._sql("UPDATE sessions SET scenario = ? WHERE name = ?"), (scenario, name))

    def all(self) -> list[SessionRecord]:
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM sessions ORDER BY name").fetchall()
        return [SessionRecord(*row) for row in rows]

    def delete(self, name: str) -> SessionRecord | None:
        """Remove a session from the registry; what it was, or None if there was none."""
        with self._write() as conn:
            row = conn.execute(self._sql(f"SELECT {_COLUMNS} FROM sessions WHERE name = ?"), (name,)).fetchone()
            if row is not None:
                conn.execute(self._sql("DELETE FROM sessions WHERE name = ?"), (name,))
            return SessionRecord(*row) if row is not None else None
