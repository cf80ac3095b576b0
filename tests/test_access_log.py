"""access_log.py: one JSON line per request, never a token."""

from __future__ import annotations

import io
import json
import logging

import pytest

from mock_helpers import ADMIN, TOKENS, UNKNOWN_UUID, bearer, url
from mock_server import access_log


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger=access_log.LOGGER_NAME)

    def read() -> list[dict]:
        return [json.loads(r.getMessage()) for r in caplog.records if r.name == access_log.LOGGER_NAME]
    return read


def test_one_line_per_request_with_the_fields(client, lines):
    client.get(url("/dashboard/most-viewed?limit=2"), headers={**ADMIN, "X-Request-Id": "req-1"})
    client.get("/nowhere")
    first, second = lines()
    assert set(first) == {"ts", "method", "path", "status", "duration_ms", "operationId", "userId", "requestId"}
    assert (first["method"], first["path"], first["status"]) == ("GET", url("/dashboard/most-viewed"), 200)
    assert first["operationId"] == "getMostViewedDashboards"
    assert first["userId"] == TOKENS[0]["user"]["id"]
    assert first["requestId"] == "req-1" and first["duration_ms"] >= 0 and first["ts"].endswith("Z")
    assert (second["status"], second["operationId"], second["userId"]) == (404, None, None)


def test_tokens_never_reach_the_log(client, lines, caplog):
    for token in TOKENS:
        client.post(url(f"/dashboard/{UNKNOWN_UUID}/view"), headers=bearer(token["token"]))
    client.get(url("/dashboard/most-viewed?access_token=mock-admin-token"), headers=bearer("mock-admin-token"))
    assert len(lines()) == len(TOKENS) + 1
    for token in TOKENS:
        assert token["token"] not in caplog.text
    statuses = [line["status"] for line in lines()]
    assert 401 in statuses and 403 in statuses and 200 in statuses


def test_configure_writes_bare_lines_once(monkeypatch):
    logger = logging.getLogger(access_log.LOGGER_NAME)
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "propagate", True)
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    stream = io.StringIO()
    access_log.configure(stream)
    access_log.configure(stream)
    access_log.log_request(method="GET", path="/p", status=200, duration_ms=1.23456, operation_id=None,
                           user_id=None, request_id="r")
    line = json.loads(stream.getvalue())
    assert line["duration_ms"] == 1.235 and line["path"] == "/p"
    assert len(stream.getvalue().splitlines()) == 1
