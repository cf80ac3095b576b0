"""Long fuzzing run of the mock: tests/test_fuzz.py with many more examples, and the cases it really ran.

    python scripts/fuzz.py                       # 5000 fuzzing examples per operation, seed 20261126
    python scripts/fuzz.py --examples 20000 --seed 7

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
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        report = Path(tmp) / "fuzz.json"
        env = {**os.environ, "FUZZ_EXAMPLES": str(args.examples), "FUZZ_SEED": str(args.seed),
               "FUZZ_REPORT": str(report)}
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "pytest", "tests/test_fuzz.py", "-q", "-p", "no:cacheprovider",
                                 *args.pytest_args], cwd=ROOT, env=env)
        seconds = time.monotonic() - started
        if not report.exists():
            print("fuzz: the test module wrote no counts (did it run?)", file=sys.stderr)
            return result.returncode or 1
        data = json.loads(report.read_text(encoding="utf-8"))

    print(f"\nfuzz: seed {data['seed']}, {data['examples']} fuzzing examples per operation, "
          f"{data['total']} cases in {seconds:.0f} s, pytest exit {result.returncode}")
    columns = sorted({key for op in data["operations"].values() for key in op["cases"]})
    print(f"{'operation':<70} " + " ".join(f"{c:>18}" for c in columns) + f" {'total':>7}  statuses")
    for label, op in data["operations"].items():
        counts = [op["cases"].get(c, 0) for c in columns]
        statuses = " ".join(f"{code}:{n}" for code, n in op["statuses"].items())
        print(f"{label:<70} " + " ".join(f"{n:>18}" for n in counts) + f" {sum(counts):>7}  {statuses}")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
