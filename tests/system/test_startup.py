"""An honest start-up (issue 20): the banner and its `listening on http://HOST:PORT` line come once the port
answers and the data is loaded, with the port bound (--port 0: a free one), for werkzeug and for gunicorn."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import pytest
import requests

from mock_helpers import DEFAULT_PINNED, LISTENING, ROOT, free_port, stop, written
from mock_server.config import KEYS

VIEWS, AUDIT_LOGS = 40_000, 20_000  # enough that loading takes a while, so an early line would be caught


def _serve(args: list[str]) -> subprocess.Popen:
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    env = {key: value for key, value in os.environ.items() if key.removeprefix("MOCK_") not in KEYS}
    process = subprocess.Popen([sys.executable, "-m", "mock_server", "serve", *args], cwd=ROOT, stdout=out,
                               stderr=err, text=True, env=env)
    process.outputs = (out, err)  # type: ignore[attr-defined]
    return process


def _listening_port(process: subprocess.Popen) -> int:
    """The port of the `listening on` line, read as soon as it is written; no request is made before."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = LISTENING.search(written(process.outputs[0]))  # type: ignore[attr-defined]
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            raise AssertionError(f"server exited: {stop(process)}")
        time.sleep(0.01)
    stop(process)
    raise AssertionError("no `listening on` line in 90 s")


@pytest.mark.parametrize("workers", ["1", "2"], ids=["werkzeug", "gunicorn"])
def test_the_listening_line_comes_once_the_port_answers_with_the_data_loaded(workers):
    process = _serve(["--port", "0", "--workers", workers, "--views", str(VIEWS), "--audit-logs",
                      str(AUDIT_LOGS)])
    try:
        port = _listening_port(process)
        assert port != 0
        # At once: one request, no retry. A refused connection or missing data would fail here.
        health = requests.get(f"http://127.0.0.1:{port}/__admin/health", timeout=10)
        assert health.status_code == 200
        assert health.json()["port"] == port
        counts = health.json()["counts"]  # the sizes, and the default scenario's pinned examples
        assert (counts["views"], counts["audit_logs"]) == (VIEWS + DEFAULT_PINNED["views"],
                                                           AUDIT_LOGS + DEFAULT_PINNED["audit_logs"])
    finally:
        out, err = stop(process)
    lines = out.splitlines()
    assert lines[-1] == f"listening on http://127.0.0.1:{port}"  # the last line of the start-up output
    assert lines.count(lines[-1]) == 1  # once, although every gunicorn worker starts
    assert lines[0].startswith(f"insights-mock serving http://127.0.0.1:{port}  (")
    assert f"http://127.0.0.1:{port}/docs" in out and ":0/" not in out and ":0 " not in out
    assert "Traceback" not in err


def test_a_given_port_is_the_one_announced_and_bound():
    port = free_port()
    process = _serve(["--port", str(port), "--views", "300", "--audit-logs", "200"])
    try:
        assert _listening_port(process) == port
        assert requests.get(f"http://127.0.0.1:{port}/__admin/health", timeout=10).json()["port"] == port
    finally:
        stop(process)


@pytest.mark.parametrize("workers", ["1", "2"], ids=["werkzeug", "gunicorn"])
def test_a_port_in_use_exits_2_without_announcing(workers):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = _serve(["--port", str(taken.getsockname()[1]), "--workers", workers, "--views", "300",
                          "--audit-logs", "200"])
        assert process.wait(timeout=60) == 2
    out, err = stop(process)
    assert "cannot listen on 127.0.0.1:" in err
    assert "listening on" not in out and "insights-mock serving" not in out
