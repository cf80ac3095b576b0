#!/usr/bin/env python3
"""The scaling bench: the read operations as the data grows, plus start-up time and peak memory.

    python3 bench/scaling.py                   1k, 10k, 100k and 1M view events and audit entries
    python3 bench/scaling.py --sizes 1k,100k   a subset
    python3 bench/scaling.py --quick           1 s warm-up + 2 s per operation

For each size the mock is started as in bench/run.py (gunicorn, workers = cores, a fresh --db file,
response validation off) with --views N --audit-logs N and --no-response-cache (wrk repeats one request,
which the cache would answer without reading the data; --response-cache keeps it); start-up is the time from the process start until
/__admin/health answers; wrk measures each read operation (p50, p99, req/s); the process tree's memory is
sampled from /proc from start to stop. Then the start-up of the default `insights-mock serve` (no options
but host and port) and of the production settings at the default data size are timed, a few times each.

Prints p50/p99 per size, the ratio of the largest size to the smallest, start-up and peak RSS per size,
with the issue's targets beside them (met / NOT MET, never asserted); writes bench/results/scaling-*.json.
"""

from __future__ import annotations

import argparse
import sys
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

import harness as h
import run
from harness import Server, WrkSettings

TARGETS = {"p50_largest_vs_smallest_max": 1.5, "default_startup_max_s": 1.0, "peak_rss_at_1m_max_mb": 500.0}


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if scale > 1 else text
    try:
        value = int(float(number) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1k, 10k, 100k, 1M, 2500)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a size must be positive: {text!r}")
    return value


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1k,10k,100k,1M",
                   help="view events and audit entries per run, comma-separated (%(default)s)")
    p.add_argument("--quick", action="store_true", help="1 s warm-up + 2 s per operation")
    p.add_argument("--duration", type=int, help="seconds measured per operation (10)")
    p.add_argument("--warmup", type=int, help="seconds of warm-up per operation (2)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--workers", type=int, default=h.cores(), help="gunicorn workers (cores: %(default)s)")
    p.add_argument("--ops", default=",".join(run.READS), help="read operations (%(default)s)")
    p.add_argument("--seed", type=int, default=run.DEFAULT_SEED)
    p.add_argument("--now", default=run.DEFAULT_NOW)
    p.add_argument("--response-cache", action="store_true",
                   help="leave the mock's response cache on (by default it is off here: every read is made "
                        "again, so the figures show what the data's size costs)")
    p.add_argument("--startup-runs", type=int, default=3, help="start-ups timed at the default size (3)")
    p.add_argument("--startup-timeout", type=float, default=1200.0,
                   help="seconds a start-up may take before the run gives up (%(default)s)")
    p.add_argument("--no-install", action="store_true", help="do not apt-get install wrk when missing")
    p.add_argument("--out", type=Path, default=h.RESULTS_DIR)
    args = p.parse_args(argv)
    args.sizes = sorted({parse_size(s) for s in args.sizes.split(",") if s.strip()})
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.duration = args.duration if args.duration is not None else (2 if args.quick else 10)
    args.ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    unknown = set(args.ops) - set(run.READS)
    if unknown:
        p.error(f"unknown read operations: {', '.join(sorted(unknown))} (choose from {', '.join(run.READS)})")
    return args


def start_size(size: int, args, work: Path, stack: ExitStack) -> dict:
    port = h.free_port()
    db = work / f"mock-{size}.db"
    extra = ["--views", str(size), "--audit-logs", str(size)]
    if not args.response_cache:  # a repeated read would be answered from the cache: the size would not show
        extra.append("--no-response-cache")
    server = Server(f"mock {size_label(size)}", run.mock_argv(port, db, args.workers, args.seed, args.now, extra),
                    port, log_path=work / f"mock-{size}.log")
    h.log(f"size {size_label(size)}: {' '.join(server.argv)}")
    stack.enter_context(server)
    startup = server.start(timeout=args.startup_timeout)
    h.log(f"  up in {startup:.2f} s")
    after_start = h.tree_memory(server.proc.pid)
    ids = run.discover(server.base, db)
    db_bytes = sum(p.stat().st_size for p in work.glob(f"mock-{size}.db*"))
    return {"size": size, "server": server, "startup_s": round(startup, 3), "memory_after_start": after_start,
            "db_mb": round(db_bytes / 2**20, 1), "ids": ids, "results": {}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    h.ensure_venv()
    wrk, why = h.ensure_wrk(install=not args.no_install)
    if not wrk:
        print(f"cannot bench: {why}", file=sys.stderr)
        return 2
    settings = WrkSettings(duration=args.duration, warmup=args.warmup, connections=args.connections,
                           threads=args.threads, timeout=args.timeout)
    report: dict = {
        "kind": "insights-mock scaling bench",
        "machine": h.machine_info(),
        "settings": {"sizes": args.sizes, "duration": args.duration, "warmup": args.warmup,
                     "connections": args.connections, "threads": args.threads, "workers": args.workers,
                     "seed": args.seed, "now": args.now},
        "targets": TARGETS, "sizes": [], "startup": {},
    }
    work = Path(tempfile.mkdtemp(prefix="insights-scaling-"))
    failed = True
    try:
        with ExitStack() as stack:
            # Every size is started alone (its start-up and memory its own), then all stay up and each
            # operation is measured on the sizes back to back: a shared machine's drift then falls on
            # all sizes alike instead of on the largest, measured last.
            sizes = [start_size(size, args, work, stack) for size in args.sizes]
            ops = [op for op in run.OPERATIONS if op[0] in args.ops]
            servers = [entry["server"] for entry in sizes]
            for op in ops:
                for entry in sizes:
                    waited, busy = run.wait_idle(servers)
                    result = run.measure_op(size_label(entry["size"]), entry["server"], wrk, op, entry["ids"],
                                            settings, False)
                    result["waited_for_idle_s"] = waited
                    entry["results"][op[0]] = result
            for entry in sizes:
                entry["memory"] = entry.pop("server").memory()
                report["sizes"].append(entry)
        if args.startup_runs > 0:
            serve = h.venv_tool("insights-mock")
            report["startup"]["default serve"] = h.time_startups(
                "default", lambda port, i: [serve, "serve", "--host", "127.0.0.1", "--port", str(port)],
                args.startup_runs, work)
            report["startup"]["production settings, default data"] = h.time_startups(
                "production", lambda port, i: run.mock_argv(port, work / f"startup-{i}.db", args.workers,
                                                           args.seed, args.now),
                args.startup_runs, work)
        failed = False
    finally:
        if failed:
            h.log(f"server logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    summarize(report, args)
    path = h.write_json("scaling", report, args.out)
    print_report(report, args)
    print(f"\nfigures written to {path}")
    return 0


def summarize(report: dict, args) -> None:
    sizes = report["sizes"]
    ratios = {}
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        for op in args.ops:
            a, b = small["results"].get(op), large["results"].get(op)
            if a and b:
                ratios[op] = {"p50": h.ratio(b["p50_ms"], a["p50_ms"]), "p99": h.ratio(b["p99_ms"], a["p99_ms"]),
                              "rps": h.ratio(b["rps"], a["rps"])}
    report["largest_vs_smallest"] = ratios
    targets = {}
    labels = [size_label(s["size"]) for s in sizes]
    if "1k" in labels and "1M" in labels:
        k1, m1 = sizes[labels.index("1k")], sizes[labels.index("1M")]
        for op in args.ops:
            r = h.ratio(m1["results"][op]["p50_ms"], k1["results"][op]["p50_ms"])
            targets[f"{op}: p50 at 1M <= {TARGETS['p50_largest_vs_smallest_max']}x p50 at 1k"] = \
                h.verdict(r <= TARGETS["p50_largest_vs_smallest_max"])
        rss = max(m1["memory"]["peak_tree_rss_mb"], m1["memory"]["peak_process_hwm_mb"])
        targets[f"peak RSS at 1M < {TARGETS['peak_rss_at_1m_max_mb']:g} MB"] = \
            h.verdict(rss < TARGETS["peak_rss_at_1m_max_mb"])
    default = report["startup"].get("default serve")
    if default:
        targets[f"default start-up < {TARGETS['default_startup_max_s']:g} s (median)"] = \
            h.verdict(default["median_s"] < TARGETS["default_startup_max_s"])
    report["target_results"] = targets


def print_report(report: dict, args) -> None:
    sizes = report["sizes"]
    print()
    print(f"wrk: {args.connections} connections, {args.threads} threads, {args.warmup:g} s warm-up + "
          f"{args.duration:g} s; gunicorn workers {args.workers}; sizes = view events = audit entries")
    rows = []
    for op in args.ops:
        for i, s in enumerate(sizes):
            r = s["results"][op]
            rows.append([op if i == 0 else "", size_label(s["size"]), h.fmt(r["rps"], ".0f"), h.fmt(r["p50_ms"]),
                         h.fmt(r["p99_ms"]), str(r["errors"]),
                         f"{h.fmt(r.get('server_cores'), '.1f')}/{h.fmt(r.get('wrk_cores'), '.1f')}/"
                         f"{h.fmt(r.get('other_cores'), '.1f')}", run.split_text(r.get("connections_per_process"))])
        ratio = report["largest_vs_smallest"].get(op)
        if ratio:
            rows.append(["", f"{size_label(sizes[-1]['size'])}/{size_label(sizes[0]['size'])}",
                         h.fmt(ratio["rps"]), h.fmt(ratio["p50"]), h.fmt(ratio["p99"]), "", "", ""])
    print()
    print(h.table(rows, ["operation", "size", "req/s", "p50 ms", "p99 ms", "errors", "cores srv/wrk/other",
                         "conns/process"]))
    rows = [[size_label(s["size"]), h.fmt(s["startup_s"]),
             h.fmt(s["memory_after_start"]["tree_rss_mb"], ".0f"), h.fmt(s["memory_after_start"]["tree_pss_mb"], ".0f"),
             h.fmt(s["memory"]["peak_tree_rss_mb"], ".0f"),
             h.fmt(s["memory"]["peak_tree_pss_mb"], ".0f"), h.fmt(s["memory"]["peak_process_hwm_mb"], ".0f"),
             str(s["memory"]["processes"]), h.fmt(s["db_mb"], ".1f")] for s in sizes]
    print()
    print(h.table(rows, ["size", "start-up s", "RSS MB after start", "PSS MB after start", "peak RSS MB (tree)", "peak PSS MB (tree)",
                         "peak VmHWM MB (1 proc)", "processes", "db file MB"]))
    for label, st in report["startup"].items():
        print(f"start-up, {label}: median {st['median_s']:.2f} s, max {st['max_s']:.2f} s "
              f"(runs {', '.join(f'{t:.2f}' for t in st['runs_s'])}); peak RSS {st['memory']['peak_tree_rss_mb']:.0f} MB")
    if report["target_results"]:
        print()
        for target, result in report["target_results"].items():
            print(f"  {target}: {result}")


if __name__ == "__main__":
    sys.exit(main())
