"""One line per request on the `insights_mock.access` logger: JSON by default, or text for people.

Fields: ts, method, path, status, duration_ms, operationId, userId, requestId. The text format (the CLI's
`--log-format text`) has the same fields on one readable line, the time of day in local time:

    10:07:33.123 GET /api/v1/dashboard/most-viewed 200 3.1ms getMostViewedDashboards user=... rid=...

(`-` for a request that matched no operation; user= and rid= only when known). `--quiet` turns the lines
off (`configure(quiet=True)`): log_request then returns before building anything. Headers and the query
string are never logged, so a token cannot leak here whatever a client sends; the user is identified by
id. The logger has no handler of its own: the CLI (or the embedding application) decides where it goes.

The CLI's handler (`configure`) is a `LineHandler`. While it is the logger's only destination, a line goes
straight to its stream: building a LogRecord (caller lookup, thread and process names) would cost more
than the rest of the line, for fields nobody reads. Any other set-up (pytest's caplog, an embedding
application's handlers or filters) gets ordinary log records.

The CLI also gathers lines and writes them together, at most FLUSH_INTERVAL_S after the first one (as
nginx's `access_log ... buffer= flush=`): one write() per interval instead of one per request. Each write()
releases the GIL, and on a busy worker every release is a hand-off to another thread. Lines still pending
are written when the process exits normally (logging's shutdown flushes every handler); a kill -9 loses
at most the last interval of lines, never data.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
from datetime import UTC, datetime

import orjson

LOGGER_NAME = "insights_mock.access"
FLUSH_INTERVAL_S = 0.25  # the CLI's: how late a line may reach the terminal or file
FORMATS = ("json", "text")
logger = logging.getLogger(LOGGER_NAME)
_format = "json"  # configure() sets it; gunicorn workers inherit it through the fork


class LineHandler(logging.StreamHandler):
    """Writes the bare message, one line per record; `write_line` skips the LogRecord altogether. With a
    `flush_interval`, lines from write_line are gathered and written by a thread of each process, together,
    at most that long after the first of them (see the module docstring)."""

    terminator = "\n"

    def __init__(self, stream=None, flush_interval: float = 0.0) -> None:
        super().__init__(stream)
        self.flush_interval = flush_interval
        self._pending: collections.deque[str] = collections.deque()
        self._due = threading.Event()
        self._flusher_pid: int | None = None
        if flush_interval > 0:
            os.register_at_fork(after_in_child=self._after_fork)

    def write_line(self, line: str) -> None:
        if self.flush_interval <= 0:
            with self.lock:  # threads of a worker share the stream: one whole line at a time
                self.stream.write(line + "\n")
                self.stream.flush()
            return
        self._pending.append(line)  # atomic; the flusher pops from the other end
        if not self._due.is_set():
            if self._flusher_pid != os.getpid():
                self._start_flusher()
            self._due.set()

    def flush(self) -> None:
        """Write the pending lines now (logging's shutdown calls this at exit)."""
        with self.lock:  # taken and written under one lock: batches never overtake each other
            lines = []
            pending = self._pending
            while pending:
                lines.append(pending.popleft())
            if lines and self.stream is not None:
                self.stream.write("\n".join(lines) + "\n")
            super().flush()

    def _start_flusher(self) -> None:
        with self.lock:
            if self._flusher_pid != os.getpid():
                self._flusher_pid = os.getpid()
                threading.Thread(target=self._flush_loop, name="access-log", daemon=True).start()

    def _flush_loop(self) -> None:
        while True:
            self._due.wait()
            time.sleep(self.flush_interval)
            self._due.clear()  # before taking the lines: one appended after this sets it again
            try:
                self.flush()
            except (OSError, ValueError):  # the stream is closed (exiting) or broken: nothing to write to
                return

    def _after_fork(self) -> None:
        # The parent's flusher writes the lines pending at the fork; the child starts its own when it logs.
        self._pending = collections.deque()
        self._due = threading.Event()
        self._flusher_pid = None


def json_line(*, method: str, path: str, status: int, duration_ms: float, operation_id: str | None,
              user_id: str | None, request_id: str | None) -> str:
    return orjson.dumps({
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(duration_ms, 3),
        "operationId": operation_id,
        "userId": user_id,
        "requestId": request_id,
    }).decode()


def text_line(*, method: str, path: str, status: int, duration_ms: float, operation_id: str | None,
              user_id: str | None, request_id: str | None) -> str:
    now = datetime.now()
    parts = [f"{now:%H:%M:%S}.{now.microsecond // 1000:03d}", method, path, str(status),
             f"{duration_ms:.1f}ms", operation_id or "-"]
    if user_id:
        parts.append(f"user={user_id}")
    if request_id:
        parts.append(f"rid={request_id}")
    # A client's request id is its own text: no newline of it may start a line that looks like ours.
    return " ".join(parts).replace("\n", "\\n").replace("\r", "\\r")


def log_request(*, method: str, path: str, status: int, duration_ms: float, operation_id: str | None,
                user_id: str | None, request_id: str | None) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    line = (text_line if _format == "text" else json_line)(
        method=method, path=path, status=status, duration_ms=duration_ms, operation_id=operation_id,
        user_id=user_id, request_id=request_id)
    handlers = logger.handlers
    if len(handlers) == 1 and type(handlers[0]) is LineHandler and not logger.propagate and not logger.filters:
        handlers[0].write_line(line)
    else:
        logger.info(line)


def configure(stream=None, flush_interval: float = 0.0, log_format: str = "json", quiet: bool = False) -> None:
    """Send access lines, bare, to `stream` (stderr by default), as JSON or text (`log_format`); with
    `flush_interval` (the CLI's FLUSH_INTERVAL_S), gathered and written at most that long after the first.
    `quiet`: no access lines at all (the logger is off; nothing else is). Idempotent."""
    global _format
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    _format = log_format
    if quiet:
        logger.setLevel(logging.WARNING)  # log_request's isEnabledFor(INFO) is then False
        logger.propagate = False
        return
    if any(isinstance(h, LineHandler) for h in logger.handlers):
        logger.setLevel(logging.INFO)
        return
    handler = LineHandler(stream or sys.stderr, flush_interval)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
