"""The response cache: the status and body a GET operation answered, reused while the data is unchanged.

Why: frontends poll, load tests repeat one request, and a read answers the same bytes until something is
written. Building them again (SQL, JSON) was most of the mock's own cost per read (bench/README.md,
"response cache"). Authentication, authorisation and parameter validation still run for every request: only the
handler's work is skipped, and the answer's headers (X-Request-Id...) are made per request as before.

What an answer depends on is its key: the operation, its validated parameters, the caller's user id and
the day (stats count the last 30 days up to today). A GET handler must depend on nothing else than these
and the store's data; the data's part is `store.version()` (mock_server.store.changes), which moves with
every write by any process sharing the database and is None while one is under way. So:
- a kept answer is used only while the version is the one it was made at: a view recorded by any worker
  is seen by the next read of every worker, as without this;
- an answer is kept only if the version was the same, and stable, before and after it was made, so it
  never mixes data from before and after a write;
- a new version drops every kept answer; at most `size` answers and `max_bytes` of bodies are kept (then
  none is added until the next write: a load test's working set is small, and an unbounded one is not
  worth keeping).

Per process, shared by its threads. Off with RESPONSE_CACHE=false (`--no-response-cache`), e.g. to measure the
store itself (bench/scaling.py does).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import date
from typing import Any

DEFAULT_SIZE = 1024  # answers kept per process
DEFAULT_MAX_BYTES = 16 << 20  # of their bodies: a page of 100 audit entries is about 45 KB

Answer = tuple[int, bytes]  # status, body


class _Kept:
    """The answers made at one version; replaced whole when the version moves (threads share it)."""

    __slots__ = ("version", "answers", "bytes")

    def __init__(self, version: int | None) -> None:
        self.version = version
        self.answers: dict[Hashable, Answer] = {}
        self.bytes = 0


class ResponseCache:
    def __init__(self, version: Callable[[], int | None], size: int = DEFAULT_SIZE,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._version = version
        self.size, self.max_bytes = size, max_bytes
        self._kept = _Kept(None)

    @staticmethod
    def key(operation_id: str, user_id: str, today: date, params: dict[str, Any]) -> tuple:
        """The key of an answer (a parameter value that is not hashable makes an answer that is never kept)."""
        return operation_id, user_id, today, tuple(params.items())

    def get(self, key: tuple, make: Callable[[], Answer]) -> Answer:
        """The kept answer for `key`, or make() (kept when the data stood still while it was made)."""
        version = self._version()
        if version is None:
            return make()
        kept = self._kept
        if kept.version != version:
            kept = self._kept = _Kept(version)
        else:
            try:
                answer = kept.answers.get(key)
            except TypeError:  # not hashable
                return make()
            if answer is not None:
                return answer
        answer = make()
        size = len(answer[1])
        if (len(kept.answers) < self.size and kept.bytes + size <= self.max_bytes
                and self._version() == version):
            try:
                kept.answers[key] = answer
            except TypeError:  # not hashable
                return answer
            kept.bytes += size
        return answer
