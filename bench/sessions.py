"""What a session costs: the time from a new session's first request to its answer, and the memory it holds.

    python3 bench/sessions.py [--sessions 32] [--postgres]

In process (the app's WSGI callable, no socket), at the default sizes (6 000 views, 3 000 audit entries):
- first request of a new session (GET most-viewed with X-Mock-Session): registry claim, the template copied into
  the session's store, its scenario runtime, journal and cache; then a second request of the same session;
- the same with the data in a --db file (a sibling file per session) and, with --postgres, in a PostgreSQL
  schema per session (a throwaway server, bench/postgres.py);
- memory: the process's RSS after N in-memory sessions, minus before, over N.
Figures are medians of `--sessions` sessions, one run; compare them as ratios to the second request.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PATH = "/api/v2/insights/kpis/audit-logs/dashboard/most-viewed"
AUTH = {"Authorization": "Bearer mock-admin-token"}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(config: dict, sessions: int, label: str) -> dict:
    from mock_server.app import create_app

    started = time.perf_counter()
    app = create_app({"TESTING": True, "RESPONSE_CACHE": True, **config})
    startup_ms = (time.perf_counter() - started) * 1000
    client = app.test_client()
    assert client.get(PATH, headers=AUTH).status_code == 200
    before = rss_mb()
    first, second = [], []
    for i in range(sessions):
        headers = {**AUTH, "X-Mock-Session": f"bench-{i}"}
        t0 = time.perf_counter()
        assert client.get(PATH, headers=headers).status_code == 200
        t1 = time.perf_counter()
        assert client.get(PATH + "?limit=5", headers=headers).status_code == 200
        t2 = time.perf_counter()
        first.append((t1 - t0) * 1000)
        second.append((t2 - t1) * 1000)
    after = rss_mb()
    app.extensions["insights_mock"].close()
    result = {"label": label, "startup_ms": startup_ms, "first_ms": statistics.median(first),
              "first_max_ms": max(first), "second_ms": statistics.median(second),
              "rss_per_session_mb": (after - before) / sessions}
    print(f"{label:<22} start-up {startup_ms:7.1f} ms | new session: median {result['first_ms']:6.1f} ms, "
          f"max {result['first_max_ms']:6.1f} ms | its next request {result['second_ms']:5.2f} ms "
          f"(x{result['first_ms'] / result['second_ms']:.0f}) | RSS per session {result['rss_per_session_mb']:5.2f} MB",
          flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=32)
    parser.add_argument("--postgres", action="store_true", help="also with a throwaway PostgreSQL server")
    args = parser.parse_args()
    print(f"{args.sessions} sessions each, default sizes (views 6000, audit entries 3000), one run")
    measure({}, args.sessions, "in memory")
    with tempfile.TemporaryDirectory() as tmp:
        measure({"DB": str(Path(tmp) / "mock.db")}, args.sessions, "--db file")
    if args.postgres:
        sys.path.insert(0, str(ROOT / "bench"))
        from postgres import running_postgres, unavailable

        why = unavailable()
        if why:
            print(f"PostgreSQL: not measured ({why})")
        else:
            with running_postgres() as url:
                measure({"DATABASE_URL": url}, args.sessions, "PostgreSQL schema")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
