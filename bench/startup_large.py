#!/usr/bin/env python3
"""The large start-up: `insights-mock serve --views 1000000 --audit-logs 1000000 --port 0`, in memory and with
`--db`, timed from the process start to its `listening on http://HOST:PORT` line (then /__admin/health must
answer 200), with the process tree's peak memory (issue 20: under 10 s and 500 MB in each mode). With `--db`
the server is then started once more on the file it filled (`db, loaded file`): a restart loads nothing.

    python3 bench/startup_large.py                         this checkout, both modes, one run each
    python3 bench/startup_large.py --modes db --views 100000 --audit-logs 100000
    python3 bench/startup_large.py --root /work/main       another checkout (its .venv), for a before/after

One run per mode: a start-up of this size is seconds of one core, so the noise of a shared machine is a few
per cent; compare two checkouts in neighbouring runs, as ratios. Peak memory is the largest of the sampled
sum of RSS over the tree (every 50 ms) and of the kernel's own high-water mark (VmHWM) of any one process,
which sees the spikes between two samples. Prints a table and writes bench/results/startup_large-*.json.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import harness as h

TARGETS = {"ready_max_s": 10.0, "peak_rss_max_mb": 500.0}
_LISTENING = re.compile(rb"listening on (http://\S+)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=h.ROOT, help="the checkout to start (its .venv/bin/insights-mock)")
    p.add_argument("--modes", default="memory,db", help="memory, db or both (%(default)s)")
    p.add_argument("--views", type=int, default=1_000_000)
    p.add_argument("--audit-logs", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--now", default="2026-11-20T12:00:00Z", help="the data's anchor: the same data on every run")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--out", type=Path, default=h.RESULTS_DIR)
    return p.parse_args(argv)


def tree_cpu_s(root: int) -> float:
    """User + system CPU seconds of a process tree so far: what a start-up costs, much less disturbed by other
    load on a shared machine than the wall time (the figure to compare across runs on a busy machine)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in h.process_tree(root):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def start_once(args: argparse.Namespace, mode: str, work: Path) -> dict:
    """One start-up of `mode`: seconds to the `listening on` line, peak memory, then the server is stopped."""
    exe = args.root / ".venv" / "bin" / "insights-mock"
    argv = [str(exe), "serve", "--port", "0", "--views", str(args.views), "--audit-logs", str(args.audit_logs),
            "--seed", str(args.seed), "--now", args.now]
    if mode == "db":
        argv += ["--db", str(work / "large.db")]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=args.root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, process_group=0)
    sampler = h.MemorySampler(proc.pid, interval=0.05)
    sampler.start()
    output: list[bytes] = []
    found: dict[str, float | str] = {}

    def read() -> None:  # the line scripts wait for; the rest (progress bar) kept for the report
        for line in proc.stdout:
            output.append(line)
            match = _LISTENING.search(line)
            if match and "url" not in found:
                found["ready_s"] = time.perf_counter() - t0
                found["cpu_s"] = tree_cpu_s(proc.pid)
                found["url"] = match.group(1).decode()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while "url" not in found:
            if proc.poll() is not None:
                raise RuntimeError(f"{mode}: exited with {proc.returncode}:\n" + b"".join(output[-20:]).decode())
            if time.perf_counter() - t0 > args.timeout:
                raise RuntimeError(f"{mode}: no `listening on` line within {args.timeout:.0f} s")
            time.sleep(0.01)
        health = h.http("GET", f"{found['url']}{h.HEALTH_PATH}", timeout=10)
        counts = health.json().get("counts") if health.status == 200 else None
    finally:
        memory = sampler.stop()  # the peak up to the health answer: the start-up's, not the idle server's
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    peak = max(memory["peak_tree_rss_mb"], memory["peak_process_hwm_mb"])
    return {"mode": mode, "argv": argv, "ready_s": round(found["ready_s"], 2),
            "cpu_s": round(found["cpu_s"], 2), "health": health.status,
            "counts": counts, "peak_mb": peak, "memory": memory,
            "db_file_mb": round((work / "large.db").stat().st_size / 2**20, 1) if mode == "db" else None}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.root = args.root.resolve()
    runs = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        if mode not in ("memory", "db"):
            raise SystemExit(f"unknown mode {mode!r}: memory or db")
        with tempfile.TemporaryDirectory(prefix="startup-large-") as work:
            h.log(f"{mode}: starting {args.views:,} views + {args.audit_logs:,} audit entries from {args.root}")
            starts = [start_once(args, mode, Path(work))]
            if mode == "db":  # and again on the file it filled: how a team with --db restarts
                starts.append({**start_once(args, mode, Path(work)), "mode": "db, loaded file"})
            for run in starts:
                h.log(f"  {run['mode']}: ready in {run['ready_s']:.2f} s ({run['cpu_s']:.2f} s of CPU), "
                      f"peak {run['peak_mb']:.0f} MB, health {run['health']}")
            runs.extend(starts)
    rows = [[r["mode"], h.fmt(r["ready_s"]), h.fmt(r["cpu_s"]), h.fmt(r["peak_mb"], ".0f"), str(r["health"]),
             h.verdict(r["ready_s"] < TARGETS["ready_max_s"]), h.verdict(r["peak_mb"] < TARGETS["peak_rss_max_mb"])]
            for r in runs]
    print(h.table(rows, ["mode", "ready s", "CPU s", "peak MB", "health",
                         f"< {TARGETS['ready_max_s']:g} s", f"< {TARGETS['peak_rss_max_mb']:g} MB"]))
    path = h.write_json("startup_large", {"root": str(args.root), "targets": TARGETS, "runs": runs,
                                          "machine": h.machine_info()}, args.out)
    print(f"wrote {path}")
    return 0 if all(r["health"] == 200 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
