"""The contract itself: openapi.yaml is valid, complete, and strict enough that a drifting server fails it.

These tests read only the spec (no mock code), so a broken mock cannot make them pass or fail.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
PREFIX = "/api/v2/insights/kpis/audit-logs"
SPEC_URI = "urn:insights-mock:openapi"

# The operations of the source document, in its order, with the response codes it lists. Operations 1 and 2
# also declare 400: the spec gives them an optional `limit`, and an invalid value needs an error to go to
# (otherwise bad input would be answered 200 silently).
EXPECTED_OPERATIONS = {
    # the source lists no 400 for the two dashboard lists
    "getRecentlyViewedDashboards": ("get", "/dashboard/recently-viewed", {"200", "401", "403", "500"}),
    "getMostViewedDashboards": ("get", "/dashboard/most-viewed", {"200", "401", "403", "500"}),
    "getDashboardStats": ("get", "/dashboard/{dashboardId}/stats", {"200", "400", "401", "403", "500"}),
    "recordDashboardView": ("post", "/dashboard/{dashboardId}/view", {"200", "400", "401", "403", "500"}),
    "getDashboardAuditLogs": ("get", "/dashboard/{dashboardId}/logs", {"200", "400", "401", "403", "500"}),
    "getMappingAuditLogs": ("get", "/mapping/{mappingId}/logs", {"200", "400", "401", "403", "500"}),
    "getAuditLog": ("get", "/{auditLogId}", {"200", "400", "401", "403", "404", "500"}),
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
DASHBOARD_ROLES = {"Opsera Administrator", "Administrator", "Power User", "User"}
AUDIT_ROLES = {"Opsera Administrator", "Administrator", "Power User", "Auditor", "Security Manager"}


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def registry(spec) -> Registry:
    return Registry().with_resource(SPEC_URI, Resource(contents=spec, specification=DRAFT202012))


def validator_for(registry: Registry, pointer_or_schema) -> jsonschema.Draft202012Validator:
    """A validator for a component (by JSON pointer) or an inline schema, resolving $refs into the spec."""
    if isinstance(pointer_or_schema, str):
        schema = {"$ref": f"{SPEC_URI}#{pointer_or_schema}"}
    else:
        schema = _rebase(pointer_or_schema)
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _rebase(node):
    """Rewrite local refs ('#/components/...') of an inline schema so they resolve against the spec resource."""
    if isinstance(node, dict):
        return {
            k: (f"{SPEC_URI}{v}" if k == "$ref" and isinstance(v, str) and v.startswith("#") else _rebase(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rebase(v) for v in node]
    return node


def operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield path, method, op


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local refs are expected, got {ref}"
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def all_refs(node, where="#"):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield where, value
            else:
                yield from all_refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from all_refs(value, f"{where}/{i}")


# --- validity and completeness ------------------------------------------------------------------------------


def test_spec_is_valid_openapi_3_1(spec):
    assert spec["openapi"] == "3.1.0"
    validate_spec(spec)


def test_every_ref_resolves(spec):
    refs = list(all_refs(spec))
    assert refs, "the spec is expected to share components through $ref"
    for where, ref in refs:
        try:
            resolve(spec, {"$ref": ref})
        except (KeyError, AssertionError) as exc:
            pytest.fail(f"{where}: $ref {ref} does not resolve ({exc})")


def test_exactly_the_seven_operations(spec):
    found = {op["operationId"]: (method, path, set(op["responses"])) for path, method, op in operations(spec)}
    expected = {
        op_id: (method, PREFIX + path, codes) for op_id, (method, path, codes) in EXPECTED_OPERATIONS.items()
    }
    assert found == expected


def test_every_operation_is_documented(spec):
    for path, method, op in operations(spec):
        where = f"{method.upper()} {path}"
        assert op.get("operationId"), where
        assert op.get("tags"), where
        assert op.get("summary"), where
        assert len(op.get("description", "")) > 40, where
        for code, response in op["responses"].items():
            assert resolve(spec, response).get("description"), f"{where} {code}"


def test_success_descriptions_and_messages_follow_the_source_document(spec):
    messages = {
        "getRecentlyViewedDashboards": "Successfully retrieved recently viewed dashboards",
        "getMostViewedDashboards": "Successfully retrieved most viewed dashboards",
        "getDashboardStats": "Successfully retrieved dashboard audit logs stats",
        "recordDashboardView": "Successfully recorded dashboard view",
        "getDashboardAuditLogs": "Successfully retrieved dashboard audit logs",
        "getMappingAuditLogs": "Successfully retrieved mapping audit logs",
        "getAuditLog": "Successfully retrieved audit log",
    }
    for _, _, op in operations(spec):
        example = op["responses"]["200"]["content"]["application/json"]["example"]
        assert example["message"] == messages[op["operationId"]]
    common = {
        "401": "Authentication required - No valid API token provided",
        "403": "Insufficient permissions - Valid token but lacks required permissions",
        "500": "Internal server error - Unexpected server-side issue",
    }
    for _, _, op in operations(spec):
        for code, text in common.items():
            assert resolve(spec, op["responses"][code])["description"] == text


def test_security_is_global_bearer_and_every_operation_states_scopes_and_roles(spec):
    assert spec["security"] == [{"bearerAuth": []}]
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for _, _, op in operations(spec):
        op_id = op["operationId"]
        roles = set(op["x-required-roles"])
        scopes = set(op["x-required-scopes"])
        if op_id in {"getRecentlyViewedDashboards", "getMostViewedDashboards", "getDashboardStats"}:
            assert (roles, scopes) == (DASHBOARD_ROLES, {"api", "api-readonly"}), op_id
        elif op_id == "recordDashboardView":
            assert (roles, scopes) == (DASHBOARD_ROLES, {"api"}), op_id
        else:
            assert (roles, scopes) == (AUDIT_ROLES, {"api", "api-readonly"}), op_id
        for role in roles:
            assert role in " ".join(op["description"].split()), f"{op_id}: the prose should name role {role}"


def test_401_and_403_declare_www_authenticate(spec):
    for _, _, op in operations(spec):
        for code in ("401", "403"):
            headers = resolve(spec, op["responses"][code])["headers"]
            header = resolve(spec, headers["WWW-Authenticate"])
            assert header["required"] is True


def test_every_error_response_uses_the_one_error_schema(spec):
    for _, _, op in operations(spec):
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                media = resolve(spec, response)["content"]
                assert list(media) == ["application/json"], (op["operationId"], code)
                assert media["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_path_ids_have_format_and_pattern(spec):
    params = spec["components"]["parameters"]
    for name in ("DashboardId", "MappingId"):
        schema = resolve(spec, params[name]["schema"])
        assert schema["format"] == "uuid" and schema["pattern"].startswith("^"), name
    assert resolve(spec, params["AuditLogId"]["schema"])["pattern"] == "^[0-9a-fA-F]{24}$"


def test_list_parameters_are_optional_and_bounded(spec):
    for path, method, op in operations(spec):
        for param in op.get("parameters", []):
            param = resolve(spec, param)
            if param["in"] == "query":
                assert param.get("required", False) is False, (path, param["name"])
    page_size = resolve(spec, spec["components"]["parameters"]["PageSize"]["schema"])
    assert page_size["maximum"] == 1000


def test_lists_document_their_sort_order(spec):
    by_id = {op["operationId"]: op for _, _, op in operations(spec)}
    assert "newest first" in by_id["getRecentlyViewedDashboards"]["description"]
    assert "view count" in by_id["getMostViewedDashboards"]["description"]
    assert "ties are broken" in by_id["getMostViewedDashboards"]["description"]
    for op_id in ("getDashboardAuditLogs", "getMappingAuditLogs"):
        assert "createdAt" in by_id[op_id]["description"] and "descending" in by_id[op_id]["description"]


def test_links_point_at_real_operations_and_parameters(spec):
    by_id = {op["operationId"]: op for _, _, op in operations(spec)}
    linked = set()
    for _, _, op in operations(spec):
        for name, link in op["responses"]["200"].get("links", {}).items():
            target = by_id[link["operationId"]]
            names = {resolve(spec, p)["name"] for p in target.get("parameters", [])}
            assert set(link["parameters"]) <= names, (op["operationId"], name)
            linked.add((op["operationId"], link["operationId"]))
    assert {
        ("recordDashboardView", "getDashboardStats"),
        ("recordDashboardView", "getDashboardAuditLogs"),
        ("getMostViewedDashboards", "getDashboardStats"),
        ("getRecentlyViewedDashboards", "getDashboardStats"),
        ("getDashboardAuditLogs", "getAuditLog"),
        ("getMappingAuditLogs", "getAuditLog"),
    } <= linked


# --- examples -----------------------------------------------------------------------------------------------


def every_example(spec):
    """(where, schema, example) for every response, parameter and schema example in the spec."""
    for path, method, op in operations(spec):
        for code, response in op["responses"].items():
            for media_type, media in resolve(spec, response).get("content", {}).items():
                where = f"{op['operationId']} {code} {media_type}"
                yield from _examples_of(where, media["schema"], media)
        for param in op.get("parameters", []):
            param = resolve(spec, param)
            yield from _examples_of(f"{op['operationId']} parameter {param['name']}", param["schema"], param)
    for name, schema in spec["components"]["schemas"].items():
        for i, example in enumerate(schema.get("examples", [])):
            yield f"schema {name} examples[{i}]", schema, example


def _examples_of(where, schema, node):
    """`example`, or each of the named `examples`; `...` when there is none."""
    named = node.get("examples") or {}
    if "example" in node or not named:
        yield where, schema, node.get("example", ...)
    for name, example in named.items():
        yield f"{where} examples.{name}", schema, example.get("value", ...)


def test_every_response_and_parameter_has_an_example(spec):
    missing = [where for where, _, example in every_example(spec) if example is ...]
    assert missing == []


def test_every_example_validates_against_its_schema(spec, registry):
    checked = 0
    for where, schema, example in every_example(spec):
        errors = [e.message for e in validator_for(registry, schema).iter_errors(example)]
        assert errors == [], f"{where}: {errors}"
        checked += 1
    assert checked >= 50


# --- a drifting server cannot pass --------------------------------------------------------------------------


def ok_body(spec, op_id):
    for _, _, op in operations(spec):
        if op["operationId"] == op_id:
            media = op["responses"]["200"]["content"]["application/json"]
            return media["schema"], copy.deepcopy(media["example"])
    raise KeyError(op_id)


def put(value, *keys):
    """A mutation that sets body[keys...] to value."""
    def mutate(body):
        node = body
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return mutate


def drift_cases():
    """(name, operationId, mutation) — each mutation turns a valid body into one a drifted server might send."""

    def drop(*keys):
        def mutate(body):
            node = body
            for key in keys[:-1]:
                node = node[key]
            del node[keys[-1]]
        return mutate

    return [
        ("envelope without message", "getRecentlyViewedDashboards", drop("message")),
        ("envelope without data", "getDashboardStats", drop("data")),
        ("data not in an envelope", "getAuditLog", lambda b: b.pop("message") and b.update(b.pop("data"))),
        ("dashboard without viewCount", "getMostViewedDashboards", drop("data", 0, "viewCount")),
        ("viewCount as a string", "getMostViewedDashboards", put("412", "data", 0, "viewCount")),
        ("negative viewCount", "getRecentlyViewedDashboards", put(-1, "data", 0, "viewCount")),
        ("malformed dashboard id", "getRecentlyViewedDashboards", put("3f2b8c1e6a474d0b", "data", 0, "dashboardId")),
        ("view time that is no date-time", "getRecentlyViewedDashboards", put("yesterday", "data", 0, "lastViewedAt")),
        ("audit timestamp without milliseconds", "getAuditLog", put("2026-11-20T09:15:02Z", "data", "createdAt")),
        ("audit timestamp with an offset", "getAuditLog", put("2026-11-20T10:15:02.123+01:00", "data", "updatedAt")),
        ("stats without uniqueViewers", "getDashboardStats", drop("data", "uniqueViewers")),
        ("stats with a short daily series", "getDashboardStats", lambda b: b["data"]["dailyViews"].pop()),
        ("stats with a bad date in the series", "getDashboardStats", put("25/11/2026", "data", "dailyViews", 0, "date")),
        ("last view neither timestamp nor null", "getDashboardStats", put("", "data", "lastViewedAt")),
        ("view event without viewCount", "recordDashboardView", drop("data", "viewCount")),
        ("view event with viewCount 0", "recordDashboardView", put(0, "data", "viewCount")),
        ("view event with a non-ObjectId user", "recordDashboardView", put("user-1", "data", "userId")),
        ("audit entry without user_email", "getAuditLog", drop("data", "user_email")),
        ("audit entry with a malformed _id", "getAuditLog", put("507f1f77bcf86cd79943901", "data", "_id")),
        ("audit entry with an empty action", "getAuditLog", put("", "data", "action")),
        ("audit entry with a numeric type", "getAuditLog", put(3, "data", "type")),
        ("audit entry with __v as a string", "getAuditLog", put("0", "data", "__v")),
        ("log page without pagination", "getDashboardAuditLogs", drop("pagination")),
        ("log page with page_size over 1000", "getDashboardAuditLogs", put(5000, "pagination", "page_size")),
        ("log page with has_next as a string", "getMappingAuditLogs", put("false", "pagination", "has_next")),
        ("mapping ref without a tool", "getMappingAuditLogs", drop("data", 0, "tool_mapping", "tool")),
    ]


def open_cases():
    """What a correct vendor body may well hold, which the spec must accept (it says what is known)."""
    return [
        ("an extra envelope field", "getMostViewedDashboards", put(True, "success")),
        ("an extra entity field", "getAuditLog", put("x", "data", "source")),
        ("an extra pagination field", "getDashboardAuditLogs", put(1, "pagination", "total")),
        ("a view time without milliseconds", "getRecentlyViewedDashboards", put("2026-11-24T16:42:07Z", "data", 0, "lastViewedAt")),
        ("a view time with an offset", "getRecentlyViewedDashboards", put("2026-11-24T16:42:07.318+01:00", "data", 0, "lastViewedAt")),
        ("an action the spec does not know", "getAuditLog", put("duplicate", "data", "action")),
        ("a type the spec does not know", "getAuditLog", put("insights_dashboard", "data", "type")),
        ("a system user without an e-mail address", "getAuditLog", put("system", "data", "user_email")),
        ("another account form", "getAuditLog", put("Acme_Prod", "data", "account")),
        ("a tool the spec does not know", "getMappingAuditLogs", put("gitlab-ci", "data", 0, "tool_mapping", "tool")),
    ]


@pytest.mark.parametrize("name, op_id, mutate", open_cases(), ids=[c[0] for c in open_cases()])
def test_plausible_vendor_bodies_pass(spec, registry, name, op_id, mutate):
    schema, body = ok_body(spec, op_id)
    mutate(body)
    errors = [e.message for e in validator_for(registry, schema).iter_errors(body)]
    assert errors == [], f"{name}: {errors}"


@pytest.mark.parametrize("name, op_id, mutate", drift_cases(), ids=[c[0] for c in drift_cases()])
def test_drifted_success_bodies_fail_validation(spec, registry, name, op_id, mutate):
    schema, body = ok_body(spec, op_id)
    validator = validator_for(registry, schema)
    assert validator.is_valid(body), "the unmodified example must be valid, or this test proves nothing"
    mutate(body)
    assert not validator.is_valid(body), f"{name}: a drifted body passed the schema"


@pytest.mark.parametrize(
    "body",
    [
        {"status": 401, "message": "no token"},  # no error code
        {"status": "401", "error": "invalid_token", "message": "x"},  # status as a string
        {"error": "invalid_token", "message": "x"},  # no status
        {"status": 200, "error": "ok", "message": "x"},  # not an error status
        {"errors": [{"message": "x"}]},  # openapi-core's own shape
        {"status": 500, "error": "Internal Server Error", "message": "x"},  # code not snake_case
    ],
)
def test_error_bodies_off_the_one_shape_fail(registry, body):
    validator = validator_for(registry, "/components/schemas/Error")
    assert validator.is_valid({"status": 401, "error": "invalid_token", "message": "x"})
    assert not validator.is_valid(body)


@pytest.mark.parametrize(
    "param, value, valid",
    [
        ("DashboardId", "123e4567-e89b-12d3-a456-426614174000", True),
        ("DashboardId", "123E4567-E89B-12D3-A456-426614174000", True),
        ("DashboardId", "123e4567e89b12d3a456426614174000", False),  # no hyphens: openapi-core and uuid.UUID disagree
        ("DashboardId", "{123e4567-e89b-12d3-a456-426614174000}", False),
        ("DashboardId", "not-a-uuid", False),
        ("AuditLogId", "507f1f77bcf86cd799439011", True),
        ("AuditLogId", "507F1F77BCF86CD799439011", True),
        ("AuditLogId", "507f1f77bcf86cd79943901", False),
        ("AuditLogId", "507f1f77bcf86cd79943901g", False),
        ("AuditLogId", "123e4567-e89b-12d3-a456-426614174000", False),
    ],
)
def test_path_id_schemas_accept_and_reject(spec, registry, param, value, valid):
    schema = spec["components"]["parameters"][param]["schema"]
    assert validator_for(registry, schema).is_valid(value) is valid
