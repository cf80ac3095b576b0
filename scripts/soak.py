"""Load and crash runs of the real server: `insights-mock serve --workers N --db FILE` in a subprocess.

    python scripts/soak.py load  --seconds 300 --writers 16 --readers 8     # concurrency, counts, RSS
    python scripts/soak.py crash --kills 10 --seconds 4                     # kill -9 mid-POSTs, restart, verify

`load`: writers POST views of a few dashboards (known ones and unknown well-formed ids) while readers GET
the lists, stats and logs, for a bounded time. Afterwards every acknowledged (200) view must be counted exactly
once: per dashboard, the stats' totalViews and the audit log's `view` entries grew by exactly the number of
200s, most viewed agrees, and no two acknowledgements of one dashboard carried the same viewCount. No 5xx, no
"database is locked" and no traceback in the server's output. The RSS of the master and of every worker is
sampled through /proc during the run.

`crash`: writers POST views; the whole server (master and workers, one process group) is killed with SIGKILL
mid-run; the server is restarted on the same file and must start without repair; every acknowledged view must be
there (before + acknowledged <= after <= before + acknowledged + in flight), and PRAGMA integrity_check is ok.
Repeated --kills times on the same file.

Both print their figures and exit 1 when a rule is broken. tests/system/test_load.py and tests/system/test_crash.py run short
variants of the same functions in CI. Linux only (process groups, /proc).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/api/v2/insights/kpis/audit-logs"
NOW = "2026-11-25T12:00:00.000Z"
WRITER_TOKENS = ("mock-admin-token", "mock-opsera-admin-token", "mock-poweruser-token", "mock-user-token")
READER_TOKEN = "mock-admin-token"
UNKNOWN_IDS = ("00000000-0000-4000-8000-00000000a001", "00000000-0000-4000-8000-00000000a002")
SIZES = ["--users", "40", "--dashboards", "30", "--mappings", "10", "--views", "3000", "--audit-logs", "1500"]
BAD_LOG_WORDS = ("database is locked", "Traceback", "OperationalError")
# "Flat" RSS over a long run: from the sample a tenth into the run to the last one, a process may grow by at
# most this share of its size or FLAT_MIB, whichever is larger (allocator arenas, caches warming up).
FLAT_SHARE, FLAT_MIB = 0.10, 8.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the server ----------------------------------------------------------------------------------------------

class Server:
    """`insights-mock serve` in its own process group, so that one killpg reaches master and workers."""

    def __init__(self, db: Path, workers: int = 4, seed: int = 42, logdir: Path | None = None) -> None:
        self.db, self.workers, self.seed = db, workers, seed
        self.logdir = logdir or db.parent
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.start_seconds = 0.0
        self._outs: list = []

    def start(self, timeout: float = 90) -> Server:
        self._outs = [open(self.logdir / f"server-{self.port}.{name}", "w+") for name in ("out", "err")]
        command = [sys.executable, "-m", "mock_server", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(self.workers), "--db", str(self.db), "--seed", str(self.seed), "--now", NOW,
                   *SIZES]
        started = time.monotonic()
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=self._outs[0], stderr=self._outs[1],
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.stderr()[-3000:]}")
            try:
                if requests.get(self.base + "/__admin/health", timeout=2).status_code == 200:
                    self.start_seconds = time.monotonic() - started
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the server did not answer /__admin/health within {timeout} s:\n{self.stderr()[-3000:]}")

    def pids(self) -> list[int]:
        """The master and its live children (the workers)."""
        if self.process is None or self.process.poll() is not None:
            return []
        master = self.process.pid
        children: list[int] = []
        for task in Path(f"/proc/{master}/task").glob("*/children"):
            try:
                children += [int(p) for p in task.read_text().split()]
            except OSError:
                pass
        return [master, *sorted(set(children))]

    def kill(self) -> None:
        """SIGKILL to the whole process group: no worker survives to finish a write."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self._close_outputs()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
            except ProcessLookupError:
                pass
        self._close_outputs()

    def _close_outputs(self) -> None:
        for stream in self._outs:
            stream.flush()

    def stderr(self) -> str:
        path = self.logdir / f"server-{self.port}.err"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def bad_log_lines(self) -> list[str]:
        return [line for line in self.stderr().splitlines() if any(word in line for word in BAD_LOG_WORDS)]


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    """RSS of the master and each worker every `interval` seconds, keyed by pid."""

    def __init__(self, server: Server, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.server, self.interval = server, interval
        self.samples: dict[int, list[tuple[float, int]]] = defaultdict(list)
        self.master = server.process.pid if server.process else None
        self.stop_event = threading.Event()
        self.started = time.monotonic()

    def run(self) -> None:
        while not self.stop_event.is_set():
            now = time.monotonic() - self.started
            for pid in self.server.pids():
                kib = rss_kib(pid)
                if kib is not None:
                    self.samples[pid].append((now, kib))
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)

    def figures(self) -> list[dict]:
        """Per process: first, last, max and the baseline a tenth into the run (MiB)."""
        rows = []
        for pid, samples in sorted(self.samples.items(), key=lambda item: (item[0] != self.master, item[0])):
            values = [kib for _, kib in samples]
            end = samples[-1][0]
            baseline = next((kib for t, kib in samples if t >= end * 0.1), values[0])
            rows.append({"pid": pid, "role": "master" if pid == self.master else "worker", "samples": len(values),
                         "first": values[0] / 1024, "baseline": baseline / 1024, "last": values[-1] / 1024,
                         "max": max(values) / 1024})
        return rows


def not_flat(row: dict) -> bool:
    allowed = max(row["baseline"] * FLAT_SHARE, FLAT_MIB)
    return row["last"] - row["baseline"] > allowed


# --- reading the counts ------------------------------------------------------------------------------------

def counts(base: str, dashboards: list[str]) -> dict[str, dict[str, int]]:
    """Per dashboard: stats totalViews, `view` entries in its audit log, and its most-viewed viewCount."""
    session = requests.Session()
    headers = auth(READER_TOKEN)
    listed = session.get(f"{base}{PREFIX}/dashboard/most-viewed", params={"limit": 100}, headers=headers, timeout=30)
    listed.raise_for_status()
    most = {item["dashboardId"]: item["viewCount"] for item in listed.json()["data"]}
    found = {}
    for dashboard in dashboards:
        stats = session.get(f"{base}{PREFIX}/dashboard/{dashboard}/stats", headers=headers, timeout=30)
        logs = session.get(f"{base}{PREFIX}/dashboard/{dashboard}/logs", params={"action": "view", "page_size": 1, "start_date": "1970-01-01"},
                           headers=headers, timeout=30)
        stats.raise_for_status()
        logs.raise_for_status()
        found[dashboard] = {"stats": stats.json()["data"]["totalViews"],
                            "audit": logs.json()["pagination"]["total_items"], "most_viewed": most.get(dashboard)}
    session.close()
    return found


def pick_dashboards(base: str, known: int = 4) -> list[str]:
    listed = requests.get(f"{base}{PREFIX}/dashboard/most-viewed", params={"limit": known},
                          headers=auth(READER_TOKEN), timeout=30)
    listed.raise_for_status()
    return [item["dashboardId"] for item in listed.json()["data"]] + list(UNKNOWN_IDS)


# --- the load ------------------------------------------------------------------------------------------------

@dataclass
class Load:
    acknowledged: Counter = field(default_factory=Counter)  # dashboard -> 200s
    view_counts: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    in_flight_lost: Counter = field(default_factory=Counter)  # dashboard -> sent, no answer (crash runs)
    statuses: Counter = field(default_factory=Counter)  # (kind, status)
    failures: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def merge_status(self, kind: str, status: int | str) -> None:
        with self.lock:
            self.statuses[(kind, status)] += 1
            self.requests += 1


def _writer(base: str, token: str, dashboards: list[str], index: int, load: Load, stop: threading.Event,
            expect_crash: bool) -> None:
    session = requests.Session()
    i = index
    while not stop.is_set():
        dashboard = dashboards[i % len(dashboards)]
        i += 1
        try:
            response = session.post(f"{base}{PREFIX}/dashboard/{dashboard}/view", headers=auth(token), timeout=30)
        except requests.RequestException as exc:
            if expect_crash:
                with load.lock:  # sent, answer unknown: the view may or may not have been stored
                    load.in_flight_lost[dashboard] += 1
                    load.statuses[("write", "no answer")] += 1
                return
            load.merge_status("write", "error")
            with load.lock:
                load.failures.append(f"POST view: {type(exc).__name__}: {exc}")
            continue
        load.merge_status("write", response.status_code)
        if response.status_code == 200:
            with load.lock:
                load.acknowledged[dashboard] += 1
                load.view_counts[dashboard].append(response.json()["data"]["viewCount"])
        elif response.status_code >= 500 or not expect_crash:
            with load.lock:
                load.failures.append(f"POST view {dashboard}: {response.status_code} {response.text[:200]}")
    session.close()


def _reader(base: str, dashboards: list[str], index: int, load: Load, stop: threading.Event) -> None:
    session = requests.Session()
    paths = [f"{PREFIX}/dashboard/most-viewed", f"{PREFIX}/dashboard/recently-viewed",
             *[f"{PREFIX}/dashboard/{d}/stats" for d in dashboards], *[f"{PREFIX}/dashboard/{d}/logs" for d in dashboards]]
    i = index
    while not stop.is_set():
        path = paths[i % len(paths)]
        i += 1
        try:
            response = session.get(base + path, headers=auth(READER_TOKEN), timeout=30)
        except requests.RequestException as exc:
            load.merge_status("read", "error")
            with load.lock:
                load.failures.append(f"GET {path}: {type(exc).__name__}")
            continue
        load.merge_status("read", response.status_code)
        if response.status_code != 200:
            with load.lock:
                load.failures.append(f"GET {path}: {response.status_code} {response.text[:200]}")
    session.close()


def drive(base: str, dashboards: list[str], seconds: float, writers: int, readers: int,
          expect_crash: bool = False, on_time: callable = None) -> Load:
    """Writers and readers for `seconds` (bounded); `on_time` (e.g. a kill) runs when the time is up, before the
    threads are told to stop."""
    load, stop = Load(), threading.Event()
    threads = [threading.Thread(target=_writer, args=(base, WRITER_TOKENS[n % len(WRITER_TOKENS)], dashboards, n,
                                                      load, stop, expect_crash), daemon=True)
               for n in range(writers)]
    threads += [threading.Thread(target=_reader, args=(base, dashboards, n, load, stop), daemon=True)
                for n in range(readers)] if not expect_crash else []
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    if on_time is not None:
        on_time()
    stop.set()
    for thread in threads:
        thread.join(60)
    load.seconds = time.monotonic() - started
    if any(thread.is_alive() for thread in threads):
        load.failures.append("a client thread did not finish within 60 s")
    return load


# --- load run ------------------------------------------------------------------------------------------------

def load_run(seconds: float = 10, writers: int = 8, readers: int = 4, workers: int = 4,
             workdir: Path | None = None) -> dict:
    """One load run; returns the figures and `problems` (empty when every rule held)."""
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(workdir or tmp)
        server = Server(work / "soak.db", workers=workers).start()
        problems: list[str] = []
        try:
            dashboards = pick_dashboards(server.base)
            before = counts(server.base, dashboards)
            sampler = RssSampler(server)
            sampler.start()
            load = drive(server.base, dashboards, seconds, writers, readers)
            sampler.stop()
            after = counts(server.base, dashboards)
            rss = sampler.figures()
        finally:
            server.stop()
        problems += load.failures[:20]
        problems += check_exact(before, after, load)
        problems += [f"server log: {line}" for line in server.bad_log_lines()[:10]]
        server_errors = sum(n for (kind, status), n in load.statuses.items() if isinstance(status, int) and status >= 500)
        if server_errors:
            problems.append(f"{server_errors} answers were 5xx")
        return {"seconds": load.seconds, "requests": load.requests, "statuses": dict(load.statuses),
                "acknowledged": sum(load.acknowledged.values()),
                "counted": sum(after[d]["stats"] - before[d]["stats"] for d in after),
                "per_dashboard": {d: (load.acknowledged[d], after[d]["stats"] - before[d]["stats"],
                                      after[d]["audit"] - before[d]["audit"]) for d in after},
                "rss": rss, "workers": workers, "writers": writers, "readers": readers,
                "start_seconds": server.start_seconds, "problems": problems}


def check_exact(before: dict, after: dict, load: Load) -> list[str]:
    problems = []
    for dashboard in after:
        acked = load.acknowledged[dashboard]
        for source in ("stats", "audit"):
            grew = after[dashboard][source] - before[dashboard][source]
            if grew != acked:
                problems.append(f"{dashboard}: {acked} views acknowledged, {source} grew by {grew}")
        if after[dashboard]["most_viewed"] is not None and after[dashboard]["most_viewed"] != after[dashboard]["stats"]:
            problems.append(f"{dashboard}: most viewed says {after[dashboard]['most_viewed']}, "
                            f"stats {after[dashboard]['stats']}")
        seen = load.view_counts[dashboard]
        repeated = [count for count, n in Counter(seen).items() if n > 1]
        if repeated:
            problems.append(f"{dashboard}: viewCount {repeated[:5]} acknowledged more than once")
        outside = [c for c in seen if not before[dashboard]["stats"] < c <= after[dashboard]["stats"]]
        if outside:
            problems.append(f"{dashboard}: acknowledged viewCounts outside the run's range: {outside[:5]}")
    return problems


# --- crash run -----------------------------------------------------------------------------------------------

def integrity(db: Path) -> str:
    """PRAGMA integrity_check through a read-only connection (safe next to a running server in WAL mode)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def crash_run(kills: int = 1, seconds: float = 3, writers: int = 8, workers: int = 4,
              workdir: Path | None = None) -> dict:
    """Kill -9 the server `kills` times during sustained POSTs, restarting on the same file each time."""
    with tempfile.TemporaryDirectory(prefix="crash-") as tmp:
        work = Path(workdir or tmp)
        db = work / "crash.db"
        server = Server(db, workers=workers).start()
        dashboards = pick_dashboards(server.base)
        rounds, problems = [], []
        try:
            for round_no in range(1, kills + 1):
                before = counts(server.base, dashboards)
                load = drive(server.base, dashboards, seconds, writers, 0, expect_crash=True, on_time=server.kill)
                killed = server
                server = Server(db, workers=workers).start()  # no repair step: it must just start
                after = counts(server.base, dashboards)
                check = integrity(db)
                round_problems = [f"round {round_no}: {p}" for p in check_bounds(before, after, load)]
                if check != "ok":
                    round_problems.append(f"round {round_no}: PRAGMA integrity_check after the restart: {check}")
                round_problems += [f"round {round_no}: {p}" for p in load.failures[:10]]
                round_problems += [f"round {round_no}: server log: {line}" for line in killed.bad_log_lines()[:10]]
                rounds.append({"round": round_no, "acknowledged": sum(load.acknowledged.values()),
                               "in_flight": sum(load.in_flight_lost.values()),
                               "counted": sum(after[d]["stats"] - before[d]["stats"] for d in after),
                               "restart_seconds": server.start_seconds, "integrity": check,
                               "problems": round_problems})
                problems += round_problems
        finally:
            server.stop()
        check = integrity(db)
        if check != "ok":
            problems.append(f"PRAGMA integrity_check: {check}")
        survived = sum(1 for r in rounds if not r["problems"])
        return {"kills": kills, "survived": survived, "rounds": rounds, "integrity": check, "problems": problems,
                "acknowledged": sum(r["acknowledged"] for r in rounds), "counted": sum(r["counted"] for r in rounds),
                "in_flight": sum(r["in_flight"] for r in rounds)}


def check_bounds(before: dict, after: dict, load: Load) -> list[str]:
    problems = []
    for dashboard in after:
        acked, unknown = load.acknowledged[dashboard], load.in_flight_lost[dashboard]
        for source in ("stats", "audit"):
            grew = after[dashboard][source] - before[dashboard][source]
            if not acked <= grew <= acked + unknown:
                problems.append(f"{dashboard}: {acked} acknowledged, {unknown} in flight, {source} grew by {grew}")
        if sum(load.acknowledged.values()) == 0:
            problems.append("no view was acknowledged before the kill: nothing was tested")
            break
    return problems


# --- command line --------------------------------------------------------------------------------------------

def print_load(report: dict) -> None:
    print(f"load: {report['workers']} workers, {report['writers']} writers + {report['readers']} readers for "
          f"{report['seconds']:.1f} s: {report['requests']} requests ({report['requests'] / report['seconds']:.0f}/s); "
          f"server started in {report['start_seconds']:.1f} s")
    print(f"  statuses: {dict(sorted((f'{k}:{s}', n) for (k, s), n in report['statuses'].items()))}")
    print(f"  views acknowledged {report['acknowledged']}, counted {report['counted']}")
    for dashboard, (acked, stats, audit) in report["per_dashboard"].items():
        print(f"    {dashboard}: acknowledged {acked}, stats +{stats}, audit log +{audit}")
    print("  RSS (MiB)   pid     role    samples  first  baseline  last    max   flat")
    for row in report["rss"]:
        print(f"            {row['pid']:>7} {row['role']:<7} {row['samples']:>7} {row['first']:>6.1f} "
              f"{row['baseline']:>8.1f} {row['last']:>6.1f} {row['max']:>6.1f}   {'no' if not_flat(row) else 'yes'}")


def print_crash(report: dict) -> None:
    print(f"crash: {report['survived']} of {report['kills']} kill -9 survived; views acknowledged "
          f"{report['acknowledged']}, counted {report['counted']}, in flight at the kills {report['in_flight']}; "
          f"integrity_check {report['integrity']}")
    for r in report["rounds"]:
        print(f"  round {r['round']}: acknowledged {r['acknowledged']}, in flight {r['in_flight']}, counted "
              f"{r['counted']}, restarted in {r['restart_seconds']:.1f} s{'' if not r['problems'] else ' FAILED'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("load", help="concurrent writers and readers; exact counts; RSS")
    load.add_argument("--seconds", type=float, default=300)
    load.add_argument("--writers", type=int, default=16)
    load.add_argument("--readers", type=int, default=8)
    load.add_argument("--workers", type=int, default=4)
    load.add_argument("--check-flat", action="store_true", default=True,
                      help=f"fail when a process's RSS grows by more than {FLAT_SHARE:.0%} or {FLAT_MIB:g} MiB "
                           "after the first tenth of the run (default on)")
    load.add_argument("--no-check-flat", dest="check_flat", action="store_false")
    crash = commands.add_parser("crash", help="kill -9 during POSTs, restart, verify")
    crash.add_argument("--kills", type=int, default=10)
    crash.add_argument("--seconds", type=float, default=4, help="POSTing time before each kill")
    crash.add_argument("--writers", type=int, default=8)
    crash.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)

    if args.command == "load":
        report = load_run(args.seconds, args.writers, args.readers, args.workers)
        print_load(report)
        problems = list(report["problems"])
        if args.check_flat:
            problems += [f"RSS of {row['role']} {row['pid']} not flat: {row['baseline']:.1f} -> {row['last']:.1f} MiB"
                         for row in report["rss"] if not_flat(row)]
    else:
        report = crash_run(args.kills, args.seconds, args.writers, args.workers)
        print_crash(report)
        problems = report["problems"]
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    print("OK" if not problems else f"FAILED: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
