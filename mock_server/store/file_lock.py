"""A lock shared by the threads of a process and by every process that opens the same file: a thread lock,
then flock() of the file. The kernel drops a flock with its holder, so a killed process never leaves it held.

flock() locks an open file description, not a thread, hence the thread lock; and a forked child must open
its own descriptor, since an inherited one shares the parent's lock. The descriptor is never closed before
close(): on the database file itself (the store's write turn), closing any descriptor of the file would
drop this process's POSIX record locks on it, which SQLite holds (flock and those locks are independent on
Linux and macOS).

Taking it first tries flock LOCK_NB through ctypes.PyDLL, which keeps the GIL. Why: fcntl.flock() releases
the GIL around the system call; under load another thread of the worker then takes the GIL, and the thread
that just got the lock waits for it back (up to the switch interval) while other processes wait for the
lock. For the view ring's lock, fcntl.flock alone gave 3,900 view POSTs/s, this 4,640 (bench/README.md). A
LOCK_NB call never blocks, so keeping the GIL through it is safe; a lock held by another process is waited
for with fcntl.flock, the GIL released.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

try:
    import fcntl
except ImportError:  # not POSIX: nothing here is used (the store then has no turns and no view ring)
    fcntl = None  # type: ignore[assignment]


def _flock_keeping_the_gil() -> Callable[[int, int], int] | None:
    try:
        import ctypes  # optional: Python may be built without it

        call = ctypes.PyDLL(None).flock
    except (ImportError, AttributeError, OSError):  # no ctypes, or no libc symbols here: fcntl.flock alone
        return None
    call.argtypes, call.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return call


_flock_nb = _flock_keeping_the_gil()


class FileLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = threading.Lock()
        self._fd: int | None = None  # opened at the first hold, in each process
        self._pid = 0
        self._inherited: list[int] = []  # a forked child keeps the parent's descriptor open, unused
        if hasattr(os, "register_at_fork"):  # weak: the registration outlives the lock
            me = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: (lock := me()) is not None and lock._after_fork())

    def _after_fork(self) -> None:
        self._threads = threading.Lock()  # another parent thread may have held it at the fork

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            if self._pid != os.getpid():
                if self._fd is not None:
                    self._inherited.append(self._fd)
                self._fd, self._pid = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC), os.getpid()
            fd = self._fd
            if _flock_nb is None or _flock_nb(fd, fcntl.LOCK_EX | fcntl.LOCK_NB) != 0:
                fcntl.flock(fd, fcntl.LOCK_EX)  # held by another process: wait, the GIL released
            try:
                yield
            finally:
                if _flock_nb is None or _flock_nb(fd, fcntl.LOCK_UN) != 0:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._threads:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None
