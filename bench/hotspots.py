#!/usr/bin/env python3
"""Where the mock's time goes under load: py-spy samples every gunicorn worker while wrk drives one
operation, and the stacks are summed per function.

    .venv/bin/pip install py-spy                 (once; not a dependency of the project)
    python3 bench/hotspots.py                     every operation, 8 s each
    python3 bench/hotspots.py --ops stats,view --duration 15

The mock runs as in bench/run.py (gunicorn, workers = cores, --db file, response validation off). For
each operation it prints the functions with the largest share of samples, inclusive (the function and
what it calls) and self (its own code), leaving out the server loop frames every request has. The
collapsed stacks (flamegraph.pl / speedscope input) and a JSON summary go to bench/results/.
py-spy runs with --nonblocking, so it does not pause the workers; it still takes CPU of its own, so the
throughput seen while profiling is below that of bench/run.py: read shares here, rates there. By default
only the thread holding the GIL is sampled (--gil): with gunicorn's gthread workers, threads waiting to
take the GIL back after a socket write would otherwise show up as time "in" that write.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness as h
import run
from harness import WrkSettings

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")


def parse_collapsed(text: str) -> list[tuple[list[str], int]]:
    """py-spy --format raw: one line per distinct stack, root first, frames split by ';', then a count."""
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def short(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


# Where a sample falls in the life of a request: the first marker found on its stack, in this order.
PHASES = (
    ("mock before_request (auth, request validation, request id, faults)", ("_before_request (mock_server/",)),
    ("mock after_request (access log, headers)", ("_after_request (mock_server/",)),
    ("CORS (flask-cors)", ("flask_cors/",)),
    ("handler + store", ("Flask.dispatch_request",)),
    ("werkzeug response to WSGI", ("Response.__call__ (werkzeug", "get_wsgi_response")),
    ("Flask request context (Request, URL matching)", ("Flask.request_context", "RequestContext.push")),
    ("Flask other (teardown, signals, errors)", ("Flask.wsgi_app",)),
    ("gunicorn request parsing", ("gunicorn/http/message.py", "gunicorn/http/parser.py",
                                  "gunicorn/http/unreader.py", "gunicorn/http/body.py")),
    ("gunicorn environ and response writing", ("gunicorn/http/wsgi.py", "gunicorn/util.py")),
    ("gunicorn gthread loop (accept, poll, keep-alive, thread pool)", ("gunicorn/workers/",
                                                                        "concurrent/futures")),
)


def phase_of(names: list[str]) -> str:
    joined = ";".join(names)
    for phase, markers in PHASES:
        if any(m in joined for m in markers):
            return phase
    return "other"


def summarize(stacks: list[tuple[list[str], int]], top: int) -> dict:
    total = sum(count for _, count in stacks)
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    files: collections.Counter = collections.Counter()
    phases: collections.Counter = collections.Counter()
    idle = 0
    for frames, count in stacks:
        names = [short(f) for f in frames if not f.startswith("process ")]
        if not names:
            continue
        leaf = names[-1]
        # a worker waiting for work or for the socket is not cost of a request
        if any(s in leaf for s in ("select (selectors", "poll (selectors", "wait (threading", "accept (socket",
                                   "_worker (concurrent", "sleep (")):
            idle += count
            continue
        for name in set(names):
            inclusive[name] += count
        own[leaf] += count
        phases[phase_of(names)] += count
        m = re.search(r"\(([^)]*)\)$", leaf)
        files[m.group(1) if m else leaf] += count
    busy = total - idle
    pct = lambda n: round(100.0 * n / busy, 1) if busy else 0.0  # noqa: E731
    return {
        "samples": total, "busy_samples": busy, "idle_samples": idle,
        "inclusive_pct": [(name, pct(n)) for name, n in inclusive.most_common(top * 3)
                          if not _is_plumbing(name)][:top],
        "self_pct": [(name, pct(n)) for name, n in own.most_common(top)],
        "self_by_file_pct": [(name, pct(n)) for name, n in files.most_common(top)],
        "phases_pct": [(name, pct(n)) for name, n in phases.most_common()],
    }


def _is_plumbing(name: str) -> bool:
    # frames on every stack of every request say nothing about what costs
    return any(s in name for s in ("gunicorn/", "threading.py", "concurrent/futures", "<module>",
                                   "run (", "wsgi_app (flask", "__call__ (flask", "_bootstrap"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ops", default=",".join(k for k, *_ in run.OPERATIONS))
    p.add_argument("--duration", type=int, default=8, help="seconds profiled per operation (%(default)s)")
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second (%(default)s)")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--all-threads", action="store_true",
                   help="sample every thread, not only the one holding the GIL (shows time in C code that "
                        "releases it, e.g. SQLite, but also threads merely waiting for the GIL)")
    run.add_served_mock_options(p)
    args = p.parse_args(argv)
    h.ensure_venv()
    pyspy = shutil.which("py-spy", path=str(h.VENV_BIN)) or shutil.which("py-spy")
    if not pyspy:
        print("py-spy is missing: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    wrk, why = h.ensure_wrk()
    if not wrk:
        print(f"cannot bench: {why}", file=sys.stderr)
        return 2
    ops = [op for op in run.OPERATIONS if op[0] in args.ops.split(",")]
    settings = WrkSettings(duration=args.duration + 2, warmup=0, connections=args.connections,
                           threads=args.threads)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"settings": vars(args) | {"out": str(args.out)}, "operations": {}}
    work = Path(tempfile.mkdtemp(prefix="insights-profile-"))
    try:
        with run.served_mock(work, args.workers, args.seed, args.now, args.mock_arg) as (server, ids):
            for key, label, method, template in ops:
                url = server.base + template.format(**ids)
                h.run_wrk(wrk, url, WrkSettings(duration=1, connections=args.connections, threads=args.threads), method=method)
                raw = args.out / f"profile-{key}-{stamp}.txt"
                # wrk runs a little longer than py-spy, so every sample is of a loaded server
                load = h.start_wrk(wrk, url, settings, method=method)
                time.sleep(1)
                spy = subprocess.run([pyspy, "record", "--pid", str(server.proc.pid), "--subprocesses",
                                      "--nonblocking", "--rate", str(args.rate), "--duration", str(args.duration),
                                      "--format", "raw", "--output", str(raw),
                                      *([] if args.all_threads else ["--gil"])],
                                     capture_output=True, text=True, timeout=args.duration + 120)
                out, _ = load.communicate(timeout=settings.duration + 60)
                if spy.returncode != 0 or not raw.exists():
                    print(f"py-spy failed on {key}: {spy.stderr.strip()[-500:]}", file=sys.stderr)
                    continue
                figures = h.parse_wrk_output(out)
                result = summarize(parse_collapsed(raw.read_text()), args.top)
                result.update(rps_while_profiled=figures["rps"], p50_ms=figures.get("p50_ms"),
                              errors=figures["errors"], collapsed=str(raw))
                summary["operations"][key] = result
                print_op(key, label, result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    path = h.write_json("profile", summary, args.out)
    print(f"\nsummary written to {path}")
    return 0


def print_op(key: str, label: str, result: dict) -> None:
    print(f"\n=== {key}: {label} - {result['rps_while_profiled']:.0f} req/s while profiled, "
          f"{result['busy_samples']} busy samples ({result['idle_samples']} idle)")
    print("  phases of a request, % of busy samples")
    for name, pct in result["phases_pct"]:
        print(f"    {pct:5.1f}  {name}")
    print("  inclusive %  (function and what it calls)")
    for name, pct in result["inclusive_pct"]:
        print(f"    {pct:5.1f}  {name}")
    print("  self %  (own code)")
    for name, pct in result["self_pct"]:
        print(f"    {pct:5.1f}  {name}")
    print("  self % by file")
    for name, pct in result["self_by_file_pct"][:10]:
        print(f"    {pct:5.1f}  {name}")


if __name__ == "__main__":
    sys.exit(main())
