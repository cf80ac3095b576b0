"""MongoDB-style ObjectIds: 4 bytes of Unix seconds, then 8 bytes that make the id unique; and request ids.

Generated data passes its own `random.Random`, so the same seed gives the same ids. Runtime writes pass no
rng and get MongoDB's layout: 5 bytes random per process (drawn again in a forked child, so gunicorn
workers never share them) and a 3-byte counter that starts at a random value, so ids are unique across the
threads of a process (the counter) and across processes (the random part).
"""

from __future__ import annotations

import itertools
import os
import random
import re
import threading
from datetime import UTC, datetime

_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")
_MAX_SECONDS = 0xFFFF_FFFF


class _RuntimeSource:
    """Process-wide by nature, like bson's: uniqueness needs one counter per process, not per app."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reseed()

    def _reseed(self) -> None:
        self._process_part = os.urandom(5)
        self._counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
        self.request_prefix = os.urandom(8).hex()
        self.requests = itertools.count(1)  # next() on a C counter is atomic under the GIL: no lock

    def after_fork(self) -> None:
        # The child must not reuse the parent's random part: another worker would mint the same ids.
        self._lock = threading.Lock()
        self._reseed()

    def tail(self) -> bytes:
        with self._lock:
            n = next(self._counter) & 0xFFFFFF
        return self._process_part + n.to_bytes(3, "big")


_runtime = _RuntimeSource()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_runtime.after_fork)


def _seconds(at: datetime | None) -> int:
    if at is None:
        at = datetime.now(UTC)
    elif at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    seconds = int(at.timestamp() // 1)
    if not 0 <= seconds <= _MAX_SECONDS:
        raise ValueError(f"an ObjectId holds seconds from 1970 to 2106, not {at.isoformat()}")
    return seconds


def object_id(at: datetime | None = None, rng: random.Random | None = None) -> str:
    """A 24-hex lower-case ObjectId whose timestamp is `at` (default: now; naive means UTC).

    With `rng` the 8 trailing bytes come from it (deterministic); without, from the process's random part
    and counter (unique across threads and processes).
    """
    head = _seconds(at).to_bytes(4, "big")
    tail = rng.getrandbits(64).to_bytes(8, "big") if rng is not None else _runtime.tail()
    return (head + tail).hex()


def object_id_ms(ms: int, rng: random.Random) -> str:
    """`object_id` for an instant in epoch milliseconds: the data generator's fast path (no datetime)."""
    return object_id_ms_tail(ms, rng.getrandbits(64))


def object_id_ms_tail(ms: int, tail: int) -> str:
    """The ObjectId of an instant in epoch milliseconds with the given 64-bit tail (drawn beforehand)."""
    seconds = ms // 1000
    if not 0 <= seconds <= _MAX_SECONDS:
        raise ValueError(f"an ObjectId holds seconds from 1970 to 2106, not {ms} ms")
    return f"{seconds << 64 | tail:024x}"


def request_id() -> str:
    """A request id unique across threads and processes: 16 hex of this process's random part, then a
    16-hex counter (32 hex, like a uuid4 but without reading os.urandom on every request)."""
    return f"{_runtime.request_prefix}{next(_runtime.requests):016x}"


def is_object_id(value: str) -> bool:
    """True for 24 hexadecimal characters, either case."""
    return isinstance(value, str) and _OBJECT_ID.fullmatch(value) is not None


def object_id_time(value: str) -> datetime:
    """The creation second embedded in an ObjectId, as an aware UTC datetime."""
    if not is_object_id(value):
        raise ValueError(f"not an ObjectId: {value!r}")
    return datetime.fromtimestamp(int(value[:8], 16), UTC)
