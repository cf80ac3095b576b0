"""Contract or assumption (assumptions.py): a failure resting only on x-assumption is excused against a
deployment, unless --contract-strict; a failure of what the source states never is.

The unit tests judge crafted answers (marked self_test: no target). The meta-tests run the suite in a subprocess
against stand-ins (stand_ins.py) served on 127.0.0.1 and passed as --base-url: one differing from the spec only
in assumed details (tie-break order, a field whose being required is assumed), one breaking a stated order.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from schemathesis import GenerationMode, Response
from schemathesis.core.failures import CustomFailure

from contract_tests import assumptions, checks, loader, spec
from contract_tests.reporting import ContractViolation
from contract_tests.settings import REPO_ROOT, SuiteSettings

SCHEMA = loader.load(loader.active(), [GenerationMode.POSITIVE])
TIE_BREAK = assumptions.lookup("getMostViewedDashboards", "tie-break")
SUMMARY_FIELDS = assumptions.lookup("components.schemas.DashboardSummary", "being required")


def _item(ident: str, count: int, when: str) -> dict:
    return {"dashboardId": ident, "name": "D", "owner": {"userId": "64b7f0c2a1e3d4c5b6a79801", "name": "U", "email": "u@x"},
            "tags": [], "kpiCount": 1, "viewCount": count, "lastViewedAt": when}


def _exchange(operation_id: str, payload, status: int = 200):
    case = SCHEMA.find_operation_by_id(operation_id).Case()
    request = requests.Request(case.method, "http://localhost" + spec.operation(operation_id).path).prepare()
    return case, Response(status, {"content-type": ["application/json"]}, json.dumps(payload).encode(), request, 0.0, True)


A, B = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
T1, T2 = "2026-01-02T00:00:00.000Z", "2026-01-01T00:00:00.000Z"


@pytest.mark.self_test
def test_catalogue_numbers_the_marks_like_docs_assumptions_md():
    """A report's "#N" names row N of docs/ASSUMPTIONS.md (rendered from this catalogue, and kept current by
    tests/tooling/test_assumptions.py): the same place and reason under the same number."""
    doc = REPO_ROOT / "docs" / "ASSUMPTIONS.md"
    if not doc.exists():
        pytest.skip("installed without the repository's docs/")
    rows = re.findall(r"^\| (\d+) \| `([^`]+)` \| (.+) \|$", doc.read_text(encoding="utf-8"), re.MULTILINE)
    assert rows and [(int(n), where) for n, where, _ in rows] == [(a.number, a.where) for a in assumptions.catalogue()]


@pytest.mark.self_test
@pytest.mark.parametrize("rule", sorted(assumptions.RULES))
def test_every_mapped_rule_names_marks_the_spec_has(rule):
    found = assumptions.judge(rule, AssertionError("x"), None, None)
    if rule in ("most_viewed_order", "recently_viewed_order"):
        assert not found.assumed  # without the answer, nothing tells the assumed part: stated
    else:
        assert found.assumed, f"{rule}: its reference no longer matches an x-assumption of openapi.yaml"


@pytest.mark.self_test
def test_every_promise_marked_assumed_has_a_rule_judged_as_assumed():
    """README's promise table and RULES agree: a promise marked (assumed) names at least one rule that this module
    can excuse (RULES, or the schema walk behind response_schema_conformance); otherwise its failures on staging
    would count as drift."""
    readme = (Path(__file__).with_name("README.md")).read_text(encoding="utf-8")
    block = readme.split("<!-- promises:start -->", 1)[1].split("<!-- promises:end -->", 1)[0]
    unjudged = []
    for line in block.strip().splitlines()[2:]:
        promise, _, rules = [c.strip() for c in line.strip().strip("|").split("|")]
        if "(assumed)" in promise:
            named = set(re.findall(r"`([a-z][a-z0-9_]*)`", rules))
            if not named & (set(assumptions.RULES) | {"response_schema_conformance"}):
                unjudged.append(promise)
    assert unjudged == []


@pytest.mark.self_test
def test_a_tie_break_difference_rests_on_the_tie_break_only():
    case, response = _exchange(checks.MOST_VIEWED, {"data": [_item(B, 5, T1), _item(A, 5, T1)], "message": "m"})
    found = assumptions.judge("most_viewed_order", AssertionError("out of order"), case, response)
    assert found.assumptions == (TIE_BREAK,) and "tie-break" in found.part


@pytest.mark.self_test
def test_most_viewed_out_of_count_order_is_stated():
    case, response = _exchange(checks.MOST_VIEWED, {"data": [_item(A, 1, T1), _item(B, 5, T1)], "message": "m"})
    assert not assumptions.judge("most_viewed_order", AssertionError("out of order"), case, response).assumed


@pytest.mark.self_test
def test_recently_viewed_time_order_is_stated_its_tie_break_assumed():
    ties = _exchange(checks.RECENTLY_VIEWED, {"data": [_item(B, 1, T1), _item(A, 1, T1)], "message": "m"})
    late = _exchange(checks.RECENTLY_VIEWED, {"data": [_item(A, 1, T2), _item(B, 1, T1)], "message": "m"})
    assert assumptions.judge("recently_viewed_order", AssertionError(), *ties).assumed
    assert not assumptions.judge("recently_viewed_order", AssertionError(), *late).assumed


@pytest.mark.self_test
def test_a_check_opts_in_by_raising_assumed_failure():
    error = assumptions.AssumedFailure("tie", ("getMostViewedDashboards", "tie-break"))
    wrapped = CustomFailure(operation="op", title="Custom check failed: `x`", message="tie", exception=error)
    assert assumptions.judge("x", wrapped).assumptions == (TIE_BREAK,)
    assert not assumptions.judge("x", CustomFailure(operation="op", title="t", message="m", exception=AssertionError())).assumed


@pytest.mark.self_test
def test_schema_violations_are_judged_by_the_json_path_of_the_keyword():
    """A required field of DashboardSummary (its being required is assumed) vs `data` of the envelope (stated)."""
    item = _item(A, 5, T1)
    del item["kpiCount"]
    case, response = _exchange(checks.MOST_VIEWED, {"data": [item], "message": "m"})
    assumptions.LEDGER.clear()
    with pytest.raises(BaseException) as caught:
        case.validate_response(response)
    findings = assumptions.LEDGER.findings_for(caught.value)
    schema = [f for f in findings if f.rule == "response_schema_conformance"]
    assert schema and all(SUMMARY_FIELDS in f.assumptions for f in schema)

    case, response = _exchange(checks.MOST_VIEWED, {"message": "m"})
    assumptions.LEDGER.clear()
    with pytest.raises(BaseException) as caught:
        case.validate_response(response)
    findings = assumptions.LEDGER.findings_for(caught.value)
    assert any(f.rule == "response_schema_conformance" and not f.assumed for f in findings)


@pytest.mark.self_test
def test_a_component_is_judged_by_its_own_marks():
    assert assumptions.marks_on_path(["components", "schemas", "AuditLogEntry", "required"])
    # Timestamp is stated (FACTS.md), even where the assumed AuditLogEntry refers to it.
    assert not assumptions.marks_on_path(["components", "schemas", "AuditLogEntry", "properties", "createdAt", "pattern"])


@pytest.mark.self_test
def test_a_test_is_excused_only_when_every_failure_is_assumed():
    assumed = ContractViolation("limit_is_a_prefix", "m")
    stated = ContractViolation("pages_do_not_overlap", "m")
    ledger = assumptions.Ledger()
    assert all(f.assumed for f in ledger.findings_for(assumed))
    mixed = ledger.findings_for(ExceptionGroup("two", [assumed, stated]))
    assert not all(f.assumed for f in mixed)
    assert ledger.findings_for(ValueError("a bug in the test")) is None


@pytest.mark.self_test
def test_only_a_deployment_run_without_strict_excuses_assumptions():
    base = dict(serve_mock=False, mock_variant=None, mock_seed=42, app_factory="m:f")
    assert SuiteSettings(base_url="https://staging.example", **base).excuses_assumptions
    assert not SuiteSettings(base_url="https://staging.example", strict=True, **base).excuses_assumptions
    assert not SuiteSettings(base_url=None, **base).excuses_assumptions
    assert not SuiteSettings(base_url=None, **{**base, "serve_mock": True}).excuses_assumptions


# -- the suite against stand-ins ---------------------------------------------------------------------------------

RUN_TIMEOUT = 600


def run_against(stand_in: str, workdir, *extra: str, select: str = "most") -> dict:
    """The suite, in a subprocess, against a stand-in as --base-url; `select` keeps it to one operation's tests."""
    from contract_tests.stand_ins import Served

    served = Served(stand_in)
    report_dir = workdir / stand_in / ("strict" if extra else "default")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACT_")}
    env.update({"CONTRACT_TOKEN": "mock-admin-token", "CONTRACT_MAPPING_IDS": ",".join(served.mapping_ids())})
    command = [sys.executable, "-m", "pytest", "contract_tests", "-p", "no:cacheprovider", "-m", "not meta", "-q", "-rx",
               "--base-url", served.base_url, "--allow-partial", "--max-examples", "5", "--stateful-scenarios", "3",
               "--report-dir", str(report_dir), *(["-k", select] if select else []), *extra]
    try:
        result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    finally:
        served.stop()
    markdown = (report_dir / "contract.md").read_text(encoding="utf-8") if (report_dir / "contract.md").exists() else ""
    broken, _, assumed = markdown.partition("## Assumed by the spec")
    return {"rc": result.returncode, "output": result.stdout[-8000:] + result.stderr[-3000:], "dir": report_dir,
            "broken": set(re.findall(r"^\| `([^`]+)` \| \d+ \| \d+ \|", broken, re.M)),
            "assumed": set(re.findall(r"^\| `([^`]+)` \|", assumed, re.M)), "assumed_text": assumed,
            "markdown": markdown}


@pytest.fixture(scope="module")
def stand_in_runs(settings, tmp_path_factory):
    if not settings.in_process:
        pytest.skip("runs the suite against local stand-ins; run it without --base-url/--serve-mock")
    workdir = tmp_path_factory.mktemp("assumed")
    return {"assumed": run_against("assumed-only", workdir), "strict": run_against("assumed-only", workdir, "--contract-strict"),
            "stated": run_against("stated-break", workdir)}


@pytest.mark.meta
@pytest.mark.slow
def test_a_difference_in_assumed_details_passes_with_its_own_section(stand_in_runs):
    run = stand_in_runs["assumed"]
    assert run["rc"] == 0, run["output"]
    assert run["broken"] == set(), run["output"]
    assert {"most_viewed_order", "response_schema_conformance"} <= run["assumed"], run["output"]
    assert f"#{TIE_BREAK.number} getMostViewedDashboards" in run["assumed_text"]
    assert f"#{SUMMARY_FIELDS.number} components.schemas.DashboardSummary" in run["assumed_text"]
    assert "xfailed" in run["output"] and assumptions.TITLE in run["output"]
    # JUnit keeps them visible: skipped as pytest.xfail, with the reason.
    junit = ET.parse(run["dir"] / "junit.xml")
    xfails = [s for s in junit.iter("skipped") if s.get("type") == "pytest.xfail"]
    assert xfails and all(assumptions.TITLE in s.get("message", "") for s in xfails)
    assert assumptions.TITLE[1:] in (run["dir"] / "contract.html").read_text(encoding="utf-8")


@pytest.mark.meta
@pytest.mark.slow
def test_strict_fails_the_run_on_assumed_details(stand_in_runs):
    run = stand_in_runs["strict"]
    assert run["rc"] == 1, run["output"]
    assert {"most_viewed_order", "response_schema_conformance"} <= run["broken"]
    assert run["assumed"] == set()
    assert "Rests only on x-assumption(s)" in run["markdown"]  # the reader still learns why


@pytest.mark.meta
@pytest.mark.slow
def test_a_stated_fact_broken_fails_without_strict(stand_in_runs):
    run = stand_in_runs["stated"]
    assert run["rc"] == 1, run["output"]
    assert "most_viewed_order" in run["broken"] and "most_viewed_order" not in run["assumed"]
    assert "Rests only on x-assumption(s): " + assumptions.TITLE + " (--contract-strict fails it): most_viewed_order" \
        not in run["markdown"]
