"""One journal entry: made (redacted) from a raw capture, and selected for GET /__admin/requests.

The request thread keeps only the raw capture (see journal.Journal.record); make_entry turns it into the
entry that is shown or written, off the request thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from .redact import Redactor, body_text

_logger = logging.getLogger(__package__)  # mock_server.journal: the one logger of the journal's modules


def _made(redactor: Redactor, raws: list[dict]) -> list[dict]:
    """The entries of these captures; one that cannot be made (a caller passing a wrong type) is logged
    and left out, not the whole batch."""
    entries = []
    for raw in raws:
        try:
            entries.append(make_entry(redactor, **raw))
        except Exception:  # one bad capture must not hide the others
            _logger.exception("journal: a request capture could not be made into an entry")
    return entries


def make_entry(r: Redactor, *, t_ns: int, worker: int, method: str = "", path: str = "",
               query: Iterable[tuple[str, str]] = (), request_headers: Iterable[tuple[str, str]] = (),
               request_body: bytes, request_mimetype: str | None = None, status: int,
               response_headers: Iterable[tuple[str, str]], response_body: bytes, response_size: int | None = None,
               response_mimetype: str | None, duration_ms: float, request_id: str | None,
               operation_id: str | None, user: str | None,
               wsgi_environ: dict[str, Any] | None = None) -> dict[str, Any]:
    """The redacted entry of one raw capture (record() or record_wsgi())."""
    if wsgi_environ is not None:
        method, path, query, request_headers, request_mimetype = _from_environ(wsgi_environ)
    # What the client sent gets every rule; what the mock wrote only needs the known secrets (see known()).
    req_body, req_cut = body_text(request_body, request_mimetype, r.text)
    resp_body, resp_cut = body_text(response_body, response_mimetype, r.known, response_size, r.known_free)
    return {
        "_t": t_ns,
        "timestamp": datetime.fromtimestamp(t_ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestId": r.known(request_id) if request_id else None,
        "operationId": operation_id,
        "method": method,
        "path": r.text(path),
        "query": r.query(query),
        "status": status,
        "durationMs": round(duration_ms, 3),
        "user": user,
        "worker": worker,
        "request": {"headers": {name: r.header(name, value) for name, value in request_headers},
                    "body": req_body, "bodyTruncated": req_cut},
        "response": {"status": status,
                     "headers": {name: r.known(value) for name, value in response_headers},
                     "body": resp_body, "bodyTruncated": resp_cut},
    }


def _from_environ(environ: dict[str, Any]) -> tuple[str, str, list, list, str | None]:
    """What app.py reads through werkzeug's request (method, path, args, headers, mimetype), from a WSGI
    environ, the same way (werkzeug 3: PATH_INFO and QUERY_STRING hold latin-1 decoded bytes)."""
    path = "/" + environ.get("PATH_INFO", "").encode("latin1").decode("utf-8", "replace").lstrip("/")
    query_string = environ.get("QUERY_STRING", "").encode("latin1").decode("utf-8", "replace")
    query = parse_qsl(query_string, keep_blank_values=True, errors="replace")
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                headers.append((key[5:].replace("_", "-").title(), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").title(), value))
    mimetype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower() or None
    return environ.get("REQUEST_METHOD", "GET"), path, query, headers, mimetype


def select(entries: list[dict], *, limit: int, operation_id: str | None = None, status: str | None = None,
           method: str | None = None, since_ns: int | None = None) -> list[dict]:
    """Filter (newest first) and drop the internal sort key. `status` is a code (404) or a class (4xx)."""
    out = []
    for entry in entries:
        if operation_id is not None and entry.get("operationId") != operation_id:
            continue
        if status is not None:
            code = str(entry.get("status"))
            if not (code == status or (status.endswith("xx") and code[0] == status[0])):
                continue
        if method is not None and entry.get("method") != method:
            continue
        if since_ns is not None and entry["_t"] < since_ns:
            continue
        out.append({k: v for k, v in entry.items() if k != "_t"})
        if len(out) >= limit:
            break
    return out
