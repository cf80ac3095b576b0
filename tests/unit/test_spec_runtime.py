"""spec.py: what the server derives from openapi.yaml at start-up. (tests/tooling/test_spec.py checks the document.)"""

from __future__ import annotations

import pytest
import yaml

from mock_helpers import SPEC, SPEC_PATH, operations
from mock_server.spec import SpecError, load_spec


@pytest.fixture(scope="module")
def spec():
    return load_spec(SPEC_PATH)


def test_operations_in_spec_order_with_methods_paths_and_rules(spec):
    assert [(op.operation_id, op.method, op.path) for op in spec.operations.values()] == operations()
    assert spec.operation("getDashboardStats").flask_rule == \
        "/api/v2/insights/kpis/audit-logs/dashboard/<dashboardId>/stats"


def test_required_access_comes_from_the_extensions(spec):
    for op_id, method, path in operations():
        raw = SPEC["paths"][path][method.lower()]
        op = spec.operation(op_id)
        assert op.required_scopes_ordered == tuple(raw["x-required-scopes"])
        assert op.required_roles == frozenset(raw["x-required-roles"])


def test_messages_come_from_the_examples(spec):
    assert spec.operation("getRecentlyViewedDashboards").success_message == \
        "Successfully retrieved recently viewed dashboards"
    assert spec.operation("recordDashboardView").success_message == "Successfully recorded dashboard view"
    assert spec.operation("getDashboardStats").path_error_messages == {
        "dashboardId": "Bad Request - Invalid dashboard ID format"}
    assert spec.operation("getMappingAuditLogs").path_error_messages == {
        "mappingId": "Bad Request - Invalid mapping ID format"}
    assert spec.operation("getAuditLog").path_error_messages == {
        "auditLogId": "Bad Request - Invalid audit log ID format"}
    assert spec.query_error_message == "Bad Request - Invalid query parameter"


def test_parameters_and_responses_are_resolved(spec):
    op = spec.operation("getDashboardAuditLogs")
    params = {p.name: p for p in op.parameters}
    assert list(params) == ["dashboardId", "page", "page_size", "start_date", "end_date", "user_id", "type", "action"]
    assert params["dashboardId"].location == "path" and params["dashboardId"].required
    assert params["page_size"].default == 50 and params["page_size"].schema["maximum"] == 1000
    assert params["action"].schema["enum"] == ["create", "update", "delete", "view", "share", "export"]
    assert op.documented_codes == (200, 400, 401, 403, 500)
    assert spec.operation("getAuditLog").documented_codes == (200, 400, 401, 403, 404, 500)
    assert "WWW-Authenticate" in op.responses[401].headers
    assert "$ref" not in repr(op.responses[200].schema)
    assert spec.raw == SPEC_PATH.read_bytes()


def _write(tmp_path, document) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return str(path)


def test_sibling_keywords_beside_a_ref_still_constrain(tmp_path):
    document = yaml.safe_load(SPEC_PATH.read_text())
    document["components"]["parameters"]["Limit"]["schema"] = {"$ref": "#/components/schemas/Uuid", "maxLength": 3}
    op = load_spec(_write(tmp_path, document)).operation("getMostViewedDashboards")
    schema = op.parameters[0].schema
    assert schema["allOf"][0]["format"] == "uuid" and schema["maxLength"] == 3


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d.pop("paths"), "no paths"),
    (lambda d: d["paths"]["/api/v2/insights/kpis/audit-logs/{auditLogId}"]["get"].pop("operationId"), "no operationId"),
    (lambda d: d["paths"]["/api/v2/insights/kpis/audit-logs/{auditLogId}"]["get"].pop("x-required-roles"),
     "x-required-scopes and x-required-roles"),
    (lambda d: d["components"]["schemas"].pop("Error"), "does not resolve|no components.schemas.Error"),
    (lambda d: d["components"]["schemas"]["Uuid"].update({"$ref": "#/components/schemas/Uuid"}), "recursive"),
    (lambda d: d["components"]["schemas"]["Uuid"].update({"$ref": "other.yaml#/x"}), "only local"),
])
def test_a_spec_the_server_cannot_use_is_refused(tmp_path, mutate, words):
    document = yaml.safe_load(SPEC_PATH.read_text())
    mutate(document)
    with pytest.raises(SpecError, match=words):
        load_spec(_write(tmp_path, document))


def test_unreadable_spec_files(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(_write(tmp_path, "a: [b"))
