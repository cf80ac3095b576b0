"""Unit tests of the suite's plumbing for real staging: the retrying probe, 429 and Retry-After, extra headers,
the OAuth2 client-credentials token (against a small local token endpoint), report files that are never
overwritten, runnable reproducers, and the coverage verdict. None of them talks to the target."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qs

import pytest
import requests

from contract_tests import cli, probe, report_files, reporting, settings
from contract_tests.oauth import ClientCredentials, TokenError
from contract_tests.target import ThrottledSession, retry_after_seconds
from contract_tests.verdict import Coverage

pytestmark = pytest.mark.self_test


# --- a tiny local HTTP server whose answers each test scripts ------------------------------------------------

class Scripted(BaseHTTPRequestHandler):
    answers: list = []  # (status, headers, body) popped per request; the last one repeats
    seen: list = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, headers, payload = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("S", (Scripted,), {"answers": [], "seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{httpd.server_address[1]}", handler=handler)
    httpd.shutdown()
    httpd.server_close()


# --- the probe ---------------------------------------------------------------------------------------------

class FakeTarget:
    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.calls = 0

    def raw(self, method, path):
        self.calls += 1
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        status, content_type, body = outcome
        return SimpleNamespace(status_code=status, headers={"content-type": [content_type]}, content=body,
                               json=lambda: json.loads(body))


OK_401 = (401, "application/json", b'{"error": "unauthorized"}')
HTML_500 = (500, "text/html", b"<h1>oops</h1>")


def test_the_probe_retries_a_failing_target_with_backoff_and_then_accepts_it():
    waits = []
    target = FakeTarget([HTML_500, requests.ConnectionError("Connection refused"), OK_401])
    result = probe.probe(target, 2.0, sleep=waits.append)
    assert result.usable and target.calls == 3
    assert waits == [probe.BACKOFF, probe.BACKOFF * 2]


def test_the_probe_gives_up_after_its_attempts_saying_why():
    waits = []
    result = probe.probe(FakeTarget([HTML_500]), 2.0, attempts=3, sleep=waits.append)
    assert not result.usable and len(result.attempts) == 3 and len(waits) == 2
    assert "answered 500" in result.problem and "after 3 attempts" in result.problem


def test_the_probe_does_not_retry_an_answer_that_is_not_the_api():
    target = FakeTarget([(200, "text/html", b"<html>login</html>")])
    result = probe.probe(target, 2.0, sleep=lambda s: pytest.fail("retried a non-API answer"))
    assert not result.usable and target.calls == 1 and "not JSON" in result.problem


# --- 429, Retry-After, extra headers ---------------------------------------------------------------------

@pytest.mark.parametrize("value, attempt, expected", [
    ("3", 0, 3.0), ("0", 2, 0.0), (None, 0, 1.0), (None, 2, 4.0), ("soon", 1, 2.0), ("100000", 0, 60.0),
    ("Thu, 01 Jan 1970 00:00:10 GMT", 0, 5.0),
])
def test_retry_after_as_seconds_date_or_backoff(value, attempt, expected):
    assert retry_after_seconds(value, attempt, now=5.0) == expected


def test_a_429_is_waited_out_as_retry_after_says_and_the_extra_headers_go_on_every_request(server):
    server.handler.answers = [(429, {"Retry-After": "2"}, {"error": "slow down"}), (200, {}, {"ok": True})]
    waits = []
    session = ThrottledSession(0, (("X-Gateway-Key", "k1"), ("X-Tenant", "acme")), sleep=waits.append)
    answer = session.get(server.url + "/x", timeout=5)
    assert answer.status_code == 200 and waits == [2.0] and session.throttled == 1
    assert all(s["headers"].get("X-Gateway-Key") == "k1" and s["headers"].get("X-Tenant") == "acme"
               for s in server.handler.seen) and len(server.handler.seen) == 2


def test_a_target_that_never_lets_up_gets_its_429_reported():
    pass_through = ThrottledSession(0, sleep=lambda s: None)
    with ThreadingHTTPServer(("127.0.0.1", 0), type("T", (Scripted,), {"answers": [(429, {}, {})], "seen": []})) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        answer = pass_through.get(f"http://127.0.0.1:{httpd.server_address[1]}/", timeout=5)
        httpd.shutdown()
    assert answer.status_code == 429 and pass_through.throttled == 5


def test_headers_from_the_environment_and_the_command_line():
    parsed = settings.parse_headers(["X-Tenant: beta"], "X-Gateway-Key: abc\nX-Tenant: alpha\n")
    assert parsed == (("X-Gateway-Key", "abc"), ("X-Tenant", "beta"))


@pytest.mark.parametrize("bad, says", [("NoColon", "must look like"), (": v", "must look like"),
                                       ("Authorization: Bearer x", "sets Authorization itself")])
def test_a_malformed_or_reserved_header_is_a_clear_usage_error(bad, says):
    with pytest.raises(settings.UsageError, match=says):
        settings.parse_headers([bad], "")


# --- OAuth2 client credentials ---------------------------------------------------------------------------

def test_the_token_is_fetched_with_client_credentials_and_refreshed_before_it_expires(server):
    server.handler.answers = [(200, {}, {"access_token": "t1", "token_type": "Bearer", "expires_in": 300}),
                              (200, {}, {"access_token": "t2", "token_type": "bearer", "expires_in": 300})]
    now = [1000.0]
    source = ClientCredentials(server.url + "/token", "qa-client", "s3cret", "insights.read insights.write",
                               clock=lambda: now[0])
    assert source() == "t1" and source() == "t1" and source.fetches == 1
    now[0] += 300 - 29  # still valid, but within the refresh margin
    assert source() == "t2" and source.fetches == 2
    request = server.handler.seen[0]
    assert base64.b64decode(request["headers"]["Authorization"].split()[1]) == b"qa-client:s3cret"
    assert parse_qs(request["body"]) == {"grant_type": ["client_credentials"], "scope": ["insights.read insights.write"]}


def test_a_refused_client_is_a_clear_error(server):
    server.handler.answers = [(401, {}, {"error": "invalid_client", "error_description": "unknown client"})]
    with pytest.raises(TokenError, match="answered 401 .*invalid_client: unknown client"):
        ClientCredentials(server.url + "/token", "x", "y")()


def test_oauth_options_must_come_complete():
    config = SimpleNamespace(getoption=lambda name: {"contract_oauth_token_url": "http://t/token"}.get(name))
    with pytest.raises(settings.UsageError, match="CONTRACT_OAUTH_CLIENT_ID"):
        settings._oauth(config, 5.0)


def test_a_principal_reads_the_current_token_of_its_source():
    tokens = iter(["a", "b"])
    principal = settings.Principal("full", lambda: next(tokens))
    assert (principal.token, principal.token) == ("a", "b")


# --- reports ---------------------------------------------------------------------------------------------

def test_a_report_file_is_never_overwritten(tmp_path):
    first = report_files.unique_path(tmp_path / "junit.xml")
    first.write_text("run 1")
    second = report_files.unique_path(tmp_path / "junit.xml")
    second.write_text("run 2")
    assert (first.name, second.name) == ("junit.xml", "junit-2.xml") and first.read_text() == "run 1"


def test_reproducers_name_the_token_variable_and_a_runnable_url(monkeypatch):
    monkeypatch.setattr(reporting, "TOKEN_VARIABLES", {"secret-1": "CONTRACT_TOKEN"})
    line = reporting.curl("GET", "http://localhost/api/x?q=$HOME", {"Authorization": "Bearer secret-1"})
    assert line == 'curl -X GET -H "Authorization: Bearer $CONTRACT_TOKEN" "$CONTRACT_BASE_URL""/api/x?q=\\$HOME"'
    other = reporting.curl("GET", "https://staging.example/a", {"Authorization": "Bearer unknown"})
    assert "unknown" not in other and "[Filtered]" in other
    text = report_files.readable("curl -X GET -H 'Authorization: Bearer [Filtered]' --insecure 'http://localhost/api/y'")
    assert text == 'curl -X GET -H "Authorization: Bearer $CONTRACT_TOKEN" "$CONTRACT_BASE_URL"\'/api/y\''


def test_coverage_gaps_name_the_operations_and_the_missing_tokens():
    coverage = Coverage()
    assert coverage.headline() == f"operations exercised with a valid token: 0/{coverage.total_operations}"
    coverage.skip("no readonly token for X: set CONTRACT_READONLY_TOKEN (or --readonly-token)", "t1")
    coverage.skip("no tool mapping with audit entries is known", "t2")
    gaps = coverage.gaps()
    assert len(gaps) == 2 and "not exercised" in gaps[0] and "CONTRACT_READONLY_TOKEN" in gaps[1]


def test_the_command_runs_the_installed_package_with_its_own_settings():
    args = cli.pytest_args(["--base-url", "http://x"], environ={})
    assert args[:4] == [str(cli.PACKAGE_DIR), "-c", str(cli.PACKAGE_DIR / "pytest.ini"), "--rootdir"]
    assert ["-m", "not meta"] == args[5:7] and "--report-dir" in args and args[-2:] == ["--base-url", "http://x"]
    assert "-m" not in cli.pytest_args(["-m", "slow"], environ={})[:-2]
