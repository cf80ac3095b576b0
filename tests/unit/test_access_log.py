"""access_log.py: one JSON (or text) line per request, never a token; --quiet: none."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from mock_helpers import ADMIN, ROOT, TOKENS, UNKNOWN_UUID, bearer, url
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


@pytest.fixture
def bare_logger(monkeypatch):
    """The access logger as a fresh process has it, restored afterwards (configure() changes it)."""
    logger = logging.getLogger(access_log.LOGGER_NAME)
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "propagate", True)
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    monkeypatch.setattr(access_log, "_format", "json")
    return logger


FIELDS = dict(method="GET", path="/api/v1/dashboard/most-viewed", status=200, duration_ms=3.14159,
              operation_id="getMostViewedDashboards", user_id="u-1", request_id="req-7")


def test_the_text_line_has_the_fields_in_a_readable_order():
    line = access_log.text_line(**FIELDS)
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} GET /api/v1/dashboard/most-viewed 200 3\.1ms "
                        r"getMostViewedDashboards user=u-1 rid=req-7", line), line
    bare = access_log.text_line(**{**FIELDS, "status": 404, "operation_id": None, "user_id": None,
                                   "request_id": None})
    assert bare.split()[1:] == ["GET", "/api/v1/dashboard/most-viewed", "404", "3.1ms", "-"]
    assert "\n" not in access_log.text_line(**{**FIELDS, "request_id": "a\nb"})


def test_configure_text_writes_text_lines(bare_logger):
    stream = io.StringIO()
    access_log.configure(stream, log_format="text")
    access_log.log_request(**FIELDS)
    (line,) = stream.getvalue().splitlines()
    assert line.split()[1:] == ["GET", "/api/v1/dashboard/most-viewed", "200", "3.1ms", "getMostViewedDashboards",
                                "user=u-1", "rid=req-7"]
    with pytest.raises(ValueError, match="json, text"):
        access_log.configure(stream, log_format="xml")


def test_quiet_writes_nothing(bare_logger, caplog):
    access_log.configure(quiet=True)
    access_log.log_request(**FIELDS)
    assert not bare_logger.isEnabledFor(logging.INFO) and bare_logger.handlers == []
    assert [r for r in caplog.records if r.name == access_log.LOGGER_NAME] == []


# --- the CLI's gathered writes --------------------------------------------------------------------------

def _line(n: int) -> str:
    return json.dumps({"n": n})


def test_gathered_lines_wait_for_the_interval_and_keep_their_order():
    stream = io.StringIO()
    handler = access_log.LineHandler(stream, flush_interval=30.0)
    threads = [threading.Thread(target=lambda k=k: [handler.write_line(_line(k * 1000 + i)) for i in range(200)])
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stream.getvalue() == ""  # the flusher waits 30 s: nothing was written per line
    handler.flush()
    written = [json.loads(line)["n"] for line in stream.getvalue().splitlines()]
    assert sorted(written) == sorted(k * 1000 + i for k in range(4) for i in range(200))
    for k in range(4):  # each thread's lines in the order it logged them
        mine = [n for n in written if n // 1000 == k]
        assert mine == sorted(mine)


def test_the_flusher_writes_without_being_asked():
    stream = io.StringIO()
    handler = access_log.LineHandler(stream, flush_interval=0.05)
    for round_ in range(3):  # and again after each write: the flusher goes back to waiting
        handler.write_line(_line(round_))
        deadline = time.monotonic() + 10
        while len(stream.getvalue().splitlines()) <= round_ and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [json.loads(line)["n"] for line in stream.getvalue().splitlines()] == list(range(round_ + 1))


def test_a_forked_worker_writes_its_own_lines_once_and_at_exit(tmp_path):
    """As under gunicorn: the handler is made before the fork; each process writes what it logged, once,
    when it exits normally, even if its interval has not come."""
    out = tmp_path / "access.log"
    script = textwrap.dedent(f"""
        import os, sys
        from mock_server import access_log
        access_log.configure(open({str(out)!r}, "w"), flush_interval=60.0)
        handler = access_log.logger.handlers[0]
        handler.write_line("parent-before-fork")
        pid = os.fork()
        if pid == 0:
            handler.write_line("child")
            sys.exit(0)
        os.waitpid(pid, 0)
        handler.write_line("parent-after-fork")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert sorted(out.read_text().splitlines()) == ["child", "parent-after-fork", "parent-before-fork"]
