"""The suite fails safe: pointed at something that is not a working API, it ends non-zero, soon, with one
clear message naming the problem; pointed at a non-local URL, it never writes without --allow-writes.

Each case runs the suite in a subprocess against a tiny local stand-in: a port nobody listens on, a server
that accepts connections and never answers, servers answering HTML with 500 or 200. The subprocess gets a
generous timeout of its own, so a hang fails this test instead of hanging CI.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from contract_tests.loader import SAFE_METHODS
from contract_tests.settings import REPO_ROOT
from contract_tests.target import ServedMock, free_port

pytestmark = [pytest.mark.meta, pytest.mark.slow]

REQUEST_TIMEOUT = 2.0
HANG_LIMIT = 120  # the child must be done long before this; reaching it means it hung
TOKEN = "mock-admin-token"


def run_suite(base_url: str, *extra: str, env: dict | None = None, timeout: float = HANG_LIMIT, report_dir=None):
    command = [sys.executable, "-m", "pytest", "contract_tests", "-p", "no:cacheprovider", "-m", "not meta", "-q",
               "-x", "--base-url", base_url, "--request-timeout", str(REQUEST_TIMEOUT), *extra]
    if report_dir is not None:
        command += ["--report-dir", str(report_dir)]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACT_")}
    child_env.update({"CONTRACT_TOKEN": TOKEN, **(env or {})})
    started = time.monotonic()
    try:
        result = subprocess.run(command, cwd=REPO_ROOT, env=child_env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the suite hung against {base_url}: still running after {timeout} s\n{exc.stdout!r}")
    return result, time.monotonic() - started


class _Canned(BaseHTTPRequestHandler):
    status = 200
    body = b"<html><body><h1>Welcome to nginx!</h1></body></html>"

    def _answer(self):
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(self.body)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _answer

    def log_message(self, *args):
        pass


def canned_server(status: int):
    handler = type(f"Canned{status}", (_Canned,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class SilentServer:
    """Accepts connections and never answers (a hung server)."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.held.append(self.listener.accept()[0])
            except OSError:
                continue

    def close(self) -> None:
        self.stop_event.set()
        self.thread.join(5)
        for conn in self.held:
            conn.close()
        self.listener.close()


@pytest.fixture(scope="module")
def broken_runs(tmp_path_factory):
    """The suite against each broken target, two at a time (two cores); each run bounded by HANG_LIMIT."""
    silent, html500, html200 = SilentServer(), canned_server(500), canned_server(200)
    targets = {
        "refused": f"http://127.0.0.1:{free_port()}",
        "silent": f"http://127.0.0.1:{silent.port}",
        "html500": f"http://127.0.0.1:{html500.server_address[1]}",
        "html200": f"http://127.0.0.1:{html200.server_address[1]}",
    }
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            dirs = {name: tmp_path_factory.mktemp(name) for name in targets}
            futures = {name: pool.submit(run_suite, url, report_dir=dirs[name]) for name, url in targets.items()}
            return {name: (*future.result(), dirs[name]) for name, future in futures.items()}
    finally:
        silent.close()
        for server in (html500, html200):
            server.shutdown()
            server.server_close()


def assert_fails_clearly(run, *words: str) -> None:
    """Exit 1 with exactly one failing test case, test_target_is_usable, whose message names the problem, in the
    terminal, the JUnit file and the report alike (CI shows the reason, not "no test results")."""
    result, seconds, report_dir = run
    output = result.stdout + result.stderr
    assert result.returncode == 1, f"the suite did not fail (exit 1) against a broken target:\n{output[-3000:]}"
    junit = (report_dir / "junit.xml").read_text(encoding="utf-8")
    report = (report_dir / "contract.md").read_text(encoding="utf-8")
    for word in words:
        for name, text in (("terminal", output), ("junit.xml", junit), ("contract.md", report)):
            assert word.lower() in text.lower(), f"the {name} does not say {word!r}:\n{text[-3000:]}"
    assert junit.count("<testcase ") == 1 and 'name="test_target_is_usable"' in junit and "<failure" in junit, junit
    assert "1 failed" in output and " passed" not in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert seconds < HANG_LIMIT


def test_a_refused_connection_ends_the_run_at_once_naming_it(broken_runs):
    assert_fails_clearly(broken_runs["refused"], "cannot be used", "connection refused")


def test_a_server_that_never_answers_ends_the_run_within_the_request_timeout(broken_runs):
    assert_fails_clearly(broken_runs["silent"], "cannot be used", "timed out", f"within {REQUEST_TIMEOUT:g} s")


@pytest.mark.parametrize("status", [500, 200])
def test_a_server_answering_html_ends_the_run_naming_it(broken_runs, status):
    assert_fails_clearly(broken_runs[f"html{status}"], "cannot be used", f"answered {status}", "text/html")


# --- a non-local URL: no write without --allow-writes ----------------------------------------------------------

STAGING = "http://insights-staging.example"  # never resolved: requests sends it to the proxy below
WRITES = ["contract_tests/test_properties.py", "contract_tests/test_targeted.py", "contract_tests/test_stateful.py",
          "contract_tests/test_auth.py"]


class _Forwarder(BaseHTTPRequestHandler):
    """A plain HTTP proxy in front of the served mock that records every request it forwards."""

    upstream = ""
    seen: list = []

    def _forward(self):
        from urllib.parse import urlsplit

        parts = urlsplit(self.path)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.seen.append((self.command, parts.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "connection", "proxy-connection", "keep-alive", "content-length")}
        answer = requests.request(self.command, self.upstream + path, headers=headers, data=body, timeout=30,
                                  allow_redirects=False)
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.content)

    def __getattr__(self, name):
        if name.startswith("do_"):  # every method, QUERY and BREW included: the mock judges them
            return self._forward
        raise AttributeError(name)

    def log_message(self, *args):
        pass


def forwarding_proxy(upstream: str):
    handler = type("Forwarder", (_Forwarder,), {"upstream": upstream, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


def run_through_proxy(upstream: str, *extra: str):
    """The suite's writing tests against STAGING, sent through a recording proxy to the served mock."""
    server, handler = forwarding_proxy(upstream)
    proxy = f"http://127.0.0.1:{server.server_address[1]}"
    env = {"HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": "", "no_proxy": "",
           # Every kind of token, so that the auth matrix's refused writes (a read-only token's POST) run too.
           "CONTRACT_READONLY_TOKEN": "mock-user-readonly-token", "CONTRACT_NO_ROLE_TOKEN": "mock-user-token",
           "CONTRACT_NO_SCOPE_TOKEN": "mock-noscope-token", "CONTRACT_EXPIRED_TOKEN": "mock-expired-token"}
    command = [sys.executable, "-m", "pytest", *WRITES, "-p", "no:cacheprovider", "-m", "not meta", "-q", "-rs",
               "--base-url", STAGING, "--request-timeout", "10", "--max-rps", "0", "--max-examples", "2",
               "--stateful-scenarios", "1", *extra]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACT_")}
    child_env.update({"CONTRACT_TOKEN": TOKEN, **env})
    try:
        result = subprocess.run(command, cwd=REPO_ROOT, env=child_env, capture_output=True, text=True,
                                timeout=HANG_LIMIT * 2)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the suite hung against {STAGING}\n{exc.stdout!r}")
    finally:
        server.shutdown()
        server.server_close()
    return result, list(handler.seen)


@pytest.fixture(scope="module")
def staging_runs():
    """The same run without and with --allow-writes, side by side (two cores)."""
    mock = ServedMock(seed=42).start()
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            without = pool.submit(run_through_proxy, mock.base_url)
            allowed = pool.submit(run_through_proxy, mock.base_url, "--allow-writes")
            return {"without": without.result(), "allowed": allowed.result()}
    finally:
        mock.stop()


def unsafe(seen) -> list:
    return [(method, path) for method, path in seen if method not in SAFE_METHODS]


def test_a_non_local_url_is_never_written_to_without_allow_writes(staging_runs):
    result, seen = staging_runs["without"]
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert len(seen) > 20, f"the suite hardly talked to the target: {seen}"  # it really ran through the proxy
    assert not unsafe(seen), f"the suite sent unsafe methods to a non-local target without --allow-writes: " \
                             f"{sorted(set(unsafe(seen)))[:8]}"
    assert "--allow-writes" in output, "the skipped writes do not say how to include them"


def test_allow_writes_lets_the_suite_write_to_a_non_local_url(staging_runs):
    """The counterpart: the same run with --allow-writes does POST, so the test above is not vacuous."""
    result, seen = staging_runs["allowed"]
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert any(method == "POST" and path.endswith("/view") for method, path in unsafe(seen)), seen[:20]
