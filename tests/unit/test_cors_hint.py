"""A refused Origin is answered without CORS headers, which the browser hides from the page: the mock says so
once per origin, on its log (stderr when served), naming the --cors-origins value that would allow it."""

from __future__ import annotations

import logging
import re

import pytest

from mock_helpers import ADMIN, SMALL, start, stop, url
from mock_server.http.cors import MAX_REPORTED_ORIGINS, CorsPolicy

MOST_VIEWED = url("/dashboard/most-viewed")
ALLOWED = "http://localhost:5173"


def refusals(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "insights_mock" and "CORS" in r.getMessage()]


def test_each_refused_origin_is_logged_once_with_the_flag_that_allows_it(app_factory, caplog):
    caplog.set_level(logging.WARNING, logger="insights_mock")
    client = app_factory(CORS_ORIGINS=ALLOWED).test_client()
    for _ in range(3):  # an API call, an operator call and a preflight: one policy, one warning
        client.get(MOST_VIEWED, headers={**ADMIN, "Origin": "http://localhost:3001"})
        client.get("/__admin/health", headers={"Origin": "http://localhost:3001"})
        client.options(MOST_VIEWED, headers={"Origin": "http://localhost:3001", "Access-Control-Request-Method": "GET"})
    client.get(MOST_VIEWED, headers={**ADMIN, "Origin": "https://myapp.local"})
    client.get(MOST_VIEWED, headers={**ADMIN, "Origin": ALLOWED})  # allowed: nothing to say
    client.get(MOST_VIEWED, headers=ADMIN)  # no Origin (curl, a server): nothing to say
    logged = refusals(caplog)
    assert len(logged) == 2, logged
    assert "'http://localhost:3001'" in logged[0]
    assert f"--cors-origins '{ALLOWED},http://localhost:3001'" in logged[0]  # ready to paste
    assert "MOCK_CORS_ORIGINS" in logged[0] and "'*'" in logged[0]
    assert f"--cors-origins '{ALLOWED},https://myapp.local'" in logged[1]
    assert all(r.levelno == logging.WARNING for r in caplog.records if "CORS" in r.getMessage())


def test_a_wildcard_policy_refuses_nothing_and_logs_nothing(caplog):
    caplog.set_level(logging.WARNING, logger="insights_mock")
    assert CorsPolicy(["*"]).allow_origin("http://anything.example") == "*"
    assert refusals(caplog) == []


def test_a_flood_of_new_origins_is_logged_a_bounded_number_of_times(caplog):
    caplog.set_level(logging.WARNING, logger="insights_mock")
    policy = CorsPolicy([ALLOWED])
    for i in range(MAX_REPORTED_ORIGINS * 4):
        assert policy.allow_origin(f"http://host{i}.example") is None
    logged = refusals(caplog)
    assert len(logged) == MAX_REPORTED_ORIGINS + 1
    assert "no further refused origin is logged" in logged[-1]


def test_an_origin_cannot_forge_a_log_line(caplog):
    caplog.set_level(logging.WARNING, logger="insights_mock")
    CorsPolicy([ALLOWED]).allow_origin('http://x\n{"status":200,"forged":true}')
    assert "\n" not in refusals(caplog)[0]


@pytest.mark.live
def test_the_served_mock_warns_once_on_stderr():
    import requests

    process, base = start(["--cors-origins", ALLOWED, *[f"--{k.lower().replace('_', '-')}={v}" for k, v in SMALL.items()]])
    try:
        for _ in range(3):
            requests.get(base + MOST_VIEWED, headers={**ADMIN, "Origin": "http://localhost:3001"}, timeout=10)
    finally:
        _, err = stop(process)
    hints = [line for line in err.splitlines() if "refused Origin" in line]
    assert len(hints) == 1, err[-2000:]
    assert re.search(r"--cors-origins 'http://localhost:5173,http://localhost:3001'", hints[0]), hints
