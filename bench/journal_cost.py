"""What the request journal and the scenario sync cost per request, in process (no sockets, no wrk).

    .venv/bin/python bench/journal_cost.py [--requests 3000]

Prints microseconds per request of GET most-viewed through the whole Flask pipeline (response validation
off, as in bench/run.py) for: journal off, the in-memory ring, per-process files (what --workers N uses),
and the scenario sync with a --db file checked on every request versus at most every 0.1 s (the default).
Figures only, from one run; nothing is asserted. CPU microseconds, best of 15 interleaved rounds (the least disturbed by
other load on a shared machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mock_server import create_app  # noqa: E402

PATH = "/api/v2/insights/kpis/audit-logs/dashboard/most-viewed?limit=5"
HEADERS = {"Authorization": "Bearer mock-admin-token"}
BASE = {"NOW": "2026-11-25T12:00:00Z", "VALIDATE_RESPONSES": False, "VIEWS": 2000, "AUDIT_LOGS": 500}


def per_request_us(client, n: int) -> float:
    # CPU time of this process: what the journal adds to a request, less disturbed by other processes'
    # load than wall time (a shared machine). File writes are CPU time too (the syscall).
    started = time.process_time()
    for _ in range(n):
        client.get(PATH, headers=HEADERS)
    return (time.process_time() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        variants = {
            "journal off (in-memory store)": {"JOURNAL_SIZE": 0},
            "journal ring, in memory (1 worker)": {"JOURNAL_SIZE": 200},
            "journal files (--workers N)": {"JOURNAL_SIZE": 200, "JOURNAL_DIR": f"{tmp}/journal"},
            "--db file, journal off, sync every 0.1 s": {"JOURNAL_SIZE": 0, "DB": f"{tmp}/a.db"},
            "--db file, journal off, sync every request": {"JOURNAL_SIZE": 0, "DB": f"{tmp}/b.db",
                                                           "SCENARIO_SYNC_S": 0},
        }
        clients = {name: create_app({**BASE, **extra}).test_client() for name, extra in variants.items()}
        for client in clients.values():
            per_request_us(client, 200)  # warm-up
        rounds: dict[str, list[float]] = {name: [] for name in clients}
        for _ in range(15):
            for name, client in clients.items():
                rounds[name].append(per_request_us(client, args.requests // 15))
    base = min(rounds["journal off (in-memory store)"])
    db_base = min(rounds["--db file, journal off, sync every 0.1 s"])
    print(f"{'variant':<45} {'CPU us/req':>11} {'vs its base':>12}")
    for name, values in rounds.items():
        median = min(values)
        ref = db_base if name.startswith("--db") else base
        print(f"{name:<45} {median:>11.1f} {median - ref:>+11.1f}us")


if __name__ == "__main__":
    main()
