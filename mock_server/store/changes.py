"""A count of a database's writes that every process using the file can read for the price of a memory load.

Why: a reader that keeps answers (mock_server.api.cache) must learn, at each request, whether the database
changed since it made them, including by another gunicorn worker. SQLite can say so (`PRAGMA data_version`),
but asking is a statement: a few µs plus a GIL release, which under load cost the mock more than the answer
it saved (bench/README.md, "response cache"). This counter lives in a small file next to the database, mapped in
memory by every process (MAP_SHARED); reading it is a load of 8 bytes.

It is a sequence lock. Writers make the count odd once they hold SQLite's write lock (BEGIN IMMEDIATE
succeeded, so one writer at a time across processes) and even again after their transaction ended,
committed or rolled back (store/connections.py, immediate()):

    value()        even: no write under way since the count was that; None: a write is under way
    with writing(): ...   inside BEGIN IMMEDIATE, around the transaction's work and its COMMIT/ROLLBACK

A reader that saw an even count `v`, read, then sees `v` again read a state no write touched meanwhile.
A writer killed mid-write leaves the count odd: readers keep nothing until the next write, which starts
from odd and ends even again. Writes by other programs than this store are not counted.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager

_COUNT = struct.Struct("=Q")  # native order: only processes of this machine share the file


class Changes:
    """The count of one database: in a file shared by processes (`path`), or in this process's memory."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        if path is None:
            self._buffer: bytearray | mmap.mmap = bytearray(_COUNT.size)
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if os.fstat(fd).st_size < _COUNT.size:
                os.ftruncate(fd, _COUNT.size)  # zeros: a new count (extending never shortens a live one)
            self._buffer = mmap.mmap(fd, _COUNT.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)  # the mapping keeps the file; no lock is held on it

    def value(self) -> int | None:
        count = _COUNT.unpack_from(self._buffer)[0]
        return None if count & 1 else count

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around one write; the caller holds SQLite's write lock (one writer at a time)."""
        count = _COUNT.unpack_from(self._buffer)[0]
        _COUNT.pack_into(self._buffer, 0, count + 1 if count % 2 == 0 else count + 2)  # odd: under way
        try:
            yield
        finally:
            _COUNT.pack_into(self._buffer, 0, _COUNT.unpack_from(self._buffer)[0] + 1)  # even: done

    def close(self) -> None:
        if isinstance(self._buffer, mmap.mmap) and not self._buffer.closed:
            self._buffer.close()
