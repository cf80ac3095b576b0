"""The request journal: what the app sent and what the mock answered, for GET /__admin/requests.

A bounded ring of the last JOURNAL_SIZE API requests (0 turns it off; the operator endpoints under /__admin
are never recorded, so the journal shows what the app sent, not the developer's own look at it).

Secrets never enter it: values are redacted when an entry is made, before anything is kept or written.
- the Authorization header (and any header whose name says auth/token/secret/key/cookie/password/session)
  keeps its scheme and becomes a fingerprint: "Bearer …(redacted #3f2a9c1d)"; the same token always gives the
  same fingerprint, so two tokens can be told apart without being shown;
- every known secret (each fixture token, the admin token) is replaced wherever it appears: path, query,
  any header, either body;
- query parameters and JSON/form body fields named like a secret (access_token, password, api_key, ...) and
  anything after "Bearer " are replaced likewise.
Redaction happens before truncation, so a secret cut at the limit cannot leave a readable prefix.

One process keeps the ring in memory, of raw captures (a few list copies per request); redaction then happens
when the journal is read, so a request pays ~20 us CPU for being journaled (bench/journal_cost.py). Under
gunicorn (N processes) each process appends JSON lines to its own file in a directory the CLI creates for the
run (JOURNAL_DIR), rotating at JOURNAL_SIZE lines; a read merges the files of every process, newest first. An entry is redacted before it is written (no secret on disk),
then appended with one write() of one line: no lock shared across processes, no database write on the request
path. Clearing writes a marker time that reads respect.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

BODY_LIMIT = 4096  # bytes of each body kept (after redaction)
RAW_BODY_CAP = 4 * BODY_LIMIT  # bytes of a response body captured for later redaction and truncation
_SENSITIVE_NAME = re.compile(r"auth|token|secret|passw|api[-_]?key|apikey|cookie|session|credential|signature",
                             re.IGNORECASE)
# "Bearer <token>" in free text, but not a challenge's `Bearer realm="..."`.
_SCHEME_VALUE = re.compile(r'\b(Bearer|Basic)(\s+)(?![A-Za-z_]+=")([A-Za-z0-9\-._~+/]+=*)', re.IGNORECASE)
_PUBLIC_HEADERS = frozenset({"www-authenticate"})  # a challenge names a realm and an error, no secret
# A JSON "key": "string" pair (the key is checked in the callback: one linear pass, no backtracking).
_JSON_PAIR = re.compile(r'"([^"\\]{1,64})"(\s*:\s*)"((?:[^"\\]|\\.)*)"')
# Words without which the patterns cannot match: most bodies have none, and skip the (slow) regexes. Plain
# substring tests of the lower-cased text: an IGNORECASE alternation costs ~250 us on a 2 KB body, these ~5 us.
_WORDS = ("auth", "token", "secret", "passw", "apikey", "api_key", "api-key", "cookie", "session", "credential",
          "signature")
_WORDS_RX = re.compile("|".join(_WORDS))  # faster than the loop on short strings (header values), slower on long
_FORM_FIELD = re.compile(r"((?:^|[?&;\s])[A-Za-z0-9_.\-]*(?:auth|token|secret|passw|api[-_]?key|apikey|session)"
                         r"[A-Za-z0-9_.\-]*=)(?!…\(redacted )([^&;\s\"']+)", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def redacted(secret: str) -> str:
    return f"…(redacted #{fingerprint(secret)})"


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = frozenset(s for s in secrets if s)
        known = sorted(self.secrets, key=len, reverse=True)  # longest first: no partial hits
        self._known = re.compile("|".join(map(re.escape, known))) if known else None

    def known(self, value: str) -> str:
        """Only the known secrets: enough for what the mock itself wrote (a response can echo a request id,
        never a credential), and ~1 us instead of the patterns' ~10 us on a 2 KB body."""
        if self._known is not None:
            value = self._known.sub(lambda m: redacted(m.group(0)), value)
        return value

    def text(self, value: str) -> str:
        if self._known is not None:
            value = self._known.sub(lambda m: redacted(m.group(0)), value)
        low = value.lower()
        if "bearer" in low or "basic" in low:
            value = _SCHEME_VALUE.sub(lambda m: m.group(1) + m.group(2) + _once(m.group(3)), value)
        if (_WORDS_RX.search(low) if len(low) < 256 else any(word in low for word in _WORDS)):
            if '"' in value:
                value = _JSON_PAIR.sub(_json_pair, value)
            if "=" in value:
                value = _FORM_FIELD.sub(lambda m: m.group(1) + _once(m.group(2)), value)
        return value

    def header(self, name: str, value: str) -> str:
        if _plain_header(name):
            return self.known(value)
        if _sensitive_header(name):
            scheme, space, rest = value.strip().partition(" ")
            if space and rest and scheme.isalpha():
                return f"{scheme} {_once(rest.strip())}"
            return _once(value.strip()) if value.strip() else value
        return self.text(value)

    def query(self, pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, value in pairs:
            safe = _once(value) if value and _sensitive_header(name) else self.text(value)
            out.setdefault(self.text(name), []).append(safe)
        return out


# Headers whose values are structural (hosts, types, lengths, agents): only known secrets are looked for.
_PLAIN = frozenset({"host", "content-length", "content-type", "accept", "accept-encoding", "accept-language",
                    "connection", "user-agent", "origin", "cache-control", "pragma", "x-request-id", "prefer",
                    "if-none-match", "if-modified-since", "dnt", "priority", "upgrade-insecure-requests"})


@functools.lru_cache(maxsize=512)
def _plain_header(name: str) -> bool:
    low = name.lower()
    return low in _PLAIN or low.startswith("sec-")


@functools.lru_cache(maxsize=512)
def _sensitive_header(name: str) -> bool:
    return bool(_SENSITIVE_NAME.search(name)) and name.lower() not in _PUBLIC_HEADERS


def _json_pair(match: re.Match) -> str:
    key, colon, value = match.groups()
    if not _SENSITIVE_NAME.search(key) or not value:
        return match.group(0)
    return f'"{key}"{colon}"{_once(value)}"'


def _once(value: str) -> str:
    """Redact a value unless it already is a redaction (a known secret replaced a step before)."""
    return value if value.startswith("…(redacted #") else redacted(value)


def body_text(data: bytes, mimetype: str | None, redact: Callable[[str], str],
              size: int | None = None) -> tuple[str | None, bool]:
    """(the body as redacted text, bounded, with a truncation marker; whether it was truncated). `data` may be
    the first bytes of a body of `size` bytes."""
    if not data:
        return None, False
    size = len(data) if size is None else size
    textual = mimetype is None or mimetype.startswith("text/") or mimetype.endswith(("json", "yaml", "xml")) \
        or mimetype in ("application/x-www-form-urlencoded", "application/javascript")
    if not textual:
        return f"({size} bytes of {mimetype})", False
    text = redact(data.decode("utf-8", "replace"))
    encoded = text.encode("utf-8")
    if len(encoded) <= BODY_LIMIT and size == len(data):
        return text, False
    return encoded[:BODY_LIMIT].decode("utf-8", "ignore") + f"…[truncated: {size} bytes in all]", True


class Journal:
    """The ring: in memory, or (directory given) per-process files merged on read."""

    def __init__(self, size: int, secrets: Iterable[str], directory: str | Path | None = None) -> None:
        self.size = size
        self.redactor = Redactor(secrets)
        self.directory = Path(directory) if directory is not None else None
        self._ring: collections.deque[dict] = collections.deque(maxlen=max(size, 1))  # raw captures
        self._lock = threading.Lock()
        self._file = None
        self._pid = 0
        self._lines = 0

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
        """Keep one request: the keyword arguments of make_entry but the redactor."""
        if self.directory is None:
            self._ring.append(raw)  # redacted when read
            return
        line = orjson.dumps(make_entry(self.redactor, **raw)) + b"\n"
        with self._lock:
            if self._pid != os.getpid() or self._file is None:
                self._open()
            self._file.write(line)  # unbuffered, O_APPEND: one write() per entry, whole lines
            self._lines += 1
            if self._lines >= self.size:
                self._file.close()
                os.replace(self._current(), self.directory / f"{self._name}.old.jsonl")
                self._open()

    def _current(self) -> Path:
        return self.directory / f"{self._name}.jsonl"

    def _open(self) -> None:
        self._pid = os.getpid()
        # One file per journal per process (two apps in one process must not share a line count).
        self._name = f"{self._pid}-{uuid.uuid4().hex[:8]}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file = open(self._current(), "ab", buffering=0)  # noqa: SIM115 - kept open for the process
        self._lines = 0

    # -- reading ---------------------------------------------------------------------------------------

    def entries(self) -> list[dict]:
        """Every kept entry, newest first (at most `size`)."""
        if self.directory is None:
            items = [make_entry(self.redactor, **raw) for raw in list(self._ring)]
        else:
            items = []
            cleared = self._cleared()
            for path in self.directory.glob("*.jsonl"):
                try:
                    lines = path.read_bytes().splitlines()
                except FileNotFoundError:  # rotated away meanwhile: its lines are in the .old file
                    continue
                for line in lines:
                    try:
                        entry = orjson.loads(line)
                    except orjson.JSONDecodeError:  # a line being written right now
                        continue
                    if entry.get("_t", 0) > cleared:
                        items.append(entry)
        items.sort(key=lambda e: e["_t"], reverse=True)
        return items[: self.size]

    def clear(self) -> None:
        if self.directory is None:
            self._ring.clear()
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        marker = self.directory / "cleared"
        temp = self.directory / f"cleared.{os.getpid()}"
        temp.write_text(str(time.time_ns()))
        os.replace(temp, marker)

    def _cleared(self) -> int:
        try:
            return int((self.directory / "cleared").read_text())
        except (FileNotFoundError, ValueError):
            return 0

    def close(self) -> None:
        with self._lock:
            if self._file is not None and self._pid == os.getpid():
                self._file.close()
            self._file = None


def make_entry(r: Redactor, *, t_ns: int, worker: int, method: str, path: str,
               query: Iterable[tuple[str, str]], request_headers: Iterable[tuple[str, str]], request_body: bytes,
               request_mimetype: str | None, status: int, response_headers: Iterable[tuple[str, str]],
               response_body: bytes, response_size: int | None = None, response_mimetype: str | None,
               duration_ms: float, request_id: str | None, operation_id: str | None,
               user: str | None) -> dict[str, Any]:
    """The redacted entry of one raw capture."""
    # What the client sent gets every rule; what the mock wrote only needs the known secrets (see known()).
    req_body, req_cut = body_text(request_body, request_mimetype, r.text)
    resp_body, resp_cut = body_text(response_body, response_mimetype, r.known, response_size)
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
