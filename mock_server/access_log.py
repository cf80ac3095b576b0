"""One JSON line per request on the `insights_mock.access` logger.

Fields: ts, method, path, status, duration_ms, operationId, userId, requestId. Headers and the query
string are never logged, so a token cannot leak here whatever a client sends; the user is identified by
id. The logger has no handler of its own: the CLI (or the embedding application) decides where it goes.

The CLI's handler (`configure`) is a `LineHandler`. While it is the logger's only destination, a line goes
straight to its stream: building a LogRecord (caller lookup, thread and process names) would cost more
than the rest of the line, for fields nobody reads. Any other set-up (pytest's caplog, an embedding
application's handlers or filters) gets ordinary log records.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

LOGGER_NAME = "insights_mock.access"
logger = logging.getLogger(LOGGER_NAME)


class LineHandler(logging.StreamHandler):
    """Writes the bare message, one line per record; `write_line` skips the LogRecord altogether."""

    terminator = "\n"

    def write_line(self, line: str) -> None:
        with self.lock:  # threads of a worker share the stream: one whole line at a time
            self.stream.write(line + "\n")
            self.stream.flush()


def log_request(*, method: str, path: str, status: int, duration_ms: float, operation_id: str | None,
                user_id: str | None, request_id: str | None) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    line = orjson.dumps({
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(duration_ms, 3),
        "operationId": operation_id,
        "userId": user_id,
        "requestId": request_id,
    }).decode()
    handlers = logger.handlers
    if len(handlers) == 1 and type(handlers[0]) is LineHandler and not logger.propagate and not logger.filters:
        handlers[0].write_line(line)
    else:
        logger.info(line)


def configure(stream=None) -> None:
    """Send access lines, bare, to `stream` (stderr by default). Idempotent; used by the CLI."""
    if any(isinstance(h, LineHandler) for h in logger.handlers):
        return
    handler = LineHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
