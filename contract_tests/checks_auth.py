"""Checks of error answers: the one `Error` body on every 4xx/5xx, and the RFC 6750 challenges of 401/403."""

from __future__ import annotations

import schemathesis

from contract_tests import spec
from contract_tests.checks_common import body, fail, header, sent_authorization, www_authenticate


@schemathesis.check
def error_body_conformance(ctx, response, case):
    """Every 4xx/5xx carries the one `Error` body as application/json, its `status` equal to the HTTP status,
    documented or not (routing 404/405 included)."""
    if response.status_code < 400:
        return None
    content_type = (header(response, "Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        fail(f"{response.status_code} answered with Content-Type {content_type or '<none>'!r}, not application/json")
    payload = body(response)
    errors = spec.component_errors("Error", payload)
    if errors:
        fail(f"{response.status_code} body is not the spec's Error schema:\n  " + "\n  ".join(errors))
    if payload["status"] != response.status_code:
        fail(f"Error body says status {payload['status']} but the HTTP status is {response.status_code}")
    return None


@schemathesis.check
def auth_challenge_semantics(ctx, response, case):
    """401 and 403 follow RFC 6750 as the spec describes: 401 -> `WWW-Authenticate: Bearer`, with
    error="invalid_token" when a Bearer credential was sent and no error attribute when none was; 403 for a
    scope -> error="insufficient_scope" with a scope attribute naming the operation's scopes; 403 for a role -> body error insufficient_role and a
    challenge without error or scope."""
    status = response.status_code
    if status not in (401, 403):
        return None
    scheme, params = www_authenticate(response)
    if scheme is None:
        fail(f"{status} without a WWW-Authenticate header")
    if scheme.lower() != "bearer":
        fail(f"{status} challenges with scheme {scheme!r}, expected Bearer")
    payload = body(response)
    code = payload.get("error") if isinstance(payload, dict) else None
    if status == 401:
        credential = sent_authorization(response)
        if credential is None:
            if "error" in params:
                fail(
                    f"401 to a request without credentials carries error={params['error']!r}; "
                    "RFC 6750 3.1 (and the spec) say no error attribute then"
                )
        elif credential.split(" ", 1)[0].lower() == "bearer":
            if params.get("error") != "invalid_token":
                fail(f"401 to a Bearer credential must say error=\"invalid_token\", WWW-Authenticate has {params!r}")
            if code != "invalid_token":
                fail(f"401 for a bad Bearer token: body error is {code!r}, expected 'invalid_token'")
        elif params.get("error") not in (None, "invalid_token"):
            # Another scheme (Basic, ...) is "no usable credentials": no error attribute, or invalid_token.
            fail(f"401 to a non-Bearer credential carries error={params['error']!r}")
        return None
    if code == "insufficient_role":
        # A missing site role: no other token of the user would do, so the challenge claims no scope.
        if "error" in params or "scope" in params:
            fail(f"403 for a missing role must claim no error/scope in WWW-Authenticate (RFC 6750 would have the "
                  f"client fetch another token for nothing), it has {params!r}")
        return None
    if params.get("error") != "insufficient_scope":
        fail(f"403 must say error=\"insufficient_scope\" (or body error insufficient_role), WWW-Authenticate has {params!r}")
    if code != "insufficient_scope":
        fail(f"403 body error is {code!r}, expected 'insufficient_scope' or 'insufficient_role'")
    scopes = (params.get("scope") or "").split()
    if not scopes:
        fail("403 WWW-Authenticate has no scope attribute")
    op = spec.operation_for(case.method, case.operation.path)
    if op is not None and op.required_scopes and not set(scopes) <= op.required_scopes:
        fail(f"403 names scope {' '.join(scopes)!r}; {op.operation_id} requires one of {sorted(op.required_scopes)}")
    return None
