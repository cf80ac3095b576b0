"""Calibration (calibration.py) and the HAR/NDJSON files (har.py), from runs against stand-ins (stand_ins.py).

The calibration stand-in differs from the spec in four ways (an extra field, a never-sent optional field, a
value outside an enum, an error body with a field the spec lacks); the honest one not at all. Both are run the
same way (property tests, small counts) as --base-url, and the stand-in's patch must hold exactly those four
differences beyond the honest run's, which itself must add nothing to the spec.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from contract_tests import stand_ins
from contract_tests.calibration import CALIBRATION, Calibration, apply_patch
from contract_tests.test_assumed import run_against

pytestmark = [pytest.mark.meta, pytest.mark.slow]

SELECTION = "test_positive_data or test_negative_data"
EXPECTED = {
    ("add", "/components/schemas/DashboardSummary/properties/" + stand_ins.EXTRA_FIELD),
    ("add", "/components/schemas/Error/properties/" + stand_ins.ERROR_EXTRA),
    ("add", "/components/schemas/ToolName/enum/-", stand_ins.UNKNOWN_TOOL),
    ("remove", "/components/schemas/DashboardSummary/properties/" + stand_ins.DROPPED_OPTIONAL),
}


def _ops(path) -> set:
    return {(op["op"], op["path"], *([op["value"]] if isinstance(op.get("value"), str) else [])) for op in json.loads(path.read_text())}


@pytest.fixture(scope="module")
def runs(settings, tmp_path_factory):
    if not settings.in_process:
        pytest.skip("runs the suite against local stand-ins; run it without --base-url/--serve-mock")
    workdir = tmp_path_factory.mktemp("calibration")
    with ThreadPoolExecutor(max_workers=2) as pool:
        found = dict(zip(("calibration", "honest"), pool.map(
            lambda name: run_against(name, workdir, select=SELECTION), ("calibration", "honest"))))
    for run in found.values():
        assert run["rc"] == 0, run["output"]  # none of the differences breaks the spec
    return found


def test_the_patch_names_exactly_the_differences(runs):
    honest = _ops(runs["honest"]["dir"] / "calibration.patch.json")
    observed = _ops(runs["calibration"]["dir"] / "calibration.patch.json")
    assert not [op for op in honest if op[0] == "add"], f"the mock sends what its spec lacks: {sorted(honest)}"
    assert observed - honest == EXPECTED


def test_the_section_names_the_differences_where_they_belong(runs):
    text = (runs["calibration"]["dir"] / "calibration.md").read_text(encoding="utf-8")
    sections = dict(part.split("\n", 1) for part in text.split("\n## ")[1:])
    assert f"`{stand_ins.EXTRA_FIELD}`" in sections["Fields seen that the spec lacks"]
    assert f"`{stand_ins.ERROR_EXTRA}`" in sections["Fields seen that the spec lacks"]
    assert f"`{stand_ins.DROPPED_OPTIONAL}`" in sections["Spec fields never seen"]
    assert f"`{stand_ins.UNKNOWN_TOOL}`" in sections["Values outside enums"]
    assert stand_ins.ERROR_EXTRA in sections["Error bodies"] and "Bearer" in sections["WWW-Authenticate challenges"]
    honest = (runs["honest"]["dir"] / "calibration.md").read_text(encoding="utf-8")
    for name in (stand_ins.EXTRA_FIELD, stand_ins.ERROR_EXTRA, stand_ins.UNKNOWN_TOOL):
        assert name not in honest


def test_the_patched_spec_describes_what_was_seen(runs):
    patched = yaml.safe_load((runs["calibration"]["dir"] / "calibration.openapi.yaml").read_text(encoding="utf-8"))
    schemas = patched["components"]["schemas"]
    assert stand_ins.EXTRA_FIELD in schemas["DashboardSummary"]["properties"]
    assert stand_ins.DROPPED_OPTIONAL not in schemas["DashboardSummary"]["properties"]
    assert stand_ins.UNKNOWN_TOOL in schemas["ToolName"]["enum"]
    assert stand_ins.ERROR_EXTRA in schemas["Error"]["properties"]


def test_har_and_ndjson_are_written_and_valid(runs):
    directory = runs["calibration"]["dir"]
    text = (directory / "contract.har").read_text(encoding="utf-8")
    log = json.loads(text)["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] and log["entries"]
    for entry in log["entries"]:
        assert {"startedDateTime", "time", "request", "response", "cache", "timings"} <= set(entry)
        assert {"method", "url", "httpVersion", "headers", "queryString", "cookies"} <= set(entry["request"])
        assert {"status", "content", "headers", "redirectURL"} <= set(entry["response"])
        assert isinstance(entry["response"]["status"], int) and "mimeType" in entry["response"]["content"]
    assert "mock-admin-token" not in text  # credentials masked
    events = [json.loads(line) for line in (directory / "contract.ndjson").read_text(encoding="utf-8").splitlines()]
    assert len(events) == len(log["entries"]) and all({"test", "status", "passed", "failed"} <= set(e) for e in events)


def test_no_calibration_in_process(settings):
    """The in-process mock is the spec's own: nothing to calibrate."""
    assert settings.in_process and not CALIBRATION.enabled


def test_apply_patch_adds_and_removes():
    document = {"a": {"enum": ["x"], "properties": {"b": {}}}}
    result = apply_patch(document, [{"op": "add", "path": "/a/enum/-", "value": "y"},
                                    {"op": "remove", "path": "/a/properties/b"}])
    assert result == {"a": {"enum": ["x", "y"], "properties": {}}} and document["a"]["enum"] == ["x"]
    assert Calibration().patch() == []
