#!/usr/bin/env python3
"""The fixed-rate bench: a constant offered load (not "as fast as it goes"), and the latency it gets.

    python3 bench/fixed_rate.py            1,000 req/s for 10 s (after 1 s not counted) on each server
    python3 bench/fixed_rate.py --quick    the same rate for 2 s (after 1 s), servers as present

The servers are run.py's (started the same way, one after the other, then left running): `mock` (SQLite
--db file), `mock-postgres` (--database-url to a PostgreSQL server this bench starts; skipped with a note
when PostgreSQL or the mock's --database-url is missing), `flask-floor` (the bare Flask app, one route,
the same bodies, server and workers) and `prism-static` (skipped with a note without npx); `ceiling` on
request. Each server in turn gets the same load, from `hey` processes running at once:
  reads      90 % of the rate, an even share for each of the six read operations, one hey per operation
  view POSTs 10 % of the rate, one hey
`hey -q` is a rate per worker (-c workers), so each hey gets as many workers as its share needs at
--worker-rate (50/s: a worker sends on its own 20 ms tick and waits for the answer; an answer slower
than the tick costs that worker a tick, so the achieved rate falls below the offered one when the server
cannot keep up). hey's CSV output (-o csv) gives every answered request's latency, status and start
offset: requests that started in the first --settle seconds (connections opening) are left out, and
p50/p90/p99 are exact over the combined set of all hey processes, and per kind (reads, POSTs).

Printed and written to bench/results/fixed-rate-<UTC time>.json: offered and achieved rate, p50/p90/p99/max,
non-2xx answers, "missing" (offered in the window minus answered: hey's CSV leaves out requests that
failed without an answer, and a rate not held shows here too), the view count check (the stats delta
must equal the POSTs answered 2xx: hey waits for what it has in flight) and the target, never asserted:
the mock's p99 <= 2x the bare Flask app's.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import charts
import harness as h
import run

TARGETS = {"p99_vs_flask_floor_max": 2.0}
SERVERS = ("mock", "mock-postgres", "flask-floor", "ceiling", "prism-static")
DEFAULT_SERVERS = ("mock", "mock-postgres", "flask-floor", "prism-static")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2 s measured after 1 s (smoke run)")
    p.add_argument("--rate", type=float, default=1000.0, help="offered requests/s in total (%(default)g)")
    p.add_argument("--post-share", type=float, default=0.1, help="share of view POSTs in the rate (%(default)g)")
    p.add_argument("--duration", type=float, help="seconds measured per server (10; 2 with --quick)")
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds of load before the measured window, not counted (%(default)g)")
    p.add_argument("--worker-rate", type=float, default=50.0,
                   help="requests/s of one hey worker (hey -q); workers per hey = its share / this (%(default)g)")
    p.add_argument("--timeout", type=int, default=5, help="hey's timeout per request, whole seconds (%(default)s)")
    p.add_argument("--origin", action="store_true",
                   help=f"send the reads with `Origin: {run.ORIGIN}` (a CORS request, an origin the mock allows)")
    p.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                   help="comma-separated subset of " + ",".join(SERVERS) + " (%(default)s)")
    p.add_argument("--workers", type=int, default=h.cores(), help="gunicorn workers (cores: %(default)s)")
    run.add_run_options(p, load_tool="hey")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 2.0 if args.quick else 10.0
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        p.error(f"unknown servers: {', '.join(sorted(unknown))}")
    if not 0 <= args.post_share <= 1 or args.rate <= 0 or args.worker_rate <= 0 or args.duration <= 0:
        p.error("--rate, --worker-rate and --duration must be > 0, --post-share within [0, 1]")
    try:
        args.pg_settings = dict(s.split("=", 1) for s in args.pg_setting)
    except ValueError:
        p.error("--pg-setting takes NAME=VALUE")
    return args


# --- the load ------------------------------------------------------------------------------------

def plan(rate: float, post_share: float, worker_rate: float, reads: list[str]) -> list[dict]:
    """One stream per hey process: {op, kind, rate, workers, worker_rate}, reads first; the rates add up to
    `rate`, each stream's workers at <= worker_rate."""
    streams = []
    read_rate = rate * (1 - post_share)
    for key in reads:
        streams.append({"op": key, "kind": "read", "rate": read_rate / len(reads)})
    if post_share > 0:
        streams.append({"op": "view", "kind": "post", "rate": rate * post_share})
    for s in streams:
        s["workers"] = max(1, math.ceil(s["rate"] / worker_rate - 1e-9))
        s["worker_rate"] = s["rate"] / s["workers"]
    return streams


def hey_argv(hey: str, url: str, method: str, stream: dict, seconds: float, timeout: int,
             headers: dict[str, str]) -> list[str]:
    argv = [hey, "-z", f"{seconds:g}s", "-c", str(stream["workers"]), "-q", f"{stream['worker_rate']:.6g}",
            "-t", str(timeout), "-o", "csv", "-m", method, "-A", "application/json",
            "-H", f"Authorization: Bearer {h.ADMIN_TOKEN}"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    return argv + [url]


def parse_hey_csv(text: str) -> list[tuple[float, int, float]]:
    """hey -o csv: one row per answered request; returns (latency ms, status, start offset s) each.
    Requests that failed without an answer (refused, reset, timed out) are not in hey's CSV."""
    rows = []
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or header[0] != "response-time":
        raise ValueError("not hey's CSV output: " + text[:200])
    status_at, offset_at = header.index("status-code"), header.index("offset")
    for row in reader:
        if len(row) == len(header):
            rows.append((float(row[0]) * 1e3, int(row[status_at]), float(row[offset_at])))
    return rows


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_figures(latencies: list[float]) -> dict:
    values = sorted(latencies)
    return {"count": len(values), **{f"p{p}_ms": _round(percentile(values, p)) for p in (50, 90, 99)},
            "max_ms": _round(values[-1] if values else None)}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def summarize(streams: list[dict], rows_by_stream: list[list[tuple[float, int, float]]], settle: float,
              duration: float) -> dict:
    """Figures of one server's run: the rows that started within [settle, settle + duration)."""
    kept: dict[str, list[tuple[float, int]]] = {"read": [], "post": []}
    answered_all = {"read": 0, "post": 0}
    post_2xx_all = 0
    per_op = {}
    for stream, rows in zip(streams, rows_by_stream):
        window = [(ms, status) for ms, status, offset in rows if settle <= offset < settle + duration]
        kept[stream["kind"]] += window
        answered_all[stream["kind"]] += len(rows)
        if stream["kind"] == "post":
            post_2xx_all += sum(1 for _, status, _ in rows if 200 <= status < 300)
        per_op[stream["op"]] = {"offered_rps": round(stream["rate"], 1),
                                "achieved_rps": round(len(window) / duration, 1),
                                "non2xx": sum(1 for _, status in window if not 200 <= status < 300),
                                **latency_figures([ms for ms, _ in window])}
    every = kept["read"] + kept["post"]
    offered = sum(s["rate"] for s in streams)
    return {
        "offered_rps": round(offered, 1),
        "achieved_rps": round(len(every) / duration, 1),
        "reads_rps": round(len(kept["read"]) / duration, 1),
        "posts_rps": round(len(kept["post"]) / duration, 1),
        **latency_figures([ms for ms, _ in every]),
        "reads": latency_figures([ms for ms, _ in kept["read"]]),
        "posts": latency_figures([ms for ms, _ in kept["post"]]),
        "non2xx": sum(1 for _, status in every if not 200 <= status < 300),
        "missing": max(0, round(offered * duration) - len(every)),
        "answered_including_settle": answered_all,
        "posts_answered_2xx_including_settle": post_2xx_all,
        "operations": per_op,
    }


def drive(hey: str, server: h.Server, ids: dict, streams: list[dict], ops: dict[str, tuple], args) -> dict:
    """All hey processes at once against `server`; their rows summed up."""
    seconds = args.settle + args.duration
    procs = []
    for stream in streams:
        _, _, method, template, headers = ops[stream["op"]]
        url = server.base + template.format(**ids)
        procs.append(subprocess.Popen(hey_argv(hey, url, method, stream, seconds, args.timeout, headers),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=seconds + args.timeout + 60)
            if proc.returncode != 0:
                raise RuntimeError(f"hey failed ({proc.returncode}): {(err or out).strip()[:300]}")
            outputs.append(out)
    finally:
        for proc in procs:  # only on an error above: the ones not finished yet
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return summarize(streams, [parse_hey_csv(out) for out in outputs], args.settle, args.duration)


def count_check(before: int, after: int, answered_2xx: int, non2xx: int) -> dict:
    """hey waits for every request it sent, so each POST answered 2xx is one view, and nothing else is.
    (A request that failed without an answer is not in hey's CSV: the server may have counted it; it would
    show as `extra` here and, since the CSV does not hold it, as `missing` above.)"""
    delta = after - before
    return {"before": before, "after": after, "delta": delta, "answered_2xx": answered_2xx,
            "lost": max(0, answered_2xx - delta), "extra": max(0, delta - answered_2xx), "non2xx": non2xx,
            "ok": delta == answered_2xx and non2xx == 0}


def measure_server(name: str, server: h.Server, ids: dict, hey: str, streams: list[dict], ops: dict, args) -> dict:
    for stream in streams:  # every path must answer before the load (the ids exist on this server)
        _, _, method, template, headers = ops[stream["op"]]
        if method == "GET":
            reply = h.http(method, server.base + template.format(**ids), timeout=30, headers=headers)
            if reply.status != 200:
                raise RuntimeError(f"{name} answered {reply.status} on {template.format(**ids)}: {reply.body[:200]!r}")
    counting = name.startswith("mock")
    if counting:
        before = run.total_views(server.base, ids["view_dashboard"])
    h.log(f"  {name}: {sum(s['rate'] for s in streams):g} req/s offered for {args.settle:g} + {args.duration:g} s")
    result = drive(hey, server, ids, streams, ops, args)
    if counting and any(s["kind"] == "post" for s in streams):
        after = run.settled_total_views(server.base, ids["view_dashboard"])
        post_non2xx = sum(o["non2xx"] for key, o in result["operations"].items() if key == "view")
        result["count_check"] = count_check(before, after, result["posts_answered_2xx_including_settle"],
                                            post_non2xx)
    return result


# --- report --------------------------------------------------------------------------------------

def compare(results: dict) -> dict:
    floor = results.get("flask-floor") or {}
    out = {}
    for name in run.MOCKS:
        r = results.get(name)
        if not r or "error" in r:
            continue
        ratio = h.ratio(r.get("p99_ms"), floor.get("p99_ms"))
        out[name] = {"p99_vs_flask_floor": ratio,
                     "target": h.verdict(None if ratio is None else ratio <= TARGETS["p99_vs_flask_floor_max"])}
    return out


def print_report(report: dict) -> None:
    s = report["settings"]
    print()
    print(f"fixed rate: {s['rate']:g} req/s offered ({s['rate'] * (1 - s['post_share']):g} reads/s over "
          f"{len(run.READS)} operations{' with Origin' if s['origin'] else ''}, {s['rate'] * s['post_share']:g} "
          f"view POSTs/s), {s['duration']:g} s measured after {s['settle']:g} s; hey workers at "
          f"{s['worker_rate']:g} req/s; {report['machine']['cores']} cores, gunicorn workers {s['workers']}")
    for name, info in report["servers"].items():
        if info.get("skipped"):
            print(f"  {name}: skipped - {info['skipped']}")
        elif info.get("failed"):
            print(f"  {name}: FAILED to start - {info['failed'].splitlines()[0]}")
    rows = []
    for name, r in report["results"].items():
        if "error" in r:
            rows.append([name, "FAILED", r["error"][:70]] + [""] * 10)
            continue
        rows.append([name, h.fmt(r["offered_rps"], ".0f"), h.fmt(r["achieved_rps"], ".0f"),
                     h.fmt(r["reads_rps"], ".0f"), h.fmt(r["posts_rps"], ".0f"), h.fmt(r["p50_ms"]),
                     h.fmt(r["p90_ms"]), h.fmt(r["p99_ms"]), h.fmt(r["max_ms"]), h.fmt(r["reads"]["p99_ms"]),
                     h.fmt(r["posts"]["p99_ms"]), str(r["non2xx"]), str(r["missing"])])
    print()
    print(h.table(rows, ["server", "offered/s", "achieved/s", "reads/s", "POSTs/s", "p50 ms", "p90 ms",
                         "p99 ms", "max ms", "reads p99", "POSTs p99", "non-2xx", "missing"]))
    print("(p50/p90/p99/max over every request of the window, reads and POSTs together; missing: offered "
          "in the window minus answered)")
    for name, r in report["results"].items():
        check = r.get("count_check")
        if check:
            print(f"{name}: view count check: stats delta {check['delta']} (before {check['before']}, after "
                  f"{check['after']}), POSTs answered 2xx {check['answered_2xx']}, non-2xx {check['non2xx']}; "
                  f"lost {check['lost']}, extra {check['extra']} -> {'ok' if check['ok'] else 'FAILED'}")
    print()
    if not report["comparisons"]:
        print(f"target: mock p99 <= {TARGETS['p99_vs_flask_floor_max']:g}x flask-floor p99: n/a (no mock measured)")
    for name, c in report["comparisons"].items():
        print(f"target: {name} p99 <= {TARGETS['p99_vs_flask_floor_max']:g}x flask-floor p99: "
              f"{h.fmt(c['p99_vs_flask_floor'])}x -> {c['target']}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    h.ensure_venv()
    hey, why = h.ensure_tool("hey", install=not args.no_install)
    if not hey:
        print(f"cannot bench: {why}", file=sys.stderr)
        return 2
    all_ops = run.measured_operations()
    reads = [op for op in all_ops if op[2] == "GET" and op[0].endswith(run.ORIGIN_SUFFIX) == args.origin]
    ops = {op[0].removesuffix(run.ORIGIN_SUFFIX): op for op in reads}
    ops["view"] = next(op for op in all_ops if op[0] == "view")
    streams = plan(args.rate, args.post_share, args.worker_rate, run.READS)
    report: dict = {
        "kind": "insights-mock fixed-rate bench",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": h.machine_info(),
        "settings": {"rate": args.rate, "post_share": args.post_share, "duration": args.duration,
                     "settle": args.settle, "worker_rate": args.worker_rate, "timeout": args.timeout,
                     "origin": args.origin, "workers": args.workers, "seed": args.seed, "now": args.now,
                     "mock_args": args.mock_arg, "quick": args.quick, "servers": args.servers,
                     "postgres_settings": args.pg_settings, "streams": streams},
        "targets": TARGETS, "servers": {}, "results": {}, "ids": {},
    }
    prism_skip = run.prism_prefetch() if "prism-static" in args.servers else None
    pg_skip = run.postgres_skip() if "mock-postgres" in args.servers else None
    work = Path(tempfile.mkdtemp(prefix="insights-fixed-rate-"))
    failed = True
    try:
        with ExitStack() as stack:
            servers = run.start_servers(args, list(ops.values()), work, stack, report, prism_skip, pg_skip)
            for name, (server, ids) in servers.items():
                run.wait_idle([srv for srv, _ in servers.values()])
                try:
                    report["results"][name] = measure_server(name, server, ids, hey, streams, ops, args)
                except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
                    h.log(f"    FAILED: {exc!r}")
                    report["results"][name] = {"error": repr(exc)[:500]}
            for name, (server, _) in servers.items():
                report["servers"][name]["memory"] = server.memory()
        failed = False
    finally:
        if failed:
            h.log(f"server logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report["comparisons"] = compare(report["results"])
    report["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path = h.write_json("fixed-rate", report, args.out)
    print_report(report)
    print(f"\nfigures written to {path}")
    if args.charts:
        charts.after_run(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
