#!/usr/bin/env python3
"""Bootstrap and run insights-mock with nothing but python3 (>= 3.11) and the package registries.

    python3 dev.py serve [serve options]   install into .venv if needed, then `insights-mock serve`
    python3 dev.py test  [tox options]     install into .venv if needed, then `tox` (every test, as CI runs it)

Both install the locked versions of requirements/ (pip-compile's, from pyproject.toml): `serve` only what
serving needs (requirements/runtime.txt), `test` the test tools and tox too (requirements/test.txt, which tox's
environments install from as well). The package itself is installed editable, without dependencies.
The virtualenv is rebuilt when pyproject.toml or the lock it was installed from changes (a hash of them is
kept in .venv); a serve-only .venv asked to test gets the test lock installed on top.
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


# What each command installs: its lock files, and the hash that says whether .venv is still up to date.
LOCKS = {
    "serve": ("requirements/runtime.txt",),
    "test": ("requirements/runtime.txt", "requirements/test.txt"),
}


def _digest(command: str) -> str:
    sha = hashlib.sha256()
    for name in ("pyproject.toml", *LOCKS[command]):
        sha.update(name.encode() + b"\0" + (ROOT / name).read_bytes() + b"\0")
    return f"{command} {sha.hexdigest()}"


def _pip(*args: str) -> None:
    subprocess.run([str(BIN / "python"), "-m", "pip", "install", "--quiet", *args], check=True, cwd=ROOT)


def ensure_venv(command: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"insights-mock needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    stamp = STAMP.read_text() if STAMP.exists() else ""
    if stamp == _digest("test") or stamp == _digest(command):  # a test install serves too
        return
    if command == "test" and stamp == _digest("serve"):
        print("installing the test tools (requirements/test.txt) into .venv ...", flush=True)
        _pip("-r", "requirements/test.txt")
        STAMP.write_text(_digest("test"))
        return
    # New, or pyproject.toml or a lock changed: a fresh venv, so no package of an older lock stays behind
    # (a .venv without a stamp was made by hand: the locks are installed over it instead).
    if stamp or not (BIN / "python").exists():
        print(f"creating {VENV} ...", flush=True)
        STAMP.unlink(missing_ok=True)
        venv.EnvBuilder(with_pip=True, clear=bool(stamp)).create(VENV)
    lock = LOCKS[command][-1]
    what = "insights-mock" if command == "serve" else "insights-mock and its test tools"
    print(f"installing {what} ({lock}) into .venv ...", flush=True)
    _pip("-r", lock)
    _pip("--no-deps", "-e", ".")
    STAMP.write_text(_digest(command))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test"}:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_venv(command)
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
