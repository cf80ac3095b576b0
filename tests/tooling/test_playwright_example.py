"""examples/playwright (docs/FRONTEND.md): Node's @playwright/test, four workers in parallel against ONE mock
started by the example's own `webServer` config, each test in its own session (fixtures.ts) clicking a page
that records views cross-origin and asserting its own counts, its own journal and its session's name.

The browser is Debian's chromium (no browser download is reachable here: PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1).
Without chromium or npm the test skips, unless INSIGHTS_MOCK_REQUIRE_BROWSER=1 (CI), where it fails."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mock_helpers import need_browser, free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "playwright"
CHROMIUM = os.environ.get("INSIGHTS_MOCK_CHROMIUM", "/usr/bin/chromium")

pytestmark = [pytest.mark.live, pytest.mark.slow]


def test_the_playwright_example_runs_parallel_workers_each_in_its_own_session(tmp_path):
    npm = shutil.which("npm")
    need_browser(npm is not None, "npm is not installed")
    need_browser(os.path.exists(CHROMIUM), f"no Chromium at {CHROMIUM}")
    work = tmp_path / "playwright"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("node_modules", "test-results"))
    env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "npm_config_update_notifier": "false",
           "npm_config_fund": "false", "npm_config_audit": "false"}
    installed = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=work, capture_output=True, text=True,
                               env=env, timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    env.update(CI="1", WORKERS="4", CHROMIUM=CHROMIUM, MOCK_PYTHON=sys.executable, MOCK_CWD=str(ROOT),
               MOCK_PORT=str(free_port()), APP_PORT=str(free_port()))
    run = subprocess.run([str(work / "node_modules" / ".bin" / "playwright"), "test"], cwd=work,
                         capture_output=True, text=True, env=env, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert re.search(r"\b8 passed\b", output), output
    assert "Running 8 tests using 4 workers" in output, output
