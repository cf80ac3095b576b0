"""What a read costs in the store, in process, alone and with a worker's four threads (no HTTP, no wrk).

    .venv/bin/python bench/read_cost.py [--seconds 2] [--threads 4]

Each read of the store is one statement that returns one row (mock_server/store/sqlite.py, "Reads: one
statement, one row"). sqlite3 releases the GIL around every step of a statement, once per row fetched, and
with other threads of the process waiting for the GIL each release is a hand-off. This prints, for each
read of the API, calls/s and CPU microseconds per call with one thread and with `--threads` threads, on a
--db file with the default dataset; and for the two dashboard lists and a page of audit entries, the same
rows fetched one by one (the inner ordered query, one step per row; for the page, after its count) next to
the one-row statement that runs. Figures only, nothing asserted; compare within one run.
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
from mock_server.store import sqlite as sqlite_store
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


def row_by_row(store, sql: str, params, count_sql: str | None = None) -> callable:
    """The inner ordered query of a list, fetched one row (one step, one GIL release) at a time; for a page,
    after its count, both in one transaction (as the store read a page until 2026-11-26)."""
    def call():
        with store._conns.connection() as conn:
            if count_sql is not None:
                conn.execute("BEGIN")
                conn.execute(count_sql, params).fetchone()
            rows = conn.execute(sql, params).fetchall()
            if count_sql is not None:
                conn.execute("COMMIT")
        return orjson.dumps([orjson.Fragment(item) for (item,) in rows])
    return call


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
        dashboard = orjson.loads(orjson.dumps(store.most_viewed(1)))[0]["dashboardId"]
        page = {**sqlite_store.audit_list_params("dashboard", dashboard, AuditLogFilter()), "limit": 20, "offset": 20}
        rows_sql, count_sql, _ = sqlite_store.audit_list_sql(AuditLogFilter())
        entry = store.audit_logs("dashboard", dashboard, 1, 1, AuditLogFilter()).items[0]["_id"]
        today = ANCHOR.date()
        reads = [
            ("recently viewed", lambda: orjson.dumps(store.recently_viewed(user, 10, raw=True))),
            ("  rows one by one", row_by_row(store, sqlite_store.RECENTLY_VIEWED_ROWS, (user, 10))),
            ("most viewed", lambda: orjson.dumps(store.most_viewed(10, raw=True))),
            ("  rows one by one", row_by_row(store, sqlite_store.MOST_VIEWED_ROWS, (10,))),
            ("stats", lambda: orjson.dumps(store.dashboard_stats(dashboard, today))),
            ("audit page 2 of 20", lambda: orjson.dumps(
                store.audit_logs("dashboard", dashboard, 2, 20, AuditLogFilter(), raw=True).items)),
            ("  rows one by one", row_by_row(store, rows_sql, page, count_sql)),
            ("audit entry", lambda: orjson.dumps(store.audit_log(entry, raw=True))),
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
