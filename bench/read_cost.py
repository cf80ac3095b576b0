"""What a read costs in the store, in process, alone and with a worker's four threads (no HTTP, no wrk).

    .venv/bin/python bench/read_cost.py [--seconds 2] [--threads 4]

Each read of the store is one statement or one read transaction, and returns plain data that the API
serialises (orjson.dumps, timed here too). sqlite3 releases the GIL around every step of a statement, once
per row fetched, and with other threads of the process waiting for the GIL each release is a hand-off: the
second figure shows what that costs. This prints, for each read of the API, calls/s and CPU microseconds
per call with one thread and with `--threads` threads, on a --db file with the default dataset. Figures
only, nothing asserted; compare within one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson

from mock_server.store import open_store
from mock_server.store.base import AuditLogFilter
from write_cost import ANCHOR, dataset  # the same default dataset as the write bench


def drive(call, threads: int, seconds: float) -> tuple[float, float]:
    """(calls/s, CPU us per call) of `threads` threads calling `call` for `seconds`."""
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def loop(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            call()
            n += 1
        counts[i] = n

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    wall, cpu = time.perf_counter(), time.process_time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    calls = sum(counts)
    return calls / wall, cpu / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per measurement (2)")
    parser.add_argument("--threads", type=int, default=4, help="threads of the second measurement (4)")
    args = parser.parse_args(argv)

    data, users = dataset()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "read.db"))
        store.load(data)
        user = users[0]["id"]
        dashboard = store.most_viewed(1)[0]["dashboardId"]
        entry = store.audit_logs("dashboard", dashboard, 1, 1, AuditLogFilter()).items[0]["_id"]
        today = ANCHOR.date()
        reads = [
            ("recently viewed", lambda: orjson.dumps(store.recently_viewed(user, 10))),
            ("most viewed", lambda: orjson.dumps(store.most_viewed(10))),
            ("stats", lambda: orjson.dumps(store.dashboard_stats(dashboard, today))),
            ("audit page 2 of 20", lambda: orjson.dumps(
                store.audit_logs("dashboard", dashboard, 2, 20, AuditLogFilter()).items)),
            ("audit entry", lambda: orjson.dumps(store.audit_log(entry))),
        ]
        print(f"{'read':20} {'1 thread: calls/s':>18} {'CPU us':>7} {f'{args.threads} threads: calls/s':>20} "
              f"{'CPU us':>7}")
        for name, call in reads:
            for _ in range(200):
                call()
            one = drive(call, 1, args.seconds)
            many = drive(call, args.threads, args.seconds)
            print(f"{name:20} {one[0]:18.0f} {one[1]:7.1f} {many[0]:20.0f} {many[1]:7.1f}")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
