"""The journal's file mode (JOURNAL_DIR: gunicorn, N processes): a writer per process, a read barrier.

The deque of a Journal holds what this process has not written yet. A writer thread per process (per
journal, _Writer) redacts it and appends JSON lines, one write() per batch, to the process's own file,
rotating at JOURNAL_SIZE lines: every FLUSH_INTERVAL_S, at exit, and whenever a read asks. A read (in any
process) first has every live writer flush and waits for each to confirm (named pipes, see barrier; at most
BARRIER_TIMEOUT_S for a writer that does not answer), then merges the files (read_files), newest first: it
shows every entry recorded before it started. A writer that falls behind drops the oldest captures it holds
beyond JOURNAL_SIZE (counted in `superseded`: no read would have shown them). A process killed with SIGKILL
loses what it recorded since its last flush (at most FLUSH_INTERVAL_S). No lock is shared across processes
and nothing but the journal's files is written.
Clearing writes a marker time that reads respect, also for entries recorded before it and written after.

The directory holds, per writer `<pid>-<id>`: `<pid>-<id>.jsonl` (and `.old.jsonl` after a rotation) and
the named pipe `<pid>-<id>.wake`; a reader's reply pipe `reply-...` while it waits; the marker `cleared`.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import threading
import time
import uuid
import weakref
from pathlib import Path
from select import select as _wait_readable  # the journal's select() filters entries
from typing import TYPE_CHECKING

import orjson

from .entry import _made

if TYPE_CHECKING:
    from .journal import Journal

_logger = logging.getLogger(__package__)  # mock_server.journal: the one logger of the journal's modules


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


# -- reading: the barrier, then the files ---------------------------------------------------------------

def barrier(journal: Journal) -> None:
    """Make every live writer of the directory write what it holds, and wait (at most barrier_timeout_s)
    until each says it has. Each writer listens on a named pipe `<name>.wake`; the reader makes its own
    pipe `reply-...`, sends its name to every writer's pipe, and counts the answers. A writer whose
    process is gone has no reader on its pipe: opening it fails (ENXIO), so it is skipped (and its pipe
    removed); its entries are on disk already, or lost with it (kill -9: at most flush_interval_s)."""
    journal.flush()  # this process's own writer, on this thread
    directory = journal.directory
    own = journal._writer.name if journal._writer is not None and journal._writer.pid == os.getpid() else None
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
                journal.unanswered += 1
            finally:
                os.close(fd)
        answered = 0
        deadline = time.monotonic() + journal.barrier_timeout_s
        while answered < asked:
            left = deadline - time.monotonic()
            if left <= 0 or not _wait_readable([read_fd], [], [], left)[0]:
                journal.unanswered += asked - answered
                break
            try:
                answered += os.read(read_fd, 4096).count(b"\n")
            except BlockingIOError:
                pass
    finally:
        os.close(read_fd)
        os.close(keep_fd)
        reply.unlink(missing_ok=True)


def read_files(directory: Path) -> list[dict]:
    """Every entry written to the directory after the last clear, in no order (Journal.entries sorts)."""
    items = []
    cleared = _cleared(directory)
    names = {path.name.split(".", 1)[0] for path in directory.glob("*.jsonl")}
    for name in names:
        # The current file before the previous one: a rotation in between then shows lines twice (the
        # set below drops them), never loses them.
        seen: set[bytes] = set()
        for path in (directory / f"{name}.jsonl", directory / f"{name}.old.jsonl"):
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


def mark_cleared(directory: Path) -> None:
    # A marker time that reads respect: entries recorded before it, written now or later, stay hidden.
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / "cleared"
    temp = directory / f"cleared.{os.getpid()}"
    temp.write_text(str(time.time_ns()))
    os.replace(temp, marker)


def _cleared(directory: Path) -> int:
    try:
        return int((directory / "cleared").read_text())
    except (FileNotFoundError, ValueError):
        return 0
