"""One JSON line per request on the `insights_mock.access` logger.

Fields: ts, method, path, status, duration_ms, operationId, userId, requestId. Headers and the query
string are never logged, so a token cannot leak here whatever a client sends; the user is identified by
id. The logger has no handler of its own: the CLI (or the embedding application) decides where it goes.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

LOGGER_NAME = "insights_mock.access"
logger = logging.getLogger(LOGGER_NAME)


def log_request(*, method: str, path: str, status: int, duration_ms: float, operation_id: str | None,
                user_id: str | None, request_id: str | None) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    line = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(duration_ms, 3),
        "operationId": operation_id,
        "userId": user_id,
        "requestId": request_id,
    }
    logger.info(orjson.dumps(line).decode())


def configure(stream=None) -> None:
    """Send access lines, bare, to `stream` (stderr by default). Idempotent; used by the CLI."""
    if any(getattr(h, "_insights_mock", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._insights_mock = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
