"""Security properties of the mock, each checked where it can break: loopback binding, the admin lock
off loopback, tokens kept out of logs and bodies, constant-time comparison, nosniff and a version-free
Server header, the body size limit, and CORS. Server-level checks run the real CLI in a subprocess."""

from __future__ import annotations

import ast
import inspect
import io
import logging
import os
import textwrap
from datetime import UTC, datetime

import jsonschema_rs
import pytest
import requests
from flask.testing import FlaskClient

from mock_helpers import (ADMIN, NOW, SPEC, TOKENS, UNKNOWN_UUID, bearer, start, stop, url)
from mock_server import access_log, auth, cli
from mock_server.operator import admin
from mock_server.config import KEYS, load_config

ERROR_SCHEMA = jsonschema_rs.validator_for({"$ref": "#/components/schemas/Error", "components": SPEC["components"]},
                                           validate_formats=True)
API_TOKENS = [t["token"] for t in TOKENS]
ADMIN_SECRET = "adm1n-s3cret-for-the-tests"
FORGED = "forged-token-0123456789abcdef"
SECRETS = [*API_TOKENS, ADMIN_SECRET, FORGED]
EVIL = "https://evil.example"
FRONTEND = "http://localhost:5173"
MOST_VIEWED = url("/dashboard/most-viewed")
VIEW = url(f"/dashboard/{UNKNOWN_UUID}/view")
LOGS = url(f"/dashboard/{UNKNOWN_UUID}/logs")  # documents a 400 (most viewed does not: the source lists none)


def assert_error_body(response, status: int) -> dict:
    assert response.status_code == status
    mimetype = getattr(response, "mimetype", None) or response.headers["Content-Type"].split(";")[0]
    assert mimetype == "application/json"
    body = response.json() if callable(response.json) else response.json
    assert ERROR_SCHEMA.is_valid(body), body
    assert body["status"] == status
    return body


# --- binding --------------------------------------------------------------------------------------------

def test_the_default_host_is_loopback_and_the_cli_does_not_override_it():
    assert load_config({}, environ={})["HOST"] == "127.0.0.1"
    serve = cli.build_parser().parse_args(["serve"])
    assert serve.HOST is None  # no flag default that would shadow the config default


def _listeners(port: int) -> list[tuple[str, str]]:
    """(file, local address hex) of every LISTEN socket on `port` in /proc/net/tcp and tcp6."""
    found = []
    for name in ("tcp", "tcp6"):
        path = f"/proc/net/{name}"
        if not os.path.exists(path):
            continue
        with open(path, encoding="ascii") as table:
            next(table)
            for line in table:
                fields = line.split()
                address, port_hex = fields[1].rsplit(":", 1)
                if int(port_hex, 16) == port and fields[3] == "0A":  # 0A = TCP_LISTEN
                    found.append((name, address))
    return found


@pytest.fixture(scope="module", params=[["--workers", "1"], ["--workers", "2"]], ids=["werkzeug", "gunicorn"])
def served(request):
    """The real CLI with nothing but defaults for the host (no MOCK_* from the caller's environment)."""
    with pytest.MonkeyPatch.context() as patch:
        for key in KEYS:
            patch.delenv("MOCK_" + key, raising=False)
        process, base = start([*request.param, "--users", "12", "--dashboards", "12", "--mappings", "6",
                               "--views", "300", "--audit-logs", "200", "--now", NOW])
    result = {"process": process, "base": base, "port": int(base.rsplit(":", 1)[1])}
    yield result
    if "out" not in result:
        stop(process)


def _wire_responses(base: str) -> dict[str, requests.Response]:
    get = lambda path, **kw: requests.get(base + path, timeout=10, **kw)  # noqa: E731
    return {
        "200": get(MOST_VIEWED, headers=ADMIN),
        "400": get(LOGS + "?page_size=zero", headers=ADMIN),
        "401 expired": get(MOST_VIEWED, headers=bearer("mock-expired-token")),
        "401 forged": get(MOST_VIEWED, headers=bearer(FORGED)),
        "401 query token": get(MOST_VIEWED + "?access_token=mock-admin-token"),
        "403": get(MOST_VIEWED, headers=bearer("mock-noscope-token")),
        "404": get("/no/such/path", headers=ADMIN),
        "405": requests.delete(base + MOST_VIEWED, headers=ADMIN, timeout=10),
        "413": requests.post(base + VIEW, headers=ADMIN, data=b"x" * (70 * 1024), timeout=10),
        "500": get(MOST_VIEWED, headers={**ADMIN, "Prefer": "code=500"}),
        "spec": get("/openapi.yaml"),
        "health": get("/__admin/health"),
        "preflight": requests.options(base + VIEW, timeout=10, headers={
            "Origin": FRONTEND, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization"}),
    }


def test_the_served_process_listens_on_loopback_only(served):
    listeners = _listeners(served["port"])
    assert listeners, f"nothing listens on port {served['port']}"
    # 0100007F is 127.0.0.1 in /proc's little-endian hex; 00000000 would be every interface.
    assert listeners == [("tcp", "0100007F")] * len(listeners)


def test_the_served_process_has_nosniff_no_server_version_and_no_token_in_its_output(served):
    responses = _wire_responses(served["base"])
    expected = {"200": 200, "400": 400, "401 expired": 401, "401 forged": 401, "401 query token": 401,
                "403": 403, "404": 404, "405": 405, "413": 413, "500": 500, "spec": 200, "health": 200,
                "preflight": 200}
    assert {kind: r.status_code for kind, r in responses.items()} == expected
    for kind, response in responses.items():
        assert response.headers.get("X-Content-Type-Options") == "nosniff", kind
        server = response.headers.get("Server", "")
        assert not any(ch.isdigit() for ch in server), (kind, server)
        assert not {"werkzeug", "python"} & set(server.lower().replace("/", " ").split()), (kind, server)
        for secret in SECRETS:
            assert secret not in response.text and secret not in str(response.headers), (kind, secret)
    assert_error_body(responses["413"], 413)
    out, err = stop(served["process"])
    served["out"] = out
    assert f"http://127.0.0.1:{served['port']}" in out  # the banner names the loopback address it bound
    assert '"status":413' in err  # the access log was written, so its silence about tokens means something
    for secret in SECRETS:
        assert secret not in err, secret


# --- /__admin off loopback ------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_off_loopback_admin_needs_the_admin_token(app_factory, host):
    client = app_factory(HOST=host, ADMIN_TOKEN=ADMIN_SECRET).test_client()
    for method, path in (("GET", "/__admin/scenario"), ("POST", "/__admin/reset")):
        for headers in ({}, bearer(FORGED), ADMIN, bearer("mock-opsera-admin-token"),
                        {"Authorization": f"Basic {ADMIN_SECRET}"}, bearer(ADMIN_SECRET + "x"),
                        bearer(ADMIN_SECRET[:-1])):
            response = client.open(path, method=method, headers=headers)
            body = assert_error_body(response, 401)
            assert body["error"] == "invalid_token"
            assert response.headers["WWW-Authenticate"].startswith("Bearer ")
            assert ADMIN_SECRET not in response.get_data(as_text=True)
        assert client.open(path, method=method, headers=bearer(ADMIN_SECRET)).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5"])
def test_off_loopback_without_an_admin_token_admin_is_locked(app_factory, host):
    client = app_factory(HOST=host).test_client()
    for method, path in (("GET", "/__admin/scenario"), ("POST", "/__admin/reset"), ("DELETE", "/__admin/requests")):
        for headers in ({}, ADMIN, bearer(ADMIN_SECRET)):  # no token unlocks it: there is none to match
            response = client.open(path, method=method, headers=headers)
            body = assert_error_body(response, 401)
            assert body["error"] == "invalid_token" and "MOCK_ADMIN_TOKEN" in body["message"]
            assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_off_loopback_a_refused_reset_changes_nothing(app_factory):
    app = app_factory(HOST="0.0.0.0", ADMIN_TOKEN=ADMIN_SECRET)
    client = app.test_client()
    assert client.post(VIEW, headers=ADMIN).status_code == 200
    views = client.get(url(f"/dashboard/{UNKNOWN_UUID}/stats"), headers=ADMIN).json["data"]["totalViews"]
    assert views == 1
    assert client.post("/__admin/reset", headers=ADMIN).status_code == 401
    assert client.get(url(f"/dashboard/{UNKNOWN_UUID}/stats"), headers=ADMIN).json["data"]["totalViews"] == 1


# --- tokens stay out of logs and bodies -----------------------------------------------------------------

@pytest.fixture
def every_log(caplog):
    """Every record of every logger, the access logger included even after access_log.configure() (as the
    CLI tests call it in-process) stopped it propagating to the root logger."""
    caplog.set_level(logging.DEBUG)
    access = logging.getLogger(access_log.LOGGER_NAME)
    old_level = access.level
    access.setLevel(logging.INFO)
    if not access.propagate:
        access.addHandler(caplog.handler)
    yield caplog
    access.removeHandler(caplog.handler)
    access.setLevel(old_level)


def _leak_requests(app, monkeypatch) -> list:
    client = FlaskClient(app)  # the 500s below are not the documented examples; judged here, not by openapi-core
    sent = [
        (200, client.get(MOST_VIEWED, headers=ADMIN)),
        (401, client.get(MOST_VIEWED, headers=bearer(FORGED))),
        (401, client.get(MOST_VIEWED, headers=bearer("mock-expired-token"))),
        (401, client.get(MOST_VIEWED, headers=bearer("mock-admin-token!!"))),  # malformed
        (401, client.get(MOST_VIEWED, headers={"Authorization": "Basic mock-admin-token"})),
        (403, client.get(MOST_VIEWED, headers=bearer("mock-noscope-token"))),
        (403, client.post(VIEW, headers=bearer("mock-user-readonly-token"))),
        (401, client.get(MOST_VIEWED + "?access_token=mock-admin-token")),  # a query token never authenticates
        (200, client.get(MOST_VIEWED + "?access_token=mock-poweruser-token", headers=ADMIN)),
        (500, client.get(MOST_VIEWED, headers={**ADMIN, "Prefer": "code=500"})),
        (401, client.get(MOST_VIEWED, headers={**bearer("mock-auditor-token"), "Prefer": "code=401"})),
        (200, client.get(MOST_VIEWED, headers={**ADMIN, "Prefer": "x-token=mock-user-token, return=minimal"})),
        (401, client.get("/__admin/scenario", headers=bearer(FORGED))),
        (200, client.get("/__admin/scenario", headers=bearer(ADMIN_SECRET))),
        (200, client.get("/__admin/health", headers=bearer(FORGED))),  # open for probes, whatever is sent
        # a token pasted into a fault key must not be echoed by the 400 that refuses it
        (400, client.get(LOGS, headers={"Prefer": "code=mock-admin-token"})),
        (400, client.get(LOGS, headers={"Prefer": "delay=mock-admin-token"})),
        (400, client.get(LOGS, headers={"Prefer": "@ mock-admin-token"})),
        (400, client.get(LOGS + "?__code=mock-admin-token")),
    ]

    def broken(*args, **kwargs):
        raise RuntimeError("the store fell over")

    # Parameters not asked before: an answer already made would be reused (mock_server.api.cache).
    monkeypatch.setattr(app.extensions["insights_mock"].default.store, "most_viewed", broken)
    sent.append((500, client.get(MOST_VIEWED + "?limit=7", headers=ADMIN)))
    sent.append((500, client.get(MOST_VIEWED + "?limit=8&access_token=mock-admin-token", headers=ADMIN)))
    return sent


def test_tokens_never_appear_in_logs_or_bodies(app_factory, monkeypatch, every_log):
    app = app_factory(HOST="0.0.0.0", ADMIN_TOKEN=ADMIN_SECRET)
    sent = _leak_requests(app, monkeypatch)
    assert [status for status, _ in sent] == [r.status_code for _, r in sent]
    for _, response in sent:
        text = response.get_data(as_text=True) + str(response.headers)
        for secret in SECRETS:
            assert secret not in text, (response.request.path, secret)
    formatter = logging.Formatter("%(name)s %(message)s")
    logged = "\n".join(formatter.format(record) for record in every_log.records)
    access_lines = [r for r in every_log.records if r.name == access_log.LOGGER_NAME]
    assert len(access_lines) == len(sent)  # every request was logged, so the check below has material
    assert "the store fell over" in logged  # the unexpected 500 was logged with its traceback
    for secret in SECRETS:
        assert secret not in logged, secret


def test_a_server_wide_500_carries_no_token(app_factory, every_log):
    client = FlaskClient(app_factory(ERROR_RATE=1.0))
    response = client.get(MOST_VIEWED + "?access_token=mock-admin-token", headers=ADMIN)
    assert assert_error_body(response, 500)["error"] == "internal_error"
    assert "mock-admin-token" not in response.get_data(as_text=True) + every_log.text


# --- constant-time comparison ---------------------------------------------------------------------------

def _calls_compare_digest(function) -> bool:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
               and node.func.attr == "compare_digest" and isinstance(node.func.value, ast.Name)
               and node.func.value.id == "hmac" for node in ast.walk(tree))


SECRET_NAMES = {"token", "credentials", "candidate", "digest", "given", "expected", "actual", "entry"}


def _compares_secrets_with_eq(function) -> list[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn))
                                                 for op in node.ops):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            if names & SECRET_NAMES:
                found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("function", [auth.TokenRegistry.authenticate, admin.guard])  # noqa: SLF001
def test_token_checks_use_compare_digest_and_no_equality(function):
    assert _calls_compare_digest(function)
    assert _compares_secrets_with_eq(function) == []


def test_the_ast_checks_can_fail():
    def naive(token, given):
        return given == token

    assert not _calls_compare_digest(naive)
    assert _compares_secrets_with_eq(naive) == ["given == token"]


@pytest.fixture
def compare_spy(monkeypatch):
    calls = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)  # the hmac module both auth and admin use
    return calls


@pytest.mark.parametrize("token", ["mock-admin-token", "mock-expired-token", API_TOKENS[-1], FORGED])
def test_every_known_token_is_compared_whatever_matches(compare_spy, token):
    registry = auth.TokenRegistry.from_file(load_config({}, environ={})["TOKENS_FILE"])
    try:
        registry.authenticate(f"Bearer {token}", datetime(2026, 11, 25, tzinfo=UTC))
    except auth.Unauthorized:
        assert token in (FORGED, "mock-expired-token")
    assert len(compare_spy) == len(API_TOKENS)  # no early exit on a match
    assert all(isinstance(a, bytes) and token.encode() not in (a, b) for a, b in compare_spy)  # digests only


def test_the_admin_check_goes_through_compare_digest(app_factory, compare_spy):
    client = app_factory(HOST="0.0.0.0", ADMIN_TOKEN=ADMIN_SECRET).test_client()
    assert client.get("/__admin/scenario", headers=bearer(FORGED)).status_code == 401
    assert len(compare_spy) == 1
    assert client.get("/__admin/scenario", headers=bearer(ADMIN_SECRET)).status_code == 200
    assert len(compare_spy) == 2


# --- nosniff on every response kind ---------------------------------------------------------------------

def test_nosniff_on_every_kind_of_response(app_factory, monkeypatch):
    app = app_factory(MAX_CONTENT_LENGTH=1024)
    client = FlaskClient(app)
    responses = {
        200: client.get(MOST_VIEWED, headers=ADMIN),
        400: client.get(LOGS + "?page_size=zero", headers=ADMIN),
        401: client.get(MOST_VIEWED),
        403: client.get(MOST_VIEWED, headers=bearer("mock-noscope-token")),
        404: client.get("/no/such/path"),
        405: client.delete(MOST_VIEWED, headers=ADMIN),
        413: client.post(VIEW, headers=ADMIN, data=b"x" * 1025),
        "forced 500": client.get(MOST_VIEWED, headers={**ADMIN, "Prefer": "code=500"}),
        "spec": client.get("/openapi.yaml"),
        "health": client.get("/__admin/health"),
        "reset": client.post("/__admin/reset"),
        "head": client.head(MOST_VIEWED, headers=ADMIN),
        "options": client.options(MOST_VIEWED),
        "preflight": client.options(VIEW, headers={"Origin": FRONTEND, "Access-Control-Request-Method": "POST"}),
    }

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(app.extensions["insights_mock"].default.store, "most_viewed", broken)
    responses[500] = client.get(MOST_VIEWED + "?limit=7", headers=ADMIN)  # not asked before: not cached
    for kind, response in responses.items():
        expected = kind if isinstance(kind, int) else 500 if kind == "forced 500" else 200
        assert response.status_code == expected, kind
        assert response.headers.get("X-Content-Type-Options") == "nosniff", kind


# --- body size limit ------------------------------------------------------------------------------------

@pytest.mark.parametrize("limit", [1, 1024, 64 * 1024])
def test_a_body_over_the_limit_is_413_in_the_error_schema(app_factory, limit):
    app = app_factory(MAX_CONTENT_LENGTH=limit)
    client = FlaskClient(app)  # openapi.yaml documents no 413 for this operation: judged with the schema here
    body = assert_error_body(client.post(VIEW, headers=ADMIN, data=b"x" * (limit + 1)), 413)
    assert body["error"] == "payload_too_large"
    assert body["requestId"]
    assert client.post(VIEW, headers=ADMIN, data=b"x" * limit).status_code == 200
    chunked = client.post(VIEW, headers={**ADMIN, "Transfer-Encoding": "chunked"},
                          input_stream=io.BytesIO(b"x" * (limit + 1)),
                          environ_overrides={"wsgi.input_terminated": True})
    assert_error_body(chunked, 413)
    stats = client.get(url(f"/dashboard/{UNKNOWN_UUID}/stats"), headers=ADMIN).json
    assert stats["data"]["totalViews"] == 1  # the refused posts recorded nothing


def test_the_default_body_limit_is_set():
    assert load_config({}, environ={})["MAX_CONTENT_LENGTH"] == 64 * 1024


# --- CORS -----------------------------------------------------------------------------------------------

def _cors_cases(client):
    return [
        client.get(MOST_VIEWED, headers={**ADMIN, "Origin": FRONTEND}),
        client.get(MOST_VIEWED, headers={"Origin": FRONTEND}),
        client.get(MOST_VIEWED, headers={**bearer("mock-noscope-token"), "Origin": FRONTEND}),
        client.get("/no/such/path", headers={"Origin": FRONTEND}),
        client.get("/openapi.yaml", headers={"Origin": FRONTEND}),
        client.get("/__admin/health", headers={"Origin": FRONTEND}),
        client.options(VIEW, headers={"Origin": FRONTEND, "Access-Control-Request-Method": "POST",
                                      "Access-Control-Request-Headers": "authorization"}),
    ]


def test_an_allowed_origin_is_echoed_on_every_response(client):
    for response in _cors_cases(client):
        assert response.headers.get("Access-Control-Allow-Origin") == FRONTEND, response.request.path
        assert "Origin" in response.headers.get("Vary", "")  # a shared cache must not serve it to others
        assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("origin", [EVIL, "http://localhost:5173.evil.example", "null", "http://localhost:9999"])
def test_a_disallowed_origin_gets_no_cors_headers(client, origin):
    cases = [
        client.get(MOST_VIEWED, headers={**ADMIN, "Origin": origin}),
        client.get(MOST_VIEWED, headers={"Origin": origin}),
        client.options(VIEW, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                      "Access-Control-Request-Headers": "authorization"}),
    ]
    for response in cases:
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("origins", [None, "*", "https://app.example,http://localhost:5173"])
def test_never_a_wildcard_with_credentials(app_factory, origins):
    app = app_factory() if origins is None else app_factory(CORS_ORIGINS=origins)
    client = app.test_client()
    for origin in (FRONTEND, EVIL, "https://app.example"):
        for response in _cors_cases_for(client, origin):
            allow = response.headers.get("Access-Control-Allow-Origin")
            credentials = response.headers.get("Access-Control-Allow-Credentials")
            assert not (allow == "*" and credentials is not None), (origins, origin)
            assert credentials is None  # the mock's tokens travel in a header; cookies are never needed
            if allow is not None and allow != "*":
                assert allow == origin  # reflects only the origin that asked


def _cors_cases_for(client, origin):
    return [
        client.get(MOST_VIEWED, headers={**ADMIN, "Origin": origin}),
        client.get(MOST_VIEWED, headers={"Origin": origin}),
        client.options(VIEW, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                      "Access-Control-Request-Headers": "authorization"}),
    ]


def test_a_preflight_from_an_allowed_origin_allows_authorization(client):
    response = client.options(VIEW, headers={
        "Origin": FRONTEND, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Prefer"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert "authorization" in allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    get_preflight = client.options(MOST_VIEWED, headers={
        "Origin": FRONTEND, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert "authorization" in get_preflight.headers["Access-Control-Allow-Headers"].lower()
