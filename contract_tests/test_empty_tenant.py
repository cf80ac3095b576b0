"""The suite against an empty tenant (no views, no audit entries): the mock's `empty` scenario, served over HTTP.

With writes allowed (a local URL) the suite records views on the dashboards it is told of and checks every rule
that needs data instead of skipping; without writes (the same mock behind a non-local URL, through a proxy, as
in test_failsafe.py) each test that lacks data skips with a reason naming its rules and the remedy, and the
coverage block lists those rules as skipped. Mapping entries are the exception both ways: no operation writes
them, so their rules skip with the CONTRACT_MAPPING_IDS remedy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from contract_tests.settings import REPO_ROOT
from contract_tests.target import ServedMock
from contract_tests.test_failsafe import STAGING, forwarding_proxy

pytestmark = [pytest.mark.meta, pytest.mark.slow]

# fixtures/scenarios/empty.yaml: the tenant's two starter dashboards (no operation lists dashboards)
STARTER_DASHBOARDS = "0b7c5a3e-1f2d-4c8b-9a6e-5d4c3b2a1f00,0b7c5a3e-1f2d-4c8b-9a6e-5d4c3b2a1f01"
FILES = ["contract_tests/test_targeted.py", "contract_tests/test_targeted_views.py", "contract_tests/test_auth.py",
         "contract_tests/test_verdict.py"]
TOKENS = {"CONTRACT_TOKEN": "mock-admin-token", "CONTRACT_READONLY_TOKEN": "mock-user-readonly-token",
          "CONTRACT_NO_ROLE_TOKEN": "mock-user-token", "CONTRACT_NO_SCOPE_TOKEN": "mock-noscope-token",
          "CONTRACT_EXPIRED_TOKEN": "mock-expired-token"}
MAPPING_REMEDY = "CONTRACT_MAPPING_IDS"
TIMEOUT = 300


class EmptyTenant(ServedMock):
    @property
    def command(self) -> list[str]:
        return [*super().command, "--scenario", "empty"]


def _run(base_url: str, tmp_path, name: str, *extra: str, env: dict | None = None) -> dict:
    report = tmp_path / f"{name}.md"
    command = [sys.executable, "-m", "pytest", *FILES, "-p", "no:cacheprovider", "-m", "not meta", "-q", "-rs",
               "--base-url", base_url, "--max-rps", "0", "--contract-report", str(report), *extra]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACT_")}
    child_env.update({**TOKENS, **(env or {})})
    result = subprocess.run(command, cwd=REPO_ROOT, env=child_env, capture_output=True, text=True, timeout=TIMEOUT)
    output = result.stdout + result.stderr
    return {
        "returncode": result.returncode,
        "output": output[-8000:],
        # "SKIPPED [1] contract_tests/x.py:12: reason"
        "skips": re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", result.stdout, flags=re.MULTILINE),
        "report": report.read_text(encoding="utf-8") if report.exists() else "",
    }


@pytest.fixture(scope="module")
def runs(settings, tmp_path_factory):
    if not settings.in_process:
        pytest.skip("starts its own mock; run it in-process (without --base-url or --serve-mock)")
    tmp_path = tmp_path_factory.mktemp("empty-tenant")
    with_writes, without_writes = EmptyTenant(seed=settings.mock_seed).start(), EmptyTenant(seed=settings.mock_seed).start()
    proxy, _ = forwarding_proxy(without_writes.base_url)
    proxied = {"HTTP_PROXY": f"http://127.0.0.1:{proxy.server_address[1]}", "NO_PROXY": "", "no_proxy": ""}
    proxied["http_proxy"] = proxied["HTTP_PROXY"]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            writes = pool.submit(_run, with_writes.base_url, tmp_path, "writes", "--dashboard-ids", STARTER_DASHBOARDS)
            # No --allow-writes: the view POST is missing (6/7), so the partial run is allowed, and judged here.
            reads = pool.submit(_run, STAGING, tmp_path, "no-writes", "--allow-partial", env=proxied)
            return {"writes": writes.result(), "no_writes": reads.result()}
    finally:
        proxy.shutdown()
        proxy.server_close()
        with_writes.stop()
        without_writes.stop()


def _no_data(skips: list[str]) -> list[str]:
    return [s for s in skips if ": no data: " in s]


def test_with_writes_the_suite_makes_its_data(runs):
    run = runs["writes"]
    assert run["returncode"] == 0, run["output"]
    unmade = [s for s in _no_data(run["skips"]) if MAPPING_REMEDY not in s]
    assert not unmade, "data-related skips on an empty tenant with writes allowed:\n" + "\n".join(unmade)
    # The rules that need a busy log, two listed dashboards or an entry were checked, on the suite's own views.
    for rule in ("pages_do_not_overlap", "filters_complete", "limit_is_a_prefix", "limit_default_and_clamped",
                 "entry_by_id_matches_log", "view_counted", "ids_accepted_in_any_case"):
        checked = re.search(rf"^  {rule}: (\d+) checked", run["report"], flags=re.MULTILINE)
        assert checked and int(checked.group(1)) > 0, f"{rule} was not checked:\n{run['report'][-4000:]}"


def test_without_writes_the_skips_name_the_rules_and_the_remedy(runs):
    run = runs["no_writes"]
    assert run["returncode"] == 0, run["output"]
    no_data = _no_data(run["skips"])
    assert no_data, "an empty tenant without writes gave no data-related skip:\n" + run["output"]
    for reason in no_data:
        assert re.match(r"^[a-z0-9_]+(, [a-z0-9_]+)*: no data: ", reason), f"the skip names no rule: {reason}"
        assert "rerun with --allow-writes" in reason or MAPPING_REMEDY in reason, f"no remedy: {reason}"
    for rule in ("filters_complete", "limit_is_a_prefix", "entry_by_id_matches_log"):
        assert re.search(rf"^  {rule}: 0 checked, 0 failed, \d+ skipped \(no data: .*--allow-writes", run["report"],
                         flags=re.MULTILINE), f"the coverage block does not show {rule} skipped:\n{run['report'][-4000:]}"
