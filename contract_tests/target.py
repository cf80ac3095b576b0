"""Where the requests go: the mock in-process (WSGI), the mock served by `--serve-mock`, or a deployment.

The tests never branch on the target themselves; they ask the Target for transport arguments
(`call_kwargs`), for a state reset (`reset`, a no-op against a shared deployment) and for raw requests
outside the spec (`raw`, used for routing 404/405 and operator endpoints).
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import requests
from schemathesis import Response

from contract_tests import spec
from contract_tests.settings import REPO_ROOT, SuiteSettings

HEALTH_PATH = "/__admin/health"
RESET_PATH = "/__admin/reset"
START_TIMEOUT = 30.0


class ThrottledSession(requests.Session):
    """A requests session that sends at most `max_rps` requests per second (0 = no limit)."""

    def __init__(self, max_rps: float) -> None:
        super().__init__()
        self._interval = 1.0 / max_rps if max_rps > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def request(self, *args, **kwargs):
        if self._interval:
            with self._lock:
                now = time.monotonic()
                wait = self._next - now
                self._next = max(now, self._next) + self._interval
            if wait > 0:
                time.sleep(wait)
        return super().request(*args, **kwargs)


def load_factory(spec: str):
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"app factory must look like 'module:function', got {spec!r}")
    return getattr(importlib.import_module(module_name), attr)


def in_process_config(settings: SuiteSettings) -> dict:
    """The mock's test config for in-process runs: seeded, no injected latency or errors, and no self-validation
    of responses, so the suite sees exactly what a deployed server would answer."""
    return {
        "TESTING": True,
        # A crash must come back as the 500 a deployment would send, not as a Python exception in the test.
        "PROPAGATE_EXCEPTIONS": False,
        "SEED": settings.mock_seed,
        # Explicit, so a developer's MOCK_* environment cannot slow the run, inject errors or use a file.
        "DB": None,
        "LATENCY": None,
        "ERROR_RATE": 0.0,
        "VALIDATE_RESPONSES": False,
    }


def build_app(settings: SuiteSettings):
    factory = load_factory(settings.app_factory)
    config = in_process_config(settings)
    if settings.mock_variant:
        from contract_tests import broken_variants

        return broken_variants.build(settings.mock_variant, factory, config)
    return factory(config)


def mock_mapping_ids(settings: SuiteSettings, app=None, limit: int = 10) -> list[str]:
    """Tool-mapping ids of the mock's seeded data. No operation lists tool mappings, so for the mock the suite
    reads them from the mock's own dataset (same seed as the target); deployments give --mapping-ids."""
    if app is None:
        app = load_factory(settings.app_factory)({"SEED": settings.mock_seed, "DB": None, "VALIDATE_RESPONSES": False})
    # The default session's data: the suite's requests name no session. An app without it is not the mock:
    # an error here, not an empty list that would skip the mapping tests in silence.
    return [m["mappingId"] for m in app.extensions["insights_mock"].default.make_dataset().mappings[:limit]]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServedMock:
    """The real mock in a subprocess on 127.0.0.1: started, awaited on its health endpoint, stopped."""

    def __init__(self, seed: int, timeout: float = START_TIMEOUT) -> None:
        self.seed = seed
        self.timeout = timeout
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="contract-mock-", suffix=".log", delete=False)

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "mock_server", "serve", "--host", "127.0.0.1", "--port", str(self.port), "--seed", str(self.seed)]

    def start(self) -> ServedMock:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            self.command, cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the mock exited with {self.process.returncode} before it was healthy:\n{self.log_tail()}")
            try:
                if requests.get(self.base_url + HEALTH_PATH, timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the mock did not answer {HEALTH_PATH} within {self.timeout:g} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        text = Path(self._log.name).read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


class Target:
    def __init__(self, settings: SuiteSettings, *, app=None, base_url: str | None = None) -> None:
        self.settings = settings
        self.app = app
        self.base_url = base_url
        self.session = None if app is not None else ThrottledSession(settings.max_rps)

    @property
    def exclusive(self) -> bool:
        return self.settings.exclusive

    def call_kwargs(self) -> dict:
        """Transport arguments for `case.call(...)` / `case.call_and_validate(...)`."""
        if self.app is not None:
            return {}
        return {"base_url": self.base_url, "session": self.session, "timeout": self.settings.request_timeout}

    def url(self, path: str, params: dict | None = None) -> str:
        root = self.base_url or "http://localhost"
        query = f"?{urlencode(params, doseq=True)}" if params else ""
        return f"{root}{path}{query}"

    def raw(self, method: str, path: str, *, headers: dict | None = None, params: dict | None = None) -> Response:
        """A request outside the spec's operations (routing errors, operator endpoints), as a schemathesis Response."""
        headers = dict(headers or {})
        if self.app is not None:
            client = self.app.test_client()
            started = time.monotonic()
            result = client.open(path, method=method, headers=headers, query_string=params)
            elapsed = time.monotonic() - started
            prepared = requests.Request(method=method, url=self.url(path, params), headers=headers).prepare()
            collected: dict[str, list[str]] = {}
            for name, value in result.headers:
                collected.setdefault(name.lower(), []).append(value)
            return Response(
                status_code=result.status_code,
                headers=collected,
                content=result.get_data(),
                request=prepared,
                elapsed=elapsed,
                verify=False,
            )
        response = self.session.request(
            method, self.base_url + path, headers=headers, params=params, timeout=self.settings.request_timeout, allow_redirects=False
        )
        return Response.from_requests(response, verify=True)

    def unreachable(self) -> str | None:
        """Why the target cannot be talked to (DNS, refused, TLS, timeout), or None. Any HTTP answer will do:
        one clear message beats a connection traceback in every test."""
        probe = next(op for op in spec.operations() if not op.path_params)
        try:
            self.raw(probe.method, probe.path)
        except requests.RequestException as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def reset(self) -> bool:
        """Regenerate the server's state from its seed; False (nothing done) against a shared deployment."""
        if not self.exclusive:
            return False
        response = self.raw("POST", RESET_PATH)
        if response.status_code >= 300:
            raise RuntimeError(f"POST {RESET_PATH} answered {response.status_code}: {response.content[:300]!r}")
        return True

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
