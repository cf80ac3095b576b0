"""`insights-contract`: the contract suite as installed by `pip install "insights-mock[contract]"`.

    insights-contract --base-url URL [--report-dir DIR] [any pytest or suite option]

It runs the same tests as `pytest contract_tests` in a checkout, from the installed package, with the
installed spec and default tokens, and with the installed suite's own pytest settings (`-c pytest.ini`), so
the directory it is run from cannot change what runs. Reports go to --report-dir (default ./contract-reports):
junit.xml, contract.md and contract.html, never overwriting an earlier run's. The exit status is pytest's:
0 passed, 1 a failure (the contract, an unusable target, or too little coverage), 2 interrupted, 4 usage error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_REPORT_DIR = "contract-reports"


def _given(args: list[str], option: str) -> bool:
    return any(a == option or a.startswith(option + "=") for a in args)


def pytest_args(args: list[str], environ=os.environ) -> list[str]:
    out = [str(PACKAGE_DIR), "-c", str(PACKAGE_DIR / "pytest.ini"), "--rootdir", str(PACKAGE_DIR)]
    if not _given(args, "-m"):
        out += ["-m", "not meta"]  # the meta-tests prove the suite itself; they need a checkout's broken mocks
    if not _given(args, "--report-dir") and not environ.get("CONTRACT_REPORT_DIR"):
        out += ["--report-dir", DEFAULT_REPORT_DIR]
    return out + args


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__.strip() + "\n\nThe suite's options (pytest's follow):\n")
        args = ["--help"]
    # Relative report paths are relative to where the command is run, as a user expects.
    for i, arg in enumerate(args):
        if arg == "--report-dir" and i + 1 < len(args):
            args[i + 1] = str(Path(args[i + 1]).resolve())
        elif arg.startswith("--report-dir="):
            args[i] = "--report-dir=" + str(Path(arg.split("=", 1)[1]).resolve())
    full = pytest_args(args)
    if "--report-dir" in full and not _given(args, "--report-dir"):
        full[full.index("--report-dir") + 1] = str(Path(DEFAULT_REPORT_DIR).resolve())
    return int(pytest.main(full))


if __name__ == "__main__":
    sys.exit(main())
