"""The two stores side by side, in process (no HTTP): a view write and a read on a SQLite file and on PostgreSQL.

    .venv/bin/python bench/store_kinds.py [--seconds 3] [--threads 8] [--views 6000]

PostgreSQL is a throwaway server started on 127.0.0.1 for the run (mock_server/testing/postgres.py: Debian's
`postgresql` package, fsync=off), reached over TCP loopback as a replica would reach its database. Prints,
for each store, from one run (figures only; the only assertion is the exact count):
- record_view, one thread: µs per view (wall);
- record_view, --threads threads on one store (one process): views/s and µs per view, and the check that every
  acknowledged viewCount is distinct and the total grew by exactly the number acknowledged;
- most_viewed(10), one thread: µs per read.
"""

from __future__ import annotations

import argparse
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
from mock_server.testing.postgres import create_database, running_postgres

ANCHOR = datetime(2026, 11, 25, tzinfo=UTC)


def _dataset(views: int):
    tokens = yaml.safe_load((ROOT / "fixtures" / "tokens.yaml").read_text(encoding="utf-8"))
    users = [{**t["user"], "role": t["role"]} for t in tokens["tokens"]]
    return generate(seed=42, anchor=ANCHOR, users=users, account=tokens["account"],
                    sizes=Sizes(users=50, dashboards=40, mappings=10, views=views, audit_logs=views // 2))


def _timed(call, seconds: float) -> float:
    """µs per call of `call()`, run for about `seconds`."""
    call()  # warm: connections, prepared statements
    n, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        call()
        n += 1
    return (time.perf_counter() - started) / n * 1e6


def measure(store, seconds: float, threads: int) -> dict:
    dashboards = [d["dashboardId"] for d in store.most_viewed(40)]
    user = {"id": "64b7f0c2a1e3d4c5b6a79801", "email": "dana.kim@acme.example"}
    figures = {"view_us_1_thread": _timed(lambda: store.record_view(dashboards[0], user, ANCHOR), seconds),
               "most_viewed_us": _timed(lambda: store.most_viewed(10), seconds)}
    target = dashboards[1]
    before = store.most_viewed(40)
    base = next(d["viewCount"] for d in before if d["dashboardId"] == target)
    counts: list[int] = []
    stop = threading.Event()

    def writer(i: int) -> None:
        me = {"id": f"{i:024x}", "email": f"u{i}@acme.example"}
        mine = []
        while not stop.is_set():
            mine.append(store.record_view(target, me, ANCHOR)["viewCount"])
        counts.extend(mine)

    pool = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    total = store.dashboard_stats(target, ANCHOR.date())["totalViews"]
    assert sorted(counts) == list(range(base + 1, base + len(counts) + 1)) and total == base + len(counts)
    figures[f"views_per_s_{threads}_threads"] = len(counts) / elapsed
    figures[f"view_us_{threads}_threads"] = elapsed / len(counts) * 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--views", type=int, default=6000)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = open_store(str(Path(tmp) / "bench.db"))
        sqlite.load(_dataset(args.views))
        results["sqlite file"] = measure(sqlite, args.seconds, args.threads)
        sqlite.close()
    with running_postgres() as admin_url:
        postgres = open_store(None, create_database(admin_url, "bench"))
        postgres.load(_dataset(args.views))
        results["postgresql"] = measure(postgres, args.seconds, args.threads)
        postgres.close()
    keys = list(next(iter(results.values())))
    print(f"{'':28}" + "".join(f"{name:>16}" for name in results))
    for key in keys:
        print(f"{key:28}" + "".join(f"{figures[key]:16.1f}" for figures in results.values()))


if __name__ == "__main__":
    main()
