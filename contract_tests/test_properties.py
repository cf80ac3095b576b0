"""Property tests over the whole spec: every operation, positive and negative data, every check.

schemathesis generates requests from openapi.yaml (its examples, boundary values, then random data) and runs
all of its built-in checks (status codes, content type, response schema and headers, negative data
rejection, ignored auth, server errors, ...) plus the suite's own (contract_tests/checks.py) on each response.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection

from contract_tests import loader, spec
from contract_tests.conftest import require_principal, require_writes
from contract_tests.reporting import violated

SETTINGS = loader.active()
# fresh_state resets the server once per operation's test, not per example, on purpose: the examples of one
# operation may build on each other's state, and every operation's test starts from the seeded data.
once_per_operation = hypothesis_settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
positive = loader.load(SETTINGS, [GenerationMode.POSITIVE])
negative = loader.load(SETTINGS, [GenerationMode.NEGATIVE])


def _guard(case, settings) -> None:
    # Without the read-write token every answer would be a (documented) 401: nothing would be tested.
    require_principal(settings, "full")
    op = spec.operation_for(case.method, case.operation.path)
    if op is not None and op.writes:
        require_writes(settings)


@positive.parametrize()
@once_per_operation
def test_positive_data(case, target, settings, fresh_state):
    """Valid requests with the read-write token: documented answers only, and never 401/403."""
    _guard(case, settings)
    response = case.call_and_validate(**target.call_kwargs())
    # A misconfigured token would turn every answer into a documented 401 and let this test pass silently.
    violated(
        "valid_token_accepted",
        response.status_code not in (401, 403),
        f"the read-write token was refused ({response.status_code}) on {case.operation.label}",
        response,
    )


@negative.parametrize()
@once_per_operation
def test_negative_data(case, target, settings, fresh_state):
    """Invalid requests (malformed ids, out-of-range or mistyped parameters): a 4xx in the Error body, never 2xx/5xx.
    An operation that documents no 400 (recently and most viewed: the source lists none) cannot refuse: its
    `limit` is clamped, as the spec says, so schemathesis' negative_data_rejection does not apply to it; every
    other check does (a documented status, the Error body, no 5xx)."""
    _guard(case, settings)
    op = spec.operation_for(case.method, case.operation.path)
    excluded = [negative_data_rejection] if op is not None and "400" not in op.statuses else []
    case.call_and_validate(excluded_checks=excluded, **target.call_kwargs())
