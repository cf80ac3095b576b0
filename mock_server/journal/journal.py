"""The Journal: a bounded ring of the last JOURNAL_SIZE API requests, in memory or in per-process files.

The request thread only appends its raw capture (lists, bytes, str) to a bounded deque: about 1 us
(bench/journal_cost.py); redaction (redact.py), the costly part, happens elsewhere:
- one process (no JOURNAL_DIR): the deque is the ring; entries are made when the journal is read.
- gunicorn (N processes, JOURNAL_DIR): the deque holds what this process has not written yet; a writer thread
  per process writes it, and a read first has every live writer flush, then merges the files (files.py).
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .entry import _made
from .files import _Writer, barrier, mark_cleared, read_files
from .redact import BODY_LIMIT, Redactor

RAW_BODY_CAP = 4 * BODY_LIMIT  # bytes of a response body captured for later redaction and truncation
FLUSH_INTERVAL_S = 0.5  # file mode: how often a process's writer writes what it holds (see files._Writer)
BARRIER_TIMEOUT_S = 2.0  # file mode: how long a read waits for the other processes' writers


class Journal:
    """The ring: in memory, or (directory given) per-process files merged on read.

    record() only appends the raw capture to a bounded deque (about 1 us); in file mode a writer thread of
    the process redacts and writes it later (see files._Writer), and a read first has every live writer flush."""

    def __init__(self, size: int, secrets: Iterable[str], directory: str | Path | None = None, *,
                 flush_interval_s: float = FLUSH_INTERVAL_S, barrier_timeout_s: float = BARRIER_TIMEOUT_S) -> None:
        self.size = size
        self.redactor = Redactor(secrets)
        self.directory = Path(directory) if directory is not None else None
        self.flush_interval_s = flush_interval_s
        self.barrier_timeout_s = barrier_timeout_s
        # In memory: the kept raw captures, redacted when read. In file mode: the captures not yet written;
        # one pushed out by newer ones before it was written is counted in `superseded` (it had `size` newer
        # entries of this process, so no read would have shown it).
        self._ring: collections.deque[dict] = collections.deque(maxlen=max(size, 1))
        self.superseded = 0
        self.write_errors = 0
        self.unanswered = 0  # writers that did not confirm a read's flush in time (see files.barrier)
        self._writer: _Writer | None = None
        self._start_lock = threading.Lock()

    @property
    def pid(self) -> int:
        return os.getpid()

    @property
    def enabled(self) -> bool:
        return self.size > 0

    @property
    def shared(self) -> bool:
        return self.directory is not None

    # -- writing ---------------------------------------------------------------------------------------

    def record(self, **raw: Any) -> None:
        """Keep one request: the keyword arguments of make_entry but the redactor. Plain values only (lists
        of pairs, bytes, str): the capture is kept as given and redacted later, on another thread or when
        read, so the caller must not mutate what it passes."""
        if self.directory is not None:
            if self._writer is None:
                self._start_writer()
            if len(self._ring) == self._ring.maxlen:
                self.superseded += 1
        self._ring.append(raw)

    def record_wsgi(self, environ: dict[str, Any], **raw: Any) -> None:
        """record() for a WSGI layer: method, path, query, request headers and request_mimetype are taken
        from the request's environ, later, off the request thread (~0.2 us for a shallow copy here instead
        of ~10 us for building those lists). The copy keeps the environ's values (wsgi.input, the socket
        object) alive until the entry is made: at most `size` requests."""
        self.record(wsgi_environ=dict(environ), **raw)

    def _start_writer(self) -> None:
        with self._start_lock:
            if self._writer is None:
                self._writer = _Writer(self)

    def flush(self) -> int:
        """Redact and write this process's pending captures now (file mode); the number taken."""
        writer = self._writer
        return writer.flush() if writer is not None else 0

    # -- reading ---------------------------------------------------------------------------------------

    def entries(self) -> list[dict]:
        """Every kept entry, newest first (at most `size`). In file mode every entry recorded, by any process,
        before this call is included: the live writers are made to flush first (see files.barrier)."""
        if self.directory is None:
            items = _made(self.redactor, list(self._ring))
        else:
            barrier(self)
            items = read_files(self.directory)
        items.sort(key=lambda e: e["_t"], reverse=True)
        return items[: self.size]

    def clear(self) -> None:
        if self.directory is None:
            self._ring.clear()
            return
        mark_cleared(self.directory)

    def close(self) -> None:
        """Write what is pending and stop this process's writer (a later record() starts a new one)."""
        with self._start_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.stop()

    def _forked(self) -> None:
        # In a child process just forked: the writer, its pipe and the pending captures are the parent's.
        self._writer = None
        self._ring.clear()
        self._start_lock = threading.Lock()
