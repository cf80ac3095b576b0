"""mock_server/http/host_guard.py: RFC 9112's Host rules, in the Error schema, before Flask (over real sockets in
test_hostile_http.py, on werkzeug and gunicorn)."""

from __future__ import annotations

import json

import pytest

from mock_server.http.host_guard import HostGuard, host_problem


@pytest.mark.parametrize("host", ["127.0.0.1:4010", "localhost", "mock.example", "[::1]:80", "[::1]", "a-b.c_d:1"])
def test_valid_hosts_pass(host):
    assert host_problem({"SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": host}) is None


@pytest.mark.parametrize("host", [None, "", "a b", "a, b", "x/y", "h\x01st", "[::1"])
def test_missing_or_invalid_hosts_are_named(host):
    environ = {"SERVER_PROTOCOL": "HTTP/1.1"}
    if host is not None:
        environ["HTTP_HOST"] = host
    assert "Host" in host_problem(environ)


def test_http_1_0_may_omit_host():
    assert host_problem({"SERVER_PROTOCOL": "HTTP/1.0"}) is None


def test_the_guard_answers_400_in_the_error_schema_without_calling_the_app():
    called, started = [], []
    guard = HostGuard(lambda environ, start_response: called.append(environ) or [])
    body = b"".join(guard({"SERVER_PROTOCOL": "HTTP/1.1"}, lambda status, headers: started.append((status, headers))))
    assert not called
    status, headers = started[0]
    assert status.startswith("400 ")
    assert ("Content-Type", "application/json") in headers
    payload = json.loads(body)
    assert payload["status"] == 400 and payload["error"] == "bad_request"
    assert payload["details"][0]["name"] == "Host"


def test_the_app_answers_well_formed_requests(app):
    response = app.test_client().get("/__admin/health")
    assert response.status_code == 200
