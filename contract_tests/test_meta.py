"""Meta-tests: the suite itself, run in subprocesses against broken variants of the mock (broken_variants.py).

Each variant must make the suite fail (exit code 1, not a crash or a usage error) with the rule it breaks named
in the run report; the unmodified mock, run the same way, must pass. Small example counts keep this to a
few minutes on two cores; the variants run two at a time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from contract_tests.broken_variants import VARIANTS
from contract_tests.settings import REPO_ROOT

pytestmark = [pytest.mark.meta, pytest.mark.slow]

UNMODIFIED = "unmodified"
RUN_TIMEOUT = 600
SMALL = ["--max-examples", "5", "--stateful-scenarios", "5"]


def run_suite(variant: str, settings, workdir: Path) -> dict:
    report = workdir / f"{variant}.md"
    command = [sys.executable, "-m", "pytest", "contract_tests", "-p", "no:cacheprovider", "-m", "not meta", "-q",
               "--contract-report", str(report), "--contract-seed", str(settings.seed), "--app-factory", settings.app_factory, *SMALL]
    if variant != UNMODIFIED:
        command += ["--mock-variant", variant]
    # The child must test the in-process mock whatever this shell points the suite at.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACT_")}
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    text = report.read_text(encoding="utf-8") if report.exists() else ""
    return {
        "command": " ".join(command),
        "returncode": result.returncode,
        "output": result.stdout[-6000:] + result.stderr[-3000:],
        "rules": set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE)),
        "seconds": time.monotonic() - started,
    }


@pytest.fixture(scope="module")
def runs(settings, tmp_path_factory):
    if not settings.in_process or settings.mock_variant:
        pytest.skip("the meta-tests build broken variants of the mock in-process; run them without --base-url, "
                    "--serve-mock or --mock-variant")
    workdir = tmp_path_factory.mktemp("meta")
    names = [UNMODIFIED, *VARIANTS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(names, pool.map(lambda name: run_suite(name, settings, workdir), names)))
    return results


def test_unmodified_mock_passes(runs):
    run = runs[UNMODIFIED]
    assert run["returncode"] == 0, f"the suite fails on the unmodified mock:\n{run['command']}\n{run['output']}"


@pytest.mark.parametrize("name", list(VARIANTS))
def test_broken_variant_is_caught(name, runs):
    variant, run = VARIANTS[name], runs[name]
    assert run["returncode"] == 1, (
        f"variant {name!r} ({variant.breaks}) should make the suite fail with exit code 1, got "
        f"{run['returncode']}:\n{run['command']}\n{run['output']}"
    )
    assert run["rules"] & set(variant.caught_by), (
        f"variant {name!r} ({variant.breaks}) was not reported by any of {variant.caught_by}; "
        f"the report names {sorted(run['rules'])}:\n{run['output']}"
    )
