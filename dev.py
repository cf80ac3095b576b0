#!/usr/bin/env python3
"""Bootstrap and run insights-mock with nothing but python3 (>= 3.11) and the package registries.

    python3 dev.py serve [serve options]   install into .venv if needed, then `insights-mock serve`
    python3 dev.py test  [tox options]     install into .venv if needed, then `tox` (every test, as CI runs it)

The virtualenv is rebuilt when pyproject.toml changes (a hash of it is kept in .venv).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".insights-mock-install"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"insights-mock needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print(f"creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing insights-mock and its test tools into .venv ...", flush=True)
    subprocess.run(
        [str(BIN / "python"), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]", "tox>=4.20,<5"],
        check=True,
    )
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test"}:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "serve":
        args = [str(BIN / "insights-mock"), "serve", *rest]
    else:
        args = [str(BIN / "tox"), *rest]
        browser = os.environ.get("INSIGHTS_MOCK_CHROMIUM", "/usr/bin/chromium")
        if not Path(browser).exists() and os.environ.get("INSIGHTS_MOCK_REQUIRE_BROWSER") != "1":
            print(f"note: {browser} is missing, so the /docs browser test will skip "
                  "(apt-get install chromium, or set INSIGHTS_MOCK_CHROMIUM to a Chromium/Chrome binary)",
                  file=sys.stderr, flush=True)
    os.chdir(ROOT)
    try:
        return subprocess.call(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
