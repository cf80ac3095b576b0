"""mock_server/store/file_lock.py: one lock for the threads of a process and for every process on a file."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import pytest

from mock_server.store import file_lock
from mock_server.store.file_lock import FileLock

pytestmark = pytest.mark.skipif(file_lock.fcntl is None, reason="flock (POSIX)")


def _bump(lock: FileLock, box: list[int], times: int) -> None:
    for _ in range(times):
        with lock.held():
            seen = box[0]
            time.sleep(0)  # hand the GIL over inside the lock: a lock that does not exclude loses updates
            box[0] = seen + 1


@pytest.mark.parametrize("fast_path", [True, False], ids=["LOCK_NB keeping the GIL", "fcntl.flock only"])
def test_threads_of_two_locks_on_one_file_exclude_each_other(tmp_path, monkeypatch, fast_path):
    if not fast_path:
        monkeypatch.setattr(file_lock, "_flock_nb", None)
    path = str(tmp_path / "f")
    open(path, "w").close()
    one, two = FileLock(path), FileLock(path)  # as two stores of one process, or two workers
    box = [0]
    threads = [threading.Thread(target=_bump, args=(lock, box, 300)) for lock in (one, two, one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert box == [1200]
    one.close()
    two.close()


def test_a_forked_child_waits_for_the_parent_and_a_killed_holder_frees_the_lock(tmp_path):
    path = str(tmp_path / "f")
    open(path, "w").close()
    lock = FileLock(path)
    ctx = multiprocessing.get_context("fork")
    got = ctx.Event()

    def take():
        with lock.held():  # the child's own descriptor: the parent's hold excludes it
            got.set()
            time.sleep(60)

    with lock.held():
        child = ctx.Process(target=take)
        child.start()
        assert not got.wait(0.5)
    try:
        assert got.wait(30)  # released by the parent: the child has it
        os.kill(child.pid, 9)
        child.join(30)
        with lock.held():  # the kernel dropped the killed child's hold
            pass
    finally:
        if child.is_alive():
            child.kill()
        lock.close()
