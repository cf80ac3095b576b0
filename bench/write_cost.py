"""What a view write costs in the store, in process (no HTTP, no sockets, no wrk).

    .venv/bin/python bench/write_cost.py [--seconds 3] [--busy-us 150] [--threads 4] [--processes 2]

Prints, from one run (figures only, nothing asserted):
1. one thread: microseconds per record_view (wall and CPU), on a --db file (WAL) and in memory, with
   p50/p99/max of single calls (a checkpoint inside a write shows up in max); then one write of n views
   (n = 1, 2, 4, 8) straight into SQLite (record_view's slow path: a dashboard the view ring does not
   count), with the same connection writing each time and with another one committing between (as when
   two workers' writes alternate: SQLite drops the writer's page cache);
2. the server's shape: `--processes` forked processes x `--threads` threads on one file, each thread
   spinning `--busy-us` of pure Python (standing in for the HTTP work of a request, which holds the GIL)
   between views: views/s, the same with no writes at all (the ceiling of that simulation), the CPU per
   request beyond that Python (all threads of the processes: the write's whole cost), the folds of the
   view ring into SQLite (views per fold, time waiting for and holding the cross-process turn), the
   largest WAL seen, and the lost/duplicated count check: every acknowledged viewCount distinct and the
   dashboard's total grown by exactly the number acknowledged.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import statistics
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
from mock_server.ids import object_id
from mock_server.store import open_store
from mock_server.store.sqlite import _PendingView
from mock_server.timestamps import to_ms

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


def one_thread(store, dashboard_id: str, user: dict, n: int) -> dict:
    for _ in range(200):  # warm-up: statement cache, pages
        store.record_view(dashboard_id, user, datetime.now(UTC))
    single = []
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        t = time.perf_counter()
        store.record_view(dashboard_id, user, datetime.now(UTC))
        single.append(time.perf_counter() - t)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    single.sort()
    return {"wall_us": wall / n * 1e6, "cpu_us": cpu / n * 1e6, "p50_us": single[n // 2] * 1e6,
            "p99_us": single[int(n * 0.99)] * 1e6, "max_us": single[-1] * 1e6}


def batch_us(store, path: str, dashboard_id: str, users: list[dict], n: int, alternate: bool,
             calls: int = 600) -> float:
    """Median wall time of one write of n queued views (what a turn's batch costs), through the store's own
    _write_views. With `alternate`, another connection commits before each write: as when the workers' turns
    alternate, SQLite then drops the writer's page cache and reads its pages again."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE IF NOT EXISTS bench_other_writer (x)")
    times = []
    try:
        for i in range(calls + 50):
            at = datetime.now(UTC)
            views = [_PendingView(dashboard_id, u["id"].lower(), u["email"], to_ms(at), object_id(at), object_id(at))
                     for u in (users[(i + k) % len(users)] for k in range(n))]

            if alternate:
                other.execute("INSERT INTO bench_other_writer VALUES (1)")
            t = time.perf_counter()
            store._write_views(views)
            if i >= 50:
                times.append(time.perf_counter() - t)
    finally:
        other.close()
    return statistics.median(times) * 1e6


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
    cpu = time.process_time()  # every thread of the process, the store's checkpointer included
    counts, errors, done = _threads_run(store, dashboard_id, users, threads, seconds, busy_us, write)
    cpu = time.process_time() - cpu
    queue.put((counts, errors, done, getattr(store, "write_stats", lambda: None)(), cpu))
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
    stats = [r[3] for r in results if r[3]]
    turns = sum(s["turns"] for s in stats)
    views = sum(s["views"] for s in stats)
    requests = sum(r[2] for r in results)
    return {
        "per_s": requests / args.seconds,
        # CPU per request beyond the --busy-us of Python it stands for: the write's whole cost, on a
        # shared machine steadier than views/s (which moves with whatever else runs)
        "cpu_us": (sum(r[4] for r in results) / requests * 1e6 - args.busy_us) if requests else 0.0,
        "errors": errors,
        "acknowledged": len(counts),
        "delta": after - before,
        "distinct": len(set(counts)) == len(counts),
        "in_range": all(before < c <= after for c in counts),
        "turns": turns,
        "batch": views / turns if turns else 0.0,
        "max_batch": max((s["max_batch"] for s in stats), default=0),
        "wait_us": sum(s["wait_s"] for s in stats) / turns * 1e6 if turns else 0.0,
        "hold_us": sum(s["hold_s"] for s in stats) / turns * 1e6 if turns else 0.0,
        "hold_per_view_us": sum(s["hold_s"] for s in stats) / views * 1e6 if views else 0.0,
        "wal_max_mb": wal_max / 1e6,
        "checkpoints": sum(s.get("checkpoints", 0) for s in stats),
        "checkpoint_turn_us": (sum(s.get("checkpoint_turn_s", 0.0) for s in stats)
                               / max(1, sum(s.get("checkpoints", 0) for s in stats)) * 1e6),
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
        print(f"{'one thread':<28} {'wall us':>8} {'CPU us':>8} {'p50 us':>8} {'p99 us':>8} {'max us':>8}")
        for name, s in (("--db file (WAL)", store), ("in memory", None)):
            if s is None:
                s = open_store(None)
                s.load(data)
            r = one_thread(s, dashboard_id, users[0], args.views)
            print(f"{name:<28} {r['wall_us']:>8.1f} {r['cpu_us']:>8.1f} {r['p50_us']:>8.1f} {r['p99_us']:>8.1f} "
                  f"{r['max_us']:>8.1f}")
            if s is not store:
                s.close()
        print(f"\nn views written into SQLite at once (one dashboard, the slow path), --db file, median us {'per batch':>12} {'per view':>9}")
        for alternate in (False, True):
            for n in (1, 2, 4, 8):
                us = batch_us(store, path, dashboard_id, users, n, alternate)
                where = "another connection wrote between" if alternate else "same connection each time"
                print(f"  {where:<34} n={n:<3} {us:>30.0f} {us / n:>9.0f}")
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
        print(f"  folds of the view ring {r['turns']}, views per fold {r['batch']:.2f} (max {r['max_batch']}), "
              f"wait for turn {r['wait_us']:.0f} us, hold {r['hold_us']:.0f} us/fold = "
              f"{r['hold_per_view_us']:.0f} us/view")
        print(f"  largest WAL {r['wal_max_mb']:.1f} MB, {r['checkpoints']} checkpoints by the store's thread, "
              f"{r['checkpoint_turn_us']:.0f} us each inside a turn")
        print(f"  counts: acknowledged {r['acknowledged']}, total grew {r['delta']}, distinct {r['distinct']}, "
              f"errors {len(r['errors'])}{' ' + r['errors'][0] if r['errors'] else ''}")
        print(f"  lost/duplicated check (every round): {'ok' if ok else 'FAILED'}")
        if len(runs) > 1:
            rounds = ", ".join(f"{x[0]['per_s']:.0f} ({x[0]['cpu_us']:.0f} us)" for x in runs)
            print(f"  views/s (CPU per request beyond the Python) of each round: {rounds}")


if __name__ == "__main__":
    main()
