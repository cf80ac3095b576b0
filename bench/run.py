#!/usr/bin/env python3
"""The throughput bench: the mock against a bare Flask app, a bare WSGI ceiling and Prism, operation by operation.

    python3 bench/run.py            full run (2 s warm-up + 10 s per operation and server, ~15 minutes)
    python3 bench/run.py --quick    smoke run (1 s + 2 s, without the ceiling; PostgreSQL and Prism when present)

One run on loopback, all servers on this machine, started one after the other and then left running:
  mock           `insights-mock serve` under gunicorn, workers = cores, a --db file (SQLite), response
                 validation off (request validation and auth stay on)
  mock-postgres  the same with --database-url to a PostgreSQL server this bench starts (bench/postgres.py);
                 skipped with a note without PostgreSQL or when this mock has no --database-url
  flask-floor    bench/ceiling.py's bare Flask app (one route) under gunicorn with the mock's settings
                 (serve_ceiling.py), answering each path with the body the mock answered there
  ceiling        the same bodies from a bare WSGI app, same server (context: what any Flask app pays)
  prism-static   `npx @stoplight/prism-cli@5.16.x mock openapi.yaml` (skipped with a note without npx)
  prism-dynamic  the same with -d (opt-in)
Every read is measured twice: without and with an `Origin: http://localhost:5173` header (a CORS
request from an origin the mock allows by default). wrk drives each operation on each server, back to
back. Printed and written to bench/results/run-<UTC time>.json: requests/s, p50, p99, errors (non-2xx +
socket errors), ratios of each mock to the bare Flask app, the ceiling and Prism, the issue's targets
beside them (met / NOT MET; never asserted), the count check of the view POST, and the start-up times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import charts
import harness as h
import postgres
from harness import API, Server, WrkSettings

PRISM_PACKAGE = "@stoplight/prism-cli@5.16.x"
DEFAULT_SEED = 1234
DEFAULT_NOW = "2026-11-25T12:00:00.000Z"

# The issue's targets, as ratios of one run; printed beside the figures, never asserted. "flask floor" is
# the bare Flask app (flask-floor): one route, the same bodies, the same server and workers.
TARGETS = {
    "read_rps_vs_flask_floor": 0.9,
    "read_rps_vs_prism_static": 2.0,
    "read_p99_vs_flask_floor_max": 2.0,
    "view_rps_vs_flask_floor": 0.5,
    "view_rps_vs_prism_static": 1.2,
    "default_startup_max_s": 1.0,
}

ORIGIN = "http://localhost:5173"  # in the mock's default CORS origins (mock_server/config.py)
ORIGIN_SUFFIX = "+origin"

# The servers whose figures the targets judge, each with its own store
MOCKS = ("mock", "mock-postgres")
# The mock with one feature off, on its own --db file (opt-in: --servers ...,mock-nocache)
MOCK_VARIANTS = {
    "mock-nocache": ["--no-response-cache"],  # every read made again: the store's and the handlers' cost
}
SERVERS = ("mock", "mock-postgres", *MOCK_VARIANTS, "flask-floor", "ceiling", "prism-static", "prism-dynamic")
DEFAULT_SERVERS = ("mock", "mock-postgres", "flask-floor", "ceiling", "prism-static")
QUICK_SERVERS = ("mock", "mock-postgres", "flask-floor", "prism-static")

# key, what it is, method, path template (filled from ids discovered on the running mock)
OPERATIONS = [
    ("recently_viewed", "recently viewed dashboards", "GET", API + "/dashboard/recently-viewed"),
    ("most_viewed", "most viewed dashboards", "GET", API + "/dashboard/most-viewed"),
    ("stats", "dashboard stats", "GET", API + "/dashboard/{dashboard}/stats"),
    ("dashboard_logs", "dashboard logs, paged", "GET", API + "/dashboard/{dashboard}/logs?{dashboard_page}"),
    ("mapping_logs", "mapping logs, paged", "GET", API + "/mapping/{mapping}/logs?{mapping_page}"),
    ("audit_entry", "one audit entry", "GET", API + "/{audit}"),
    ("view", "record a view (POST)", "POST", API + "/dashboard/{view_dashboard}/view"),
]
READS = [key for key, _, method, _ in OPERATIONS if method == "GET"]


def measured_operations(keys: list[str] | None = None) -> list[tuple]:
    """What run.py measures: every operation as (key, label, method, template, headers), each read also
    with an Origin header (key `<read>+origin`), in the order reads, reads with Origin, the POST."""
    plain = [(*op, {}) for op in OPERATIONS if op[2] == "GET"]
    origin = [(key + ORIGIN_SUFFIX, label + ", Origin: " + ORIGIN, method, template, {"Origin": ORIGIN})
              for key, label, method, template, _ in plain]
    ops = plain + origin + [(*op, {}) for op in OPERATIONS if op[2] != "GET"]
    return ops if keys is None else [op for op in ops if op[0] in keys]


OPERATION_KEYS = [op[0] for op in measured_operations()]

# ids Prism is asked for: it only checks their format
PRISM_IDS = {
    "dashboard": "123e4567-e89b-12d3-a456-426614174000", "view_dashboard": "123e4567-e89b-12d3-a456-426614174000",
    "mapping": "8d3e2f10-4b5c-4a6d-9e7f-0a1b2c3d4e5f", "audit": "507f1f77bcf86cd799439011",
}
# paging asked for when the mock did not say how many entries there are (a Prism-only run)
PAGE_DEFAULTS = {"dashboard_page": "page=2&page_size=20", "mapping_page": "page=2&page_size=20"}


def add_run_options(p: argparse.ArgumentParser, load_tool: str) -> None:
    """The options of a bench run that run.py and fixed_rate.py share."""
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--now", default=DEFAULT_NOW, help="the mock's anchor time (%(default)s)")
    p.add_argument("--mock-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for `insights-mock serve` (repeatable), e.g. --mock-arg=--views=100000")
    p.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                   help="a setting of the bench's PostgreSQL server (repeatable), e.g. synchronous_commit=off")
    p.add_argument("--no-install", action="store_true", help=f"do not apt-get install {load_tool} when missing")
    p.add_argument("--out", type=Path, default=h.RESULTS_DIR, help="where the JSON goes (%(default)s)")
    p.add_argument("--charts", action=argparse.BooleanOptionalAction, default=True,
                   help="PNG charts beside the JSON (bench/charts.py; needs matplotlib, else a note) (on)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 s warm-up + 2 s, servers " + ",".join(QUICK_SERVERS) + ", one start-up timing")
    p.add_argument("--duration", type=int, help="whole seconds measured per operation and server (10)")
    p.add_argument("--warmup", type=int, help="whole seconds of warm-up before each measurement, not counted; 0: none (2)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="wrk socket timeout in seconds; slower answers count as timeout errors (5)")
    p.add_argument("--workers", type=int, default=h.cores(), help="gunicorn workers (cores: %(default)s)")
    p.add_argument("--servers", default=None,
                   help="comma-separated subset of " + ",".join(SERVERS) + " (default " + ",".join(DEFAULT_SERVERS)
                        + "; with --quick " + ",".join(QUICK_SERVERS) + ")")
    p.add_argument("--ops", default=",".join(OPERATION_KEYS),
                   help="comma-separated subset of " + ",".join(OPERATION_KEYS))
    p.add_argument("--no-origin", action="store_true", help="leave out the reads with an Origin header")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every operation on every server this many times; medians are reported (1)")
    p.add_argument("--startup-runs", type=int, default=None,
                   help="times the default `insights-mock serve` (in memory, default sizes) is started alone "
                        "and timed; the median is judged (3; 1 with --quick; 0: not timed)")
    add_run_options(p, load_tool="wrk")
    args = p.parse_args(argv)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.duration = args.duration if args.duration is not None else (2 if args.quick else 10)
    if args.startup_runs is None:
        args.startup_runs = 1 if args.quick else 3
    if args.servers is None:
        args.servers = ",".join(QUICK_SERVERS if args.quick else DEFAULT_SERVERS)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    if args.no_origin:
        args.ops = [o for o in args.ops if not o.endswith(ORIGIN_SUFFIX)]
    unknown = set(args.ops) - set(OPERATION_KEYS)
    if unknown:
        p.error(f"unknown operations: {', '.join(sorted(unknown))}")
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        p.error(f"unknown servers: {', '.join(sorted(unknown))}")
    try:
        args.pg_settings = dict(s.split("=", 1) for s in args.pg_setting)
    except ValueError:
        p.error("--pg-setting takes NAME=VALUE")
    return args


# --- the servers ---------------------------------------------------------------------------------

def mock_argv(port: int, db: Path | None, workers: int, seed: int, now: str, extra: list[str] = (),
              database_url: str | None = None) -> list[str]:
    """The mock as the bench serves it: on the SQLite file `db`, or on PostgreSQL with `database_url`."""
    store = ["--database-url", database_url] if database_url else ["--db", str(db)]
    return [h.venv_tool("insights-mock"), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--seed", str(seed), "--now", now, *store, "--workers", str(workers),
            "--no-validate-responses", *extra]


def postgres_skip() -> str | None:
    """Why mock-postgres cannot run here (a note, not an error), or None."""
    why = postgres.unavailable()
    if why:
        return why
    proc = subprocess.run([h.venv_tool("insights-mock"), "serve", "--help"], capture_output=True, text=True,
                          timeout=60)
    if "--database-url" not in proc.stdout:
        return "this mock has no `serve --database-url` (the PostgreSQL store is not on this branch yet)"
    return None


def add_served_mock_options(p: argparse.ArgumentParser) -> None:
    """The options of served_mock() and of the wrk load on it, for the scripts that use both."""
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="wrk's threads (%(default)s)")
    p.add_argument("--workers", type=int, default=h.cores())
    p.add_argument("--mock-arg", action="append", default=[], metavar="ARG")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--now", default=DEFAULT_NOW)
    p.add_argument("--out", type=Path, default=h.RESULTS_DIR)


@contextmanager
def served_mock(work: Path, workers: int, seed: int, now: str, extra: list[str] = ()) -> Iterator[tuple[Server, dict]]:
    """The mock as this bench serves it, started on a fresh --db file in `work`, with the ids of its data
    (discover); stopped on exit. For the scripts that watch one server under load (hotspots, cpu_split)."""
    port = h.free_port()
    with Server("mock", mock_argv(port, work / "mock.db", workers, seed, now, extra), port,
                log_path=work / "mock.log") as server:
        server.start(timeout=600)
        yield server, discover(server.base, work / "mock.db")


def ceiling_argv(port: int, workers: int, flask: bool = False) -> list[str]:
    """gunicorn with the settings the mock's CLI gives it (see mock_server/cli.py), serving bench/ceiling.py
    (its bare Flask variant with `flask`)."""
    return [h.venv_tool("python"), str(h.BENCH_DIR / "serve_ceiling.py"), "--port", str(port),
            "--workers", str(workers), *(["--flask"] if flask else [])]


def prism_argv(port: int, dynamic: bool) -> list[str]:
    argv = ["npx", "--yes", PRISM_PACKAGE, "mock", "-h", "127.0.0.1", "-p", str(port), str(h.ROOT / "openapi.yaml")]
    return argv + ["-d"] if dynamic else argv


def prism_prefetch() -> str | None:
    """Download Prism before timing anything; returns why it cannot run, or None."""
    if not shutil.which("npx"):
        return "npx (Node.js) is not installed"
    env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false")
    try:
        proc = subprocess.run(["npx", "--yes", PRISM_PACKAGE, "--version"], env=env, capture_output=True,
                              text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return "fetching Prism with npx timed out"
    if proc.returncode != 0:
        return f"npx could not run Prism ({proc.stderr.strip()[:300]})"
    return None


# --- discovery on the running mock ---------------------------------------------------------------

def discover(base: str, db: Path) -> dict:
    """Ids that exist in the mock's data: the most viewed dashboard (the heaviest stats and logs), a
    dashboard for the view POST, an audit entry, and the tool mapping with the most audit entries."""
    most = h.http("GET", base + API + "/dashboard/most-viewed?limit=100")
    if most.status != 200 or not most.json()["data"]:
        raise RuntimeError(f"most-viewed answered {most.status}: {most.body[:300]!r}")
    dashboards = [d["dashboardId"] for d in most.json()["data"]]
    ids = {"dashboard": dashboards[0], "view_dashboard": dashboards[min(1, len(dashboards) - 1)]}
    logs = h.http("GET", base + API + f"/dashboard/{ids['dashboard']}/logs?page_size=1").json()
    ids["audit"] = logs["data"][0]["_id"]
    ids["dashboard_page"] = _page_query(logs["pagination"]["total_items"])
    ids["mapping"] = find_mapping_id(base, db)
    mlogs = h.http("GET", base + API + f"/mapping/{ids['mapping']}/logs?page_size=1").json()
    ids["mapping_page"] = _page_query(mlogs["pagination"]["total_items"])
    ids["mapping_entries"] = mlogs["pagination"]["total_items"]
    ids["dashboard_entries"] = logs["pagination"]["total_items"]
    return ids


def _page_query(total: int, size: int = 20) -> str:
    # the second page when there is one: paging past the first page is what the issue asks for
    return f"page={2 if total > size else 1}&page_size={size}"


def find_mapping_id(base: str, db: Path) -> str:
    """A tool mapping with audit entries. No operation lists mappings, so read candidates from the mock's
    --db file (read-only), most audit entries first, and keep the first one the API confirms."""
    candidates: list[str] = []
    queries = (
        "SELECT target_id FROM audit_logs WHERE type = 'tool_mapping' GROUP BY target_id "
        "ORDER BY count(*) DESC LIMIT 5",
        "SELECT id FROM mappings LIMIT 50",
    )
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            for sql in queries:
                try:
                    candidates += [row[0] for row in conn.execute(sql)]
                except sqlite3.Error:
                    continue
        finally:
            conn.close()
    except sqlite3.Error as exc:
        h.log(f"cannot read {db}: {exc}")
    for mapping in dict.fromkeys(candidates):
        page = h.http("GET", base + API + f"/mapping/{mapping}/logs?page_size=1")
        if page.status == 200 and page.json()["pagination"]["total_items"] > 0:
            return mapping
    raise RuntimeError(f"found no tool mapping with audit entries in {db} (the store's schema changed?)")


# --- measuring -----------------------------------------------------------------------------------

def tree_cpu_seconds(root: int | Server) -> float:
    """CPU seconds of a process tree; of a Server, its own tree and the trees it depends on (`also`:
    mock-postgres's PostgreSQL server, whose work is part of each request's)."""
    roots = [root.proc.pid, *root.also] if isinstance(root, Server) else [root]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in {pid for r in roots for pid in h.process_tree(r)}:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / ticks


def wait_idle(servers: list[Server], limit_s: float = 120.0, window_s: float = 0.5,
              idle_cores: float = 0.1) -> tuple[float, list[str]]:
    """Wait until no server of ours is still working off the last load (Prism goes on computing answers
    for connections wrk has closed, and would steal the next measurement's CPU). Returns the seconds
    waited and the names of the servers still busy when the limit was reached."""
    t0 = time.monotonic()
    while True:
        before = {s.name: tree_cpu_seconds(s) for s in servers}
        time.sleep(window_s)
        busy = [s.name for s in servers if (tree_cpu_seconds(s) - before[s.name]) / window_s > idle_cores]
        waited = round(time.monotonic() - t0, 1)
        if not busy or waited >= limit_s:
            if busy:
                h.log(f"    still busy after {waited:.0f} s: {', '.join(busy)}")
            elif waited > 2 * window_s:
                h.log(f"    waited {waited:.1f} s for the servers to go idle")
            return waited, busy


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (/proc/stat), to see what else ran."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def measure(wrk: str, server: Server, url: str, method: str, settings: WrkSettings, count: bool,
            headers: dict[str, str] | None = None) -> dict:
    if settings.warmup > 0:
        warm = h.run_wrk(wrk, url, settings, method=method, count=count, duration=settings.warmup,
                         headers=headers)
    else:
        warm = None
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    cpu0, child0 = tree_cpu_seconds(server), resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = busy_cpu_seconds()
    result = h.run_wrk(wrk, url, settings, method=method, count=count, headers=headers,
                       midway=lambda: h.connection_split(server.proc.pid, server.port))
    busy1 = busy_cpu_seconds()
    result["connections_per_process"] = result.pop("midway")
    cpu1, child1 = tree_cpu_seconds(server), resource.getrusage(resource.RUSAGE_CHILDREN)
    result.pop("raw")
    result["loadavg_1m_before"] = float(load)
    # Cores busy during the run: the server's, wrk's and everything else's (other processes of a shared
    # machine). server + wrk near the core count means the machine, not the server, was the limit.
    seconds = result["duration_s"] or 1.0
    server_cpu = cpu1 - cpu0
    wrk_cpu = (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime)
    result["server_cores"] = round(server_cpu / seconds, 2)
    result["wrk_cores"] = round(wrk_cpu / seconds, 2)
    result["other_cores"] = round(max(0.0, (busy1 - busy0) - server_cpu - wrk_cpu) / seconds, 2)
    if warm is not None:
        warm.pop("raw")
        result["warmup"] = {k: warm.get(k) for k in ("requests", "sent", "answered_2xx", "answered_other",
                                                      "with_view_count", "duplicate_view_counts",
                                                      "min_view_count", "max_view_count") if k in warm}
    return result


def total_views(base: str, dashboard: str) -> int:
    reply = h.http("GET", base + API + f"/dashboard/{dashboard}/stats")
    if reply.status != 200:
        raise RuntimeError(f"stats answered {reply.status}: {reply.body[:300]!r}")
    return reply.json()["data"]["totalViews"]


def settled_total_views(base: str, dashboard: str, limit_s: float = 10.0) -> int:
    """The total once the server has finished what wrk left in flight (two equal reads 0.3 s apart)."""
    deadline = time.monotonic() + limit_s
    last = total_views(base, dashboard)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = total_views(base, dashboard)
        if now == last:
            return now
        last = now
    return last


def view_count_check(before: int, after: int, runs: list[dict]) -> dict:
    """Every 2xx answer must be counted once, and nothing else.

    wrk stops with requests in flight: written, never answered, maybe still processed by the server. So
    the delta must lie in [answered 2xx, answered 2xx + unanswered]: below means counts were lost, above
    means duplicated. The viewCount of each 2xx body must be distinct and within (before, after]: two
    answers with the same total would be a lost update that the delta alone could hide."""
    answered = sum(r.get("answered_2xx", 0) for r in runs)
    other = sum(r.get("answered_other", 0) for r in runs)
    sent = sum(r.get("sent", 0) for r in runs)
    unanswered = sent - answered - other
    dups = sum(r.get("duplicate_view_counts", 0) for r in runs)
    lows = [r["min_view_count"] for r in runs if r.get("min_view_count") is not None]
    highs = [r["max_view_count"] for r in runs if r.get("max_view_count") is not None]
    delta = after - before
    lost = max(0, answered - delta)
    duplicated = max(0, delta - (answered + unanswered))
    in_range = bool(lows) and min(lows) > before and max(highs) <= after
    ok = lost == 0 and duplicated == 0 and dups == 0 and in_range and other == 0
    return {
        "before": before, "after": after, "delta": delta, "sent": sent, "answered_2xx": answered,
        "answered_other": other, "unanswered_in_flight": unanswered,
        "in_flight_counted": delta - answered if lost == 0 and duplicated == 0 else None,
        "lost": lost, "duplicated": duplicated, "duplicate_view_counts_in_bodies": dups,
        "view_counts_within_before_after": in_range, "ok": ok,
    }


def measure_op(name: str, server: Server, wrk: str, op: tuple, ids: dict, settings: WrkSettings,
               count_check: bool) -> dict:
    """One operation on one server; `op` is (key, label, method, template[, headers])."""
    key, _, method, template, *rest = op
    headers = rest[0] if rest else {}
    path = template.format(**ids)
    url = server.base + path
    probe = probe_once(method, url, headers)  # before the count check's "before": it may record a view
    h.log(f"  {name:14s} {key:23s} {method} {path}" + "".join(f" [{k}: {v}]" for k, v in headers.items()))
    if method == "POST" and count_check:
        before = total_views(server.base, ids["view_dashboard"])
        result = measure(wrk, server, url, method, settings, count=True, headers=headers)
        after = settled_total_views(server.base, ids["view_dashboard"])
        runs = [result] + ([result["warmup"]] if "warmup" in result else [])
        result["count_check"] = view_count_check(before, after, runs)
    else:
        # every server's POST runs with the counting script: the same client-side cost for all
        result = measure(wrk, server, url, method, settings, count=method == "POST", headers=headers)
    if result["requests"] == 0:
        # wrk counts a timeout only when an answer finally comes: no answer at all is no error to it
        result["no_answer"] = True
    if isinstance(probe, h.Reply):
        result["probe_status"] = probe.status
        result["body_bytes"] = len(probe.body)
        if "Origin" in headers:
            allowed = {k.lower(): v for k, v in probe.headers.items()}.get("access-control-allow-origin")
            result["allow_origin"] = allowed  # what the server answered to the Origin (None: no CORS header)
    else:
        result["probe_error"] = probe
    result["path"] = path
    if headers:
        result["headers"] = headers
    return result


def probe_once(method: str, url: str, headers: dict[str, str] | None = None) -> h.Reply | str:
    """One request before the load, for the status and the body size; a server that does not answer
    within 30 s is noted, not fatal (wrk's errors will tell the rest)."""
    try:
        return h.http(method, url, timeout=30, headers=headers)
    except OSError as exc:
        h.log(f"    probe failed: {exc!r}")
        return repr(exc)


def combine_rounds(rounds: list[dict]) -> dict:
    """One figure per operation and server from several rounds: medians of rates and percentiles, sums
    of errors; every round kept under "rounds"."""
    if len(rounds) == 1:
        return rounds[0]
    failed = [r for r in rounds if "error" in r]
    rounds_ok = [r for r in rounds if "error" not in r]
    if not rounds_ok:
        return {"error": failed[0]["error"], "rps": None, "errors": None, "rounds": rounds}
    kept, rounds = rounds, rounds_ok
    out = {k: rounds[-1][k] for k in ("path", "headers", "probe_status", "body_bytes", "probe_error", "allow_origin")
           if k in rounds[-1]}
    for k in ("rps", "p50_ms", "p75_ms", "p90_ms", "p99_ms", "p999_ms", "server_cores", "wrk_cores",
              "other_cores"):
        values = [r[k] for r in rounds if r.get(k) is not None]
        if values:
            out[k] = round(statistics.median(values), 3)
    out["requests"] = sum(r["requests"] for r in rounds)
    out["errors"] = sum(r["errors"] for r in rounds)
    out["non2xx"] = sum(r["non2xx"] for r in rounds)
    checks = [r["count_check"] for r in rounds if "count_check" in r]
    if checks:
        out["count_check"] = {
            **{k: sum(c[k] for c in checks) for k in ("delta", "sent", "answered_2xx", "answered_other",
                                                       "unanswered_in_flight", "lost", "duplicated",
                                                       "duplicate_view_counts_in_bodies")},
            "before": checks[0]["before"], "after": checks[-1]["after"],
            "in_flight_counted": (None if any(c["in_flight_counted"] is None for c in checks)
                                  else sum(c["in_flight_counted"] for c in checks)),
            "view_counts_within_before_after": all(c["view_counts_within_before_after"] for c in checks),
            "ok": all(c["ok"] for c in checks),
        }
    out["connections_per_process"] = [r.get("connections_per_process") for r in rounds]
    if all(r.get("no_answer") for r in rounds):
        out["no_answer"] = True
    out["rounds"] = kept
    out["failed_rounds"] = len(failed)
    return out


def mock_bodies(base: str, ops: list[tuple], ids: dict) -> dict[str, str]:
    """The body the mock answers on each path, for the ceiling to answer with. The view POST body comes
    from a view of another (unknown) dashboard, so the dashboard under test is not touched."""
    bodies = {}
    for key, _, method, template, *_ in ops:
        path = template.format(**ids)
        if method == "POST":
            probe_path = template.format(**{**ids, "view_dashboard": "00000000-0000-4000-8000-00000000b0b0"})
            reply = h.http(method, base + probe_path)
        else:
            reply = h.http(method, base + path)
        if reply.status // 100 != 2:
            raise RuntimeError(f"the mock answered {reply.status} on {method} {path}: {reply.body[:300]!r}")
        bodies[f"{method} {path}"] = reply.body.decode("utf-8")
    return bodies


# --- report --------------------------------------------------------------------------------------

def compare(results: dict, ops: list[tuple]) -> dict:
    """Per operation: each mock's ratios to the other servers and its targets; the floor's to the ceiling."""
    comparisons = {}
    rps = lambda r: r.get("rps") if r else None  # noqa: E731
    p99 = lambda r: r.get("p99_ms") if r else None  # noqa: E731
    for key, _, method, *_ in ops:
        per = {name: res[key] for name, res in results.items() if key in res}
        floor, ceiling = per.get("flask-floor"), per.get("ceiling")
        static, dynamic = per.get("prism-static"), per.get("prism-dynamic")
        c: dict = {"flask_floor_vs_ceiling": h.ratio(rps(floor), rps(ceiling)),
                   "flask_floor_p99_vs_ceiling": h.ratio(p99(floor), p99(ceiling)),
                   "mock_nocache_vs_flask_floor": h.ratio(rps(per.get("mock-nocache")), rps(floor)),
                   "mocks": {}}
        for name in MOCKS:
            mock = per.get(name)
            if mock is None:
                continue
            m = {
                "rps_vs_flask_floor": h.ratio(rps(mock), rps(floor)),
                "rps_vs_ceiling": h.ratio(rps(mock), rps(ceiling)),
                "rps_vs_prism_static": h.ratio(rps(mock), rps(static)),
                "rps_vs_prism_dynamic": h.ratio(rps(mock), rps(dynamic)),
                "p99_vs_flask_floor": h.ratio(p99(mock), p99(floor)),
                "p99_vs_ceiling": h.ratio(p99(mock), p99(ceiling)),
            }
            if method == "GET":
                m["targets"] = {
                    f"rps >= {TARGETS['read_rps_vs_flask_floor']:g}x flask-floor":
                        _at_least(m["rps_vs_flask_floor"], TARGETS["read_rps_vs_flask_floor"]),
                    f"rps >= {TARGETS['read_rps_vs_prism_static']:g}x prism-static":
                        _at_least(m["rps_vs_prism_static"], TARGETS["read_rps_vs_prism_static"]),
                    f"p99 <= {TARGETS['read_p99_vs_flask_floor_max']:g}x flask-floor p99":
                        _at_most(m["p99_vs_flask_floor"], TARGETS["read_p99_vs_flask_floor_max"]),
                }
            else:
                check = mock.get("count_check")
                m["targets"] = {
                    f"rps >= {TARGETS['view_rps_vs_flask_floor']:g}x flask-floor":
                        _at_least(m["rps_vs_flask_floor"], TARGETS["view_rps_vs_flask_floor"]),
                    f"rps >= {TARGETS['view_rps_vs_prism_static']:g}x prism-static":
                        _at_least(m["rps_vs_prism_static"], TARGETS["view_rps_vs_prism_static"]),
                    "zero lost or duplicated counts": h.verdict(check["ok"] if check else None),
                }
            c["mocks"][name] = m
        comparisons[key] = c
    return comparisons


def _at_least(value, bound) -> str:
    return h.verdict(None if value is None else value >= bound)


def _at_most(value, bound) -> str:
    return h.verdict(None if value is None else value <= bound)


def split_text(split) -> str:
    """[31, 1] -> "31+1"; a list of rounds' splits -> "32|16+16"."""
    if not split:
        return "-"
    if isinstance(split[0], list) or split[0] is None:
        return "|".join(split_text(x) for x in split)
    return "+".join(str(n) for n in split)


def target_summary(report: dict) -> dict[str, int]:
    """How many targets were met, not met, and could not be judged (a server missing)."""
    counts = {"met": 0, "NOT MET": 0, "n/a": 0}
    for c in report["comparisons"].values():
        for m in c["mocks"].values():
            for result in m["targets"].values():
                counts[result] += 1
    startup = report.get("startup", {}).get("default serve")
    if startup:
        counts["met" if startup["median_s"] < TARGETS["default_startup_max_s"] else "NOT MET"] += 1
    return counts


def print_report(report: dict, ops: list[tuple]) -> None:
    servers = [s for s in SERVERS if s in report["results"]]
    settings = report["settings"]
    print()
    print(f"wrk: {settings['connections']} connections, {settings['threads']} threads, "
          f"{settings['warmup']:g} s warm-up + {settings['duration']:g} s; "
          f"{report['machine']['cores']} cores; gunicorn workers: {settings['workers']}")
    for name, info in report["servers"].items():
        if info.get("skipped"):
            print(f"  {name}: skipped - {info['skipped']}")
        elif info.get("failed"):
            print(f"  {name}: FAILED to start - {info['failed'].splitlines()[0]}")
        else:
            mem = info.get("memory", {})
            print(f"  {name}: start-up {h.fmt(info.get('startup_s'), '.2f')} s, peak RSS (tree) "
                  f"{h.fmt(mem.get('peak_tree_rss_mb'), '.0f')} MB, PSS {h.fmt(mem.get('peak_tree_pss_mb'), '.0f')} MB")
    rows = []
    for key, *_ in ops:
        first = True
        for s in servers:
            r = report["results"][s].get(key)
            if r is None:
                continue
            label = key if first else ""
            first = False
            if "error" in r:
                rows.append([label, s, "FAILED", "-", "-", "-", "-", r["error"][:60], "", ""])
                continue
            if r.get("no_answer"):
                rows.append([label, s, "0", "-", "-", "no answer in the run", h.fmt(r.get("body_bytes"), "d"),
                             "-", "", ""])
                continue
            cors = "-" if "allow_origin" not in r else ("yes" if r["allow_origin"] else "no")
            rows.append([label, s, h.fmt(r["rps"], ".0f"), h.fmt(r.get("p50_ms")),
                         h.fmt(r.get("p99_ms")), str(r["errors"]), h.fmt(r.get("body_bytes"), "d"), cors,
                         f"{h.fmt(r.get('server_cores'), '.1f')}/{h.fmt(r.get('wrk_cores'), '.1f')}/"
                         f"{h.fmt(r.get('other_cores'), '.1f')}", split_text(r.get("connections_per_process"))])
    print()
    print(h.table(rows, ["operation", "server", "req/s", "p50 ms", "p99 ms", "errors", "body B", "ACAO",
                         "cores srv/wrk/other", "conns/process"]))
    print("(cores srv: the server's processes, for mock-postgres with its PostgreSQL server's; "
          "ACAO: whether the answer to the Origin request carried Access-Control-Allow-Origin; conns/process: "
          "wrk's connections held by each server process halfway through the run, spread by the kernel over "
          "the workers' SO_REUSEPORT sockets by a hash, so splits like 18+14 are normal)")
    print()
    rows = []
    for key, *_ in ops:
        c = report["comparisons"][key]
        first_op = True
        for name, m in c["mocks"].items():
            first = True
            for target, result in m["targets"].items():
                rows.append([key if first_op else "", name if first else "",
                             *(h.fmt(m[k], ".2f") if first else "" for k in (
                                 "rps_vs_flask_floor", "rps_vs_ceiling", "rps_vs_prism_static",
                                 "rps_vs_prism_dynamic", "p99_vs_flask_floor")),
                             target, result])
                first = first_op = False
    print(h.table(rows, ["operation", "server", "/flask-floor", "/ceiling", "/prism-s", "/prism-d",
                         "p99 /flask-floor", "target", "result"]))
    context = [(key, c) for key, c in report["comparisons"].items() if c["flask_floor_vs_ceiling"] is not None]
    if context:
        print("flask-floor / ceiling (what a bare Flask app pays on this server): " + ", ".join(
            f"{key} {c['flask_floor_vs_ceiling']:.2f} (p99 {h.fmt(c['flask_floor_p99_vs_ceiling'])})"
            for key, c in context))
    nocache = [(key, c) for key, c in report["comparisons"].items() if c["mock_nocache_vs_flask_floor"] is not None]
    if nocache:
        print("mock-nocache / flask-floor: " + ", ".join(f"{key} {c['mock_nocache_vs_flask_floor']:.2f}"
                                                         for key, c in nocache))
    for name in MOCKS:
        check = report["results"].get(name, {}).get("view", {}).get("count_check")
        if check:
            print()
            print(f"{name}: view POST count check: stats delta {check['delta']} (before {check['before']}, after "
                  f"{check['after']}); wrk: {check['sent']} sent, {check['answered_2xx']} answered 2xx, "
                  f"{check['answered_other']} other, {check['unanswered_in_flight']} in flight at stop "
                  f"({h.fmt(check['in_flight_counted'], 'd')} of them counted); lost {check['lost']}, "
                  f"duplicated {check['duplicated']}, repeated viewCount in bodies "
                  f"{check['duplicate_view_counts_in_bodies']} -> {'ok' if check['ok'] else 'FAILED'}")
    print()
    for name in MOCKS:
        startup = report["servers"].get(name, {}).get("startup_s")
        if startup is not None:
            print(f"{name} start-up as served here (gunicorn, {settings['workers']} workers, "
                  f"{'PostgreSQL' if name == 'mock-postgres' else '--db file'}, default data): {startup:.2f} s")
    default = report.get("startup", {}).get("default serve")
    if default:
        ok = default["median_s"] < TARGETS["default_startup_max_s"]
        print(f"default start-up (`insights-mock serve`: in memory, default sizes, werkzeug), median of "
              f"{len(default['runs_s'])}: {default['median_s']:.2f} s (runs "
              f"{', '.join(f'{t:.2f}' for t in default['runs_s'])}); target < "
              f"{TARGETS['default_startup_max_s']:g} s: {h.verdict(ok)}")
    counts = target_summary(report)
    skipped = [name for name, info in report["servers"].items() if info.get("skipped") or info.get("failed")]
    print(f"\ntargets: {counts['met']} met, {counts['NOT MET']} NOT MET, {counts['n/a']} not judged (a server "
          "missing from this run)" + (f"; not run: {', '.join(skipped)} (see above)" if skipped else ""))


def start_servers(args, ops: list[tuple], work: Path, stack: ExitStack, report: dict,
                  prism_skip: str | None, pg_skip: str | None) -> dict[str, tuple[Server, dict]]:
    """The servers asked for, each started alone (so its start-up time is its own) and left running;
    {name: (server, ids to fill the paths with)}. Ids and bodies come from the SQLite mock, which runs
    whenever a mock or a Flask/WSGI server is benched; the PostgreSQL mock, made from the same seed and
    anchor, holds the same data."""
    servers: dict[str, tuple[Server, dict]] = {}
    ids = {**PRISM_IDS, **PAGE_DEFAULTS}
    bodies_file = work / "ceiling-bodies.json"

    def launch(name: str, server: Server, timeout: float) -> None:
        h.log(f"starting {name}: {' '.join(server.argv)}")
        stack.enter_context(server)
        startup = server.start(timeout=timeout)
        report["servers"][name] = {"argv": server.argv, "startup_s": round(startup, 3)}

    def launch_or_note(name: str, server: Server, timeout: float) -> bool:
        """For the servers a run can do without (mock-postgres, Prism): a failed start is reported with the
        end of the server's log, and the others are still measured."""
        try:
            launch(name, server, timeout)
            return True
        except RuntimeError as exc:
            try:
                tail = server.log_path.read_text(errors="replace")[-1500:] if server.log_path else ""
            except OSError:
                tail = ""
            report["servers"][name] = {"argv": server.argv, "failed": f"{exc}\n{tail}".strip()}
            h.log(f"{name} FAILED to start: {exc}\n{tail}")
            return False

    if {*MOCKS, *MOCK_VARIANTS, "ceiling", "flask-floor"} & set(args.servers):
        port = h.free_port()
        mock = Server("mock", mock_argv(port, work / "mock.db", args.workers, args.seed, args.now,
                                        args.mock_arg), port, log_path=work / "mock.log")
        launch("mock", mock, 600)
        ids.update(discover(mock.base, work / "mock.db"))
        report["ids"] = ids
        bodies_file.write_text(json.dumps(mock_bodies(mock.base, ops, ids)))
        if "mock" in args.servers:
            servers["mock"] = (mock, ids)
        else:
            del report["servers"]["mock"]
    if "mock-postgres" in args.servers:
        if pg_skip:
            report["servers"]["mock-postgres"] = {"skipped": pg_skip}
            h.log(f"mock-postgres skipped: {pg_skip}")
        else:
            url = stack.enter_context(postgres.running_postgres(args.pg_settings))
            pg_pids = h.listening_pids(int(url.rsplit(":", 1)[1].split("/", 1)[0]))
            h.log(f"PostgreSQL for mock-postgres: {url} (postmaster pid {', '.join(map(str, pg_pids)) or '?'})")
            port = h.free_port()
            server = Server("mock-postgres", mock_argv(port, None, args.workers, args.seed, args.now,
                                                       args.mock_arg, database_url=url),
                            port, log_path=work / "mock-postgres.log")
            server.also = pg_pids  # its CPU is counted as the server's
            if launch_or_note("mock-postgres", server, 600):
                report["servers"]["mock-postgres"]["postgres_settings"] = args.pg_settings
                servers["mock-postgres"] = (server, ids)
    for name, extra in MOCK_VARIANTS.items():  # the same mock with one feature off, on its own --db file
        if name not in args.servers:
            continue
        port = h.free_port()
        server = Server(name, mock_argv(port, work / f"{name}.db", args.workers, args.seed, args.now,
                                        [*args.mock_arg, *extra]), port, log_path=work / f"{name}.log")
        launch(name, server, 600)
        servers[name] = (server, ids)
    for name in ("flask-floor", "ceiling"):
        if name not in args.servers:
            continue
        port = h.free_port()
        env = dict(os.environ, BENCH_CEILING_BODIES=str(bodies_file))
        server = Server(name, ceiling_argv(port, args.workers, flask=name == "flask-floor"), port, env=env,
                        log_path=work / f"{name}.log")
        launch(name, server, 120)
        report["servers"][name]["gunicorn_options"] = ceiling_options(args.workers)
        servers[name] = (server, ids)
    for name in ("prism-static", "prism-dynamic"):
        if name not in args.servers:
            continue
        if prism_skip:
            report["servers"][name] = {"skipped": prism_skip}
            h.log(f"{name} skipped: {prism_skip}")
            continue
        port = h.free_port()
        env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false")
        # Prism has no health route: any answer on an API path means it listens
        prism = Server(name, prism_argv(port, name.endswith("dynamic")), port,
                       health_path=API + "/dashboard/most-viewed", env=env, log_path=work / f"{name}.log",
                       ready_status=set(range(200, 600)))
        if launch_or_note(name, prism, 300):
            servers[name] = (prism, {**ids, **PRISM_IDS})
    return servers


def ceiling_options(workers: int) -> str:
    proc = subprocess.run([*ceiling_argv(0, workers), "--print-options"], capture_output=True, text=True,
                          timeout=60)
    return proc.stdout.strip()


def time_default_startup(runs: int, work: Path) -> dict:
    """`insights-mock serve` with no option but the port: in memory, default sizes (werkzeug, one process)."""
    serve = h.venv_tool("insights-mock")
    return h.time_startups("default", lambda port, i: [serve, "serve", "--host", "127.0.0.1", "--port", str(port)],
                           runs, work)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    h.ensure_venv()
    wrk, why = h.ensure_wrk(install=not args.no_install)
    if not wrk:
        print(f"cannot bench: {why}", file=sys.stderr)
        return 2
    settings = WrkSettings(duration=args.duration, warmup=args.warmup, connections=args.connections,
                           threads=args.threads, timeout=args.timeout)
    ops = measured_operations(args.ops)
    report: dict = {
        "kind": "insights-mock throughput bench",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": h.machine_info(),
        "settings": {"duration": args.duration, "warmup": args.warmup, "connections": args.connections,
                     "threads": args.threads, "timeout": args.timeout, "workers": args.workers,
                     "seed": args.seed, "now": args.now, "mock_args": args.mock_arg, "quick": args.quick,
                     "rounds": args.rounds, "origin": ORIGIN, "servers": args.servers,
                     "postgres_settings": args.pg_settings},
        "targets": TARGETS, "servers": {}, "results": {}, "ids": {}, "startup": {},
    }
    prism_skip = prism_prefetch() if any(s.startswith("prism") for s in args.servers) else None
    pg_skip = postgres_skip() if "mock-postgres" in args.servers else None
    work = Path(tempfile.mkdtemp(prefix="insights-bench-"))
    failed = True
    try:
        if args.startup_runs > 0:  # first, alone on a quiet machine
            h.log(f"timing the default start-up ({args.startup_runs}x)")
            report["startup"]["default serve"] = time_default_startup(args.startup_runs, work)
        with ExitStack() as stack:
            # All servers run at once (an idle one costs nothing) and each operation is measured on them
            # back to back, so that the ratios compare minutes, not quarters of an hour, of a shared machine.
            servers = start_servers(args, ops, work, stack, report, prism_skip, pg_skip)
            rounds: dict = {name: {op[0]: [] for op in ops} for name in servers}
            for r in range(args.rounds):
                if args.rounds > 1:
                    h.log(f"round {r + 1} of {args.rounds}")
                for op in ops:
                    for name, (server, ids) in servers.items():
                        waited, busy = wait_idle([srv for srv, _ in servers.values()])
                        try:
                            result = measure_op(name, server, wrk, op, ids, settings,
                                                count_check=name.startswith("mock"))
                        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
                            # one failed measurement is a figure missing, not a run lost
                            h.log(f"    FAILED: {exc!r}")
                            result = {"error": repr(exc)[:500], "rps": None, "errors": None}
                        result["waited_for_idle_s"] = waited
                        if busy:
                            result["busy_at_start"] = busy
                        rounds[name][op[0]].append(result)
            for name, (server, _) in servers.items():
                report["results"][name] = {key: combine_rounds(runs) for key, runs in rounds[name].items()}
                report["servers"][name]["memory"] = server.memory()
        failed = False
    finally:
        if failed:
            h.log(f"server logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report["comparisons"] = compare(report["results"], ops)
    report["target_summary"] = target_summary(report)
    report["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path = h.write_json("run", report, args.out)
    print_report(report, ops)
    print(f"\nfigures written to {path}")
    if args.charts:
        charts.after_run(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
