"""Connections to the store's SQLite database, and its write transaction.

In memory, a store is one connection behind a lock (private to the store, shared by its threads): an
in-memory database lives in its connection. With a file, a pool of connections per process, in WAL mode:
readers never wait for the writer, and every process of the machine opening the file sees each commit at
once. A forked child (a gunicorn worker) opens its own connections: SQLite handles must not cross fork.

Writes are `immediate()` transactions: BEGIN IMMEDIATE takes SQLite's write lock before anything is read
(read-modify-write is atomic across processes); another writer, in this process or another, waits for it in
SQLite's busy handler (busy_timeout). Durability is WAL with synchronous=NORMAL: a transaction is in the
WAL (the OS's page cache) when COMMIT returns, so a process killed with -9 loses no acknowledged write;
only an OS crash or power cut could drop the last commits, which a local mock need not survive (FULL would
add an fsync to every view). SQLite checkpoints the WAL itself (wal_autocheckpoint); `bound_wal()` empties it
when writers that never pause keep it from starting over.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mock_server.store.base import StoreError
from mock_server.store.changes import Changes
from mock_server.store.sql import VIEW_APPLY

WAL_SIZE_LIMIT_BYTES = 16 << 20  # the WAL file shrinks back to this when it starts over (after a big load)
WAL_TRUNCATE_BYTES = 64 << 20  # past this, the writer that just committed empties the WAL (bound_wal)


def is_busy(exc: BaseException) -> bool:
    """SQLite's "database is locked" / "busy": another connection holds a lock longer than busy_timeout."""
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def connect(target: str, *, busy_timeout_ms: int, synchronous: str, wait_s: float) -> sqlite3.Connection:
    """Open and configure a connection (autocommit: transactions are explicit). While another process
    creates the file, switching it to WAL may answer "database is locked" at once, busy timeout or not: that
    is retried for up to `wait_s`."""
    deadline = time.monotonic() + wait_s
    pause = 0.01
    while True:
        try:
            return _connect_once(target, busy_timeout_ms, synchronous)
        except StoreError as exc:
            if not is_busy(exc.__cause__) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def _connect_once(target: str, busy_timeout_ms: int, synchronous: str) -> sqlite3.Connection:
    conn = None
    try:
        conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False,
                               timeout=busy_timeout_ms / 1000)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if target != ":memory:":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{target}: could not switch to WAL mode (got {mode})")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -32000")
        for statement in VIEW_APPLY:
            conn.execute(statement)
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise StoreError(f"{target} cannot be used as an insights-mock database: {exc}") from exc
    return conn


@contextmanager
def immediate(conn: sqlite3.Connection, changes: Changes, wait_s: float) -> Iterator[None]:
    """A write transaction, counted by `changes`. BEGIN IMMEDIATE takes SQLite's write lock (another
    writer waits for it up to busy_timeout, and this retries for up to `wait_s`: a big load may hold it
    longer); once it is held, the count turns odd; COMMIT, or ROLLBACK on any exception, ends the
    transaction, and then the count turns even. SQLite's lock makes this the one writer of the count."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            if time.monotonic() > deadline:
                raise StoreError(f"the database is still locked by another process after {wait_s:.0f} s") from exc
    with changes.writing():
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction: the statements inside it read one state of the database."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def bound_wal(conn: sqlite3.Connection, wal_path: str) -> None:
    """After a commit: keep the WAL file bounded. SQLite's autocheckpoint (a PASSIVE checkpoint after each
    COMMIT once the WAL holds 1000 pages) copies the WAL back into the database, but the WAL starts over only
    if a writer begins once all of it has been copied; with writers that never pause (several workers
    recording views), that hardly ever happens: the WAL grew without end, 443 MB in 10 s of
    bench/write_cost.py's server shape. Past WAL_TRUNCATE_BYTES the writer that just committed runs
    SQLite's TRUNCATE checkpoint: it waits (busy handler) for the writer and the readers, copies what is left
    and empties the WAL (peaks of 20-120 MB over 30 s of the same load). Busy (another connection is
    checkpointing): the next commit tries again. A stat per write; no thread."""
    try:
        size = os.stat(wal_path).st_size
    except FileNotFoundError:
        return
    if size > WAL_TRUNCATE_BYTES:
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise


class SingleConnection:
    """In memory: one connection, one user at a time."""

    def __init__(self, connect_one: Callable[[], sqlite3.Connection]):
        self._conn: sqlite3.Connection | None = connect_one()
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


class Pool:
    """A database file: idle connections reused across threads. A forked child opens its own and never
    touches its parent's (it keeps them, unused and unclosed, so that closing cannot disturb the parent's
    locks)."""

    def __init__(self, connect_one: Callable[[], sqlite3.Connection]):
        self._connect = connect_one
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._idle: list[sqlite3.Connection] = []
        self._owned: list[sqlite3.Connection] = []
        self._inherited: list[sqlite3.Connection] = []
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = self._acquire()
        try:
            yield conn
        finally:
            self._release(conn)

    def _acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            if self._pid != os.getpid():
                self._inherited += self._owned
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

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._pid == os.getpid():
                for conn in self._owned:
                    conn.close()
            self._idle, self._owned = [], []
