#!/usr/bin/env python3
"""Where the CPU of a served request runs: Python, SQLite, the C library or the kernel (by system call).

    python3 bench/cpu_split.py                        the view POST, then a cached read, 8 s each
    python3 bench/cpu_split.py --ops view,stats --duration 15

The mock runs as in bench/run.py (gunicorn, workers = cores, --db file, response validation off). For each
operation, wrk drives it while `perf record` samples every process of the server (Debian: linux-perf; the
script says so and stops when perf is missing or not allowed). Printed per operation: req/s while
sampled, the server's CPU microseconds per request, and that CPU split by where it ran. The kernel's part
is split again by the system calls it served: futex (threads woken and put to sleep: the GIL, a thread
waiting for its view's write), pread/pwrite/fdatasync (the database's I/O), sendto/recvfrom (sockets),
epoll, flock (the write turn). Then the first operation minus each other one: what the first costs beyond
it (by default, what a view POST costs beyond a cached read).

hotspots.py says which Python functions cost; this says how much of a request is not Python at all.
Figures only, nothing asserted. perf takes CPU of its own: req/s here are below bench/run.py's.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness as h
import run
from harness import Server, WrkSettings

# Groups of the split, by perf's "shared object" name; what matches none is "other".
PLACES = (
    ("Python", ("libpython", "python3")),
    ("SQLite", ("libsqlite3", "_sqlite3")),
    ("C library", ("libc.so", "libc-")),
    ("kernel", ("[kernel",)),
)
# System calls whose kernel time is shown on its own (perf's __x64_sys_<name>, callees included).
SYSCALLS = ("futex", "pread64", "pwrite64", "fdatasync", "sendto", "recvfrom", "epoll_wait", "epoll_ctl",
            "flock")

_DSO_LINE = re.compile(r"^\s*(?P<pct>[\d.]+)%\s+(?P<samples>\d+)\s+(?P<dso>\S.*?)\s*$")
_SYS_LINE = re.compile(r"^\s*(?P<children>[\d.]+)%\s+[\d.]+%\s+\d+\s+\[k\]\s+__(?:x64|arm64)_sys_(?P<name>\w+)\s*$")


def parse_dso_report(text: str) -> dict[str, int]:
    """`perf report --no-children --sort dso -n -g none --stdio`: samples per shared object."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        m = _DSO_LINE.match(line)
        if m and not line.lstrip().startswith("#"):
            found[m.group("dso")] = found.get(m.group("dso"), 0) + int(m.group("samples"))
    return found


def parse_syscall_report(text: str) -> dict[str, float]:
    """`perf report --children --sort sym -n -g none --stdio`: percent of all samples under each system call."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        m = _SYS_LINE.match(line)
        if m:
            found[m.group("name")] = max(found.get(m.group("name"), 0.0), float(m.group("children")))
    return found


def split(dsos: dict[str, int], syscalls: dict[str, float], seconds: float, rate: int, requests: float) -> dict:
    """CPU microseconds per request: in all, per place, and per system call."""
    total = sum(dsos.values())
    per_request = 1e6 / rate / requests if requests else 0.0  # one sample stands for 1/rate s of one CPU
    places = {name: 0 for name, _ in PLACES} | {"other": 0}
    for dso, samples in dsos.items():
        place = next((name for name, marks in PLACES if any(mark in dso for mark in marks)), "other")
        places[place] += samples
    return {
        "us_per_request": total * per_request,
        "cores": total / rate / seconds if seconds else 0.0,
        "places_us": {name: n * per_request for name, n in places.items()},
        "syscalls_us": {name: syscalls.get(name, 0.0) / 100 * total * per_request for name in SYSCALLS},
    }


def perf_usable(perf: str) -> str | None:
    """None if perf can sample here, else why not."""
    probe = subprocess.run([perf, "stat", "-e", "task-clock", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"perf cannot sample here: {probe.stderr.strip()[-300:]}"
    return None


def sample(perf: str, wrk: str, server: Server, url: str, method: str, args, work: Path) -> dict:
    data = work / "perf.data"
    h.run_wrk(wrk, url, WrkSettings(duration=2, connections=args.connections, threads=args.threads),
              method=method)  # warm-up: caches, connections, the WAL
    # wrk runs a little longer than perf, so every sample is of a loaded server
    load = h.start_wrk(wrk, url, WrkSettings(duration=args.duration + 2, connections=args.connections,
                                             threads=args.threads), method=method)
    time.sleep(1)
    pids = ",".join(str(pid) for pid in h.process_tree(server.proc.pid))
    record = subprocess.run([perf, "record", "-F", str(args.rate), "-g", "-p", pids, "-o", str(data), "--",
                             "sleep", str(args.duration)], capture_output=True, text=True,
                            timeout=args.duration + 120, check=False)
    out, _ = load.communicate(timeout=args.duration + 60)
    if record.returncode != 0 or not data.exists():
        raise RuntimeError(f"perf record failed: {record.stderr.strip()[-500:]}")
    report = [perf, "report", "-i", str(data), "--stdio", "-n", "-g", "none"]
    dsos = subprocess.run(report + ["--no-children", "--sort", "dso"], capture_output=True, text=True,
                          check=True).stdout
    calls = subprocess.run(report + ["--children", "--sort", "sym"], capture_output=True, text=True,
                           check=True).stdout
    rps = h.parse_wrk_output(out)["rps"]
    result = split(parse_dso_report(dsos), parse_syscall_report(calls), args.duration, args.rate,
                   rps * args.duration)
    result["rps"] = rps
    return result


def print_split(key: str, r: dict) -> None:
    places = "  ".join(f"{name} {us:.0f}" for name, us in r["places_us"].items())
    calls = "  ".join(f"{name} {us:.0f}" for name, us in r["syscalls_us"].items() if us >= 0.5)
    print(f"{key:<16} {r['rps']:>8.0f} req/s  {r['us_per_request']:>6.0f} us/request ({r['cores']:.2f} cores)")
    print(f"{'':<16} where: {places}")
    print(f"{'':<16} kernel, by system call: {calls or '-'}")


def print_difference(first: str, other: str, a: dict, b: dict) -> None:
    places = "  ".join(f"{name} {a['places_us'][name] - b['places_us'][name]:+.0f}" for name in a["places_us"])
    calls = "  ".join(f"{name} {a['syscalls_us'][name] - b['syscalls_us'][name]:+.0f}" for name in SYSCALLS
                      if abs(a["syscalls_us"][name] - b["syscalls_us"][name]) >= 0.5)
    print(f"\n{first} minus {other}: {a['us_per_request'] - b['us_per_request']:+.0f} us/request "
          f"({a['us_per_request'] / b['us_per_request']:.2f}x)")
    print(f"  where: {places}")
    print(f"  kernel, by system call: {calls or '-'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ops", default="view,recently_viewed", help="operations of bench/run.py (%(default)s)")
    p.add_argument("--duration", type=int, default=8, help="seconds sampled per operation (%(default)s)")
    p.add_argument("--rate", type=int, default=999, help="perf samples per second per CPU (%(default)s)")
    run.add_served_mock_options(p)
    args = p.parse_args(argv)
    h.ensure_venv()
    perf = shutil.which("perf")
    why = "perf is missing (Debian: apt-get install linux-perf)" if not perf else perf_usable(perf)
    if why:
        print(f"cannot sample: {why}", file=sys.stderr)
        return 2
    wrk, why = h.ensure_wrk()
    if not wrk:
        print(f"cannot bench: {why}", file=sys.stderr)
        return 2
    keys = args.ops.split(",")
    ops = sorted((op for op in run.OPERATIONS if op[0] in keys), key=lambda op: keys.index(op[0]))
    results: dict[str, dict] = {}
    work = Path(tempfile.mkdtemp(prefix="insights-cpu-split-"))
    try:
        with run.served_mock(work, args.workers, args.seed, args.now, args.mock_arg) as (server, ids):
            for key, _label, method, template in ops:
                results[key] = sample(perf, wrk, server, server.base + template.format(**ids), method, args, work)
                print_split(key, results[key])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for other in list(results)[1:]:
        print_difference(ops[0][0], other, results[ops[0][0]], results[other])
    path = h.write_json("cpu-split", {"settings": vars(args) | {"out": str(args.out)}, "operations": results},
                        args.out)
    print(f"\nfigures written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
