"""Long fuzzing run of the mock: tests/system/test_fuzz.py with many more examples, and the cases it really ran.

    python scripts/fuzz.py                       # 5000 fuzzing examples per operation, seed 20261126
    python scripts/fuzz.py --examples 20000 --seed 7
    python scripts/fuzz.py --served --workers 4          # over HTTP to `insights-mock serve --workers 4`

CI runs the same module with FUZZ_EXAMPLES=150 (its default). Exit status is pytest's: 0 when every
answer was a documented JSON answer. The counts come from the test module (one per response), per
operation, phase (examples, coverage, fuzzing) and mode (positive, negative).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000, help="fuzzing-phase examples per operation")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--served", action="store_true", help="fuzz `insights-mock serve` over HTTP, not in-process")
    parser.add_argument("--workers", type=int, default=1, help="with --served: 1 = werkzeug, N = gunicorn")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    if not args.served:
        return fuzz(args, None, "")
    sys.path.insert(0, str(ROOT / "scripts"))
    from soak import Server

    with tempfile.TemporaryDirectory(prefix="fuzz-served-") as tmp:
        server = Server(Path(tmp) / "fuzz.db", workers=args.workers).start()
        try:
            code = fuzz(args, server.base, "gunicorn" if args.workers > 1 else "werkzeug")
        finally:
            server.stop()
        bad = server.bad_log_lines()
        for line in bad[:20]:
            print(f"  server log: {line}")
        print(f"served: {'gunicorn, %d workers' % args.workers if args.workers > 1 else 'werkzeug'}; "
              f"{len(bad)} bad line(s) in the server's stderr")
        return code or (1 if bad else 0)


def fuzz(args, base_url: str | None, server: str) -> int:

    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        report = Path(tmp) / "fuzz.json"
        env = {**os.environ, "FUZZ_EXAMPLES": str(args.examples), "FUZZ_SEED": str(args.seed),
               "FUZZ_REPORT": str(report), "FUZZ_BASE_URL": base_url or "", "FUZZ_SERVER": server}
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "pytest", "tests/system/test_fuzz.py", "-q", "-p", "no:cacheprovider",
                                 *args.pytest_args], cwd=ROOT, env=env)
        seconds = time.monotonic() - started
        if not report.exists():
            print("fuzz: the test module wrote no counts (did it run?)", file=sys.stderr)
            return result.returncode or 1
        data = json.loads(report.read_text(encoding="utf-8"))

    where = f"over HTTP at {base_url}" if base_url else "in-process"
    print(f"\nfuzz ({where}): seed {data['seed']}, {data['examples']} fuzzing examples per operation, "
          f"{data['total']} cases in {seconds:.0f} s, pytest exit {result.returncode}")
    columns = sorted({key for op in data["operations"].values() for key in op["cases"]})
    print(f"{'operation':<70} " + " ".join(f"{c:>18}" for c in columns) + f" {'total':>7}  statuses")
    for label, op in data["operations"].items():
        counts = [op["cases"].get(c, 0) for c in columns]
        statuses = " ".join(f"{code}:{n}" for code, n in op["statuses"].items())
        print(f"{label:<70} " + " ".join(f"{n:>18}" for n in counts) + f" {sum(counts):>7}  {statuses}")
    if data.get("gunicorn_refusals"):
        print(f"gunicorn refused {sum(data['gunicorn_refusals'].values())} requests itself, before the app "
              f"(statuses {data['gunicorn_refusals']}): its request-line and header limits, answered in the "
              "Error schema by mock_server/gunicorn_worker.py and judged like every other answer")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
