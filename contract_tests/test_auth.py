"""The auth matrix: every operation x every kind of credential -> the status, error body and challenge the spec
promises. Expectations come from each operation's x-required-scopes / x-required-roles and what is known of
each token (its scopes and role from the mock's tokens file, or from the definition of CONTRACT_*_TOKEN).
"""

from __future__ import annotations

import base64

import pytest
from schemathesis.specs.openapi.checks import ignored_auth

from contract_tests import checks, spec
from contract_tests.client import ApiClient, example_path_parameters
from contract_tests.conftest import require_principal, require_writes
from contract_tests.reporting import violated
from contract_tests.seeding import no_data
from contract_tests.settings import Principal

# Credentials without a valid token: the same for every target.
ANONYMOUS = {
    "no_header": None,
    "basic": "Basic " + base64.b64encode(b"contract-suite:not-a-password").decode(),
    "garbage": "Bearer contract-suite-garbage-0f9e8d7c6b5a",
}
# Credentials from real tokens, in the order of the matrix's columns.
TOKENS = ("expired", "no_scope", "no_role", "readonly", "full")
COLUMNS = (*ANONYMOUS, *TOKENS)
OPERATIONS = [op.operation_id for op in spec.operations()]
MALFORMED = {"dashboardId": "not-a-uuid", "mappingId": "12345", "auditLogId": "xyz"}


def expected_statuses(op: spec.Operation, principal: Principal | None) -> frozenset[int]:
    """What the spec promises for this operation and credential. Unknown facts about a live token widen the
    expectation to {200, 403} rather than guessing."""
    if principal is None or principal.expired:
        return frozenset({401})
    if principal.kind == "full":
        return frozenset({200})  # by definition: read-write, a role every operation admits
    scope_ok = None if principal.scopes is None else bool(principal.scopes & op.required_scopes)
    if principal.role is not None:
        role_ok = principal.role in op.required_roles
    elif op.required_roles and op.required_roles <= principal.roles_not_held:
        role_ok = False
    else:
        role_ok = None
    if scope_ok is False or role_ok is False:
        return frozenset({403})
    if scope_ok and role_ok:
        return frozenset({200})
    return frozenset({200, 403})


@pytest.fixture(scope="module")
def anonymous_api(target):
    return ApiClient(target, None)


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_auth_matrix(operation_id, column, settings, anonymous_api, request):
    op = spec.operation(operation_id)
    if op.writes:
        require_writes(settings, ("auth_matrix",))
    if column in ANONYMOUS:
        principal, authorization = None, ANONYMOUS[column]
    else:
        principal = require_principal(settings, column)
        authorization = f"Bearer {principal.token}"
    expected = expected_statuses(op, principal)
    if 200 in expected:
        # A success needs ids of data that exists; they are discovered with the read-write token.
        path = _real_path_parameters(op, request.getfixturevalue("discovered"), settings)
    else:
        path = {name: value for name, value in example_path_parameters().items() if name in op.path_params}
    case, response = anonymous_api.send(operation_id, path=path, authorization=authorization)
    violated(
        "auth_matrix",
        response.status_code in expected,
        f"{op.operation_id} with credential {column!r} answered {response.status_code}; the spec "
        f"(x-required-scopes {sorted(op.required_scopes)}, x-required-roles {sorted(op.required_roles)}) "
        f"gives {sorted(expected)}",
        response,
    )
    if response.status_code == 403 and principal is not None and principal.scopes is not None \
            and principal.scopes & op.required_scopes:
        # The token holds a scope that would do: the refusal is the role's, and must not say insufficient_scope
        # (RFC 6750 would have the client fetch the same token again).
        payload = checks.body(response)
        code = payload.get("error") if isinstance(payload, dict) else None
        violated(
            "role_is_not_scope",
            code == "insufficient_role",
            f"{op.operation_id} refused {column!r}, whose token has scope "
            f"{sorted(principal.scopes & op.required_scopes)}, with error {code!r}; a role failure is insufficient_role",
            response,
        )
    # The matrix is the auth test here; schemathesis' own probe would misread hand-set credentials.
    case.validate_response(response, excluded_checks=[ignored_auth], transport_kwargs=anonymous_api.target.call_kwargs())


def _real_path_parameters(op: spec.Operation, found, settings) -> dict[str, str]:
    path = {}
    for name in op.path_params:
        if name == "dashboardId":
            value = found.busiest_dashboard or (found.dashboards[0]["dashboardId"] if found.dashboards else None)
        elif name == "mappingId":
            value = found.busiest_mapping or spec.example_of_parameter("mappingId")  # any well-formed id pages
        else:
            value = found.entry_ids[0] if found.entry_ids else None
        if value is None:
            pytest.skip(no_data(settings, "auth_matrix", f"no {name} with data was found to expect a 200 from {op.operation_id}"))
        path[name] = value
    return path


CREDENTIALS_BEFORE_VALIDATION = ("no_header", "garbage", "no_scope")


@pytest.mark.parametrize("column", CREDENTIALS_BEFORE_VALIDATION)
@pytest.mark.parametrize("operation_id", [op.operation_id for op in spec.operations() if op.path_params])
def test_auth_is_checked_before_validation(operation_id, column, settings, anonymous_api):
    """A caller without access learns nothing about inputs: a malformed id still gets 401/403, not 400."""
    op = spec.operation(operation_id)
    if op.writes:
        require_writes(settings, ("auth_before_validation",))
    if column in ANONYMOUS:
        principal, authorization = None, ANONYMOUS[column]
    else:
        principal = require_principal(settings, column)
        authorization = f"Bearer {principal.token}"
    expected = expected_statuses(op, principal) - {200}
    path = {name: MALFORMED[name] for name in op.path_params}
    case, response = anonymous_api.send(operation_id, path=path, authorization=authorization)
    violated(
        "auth_before_validation",
        response.status_code in expected,
        f"{op.operation_id} with a malformed id and credential {column!r} answered {response.status_code}; "
        f"authentication and authorisation come before validation, so the spec gives {sorted(expected)}",
        response,
    )
    violated(
        "auth_before_validation",
        checks.body(response) is not None,
        f"{op.operation_id} answered {response.status_code} without a JSON body",
        response,
    )
    case.validate_response(response, excluded_checks=[ignored_auth], transport_kwargs=anonymous_api.target.call_kwargs())
