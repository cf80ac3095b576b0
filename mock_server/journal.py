"""The request journal: what the app sent and what the mock answered, for GET /__admin/requests.

A bounded ring of the last JOURNAL_SIZE API requests (0 turns it off; the operator endpoints under /__admin
are never recorded, so the journal shows what the app sent, not the developer's own look at it).

Secrets never leave the process's memory: an entry is redacted before it is shown or written.
- the Authorization header (and any header whose name says auth/token/secret/key/cookie/password/session)
  keeps its scheme and becomes a fingerprint: "Bearer …(redacted #3f2a9c1d)"; the same token always gives the
  same fingerprint, so two tokens can be told apart without being shown;
- every known secret (each fixture token, the admin token) is replaced wherever it appears: path, query,
  any header, either body;
- query parameters and JSON/form body fields named like a secret (access_token, password, api_key, ...) and
  anything after "Bearer " are replaced likewise.
Redaction happens before truncation, so a secret cut at the limit cannot leave a readable prefix.

The request thread only appends its raw capture (lists, bytes, str) to a bounded deque: about 1 us
(bench/journal_cost.py); redaction, the costly part, happens elsewhere:
- one process (no JOURNAL_DIR): the deque is the ring; entries are made when the journal is read.
- gunicorn (N processes, JOURNAL_DIR): the deque holds what this process has not written yet. A writer
  thread per process (per journal) redacts it and appends JSON lines, one write() per batch, to the
  process's own file, rotating at JOURNAL_SIZE lines: every FLUSH_INTERVAL_S, at exit, and whenever a read
  asks. A read (in any process) first has every live writer flush and waits for each to confirm (named
  pipes, see Journal._barrier; at most BARRIER_TIMEOUT_S for a writer that does not answer), then merges
  the files, newest first: it shows every entry recorded before it started. A writer that falls behind
  drops the oldest captures it holds beyond JOURNAL_SIZE (counted in `superseded`: no read would have
  shown them). A process killed with SIGKILL loses what it recorded since its last flush (at most
  FLUSH_INTERVAL_S). No lock is shared across processes and nothing but the journal's files is written.
Clearing writes a marker time that reads respect, also for entries recorded before it and written after.
"""

from __future__ import annotations

import atexit
import collections
import errno
import functools
import hashlib
import logging
import os
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from select import select as _wait_readable  # this module's select() filters entries
from typing import Any
from urllib.parse import parse_qsl

import orjson

BODY_LIMIT = 4096  # bytes of each body kept (after redaction)
RAW_BODY_CAP = 4 * BODY_LIMIT  # bytes of a response body captured for later redaction and truncation
FLUSH_INTERVAL_S = 0.5  # file mode: how often a process's writer writes what it holds (see _Writer)
BARRIER_TIMEOUT_S = 2.0  # file mode: how long a read waits for the other processes' writers
_logger = logging.getLogger(__name__)
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


def _redact_match(match: re.Match) -> str:
    return redacted(match.group(0))


def _needles(secrets: frozenset[str]) -> list[str]:
    """Substrings such that a text holding no needle holds no secret: the secrets grouped by their first
    four characters, each group by its longest common prefix (the fixture tokens are one group, "mock-")."""
    groups: dict[str, list[str]] = {}
    for secret in secrets:
        groups.setdefault(secret[:4], []).append(secret)
    return sorted(os.path.commonprefix(group) for group in groups.values())


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = frozenset(s for s in secrets if s)
        known = sorted(self.secrets, key=len, reverse=True)  # longest first: no partial hits
        self._known = re.compile("|".join(map(re.escape, known))) if known else None
        self._shortest = min(map(len, known)) if known else 0
        self._needles = _needles(self.secrets)
        # The same test on the raw bytes of a body, before decoding it: a secret found in the decoded text
        # came from its own UTF-8 bytes (a secret with U+FFFD could come from invalid bytes: no shortcut).
        self._byte_needles = None if any("\ufffd" in s for s in self.secrets) else \
            [n.encode("utf-8", "surrogatepass") for n in self._needles]
        self._needle_slack = max((len(n) for n in self._byte_needles or ()), default=1) - 1

    def known_free(self, data: bytes, end: int | None = None) -> bool:
        """Whether no known secret starts in data[:end] once decoded (False: not known). Each needle is a
        prefix of its secrets, so only data[:end + longest needle - 1] is searched: a body cut at `end`
        then needs no more than that, however long it is."""
        if self._byte_needles is None:
            return False
        stop = len(data) if end is None else min(len(data), end + self._needle_slack)
        if stop < self._shortest:
            return True
        return not any(data.find(needle, 0, stop) >= 0 for needle in self._byte_needles)

    def known(self, value: str) -> str:
        """Only the known secrets: enough for what the mock itself wrote (a response can echo a request id,
        never a credential). A plain substring test per group of secrets first (C's fast search: ~0.2 us
        per KB each); the alternation alone costs ~5 us per KB when the secrets share no prefix."""
        if len(value) >= self._shortest:
            for needle in self._needles:
                if needle in value:
                    return self._known.sub(_redact_match, value)
        return value

    def text(self, value: str) -> str:
        value = self.known(value)
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
              size: int | None = None, free: Callable[[bytes], bool] | None = None) -> tuple[str | None, bool]:
    """(the body as redacted text, bounded, with a truncation marker; whether it was truncated). `data` may be
    the first bytes of a body of `size` bytes. `free(data, end)` True promises that `redact` would change
    nothing in data[:end]: then only the part kept is decoded, and a secret after the cut is cut anyway.
    A secret that starts before the cut is redacted before the cut is made (no readable prefix is left)."""
    if not data:
        return None, False
    size = len(data) if size is None else size
    textual = mimetype is None or mimetype.startswith("text/") or mimetype.endswith(("json", "yaml", "xml")) \
        or mimetype in ("application/x-www-form-urlencoded", "application/javascript")
    if not textual:
        return f"({size} bytes of {mimetype})", False
    if free is not None:
        if len(data) > BODY_LIMIT or size != len(data):  # to be cut: only the part kept needs decoding
            if free(data, BODY_LIMIT):
                return data[:BODY_LIMIT].decode("utf-8", "ignore") + f"…[truncated: {size} bytes in all]", True
        elif free(data, len(data)):
            try:
                return data.decode("utf-8"), False
            except UnicodeDecodeError:  # replacement characters may make it longer than the limit: below
                pass
    text = redact(data.decode("utf-8", "replace"))
    encoded = text.encode("utf-8")
    if len(encoded) <= BODY_LIMIT and size == len(data):
        return text, False
    return encoded[:BODY_LIMIT].decode("utf-8", "ignore") + f"…[truncated: {size} bytes in all]", True


class Journal:
    """The ring: in memory, or (directory given) per-process files merged on read.

    record() only appends the raw capture to a bounded deque (about 1 us); in file mode a writer thread of
    the process redacts and writes it later (see _Writer), and a read first has every live writer flush."""

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
        self.unanswered = 0  # writers that did not confirm a read's flush in time (see _barrier)
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
        before this call is included: the live writers are made to flush first (see _barrier)."""
        if self.directory is None:
            items = _made(self.redactor, list(self._ring))
        else:
            self._barrier()
            items = self._read_files()
        items.sort(key=lambda e: e["_t"], reverse=True)
        return items[: self.size]

    def _read_files(self) -> list[dict]:
        items = []
        cleared = self._cleared()
        names = {path.name.split(".", 1)[0] for path in self.directory.glob("*.jsonl")}
        for name in names:
            # The current file before the previous one: a rotation in between then shows lines twice (the
            # set below drops them), never loses them.
            seen: set[bytes] = set()
            for path in (self.directory / f"{name}.jsonl", self.directory / f"{name}.old.jsonl"):
                try:
                    lines = path.read_bytes().splitlines()
                except FileNotFoundError:  # rotated away meanwhile: its lines are in the .old file
                    continue
                for line in lines:
                    if line in seen:
                        continue
                    seen.add(line)
                    try:
                        entry = orjson.loads(line)
                    except orjson.JSONDecodeError:  # a line being written right now
                        continue
                    if entry.get("_t", 0) > cleared:
                        items.append(entry)
        return items

    def _barrier(self) -> None:
        """Make every live writer of the directory write what it holds, and wait (at most barrier_timeout_s)
        until each says it has. Each writer listens on a named pipe `<name>.wake`; the reader makes its own
        pipe `reply-...`, sends its name to every writer's pipe, and counts the answers. A writer whose
        process is gone has no reader on its pipe: opening it fails (ENXIO), so it is skipped (and its pipe
        removed); its entries are on disk already, or lost with it (kill -9: at most flush_interval_s)."""
        self.flush()  # this process's own writer, on this thread
        directory = self.directory
        own = self._writer.name if self._writer is not None and self._writer.pid == os.getpid() else None
        wakes = [p for p in directory.glob("*.wake") if p.name[:-5] != own]
        if not wakes:
            return
        reply = directory / f"reply-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            os.mkfifo(reply)
        except OSError:
            return
        read_fd = os.open(reply, os.O_RDONLY | os.O_NONBLOCK)
        keep_fd = os.open(reply, os.O_WRONLY | os.O_NONBLOCK)  # a writer end of our own: no EOF meanwhile
        try:
            asked = 0
            message = reply.name.encode() + b"\n"
            for wake in wakes:
                try:
                    fd = os.open(wake, os.O_WRONLY | os.O_NONBLOCK)
                except OSError as exc:
                    if exc.errno == errno.ENXIO:  # nobody reads it: that process is gone
                        wake.unlink(missing_ok=True)
                    continue
                try:
                    os.write(fd, message)  # < PIPE_BUF: one atomic message
                    asked += 1
                except OSError:  # its pipe is full: that writer is far behind; not waited for
                    self.unanswered += 1
                finally:
                    os.close(fd)
            answered = 0
            deadline = time.monotonic() + self.barrier_timeout_s
            while answered < asked:
                left = deadline - time.monotonic()
                if left <= 0 or not _wait_readable([read_fd], [], [], left)[0]:
                    self.unanswered += asked - answered
                    break
                try:
                    answered += os.read(read_fd, 4096).count(b"\n")
                except BlockingIOError:
                    pass
        finally:
            os.close(read_fd)
            os.close(keep_fd)
            reply.unlink(missing_ok=True)

    def clear(self) -> None:
        if self.directory is None:
            self._ring.clear()
            return
        # A marker time that reads respect: entries recorded before it, written now or later, stay hidden.
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


class _Writer:
    """One process's writer of one journal: a daemon thread that redacts the pending captures and appends
    them, one write() per batch, to `<pid>-<id>.jsonl` every flush_interval_s, or at once when a reader
    asks through the named pipe `<pid>-<id>.wake`. Started by the first record() of a process (a forked
    child starts its own: os.register_at_fork), it also flushes at interpreter exit (atexit: a gunicorn
    worker's graceful exit); a kill -9 loses what was recorded since the last flush."""

    def __init__(self, journal: Journal) -> None:
        self.journal_ref = weakref.ref(journal)
        self.pid = os.getpid()
        self.name = f"{self.pid}-{uuid.uuid4().hex[:8]}"  # two journals in one process never share a file
        self.directory = journal.directory
        self.interval = journal.flush_interval_s
        self.size = journal.size
        self.lock = threading.Lock()  # one flush at a time: the thread, a reader, atexit
        self.directory.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - kept open for the process
        self.lines = 0
        self.stopping = self.closed = False
        self.wake_path = self.directory / f"{self.name}.wake"
        try:
            os.mkfifo(self.wake_path)
            self.wake_fd = os.open(self.wake_path, os.O_RDONLY | os.O_NONBLOCK)
            self.keep_fd = os.open(self.wake_path, os.O_WRONLY | os.O_NONBLOCK)  # so reads never see EOF
        except OSError:  # a file system without named pipes: flushed by the interval only
            self.wake_fd = self.keep_fd = -1
        ref = self.journal_ref
        os.register_at_fork(after_in_child=lambda: _in_child(ref))
        atexit.register(_at_exit, ref)
        self.thread = threading.Thread(target=self.run, name=f"journal-writer-{self.name}", daemon=True)
        self.thread.start()

    @property
    def path(self) -> Path:
        return self.directory / f"{self.name}.jsonl"

    def run(self) -> None:
        fds = [self.wake_fd] if self.wake_fd >= 0 else []
        while not self.stopping:
            if fds:
                ready = _wait_readable(fds, [], [], self.interval)[0]
            else:
                time.sleep(self.interval)
                ready = []
            replies = self.requests() if ready else []
            if self.journal_ref() is None:  # the app and its journal are gone: so is the need for a writer
                self.stop()
                return
            try:
                self.flush()
            except Exception:  # the writer must outlive any one failure
                _logger.exception("journal: a batch could not be written")
            for name in replies:
                self.answer(name)

    def requests(self) -> list[str]:
        data = b""
        while True:
            try:
                chunk = os.read(self.wake_fd, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            data += chunk
        return [line.decode() for line in data.splitlines() if line.startswith(b"reply-")]

    def answer(self, name: str) -> None:
        try:
            fd = os.open(self.directory / name, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # the reader gave up waiting and removed its pipe
            return
        try:
            os.write(fd, b"\n")
        except OSError:
            pass
        finally:
            os.close(fd)

    def flush(self) -> int:
        journal = self.journal_ref()
        if journal is None or self.pid != os.getpid():
            return 0
        with self.lock:
            ring = journal._ring
            batch = []
            while ring:  # popleft, not a swap: a record() on another thread meanwhile is never lost
                try:
                    batch.append(ring.popleft())
                except IndexError:
                    break
            if not batch:
                return 0
            redactor = journal.redactor
            data = b"".join([orjson.dumps(entry) + b"\n" for entry in _made(redactor, batch)])
            try:
                self.file.write(data)  # unbuffered, O_APPEND: whole lines, one write() per batch
                self.lines += len(batch)
                if self.lines >= self.size:  # the newest `size` of this writer stay in the two files
                    self.file.close()
                    os.replace(self.path, self.directory / f"{self.name}.old.jsonl")
                    self.file = open(self.path, "ab", buffering=0)  # noqa: SIM115
                    self.lines = 0
            except (OSError, ValueError):  # the directory is gone (the server is exiting) or the disk full
                journal.write_errors += len(batch)
                return 0
            return len(batch)

    def stop(self) -> None:
        if self.pid != os.getpid() or self.closed:
            return
        self.stopping = True
        if self.keep_fd >= 0:
            try:
                os.write(self.keep_fd, b"\n")  # wakes the thread
            except OSError:
                pass
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=5)
        self.flush()
        self.file.close()
        for fd in (self.wake_fd, self.keep_fd):
            if fd >= 0:
                os.close(fd)
        self.wake_fd = self.keep_fd = -1
        self.closed = True
        self.wake_path.unlink(missing_ok=True)

    def forget(self) -> None:
        """In a forked child: drop the parent's descriptors without touching its files or pipe."""
        for fd in (self.wake_fd, self.keep_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        try:
            self.file.close()
        except OSError:
            pass


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


def _in_child(ref: weakref.ref) -> None:
    journal = ref()
    if journal is not None and journal._writer is not None and journal._writer.pid != os.getpid():
        journal._writer.forget()
        journal._forked()


def _at_exit(ref: weakref.ref) -> None:
    journal = ref()
    if journal is not None:
        try:
            journal.close()  # writes what is pending, removes the pipe: readers no longer ask this process
        except Exception:  # exiting anyway: say why the last entries are missing
            _logger.exception("journal: could not write the last entries at exit")


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
