"""What a view write costs in the store, in process (no HTTP, no sockets, no wrk).

    .venv/bin/python bench/write_cost.py [--views 3000] [--seconds 3] [--busy-us 150] [--threads 4] [--processes 2]

A view is one SQLite transaction (BEGIN IMMEDIATE, the view-apply insert, the count, COMMIT). Prints, from
one run (figures only, nothing asserted):
1. one thread: microseconds per record_view (wall and CPU), on a --db file (WAL) and in memory, with
   p50/p99/max of single calls (SQLite's own WAL checkpoint, inside a COMMIT now and then, shows up in
   max); then the same on the file with another connection committing before each view (as when two
   workers' writes alternate: SQLite then drops the writer's page cache);
2. the server's shape: `--processes` forked processes x `--threads` threads on one file, each thread
   spinning `--busy-us` of pure Python (standing in for the HTTP work of a request, which holds the GIL)
   between views: views/s, the same with no writes at all (the ceiling of that simulation), the CPU per
   request beyond that Python (all threads of the processes: the write's whole cost), the largest WAL
   seen, and the lost/duplicated count check: every acknowledged viewCount distinct and the dashboard's
   total grown by exactly the number acknowledged.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml

from mock_server.data.generate import Sizes, generate
from mock_server.store import open_store

ANCHOR = datetime(2026, 11, 25, 12, tzinfo=UTC)


def dataset():
    tokens = yaml.safe_load((ROOT / "fixtures" / "tokens.yaml").read_text(encoding="utf-8"))
    users = [{**t["user"], "role": t["role"]} for t in tokens["tokens"]]
    return generate(seed=1, anchor=ANCHOR, users=users, account=tokens["account"], sizes=Sizes()), users


def spin(us: float) -> None:
    # CPU time of this thread, not wall time: preempted by another process of a shared machine, the
    # request still costs what it costs (and the CPU per view below can subtract it exactly).
    end = time.thread_time() + us / 1e6
    while time.thread_time() < end:
        pass


def one_thread(store, dashboard_id: str, user: dict, n: int, other: sqlite3.Connection | None = None) -> dict:
    """record_view n times; with `other`, that connection commits a write before each view."""
    for _ in range(200):  # warm-up: statement cache, pages
        store.record_view(dashboard_id, user, datetime.now(UTC))
    single = []
    wall = cpu = 0.0
    for _ in range(n):
        if other is not None:
            other.execute("INSERT INTO bench_other_writer VALUES (1)")
        w, c = time.perf_counter(), time.process_time()
        store.record_view(dashboard_id, user, datetime.now(UTC))
        took = time.perf_counter() - w
        wall, cpu = wall + took, cpu + time.process_time() - c
        single.append(took)
    single.sort()
    return {"wall_us": wall / n * 1e6, "cpu_us": cpu / n * 1e6, "p50_us": single[n // 2] * 1e6,
            "p99_us": single[int(n * 0.99)] * 1e6, "max_us": single[-1] * 1e6}


def _threads_run(store, dashboard_id: str, users: list[dict], threads: int, seconds: float, busy_us: float,
                 write: bool) -> tuple[list[int], list[str], int]:
    counts: list[int] = []
    errors: list[str] = []
    done = [0] * threads
    start = threading.Barrier(threads)

    def loop(k: int) -> None:
        user = users[k % len(users)]
        start.wait()
        stop = time.monotonic() + seconds
        mine = []
        while time.monotonic() < stop:
            spin(busy_us)
            if write:
                try:
                    mine.append(store.record_view(dashboard_id, user, datetime.now(UTC))["viewCount"])
                except Exception as exc:  # noqa: BLE001 - counted and printed
                    errors.append(repr(exc))
            done[k] += 1
        counts.extend(mine)

    pool = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return counts, errors, sum(done)


def _process(path: str, dashboard_id: str, users, threads, seconds, busy_us, write, barrier, queue) -> None:
    sys.setswitchinterval(0.0005)  # what serving.py's post_fork sets in each gunicorn worker
    store = open_store(path)
    barrier.wait()
    cpu = time.process_time()  # every thread of the process
    counts, errors, done = _threads_run(store, dashboard_id, users, threads, seconds, busy_us, write)
    cpu = time.process_time() - cpu
    queue.put((counts, errors, done, cpu))
    store.close()


def server_shape(path: str, dashboard_id: str, users, args, write: bool) -> dict:
    before = _total(path, dashboard_id)
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(args.processes), ctx.Queue()
    procs = [ctx.Process(target=_process, args=(path, dashboard_id, users, args.threads, args.seconds,
                                                args.busy_us, write, barrier, queue))
             for _ in range(args.processes)]
    for p in procs:
        p.start()
    wal_max = 0
    while any(p.is_alive() for p in procs) and queue.empty():
        try:
            wal_max = max(wal_max, os.path.getsize(path + "-wal"))
        except OSError:
            pass
        time.sleep(0.05)
    results = [queue.get(timeout=60 + args.seconds) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    counts = [c for r in results for c in r[0]]
    errors = [e for r in results for e in r[1]]
    after = _total(path, dashboard_id)
    requests = sum(r[2] for r in results)
    return {
        "per_s": requests / args.seconds,
        # CPU per request beyond the --busy-us of Python it stands for: the write's whole cost, on a
        # shared machine steadier than views/s (which moves with whatever else runs)
        "cpu_us": (sum(r[3] for r in results) / requests * 1e6 - args.busy_us) if requests else 0.0,
        "errors": errors,
        "acknowledged": len(counts),
        "delta": after - before,
        "distinct": len(set(counts)) == len(counts),
        "in_range": all(before < c <= after for c in counts),
        "wal_max_mb": wal_max / 1e6,
    }


def _total(path: str, dashboard_id: str) -> int:
    store = open_store(path)
    try:
        return store.dashboard_stats(dashboard_id, ANCHOR.date())["totalViews"]
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=3000, help="views timed in the one-thread case")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each server-shape run")
    parser.add_argument("--busy-us", type=float, default=150.0, help="pure Python per request besides the write")
    parser.add_argument("--threads", type=int, default=4, help="threads per process (gunicorn --threads)")
    parser.add_argument("--processes", type=int, default=2, help="processes (gunicorn workers)")
    parser.add_argument("--rounds", type=int, default=1, help="server-shape rounds (median printed)")
    args = parser.parse_args()
    data, users = dataset()
    dashboard_id = data.dashboards[0]["dashboardId"].lower()
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/write.db"
        store = open_store(path)
        store.load(data)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("CREATE TABLE IF NOT EXISTS bench_other_writer (x)")
        memory = open_store(None)
        memory.load(dataset()[0])
        print(f"{'one thread, record_view':<44} {'wall us':>8} {'CPU us':>8} {'p50 us':>8} {'p99 us':>8} {'max us':>8}")
        for name, s, between in (("--db file (WAL)", store, None),
                                 ("--db file, another connection wrote between", store, other),
                                 ("in memory", memory, None)):
            r = one_thread(s, dashboard_id, users[0], args.views, between)
            print(f"{name:<44} {r['wall_us']:>8.1f} {r['cpu_us']:>8.1f} {r['p50_us']:>8.1f} {r['p99_us']:>8.1f} "
                  f"{r['max_us']:>8.1f}")
        memory.close()
        other.close()
        store.close()
        print(f"\n{args.processes} processes x {args.threads} threads, {args.busy_us:.0f} us of Python per request, "
              f"{args.seconds:.0f} s, one --db file:")
        runs = []
        for _ in range(args.rounds):
            idle = server_shape(path, dashboard_id, users, args, write=False)
            runs.append((server_shape(path, dashboard_id, users, args, write=True), idle))
        ok = all(not r["errors"] and r["distinct"] and r["in_range"] and r["delta"] == r["acknowledged"]
                 for r, _ in runs)
        r, idle = sorted(runs, key=lambda pair: pair[0]["per_s"])[len(runs) // 2]
        print(f"  views/s {r['per_s']:.0f}   (no writes: {idle['per_s']:.0f}/s, ratio "
              f"{r['per_s'] / idle['per_s']:.2f})")
        print(f"  CPU per request beyond the {args.busy_us:.0f} us of Python: {r['cpu_us']:.0f} us with a view write, "
              f"{idle['cpu_us']:.0f} us without")
        print(f"  largest WAL {r['wal_max_mb']:.1f} MB (SQLite's own checkpoints)")
        print(f"  counts: acknowledged {r['acknowledged']}, total grew {r['delta']}, distinct {r['distinct']}, "
              f"errors {len(r['errors'])}{' ' + r['errors'][0] if r['errors'] else ''}")
        print(f"  lost/duplicated check (every round): {'ok' if ok else 'FAILED'}")
        if len(runs) > 1:
            rounds = ", ".join(f"{x[0]['per_s']:.0f} ({x[0]['cpu_us']:.0f} us)" for x in runs)
            print(f"  views/s (CPU per request beyond the Python) of each round: {rounds}")


if __name__ == "__main__":
    main()
