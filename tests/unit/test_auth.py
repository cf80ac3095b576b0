"""auth.py: tokens, 401 kinds, 403 scope vs role, the WWW-Authenticate challenges, constant-time lookup."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from mock_helpers import ADMIN, SPEC, TOKENS, UNKNOWN_OBJECT_ID, UNKNOWN_UUID, bearer, operations, url
from mock_server import auth
from mock_server.auth import TokenFileError, TokenRegistry


def _params_for(op_id: str, generated) -> dict[str, str]:
    entry = next(e for e in generated.audit_logs if e["type"] == "dashboard")
    return {"dashboardId": generated.dashboards[0]["dashboardId"], "mappingId": generated.mappings[0]["mappingId"],
            "auditLogId": entry["_id"]}


def _expected(token: dict, op: dict, now: datetime) -> tuple[int, str | None]:
    """What the spec and tokens.yaml together say this token gets from this operation."""
    expires = token.get("expires")
    if expires and now >= datetime.fromisoformat(expires.replace("Z", "+00:00")):
        return 401, "invalid_token"
    if not set(token.get("scopes", [])) & set(op["x-required-scopes"]):
        return 403, "scope"
    if token["role"] not in op["x-required-roles"]:
        return 403, "role"
    return 200, None


def _op(op_id: str) -> dict:
    return next(o for item in SPEC["paths"].values() for o in item.values()
                if isinstance(o, dict) and o.get("operationId") == op_id)


@pytest.mark.parametrize("op_id, method, path", operations())
@pytest.mark.parametrize("token", TOKENS, ids=[t["token"] for t in TOKENS])
def test_every_token_on_every_operation(client, generated, token, op_id, method, path):
    op = _op(op_id)
    status, reason = _expected(token, op, datetime(2026, 11, 25, 12, tzinfo=UTC))
    target = path.format(**_params_for(op_id, generated))
    response = client.open(target, method=method, headers=bearer(token["token"]))
    assert response.status_code == status, response.json
    challenge = response.headers.get("WWW-Authenticate")
    if status == 200:
        assert challenge is None
        assert response.json["message"]
    elif status == 401:
        assert challenge.startswith('Bearer realm="insights", error="invalid_token"')
        assert response.json["error"] == "invalid_token"
    elif reason == "scope":
        scopes = " ".join(op["x-required-scopes"])
        assert challenge.startswith(f'Bearer realm="insights", error="insufficient_scope", scope="{scopes}"')
        assert response.json["error"] == "insufficient_scope"
        assert response.json["details"][0]["message"].startswith("Requires scope")
    else:  # the role: its own code, and a challenge that claims no error and no scope
        assert challenge.startswith('Bearer realm="insights", error_description="Requires one of the roles')
        assert "scope=" not in challenge and "error=" not in challenge
        assert response.json["error"] == "insufficient_role"
        assert response.json["details"][0]["message"].startswith("Requires one of the roles")
    assert token["token"] not in response.get_data(as_text=True)
    assert token["token"] not in str(response.headers)


def test_the_matrix_is_not_all_failures():
    """Guards the matrix above against a fixture where nobody gets in (pitfall 5 of the notes)."""
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    outcomes = {_expected(t, _op(op_id), now)[0] for t in TOKENS for op_id, _, _ in operations()}
    assert outcomes == {200, 401, 403}


@pytest.mark.parametrize("header, challenge, detail", [
    (None, 'Bearer realm="insights"', "No Authorization header"),
    ("", 'Bearer realm="insights"', "No Authorization header"),
    ("Basic bW9jazptb2Nr", 'Bearer realm="insights"', "scheme must be Bearer"),
    ("Bearer", 'Bearer realm="insights", error="invalid_token", error_description="The access token is malformed"',
     "malformed"),
    ("Bearer two words", 'Bearer realm="insights", error="invalid_token"', "malformed"),
    ("Bearer t\u00f6ken", 'Bearer realm="insights", error="invalid_token"', "malformed"),
    ("Bearer not-a-known-token", 'Bearer realm="insights", error="invalid_token", '
     'error_description="The access token is not recognised"', "not recognised"),
    ("Bearer mock-expired-token", 'Bearer realm="insights", error="invalid_token", '
     'error_description="The access token expired"', "expired"),
])
def test_401_kinds(client, header, challenge, detail):
    headers = {} if header is None else {"Authorization": header}
    response = client.get(url("/dashboard/most-viewed"), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith(challenge)
    if "error=" not in challenge:
        assert "error=" not in response.headers["WWW-Authenticate"]
    body = response.json
    assert (body["status"], body["error"]) == (401, "invalid_token")
    assert body["message"] == "Authentication required - No valid API token provided"
    assert detail in body["details"][0]["message"]


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
def test_the_scheme_is_case_insensitive(client, scheme):
    response = client.get(url("/dashboard/most-viewed"), headers={"Authorization": f"{scheme} mock-admin-token"})
    assert response.status_code == 200


def test_403_scope_and_role_are_told_apart(client):
    scope = client.post(url(f"/dashboard/{UNKNOWN_UUID}/view"), headers=bearer("mock-user-readonly-token"))
    role = client.get(url(f"/{UNKNOWN_OBJECT_ID}"), headers=bearer("mock-user-token"))
    assert scope.status_code == role.status_code == 403
    assert scope.headers["WWW-Authenticate"].startswith(
        'Bearer realm="insights", error="insufficient_scope", scope="api"')
    assert scope.json["details"][0]["message"] == "Requires scope api"
    assert role.json["details"][0]["message"] == \
        "Requires one of the roles Opsera Administrator, Administrator, Power User, Auditor, Security Manager"
    for response in (scope, role):
        assert response.json["message"] == "Insufficient permissions - Valid token but lacks required permissions"
    assert (scope.json["error"], role.json["error"]) == ("insufficient_scope", "insufficient_role")
    assert role.headers["WWW-Authenticate"] == ('Bearer realm="insights", error_description="Requires one of the '
                                               'roles Opsera Administrator, Administrator, Power User, Auditor, '
                                               'Security Manager"')


def test_authentication_and_authorisation_come_before_validation(client):
    assert client.get(url("/dashboard/not-a-uuid/stats")).status_code == 401
    assert client.get(url("/dashboard/not-a-uuid/stats"), headers=bearer("mock-auditor-token")).status_code == 403
    assert client.get(url("/dashboard/most-viewed?limit=0"), headers=bearer("mock-noscope-token")).status_code == 403
    assert client.get(url("/dashboard/not-a-uuid/stats"), headers=ADMIN).status_code == 400


def test_token_lookup_compares_every_token(monkeypatch):
    registry = TokenRegistry.from_file(auth.Path(__file__).resolve().parents[2] / "fixtures" / "tokens.yaml")
    calls = []
    real = auth.hmac.compare_digest

    def counting(a, b):
        calls.append(len(a) == len(b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for token in ("mock-admin-token", TOKENS[-1]["token"].replace("expired", "x"), "unknown"):
        calls.clear()
        try:
            registry.authenticate(f"Bearer {token}", now)
        except auth.Unauthorized:
            pass
        assert len(calls) == len(TOKENS)  # no early exit, whichever token (if any) matches
        assert all(calls)  # digests of equal length: no length leak either


def test_the_expired_token_is_judged_by_the_app_clock(app_factory):
    """The mock's clock (NOW) decides expiry, like every other "now" in the mock."""
    early = app_factory(NOW="2024-06-01T00:00:00Z").test_client()
    assert early.get(url("/dashboard/most-viewed"), headers=bearer("mock-expired-token")).status_code == 200


def test_the_registry_reads_users_and_account():
    registry = TokenRegistry.from_file(auth.Path(__file__).resolve().parents[2] / "fixtures" / "tokens.yaml")
    assert registry.account == "org-acme-acc0"
    assert [u["id"] for u in registry.users] == [t["user"]["id"] for t in TOKENS]
    assert all(set(u) == {"id", "email", "name", "role"} for u in registry.users)
    assert registry.tokens == [t["token"] for t in TOKENS]


@pytest.mark.parametrize("document, problem", [
    ({"tokens": [{"token": "a"}]}, "needs token"),
    ({"tokens": "nope"}, "tokens` list"),
    ({"tokens": [{"token": "a b", "user": {"id": "64b7f0c2a1e3d4c5b6a79801", "email": "e", "name": "n"},
                  "role": "User"}]}, "b64token"),
    ({"tokens": [{"token": "a", "user": {"id": "123", "email": "e", "name": "n"}, "role": "User"}]}, "ObjectId"),
    ({"tokens": [{"token": "a", "user": {"id": "64b7f0c2a1e3d4c5b6a79801", "email": "e", "name": "n"},
                  "role": "User", "expires": "soon"}]}, "expires"),
    ({"tokens": [{"token": "a", "user": {"id": "64b7f0c2a1e3d4c5b6a79801", "email": "e", "name": "n"},
                  "role": "User", "scopes": "api"}]}, "scopes"),
    ({"tokens": [{"token": "a", "user": {"id": "64b7f0c2a1e3d4c5b6a79801", "email": "e", "name": "n"},
                  "role": "User"}] * 2}, "duplicate"),
])
def test_a_bad_tokens_file_is_refused_clearly(tmp_path, document, problem):
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(TokenFileError, match=problem):
        TokenRegistry.from_file(path)


def test_a_missing_tokens_file_is_refused_clearly(tmp_path):
    with pytest.raises(TokenFileError, match="cannot read"):
        TokenRegistry.from_file(tmp_path / "none.yaml")



def test_may_call_agrees_with_authorize_for_every_token_and_operation():
    from mock_server.errors import Forbidden
    from mock_server.spec import load_spec

    spec = load_spec(auth.Path(__file__).resolve().parents[2] / "openapi.yaml")
    registry = TokenRegistry.from_file(auth.Path(__file__).resolve().parents[2] / "fixtures" / "tokens.yaml")
    verdicts = set()
    for _, principal in registry.entries():
        for op in spec.operations.values():
            try:
                auth.authorize(principal, op)
                allowed = True
            except Forbidden:
                allowed = False
            assert auth.may_call(principal, op) is allowed, (principal.role, op.operation_id)
            verdicts.add(allowed)
    assert verdicts == {True, False}  # the fixtures exercise both answers
