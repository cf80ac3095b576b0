"""Views answered but not yet written into SQLite: a ring in a file that every process maps, with the view
count of each known dashboard beside it.

Why: written into SQLite on the request's own path, a view cost the served mock some 400 µs of CPU (the
write turn shared by the workers, the group commit's hand-offs between threads, SQLite's page cache
reloaded after the other worker's turn; bench/README.md, "cpu_split.py"): the view POST stayed near a
quarter of the ceiling. Here a view of a known dashboard takes a short lock, gets its count from the shared
counts and is appended to the ring (about 10 µs); SQLiteStore writes the ring into SQLite in batches, off
the request path (a thread per process), and every read first writes what is still pending, so that each
answer still includes every view answered before it, by any process. The ring is in a file's page cache
(MAP_SHARED): a process killed after answering loses no view (as with WAL at synchronous=NORMAL, only an OS
crash could).

Layout of `<db>-views` (native byte order: only processes of this machine share it):

    0   ident    16 bytes: the ring id that the database's meta row `ring_id` names; a ring the database
                 does not name is started over (SQLiteStore._ring_state)
    16  layout   u64: moves each time the counts are rebuilt from the database (loads, scenarios, resets)
    24  written  u64: views appended since the ring began, i.e. the next view's sequence number
    32  folded   u64: views written into SQLite (meta `ring_folded` is the truth; appenders read this)
    40  busy     u64: sequence number + 1 of the view being appended, 0 when none
    48  slots    u64: how many counts are in use
    64  counts   u64 x MAX_SLOTS: each known dashboard's view count, by slot (its rank by id)
    ..  records  CAPACITY x RECORD bytes: a u16 length, then the view as orjson
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson

from mock_server.store.file_lock import FileLock

MAX_SLOTS = 16384  # dashboards beyond this many take the slow path (written into SQLite at once)
CAPACITY = 4096  # views that may wait for their write into SQLite; past that, views take the slow path
RECORD = 512  # bytes per view; a view that does not fit (a very long e-mail) takes the slow path

_U64 = struct.Struct("=Q")
_LEN = struct.Struct("=H")
_IDENT, _LAYOUT, _WRITTEN, _FOLDED, _BUSY, _SLOTS = 0, 16, 24, 32, 40, 48
_COUNTS = 64
_RECORDS = _COUNTS + 8 * MAX_SLOTS
SIZE = _RECORDS + CAPACITY * RECORD


class ViewRing:
    """The ring of one database file. Appending and rebuilding the counts need `lock()`; reading the
    sequence numbers does not (aligned 8-byte loads)."""

    def __init__(self, path: str) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if os.fstat(fd).st_size < SIZE:
                os.ftruncate(fd, SIZE)  # zeros: an ident no database names, so the ring is started over
            self._map = mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self._lock = FileLock(path)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The ring's lock (store/file_lock.py: threads and processes; a killed holder drops it)."""
        with self._lock.held():
            if _U64.unpack_from(self._map, _BUSY)[0]:
                self._repair()
            yield

    def _repair(self) -> None:
        """A holder killed mid-append: if it published its view but did not raise the count, raise it."""
        seq = self._get(_BUSY) - 1
        if self._get(_WRITTEN) > seq:
            slot, count = orjson.loads(self.record(seq))[:2]
            if 0 <= slot < self._get(_SLOTS) and self.count(slot) < count:
                self._put(_COUNTS + 8 * slot, count)
        self._put(_BUSY, 0)

    def _get(self, offset: int) -> int:
        return _U64.unpack_from(self._map, offset)[0]

    def _put(self, offset: int, value: int) -> None:
        _U64.pack_into(self._map, offset, value)

    # -- sequence numbers and counts ------------------------------------------------------------------

    @property
    def ident(self) -> bytes:
        return self._map[_IDENT:_IDENT + 16]

    @property
    def layout(self) -> int:
        return self._get(_LAYOUT)

    @property
    def written(self) -> int:
        return self._get(_WRITTEN)

    @property
    def folded(self) -> int:
        return self._get(_FOLDED)

    def pending(self) -> bool:
        return self._get(_WRITTEN) != self._get(_FOLDED)

    def mark_folded(self, seq: int) -> None:
        """The views before `seq` are in the database (their transaction committed). Under the write turn."""
        self._put(_FOLDED, seq)

    def count(self, slot: int) -> int:
        return self._get(_COUNTS + 8 * slot)

    def rebuild(self, ident: bytes, counts: list[int], folded: int) -> None:
        """Under lock() and the write turn, nothing pending: the counts from the database, and for another
        ident the ring started over at `folded`."""
        self._put(_SLOTS, 0)
        for slot, count in enumerate(counts[:MAX_SLOTS]):
            self._put(_COUNTS + 8 * slot, count)
        self._put(_SLOTS, min(len(counts), MAX_SLOTS))
        if ident != self.ident:
            self._map[_IDENT:_IDENT + 16] = ident
            self._put(_WRITTEN, folded)
            self._put(_FOLDED, folded)
        self._put(_LAYOUT, self.layout + 1)

    # -- records --------------------------------------------------------------------------------------

    def append(self, slot: int, make: Callable[[int], bytes]) -> int | None:
        """Under lock(): append make(count), count being the slot's next one, and return that count; None
        (nothing appended) if the ring is full or the record does not fit."""
        buf = self._map
        seq = _U64.unpack_from(buf, _WRITTEN)[0]
        if seq - _U64.unpack_from(buf, _FOLDED)[0] >= CAPACITY:
            return None
        at = _COUNTS + 8 * slot
        count = _U64.unpack_from(buf, at)[0] + 1
        data = make(count)
        if len(data) > RECORD - _LEN.size:
            return None
        start = _RECORDS + (seq % CAPACITY) * RECORD
        _U64.pack_into(buf, _BUSY, seq + 1)
        _LEN.pack_into(buf, start, len(data))
        buf[start + _LEN.size:start + _LEN.size + len(data)] = data
        _U64.pack_into(buf, _WRITTEN, seq + 1)  # published: a read's catch-up writes it from now on
        _U64.pack_into(buf, at, count)
        _U64.pack_into(buf, _BUSY, 0)
        return count

    def record(self, seq: int) -> bytes:
        start = _RECORDS + (seq % CAPACITY) * RECORD
        (length,) = _LEN.unpack_from(self._map, start)
        return self._map[start + _LEN.size:start + _LEN.size + length]

    def close(self) -> None:
        self._lock.close()
        if not self._map.closed:
            self._map.close()
