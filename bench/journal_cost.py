"""What the request journal and the scenario sync cost per request, in process (no sockets, no wrk).

    .venv/bin/python bench/journal_cost.py [--requests 3000] [--before REV | --before none]

Three tables, figures only (nothing is asserted), CPU microseconds, the best of several interleaved rounds
(the least disturbed by other load on a shared machine):

1. journal.record() alone, on the request thread (time.thread_time: a writer thread's CPU is not in it),
   for real captures of three responses: an audit entry (~0.5 KB), a most-viewed list (~4 KB) and a
   page of dashboard logs (16 KB captured), in both modes: the in-memory ring (one process) and
   per-process files (what --workers N uses). `before` is mock_server/journal.py at REV (default: the
   last commit before the writer thread), loaded from git, next to the current one (`after`). Then, for
   a WSGI layer: building record()'s lists from the environ and calling it, against record_wsgi(environ).
2. What making an entry costs, off the request thread: per entry written by the file writer (redaction,
   JSON, the write, in batches), per entry made when the ring is read, and per entry made and serialized
   one at a time, now and before (what the old file mode did on the request thread); then the writer thread's CPU
   per request when requests arrive at a steady rate (the 4 KB capture): it writes at most JOURNAL_SIZE
   entries per flush interval, so its cost per request falls as the rate rises.
3. The whole Flask pipeline (GET most-viewed, response validation off, as in bench/run.py) per request,
   CPU of the whole process (every thread: the writer's work is in it), for: journal off, the ring,
   files (before and after), and the scenario sync with a --db file checked on every request versus at
   most every 0.1 s (the default). In the file variants each round ends with a flush, so every entry of
   the round is redacted and written inside the measurement (the worst case: under load a writer skips
   the captures that newer ones push out of its bounded buffer before it runs).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mock_server import app as app_module  # noqa: E402
from mock_server import create_app  # noqa: E402
from mock_server import journal as journal_after  # noqa: E402

API = "/api/v2/insights/kpis/audit-logs"
PATH = f"{API}/dashboard/most-viewed?limit=5"
HEADERS = {"Authorization": "Bearer mock-admin-token"}
# What a browser sends: the capture's request headers are part of what a record costs.
BROWSER = {**HEADERS, "Accept": "application/json", "Accept-Encoding": "gzip, deflate, br",
           "Accept-Language": "en-US,en;q=0.9", "Connection": "keep-alive", "Origin": "http://localhost:3000",
           "Referer": "http://localhost:3000/dashboards",
           "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"}
BASE = {"NOW": "2026-11-25T12:00:00Z", "VALIDATE_RESPONSES": False, "VIEWS": 2000, "AUDIT_LOGS": 500}
ADMIN_TOKEN = "s3cret-admin-9f2c41d7e8"
BEFORE_REV = "b620613"  # the journal that redacted and wrote on the request thread
ROUNDS = 15


def load_before(rev: str) -> ModuleType:
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:mock_server/journal.py"],
                            capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="journal-before-")) / "journal_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("journal_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def captures() -> tuple[dict[str, dict], list[str]]:
    """The raw keyword arguments app.py passes to record(), for three real responses, and the secrets."""
    app = create_app(dict(BASE))
    state = app.extensions[app_module.EXTENSION]
    kept: list[dict] = []
    state.default.journal.record = lambda **raw: kept.append(raw)
    client = app.test_client()
    most = client.get(f"{API}/dashboard/most-viewed?limit=10", headers=BROWSER).json["data"]
    logs = client.get(f"{API}/dashboard/{most[0]['dashboardId']}/logs?pageSize=40", headers=BROWSER).json["data"]
    client.get(f"{API}/{logs[0]['_id']}", headers=BROWSER)
    by_size = {f"{len(raw['response_body']) / 1024:.1f} KB body": raw for raw in kept}
    return dict(sorted(by_size.items(), key=lambda item: len(item[1]["response_body"]))), \
        sorted(state.default.journal.redactor.secrets)


def best(rounds: list[float]) -> float:
    return min(rounds)


def record_cost(module: ModuleType, raw: dict, secrets: list[str], directory: str | None, n: int) -> float:
    """Best per-record thread CPU of ROUNDS rounds of n records."""
    journal = module.Journal(200, secrets, directory)
    results = []
    for _ in range(ROUNDS):
        started = time.thread_time()
        for _ in range(n):
            journal.record(**raw)
        results.append((time.thread_time() - started) / n * 1e6)
    if hasattr(journal, "close"):
        journal.close()
    return best(results)


def environ_cost(raw: dict, secrets: list[str], directory: str | None, n: int) -> tuple[float, float]:
    """Per request, from a WSGI environ: building record()'s lists then record(), against record_wsgi()."""
    from urllib.parse import parse_qsl

    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=PATH.split("?")[0], query_string=PATH.split("?")[1], headers=BROWSER).get_environ()
    rest = {k: v for k, v in raw.items()
            if k not in ("method", "path", "query", "request_headers", "request_mimetype")}
    journal = journal_after.Journal(200, secrets, directory)
    lists, lazy = [], []
    for _ in range(ROUNDS):
        started = time.thread_time()
        for _ in range(n):
            headers = [(k[5:].replace("_", "-").title(), v) for k, v in environ.items() if k.startswith("HTTP_")]
            journal.record(method=environ["REQUEST_METHOD"], path=environ["PATH_INFO"],
                           query=parse_qsl(environ["QUERY_STRING"], keep_blank_values=True),
                           request_headers=headers, request_mimetype=None, **rest)
        lists.append((time.thread_time() - started) / n * 1e6)
        started = time.thread_time()
        for _ in range(n):
            journal.record_wsgi(environ, **rest)
        lazy.append((time.thread_time() - started) / n * 1e6)
    journal.close()
    return best(lists), best(lazy)


def write_cost(raw: dict, secrets: list[str], directory: str, n: int) -> tuple[float, float]:
    """Per entry: written by the file writer (batches of n, flushed here), made when the ring is read."""
    files = journal_after.Journal(200, secrets, directory, flush_interval_s=3600)  # only our flushes
    ring = journal_after.Journal(n, secrets)
    written, read = [], []
    for _ in range(ROUNDS):
        for _ in range(n):
            files.record(**raw)
            ring.record(**raw)
        started = time.thread_time()
        files.flush()
        written.append((time.thread_time() - started) / n * 1e6)
        started = time.thread_time()
        ring.entries()
        read.append((time.thread_time() - started) / n * 1e6)
    files.close()
    return best(written), best(read)


def paced_writer_cost(raw: dict, secrets: list[str], directory: str, rate: int, seconds: float) -> tuple[float, int]:
    """Records at `rate` per second (ticks of 1 ms) for `seconds` with the writer thread on its own
    (default interval): its CPU per request (process CPU minus this thread's), and the entries it wrote."""
    journal = journal_after.Journal(200, secrets, directory)
    per_tick = rate / 1000
    owed = 0.0
    started_process, started_thread = time.process_time(), time.thread_time()
    start = time.perf_counter()
    recorded = 0
    while time.perf_counter() - start < seconds:
        owed += per_tick
        while owed >= 1:
            journal.record(**raw)
            recorded += 1
            owed -= 1
        time.sleep(max(0.0, start + (recorded / rate) - time.perf_counter()) or 0.0005)
    writer_cpu = (time.process_time() - started_process) - (time.thread_time() - started_thread)
    skipped = journal.superseded
    pending = len(journal._ring)
    journal.close()
    return writer_cpu / recorded * 1e6, recorded - skipped - pending


def entry_cost(module: ModuleType, raw: dict, secrets: list[str]) -> float:
    """Per entry made and serialized by `module` (the old journal did this on the request thread)."""
    redactor = module.Redactor(secrets)
    results = []
    for _ in range(ROUNDS):
        started = time.thread_time()
        for _ in range(50):
            module.orjson.dumps(module.make_entry(redactor, **raw))
        results.append((time.thread_time() - started) / 50 * 1e6)
    return best(results)


def per_request_us(client, n: int, flush) -> float:
    # CPU time of this process (every thread): what the journal adds to a request, less disturbed by other
    # processes' load than wall time (a shared machine). File writes are CPU time too (the syscall).
    started = time.process_time()
    for _ in range(n):
        client.get(PATH, headers=HEADERS)
    flush()
    return (time.process_time() - started) / n * 1e6


def pipeline(before: ModuleType | None, tmp: str, n: int) -> None:
    variants = {
        "journal off (in-memory store)": ({"JOURNAL_SIZE": 0}, None),
        "journal ring, in memory (1 worker)": ({"JOURNAL_SIZE": 200}, None),
        "journal files (--workers N), after": ({"JOURNAL_SIZE": 200, "JOURNAL_DIR": f"{tmp}/after"}, None),
        "--db file, journal off, sync every 0.1 s": ({"JOURNAL_SIZE": 0, "DB": f"{tmp}/a.db"}, None),
        "--db file, journal off, sync every request": ({"JOURNAL_SIZE": 0, "DB": f"{tmp}/b.db",
                                                        "SCENARIO_SYNC_S": 0}, None),
    }
    if before is not None:
        variants["journal files (--workers N), before"] = ({"JOURNAL_SIZE": 200, "JOURNAL_DIR": f"{tmp}/before"},
                                                          before)
    clients, flushes = {}, {}
    for name, (extra, module) in variants.items():
        original = app_module.Journal
        if module is not None:
            app_module.Journal = module.Journal
        try:
            app = create_app({**BASE, **extra})
        finally:
            app_module.Journal = original
        clients[name] = app.test_client()
        journal = app.extensions[app_module.EXTENSION].journal
        flushes[name] = getattr(journal, "flush", lambda: None)
    for name, client in clients.items():
        per_request_us(client, 200, flushes[name])  # warm-up
    rounds: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(ROUNDS):
        for name, client in clients.items():
            rounds[name].append(per_request_us(client, max(n // ROUNDS, 1), flushes[name]))
    base = best(rounds["journal off (in-memory store)"])
    db_base = best(rounds["--db file, journal off, sync every 0.1 s"])
    print(f"\n3. whole pipeline, GET most-viewed: process CPU (all threads)\n"
          f"{'variant':<45} {'CPU us/req':>11} {'vs its base':>12}")
    for name, values in rounds.items():
        ref = db_base if name.startswith("--db") else base
        print(f"{name:<45} {best(values):>11.1f} {best(values) - ref:>+11.1f}us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per variant in table 3")
    parser.add_argument("--records", type=int, default=150, help="records per round in tables 1 and 2")
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each paced run in table 2")
    parser.add_argument("--before", default=BEFORE_REV, help="git revision of the journal to compare ('none')")
    args = parser.parse_args()
    before = None if args.before == "none" else load_before(args.before)
    raws, secrets = captures()
    n = args.records
    # The fixture tokens share the prefix "mock-"; an admin token (--admin-token, needed off loopback) does
    # not, and the old alternation then tried every token at every position.
    secret_sets = {"": secrets, " +admin": [*secrets, ADMIN_TOKEN]}
    with tempfile.TemporaryDirectory() as tmp:
        print("1. journal.record() on the request thread: thread CPU us per request "
              f"(best of {ROUNDS} rounds of {n})")
        modules = {"after": journal_after, **({"before": before} if before is not None else {})}
        print(f"{'capture':<22} " + " ".join(f"{f'ring {m}':>12} {f'files {m}':>12}" for m in modules))
        for suffix, keys in secret_sets.items():
            for label, raw in raws.items():
                cells = []
                for tag, module in modules.items():
                    cells.append(record_cost(module, raw, keys, None, n))
                    cells.append(record_cost(module, raw, keys, f"{tmp}/r-{tag}", n))
                print(f"{label + suffix:<22} " + " ".join(f"{c:>12.1f}" for c in cells))
        label, raw = list(raws.items())[1]
        print(f"\n   from a WSGI environ ({label}), on the request thread: building the lists + record() "
              "against record_wsgi()")
        for mode, directory in (("ring", None), ("files", f"{tmp}/e")):
            lists, lazy = environ_cost(raw, secrets, directory, n)
            print(f"   {mode:<6} lists + record() {lists:>6.1f}   record_wsgi() {lazy:>6.1f}")
        print(f"\n2. making an entry, off the request thread: CPU us per entry (batches of {n})")
        print(f"{'capture':<22} {'file writer':>12} {'ring read':>12} {'made':>8}"
              + (f" {'made before':>12}" if before is not None else ""))
        for suffix, keys in secret_sets.items():
            for label, raw in raws.items():
                written, read = write_cost(raw, keys, f"{tmp}/w", n)
                made = entry_cost(journal_after, raw, keys)
                old = f" {entry_cost(before, raw, keys):>12.1f}" if before is not None else ""
                print(f"{label + suffix:<22} {written:>12.1f} {read:>12.1f} {made:>8.1f}{old}")
        label, raw = list(raws.items())[1]
        interval = journal_after.FLUSH_INTERVAL_S
        print(f"\n   the writer thread left alone (interval {interval} s, size 200), {label}: it writes at most "
              f"{200 / interval:.0f} entries/s, the newest")
        print(f"{'rate':>10} {'requests':>9} {'written':>9} {'writer CPU us/req':>18}")
        for rate in (500, 4000):
            cost, written = paced_writer_cost(raw, secrets, f"{tmp}/paced-{rate}", rate, args.seconds)
            print(f"{rate:>8}/s {int(rate * args.seconds):>9} {written:>9} {cost:>18.1f}")
        pipeline(before, tmp, args.requests)


if __name__ == "__main__":
    main()
