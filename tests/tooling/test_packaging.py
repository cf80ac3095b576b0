"""setup.py: `pipx install git+<repo>` or `pip install <wheel>` gets a working mock with the checkout's defaults.

The checkout is copied (builds write egg-info into the tree they build), an sdist is built from the copy with
the setuptools backend, a wheel from the unpacked sdist (so the sdist is proven to hold what a wheel build
needs), and the wheel is installed into a fresh venv. Everything is offline: no build isolation, no index,
--no-deps; the new venv sees this venv's site-packages for the dependencies through a .pth line, which adds the
directory but runs none of its .pth files, so this venv's editable install of the checkout stays out of it.
The installed `insights-mock` then runs from a directory outside the checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from mock_helpers import PREFIX, ROOT, bearer, free_port, stop

pytestmark = pytest.mark.slow

BUILD_TIMEOUT_S = 300
# What a build must not see of this checkout: virtualenvs, caches, earlier builds, local databases.
NOT_SOURCES = shutil.ignore_patterns(".venv", ".tox", ".git", "build", "dist", "*.egg-info", "__pycache__",
                                     "node_modules", ".hypothesis", ".pytest_cache", ".schemathesis", "reports",
                                     "*.db", "*.db-wal", "*.db-shm")
CONTRACT = sorted([Path("openapi.yaml"), Path("operator-openapi.yaml"), *(p.relative_to(ROOT) for p in (ROOT / "fixtures").rglob("*.yaml"))])
SCENARIOS = sorted(p.stem for p in (ROOT / "fixtures" / "scenarios").glob("*.yaml"))


def _env() -> dict[str, str]:
    """This environment without what could point the installed mock back at the checkout."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("MOCK_")}


def _run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> SimpleNamespace:
    work = tmp_path_factory.mktemp("packaging")
    checkout, dist, unpacked, venv = work / "checkout", work / "dist", work / "unpacked", work / "venv"
    shutil.copytree(ROOT, checkout, ignore=NOT_SOURCES)
    # The PEP 517 hook pip and `python -m build` call, run the way they run it: from the project directory.
    name = _run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                 "print(build_meta.build_sdist(sys.argv[1]))", str(dist)], cwd=checkout).strip().splitlines()[-1]
    sdist = dist / name
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    (project,) = unpacked.iterdir()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--wheel-dir", str(dist), str(project)], cwd=work)
    (wheel,) = dist.glob("*.whl")
    # `pip install git+<repo>` (and pipx) build the wheel from the checkout itself, not from an sdist.
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--wheel-dir", str(work / "direct"), str(checkout)], cwd=work)
    (direct,) = (work / "direct").glob("*.whl")
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
         cwd=work)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=work).strip())
    (site / "insights_mock_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return SimpleNamespace(work=work, sdist=sdist, wheel=wheel, direct=direct, venv=venv, python=python, site=site,
                           command=venv / "bin" / "insights-mock")


def test_the_sdist_holds_what_a_wheel_build_needs(installed):
    with tarfile.open(installed.sdist) as archive:
        members = {Path(*Path(name).parts[1:]) for name in archive.getnames()}
    sources = {p.relative_to(ROOT) for p in (ROOT / "mock_server").rglob("*.py")}
    assert sources <= members
    assert {Path("pyproject.toml"), Path("setup.py"), *CONTRACT} <= members


@pytest.mark.parametrize("built_from", ["wheel", "direct"])
def test_the_wheel_bundles_the_checkouts_files_unchanged(installed, built_from):
    with zipfile.ZipFile(getattr(installed, built_from)) as wheel:
        bundled = {Path(name).relative_to("mock_server/_bundled"): wheel.read(name)
                   for name in wheel.namelist() if name.startswith("mock_server/_bundled/")}
    assert sorted(bundled) == CONTRACT
    assert all(bundled[path] == (ROOT / path).read_bytes() for path in CONTRACT)


def test_a_wheel_from_the_sdist_and_one_from_the_checkout_hold_the_same_files(installed):
    with zipfile.ZipFile(installed.wheel) as from_sdist, zipfile.ZipFile(installed.direct) as from_checkout:
        assert sorted(from_sdist.namelist()) == sorted(from_checkout.namelist())


def test_the_installed_package_defaults_to_its_bundle(installed):
    script = ("import json, mock_server.config as c; d = c.load_config(environ={}); "
              "print(json.dumps([c.__file__, d['SPEC_FILE'], d['TOKENS_FILE'], d['SCENARIOS_DIR']]))")
    module, spec, tokens, scenarios = json.loads(_run([str(installed.python), "-c", script], cwd=installed.work))
    bundle = installed.site / "mock_server" / "_bundled"
    assert Path(module).is_relative_to(installed.site)  # the wheel's copy, not this checkout
    assert (Path(spec), Path(tokens), Path(scenarios)) == (
        bundle / "openapi.yaml", bundle / "fixtures" / "tokens.yaml", bundle / "fixtures" / "scenarios")
    assert Path(spec).is_file() and Path(tokens).is_file() and Path(scenarios).is_dir()


def test_the_installed_scenarios_command_lists_every_scenario(installed):
    output = _run([str(installed.command), "scenarios"], cwd=installed.work)
    assert sorted(re.findall(r"^\s+(\S+)\s+ok\b", output, re.MULTILINE)) == SCENARIOS


def test_the_installed_server_serves_the_contract_from_outside_the_checkout(installed):
    process, base = _serve_installed(installed)
    try:
        spec = requests.get(base + "/openapi.yaml", timeout=10)
        assert spec.status_code == 200 and spec.content == (ROOT / "openapi.yaml").read_bytes()
        operator = requests.get(base + "/__admin/openapi.yaml", timeout=10)  # from the bundle too
        assert operator.status_code == 200 and operator.content == (ROOT / "operator-openapi.yaml").read_bytes()
        viewed = requests.get(base + PREFIX + "/dashboard/recently-viewed", headers=bearer("mock-admin-token"),
                              timeout=10)
        assert viewed.status_code == 200, viewed.text
        refused = requests.get(base + PREFIX + "/dashboard/recently-viewed", headers=bearer("not-a-token"),
                               timeout=10)
        assert refused.status_code == 401
        scenario = requests.get(base + "/__admin/scenario", timeout=10).json()
        assert scenario["available"] == SCENARIOS
        page = requests.get(base + "/docs", timeout=10)
        assert page.status_code == 200 and "mock-admin-token" in page.text
        assets = re.findall(r'"(/docs/assets/[^"]+)"', page.text)
        assert assets and all(requests.get(base + a, timeout=10).status_code == 200 for a in assets)
    finally:
        stop(process)


# --- the contract suite, installed: `pip install "insights-mock[contract]"` and `insights-contract` ---------

LIVE_TOKENS = {"CONTRACT_TOKEN": "mock-admin-token", "CONTRACT_READONLY_TOKEN": "mock-user-readonly-token",
               "CONTRACT_NO_ROLE_TOKEN": "mock-user-token", "CONTRACT_NO_SCOPE_TOKEN": "mock-noscope-token",
               "CONTRACT_EXPIRED_TOKEN": "mock-expired-token"}
SMALL_RUN = ["--max-examples", "2", "--stateful-scenarios", "1", "-q"]


def _contract(installed, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in _env().items() if not k.startswith("CONTRACT_")}
    return subprocess.run([str(installed.venv / "bin" / "insights-contract"), *args], cwd=installed.work,
                          env={**environ, **(env or {})}, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)


def _serve_installed(installed):
    port = free_port()
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    process = subprocess.Popen([str(installed.command), "serve", "--port", str(port)], cwd=installed.work,
                               stdout=out, stderr=err, text=True, env=_env())
    process.outputs = (out, err)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f"insights-mock serve exited: {stop(process)}"
        assert time.monotonic() < deadline, "insights-mock serve did not come up in 60 s"
        try:
            if requests.get(base + "/__admin/health", timeout=2).status_code == 200:
                return process, base
        except requests.ConnectionError:
            time.sleep(0.1)


def test_the_wheel_holds_the_contract_suite_with_its_settings(installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        entry_points = wheel.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    suite = {f"contract_tests/{p.name}" for p in (ROOT / "contract_tests").glob("*.py")}
    assert suite | {"contract_tests/pytest.ini", "contract_tests/README.md"} <= names
    assert "insights-contract = contract_tests.cli:main" in entry_points


def test_the_installed_suite_runs_against_a_served_mock_from_outside_the_checkout(installed):
    process, base = _serve_installed(installed)
    try:
        result = _contract(installed, "--base-url", base, "--report-dir", "qa", *SMALL_RUN, env=LIVE_TOKENS)
    finally:
        stop(process)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    reports = installed.work / "qa"
    junit = (reports / "junit.xml").read_text(encoding="utf-8")
    report = (reports / "contract.md").read_text(encoding="utf-8")
    # The installed package's suite (not this checkout's) ran, and none of its own unit tests counted.
    where = _run([str(installed.python), "-c", "import contract_tests.cli as c; print(c.PACKAGE_DIR)"], cwd=installed.work)
    assert Path(where.strip()) == installed.site / "contract_tests"
    assert 'classname="test_properties' in junit and "test_checks" not in junit and "test_plumbing" not in junit
    assert report.startswith("# Contract report\n\n**operations exercised with a valid token: 7/7**"), report[:500]
    assert "operations exercised with a valid token: 7/7" in output
    assert (reports / "contract.html").read_text(encoding="utf-8").count("<tr>") == 8  # header + 7 operations


def test_the_installed_suite_fails_with_a_junit_case_on_an_unusable_target(installed):
    result = _contract(installed, "--base-url", f"http://127.0.0.1:{free_port()}", "--request-timeout", "1",
                       "--report-dir", "refused", "-q", env=LIVE_TOKENS)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    junit = (installed.work / "refused" / "junit.xml").read_text(encoding="utf-8")
    assert junit.count("<testcase ") == 1 and "connection refused" in junit, junit
