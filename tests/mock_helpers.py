"""Constants and small helpers shared by the mock's unit tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import referencing
import referencing.jsonschema
import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "openapi.yaml"
TOKENS_PATH = ROOT / "fixtures" / "tokens.yaml"
PREFIX = "/api/v2/insights/kpis/audit-logs"
NOW = "2026-11-25T12:00:00.000Z"

# Small enough that an app per test costs little, big enough for several pages of audit entries.
SMALL = {"USERS": 12, "DASHBOARDS": 12, "MAPPINGS": 6, "VIEWS": 600, "AUDIT_LOGS": 400}

SPEC = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
TOKENS = yaml.safe_load(TOKENS_PATH.read_text(encoding="utf-8"))["tokens"]
UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"

_SPEC_REGISTRY = referencing.Registry().with_resource(
    "urn:insights-spec",
    referencing.Resource.from_contents(SPEC, default_specification=referencing.jsonschema.DRAFT202012),
)


def component_validator(name: str) -> Draft202012Validator:
    """A validator of one of the spec's component schemas, formats checked."""
    return Draft202012Validator({"$ref": f"urn:insights-spec#/components/schemas/{name}"},
                                registry=_SPEC_REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER)
UNKNOWN_OBJECT_ID = "0123456789abcdef01234567"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ADMIN = bearer("mock-admin-token")
AUDITOR = bearer("mock-auditor-token")
READONLY = bearer("mock-user-readonly-token")
WRITERS = ("mock-admin-token", "mock-opsera-admin-token", "mock-poweruser-token", "mock-user-token")


def url(path: str) -> str:
    return PREFIX + path


def operations() -> list[tuple[str, str, str]]:
    """(operationId, method, path template) of every operation of the spec."""
    found = []
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "operationId" in op:
                found.append((op["operationId"], method.upper(), path))
    return found


# --- a served mock in a subprocess (test_cli, test_serving) ---------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LISTENING = re.compile(r"^listening on http://\S+:(\d+)$", re.MULTILINE)


def start(args: list[str], env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Start `python -m mock_server serve --port 0` and wait for its `listening on` line, which comes once the
    port answers and the data is loaded, with the port it bound (no free port guessed beforehand, which another
    program could take meanwhile). Its output goes to files, not pipes (a full pipe would block the server's
    logging, and with it the server)."""
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_server", "serve", "--port", "0", *args],
        cwd=ROOT, stdout=out, stderr=err, text=True, env={**os.environ, **(env or {})})
    process.outputs = (out, err)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = LISTENING.search(written(out))
        if found:
            return process, f"http://127.0.0.1:{found.group(1)}"
        if process.poll() is not None:
            raise AssertionError(f"server exited: {stop(process)}")
        time.sleep(0.05)
    stop(process)
    raise AssertionError("server did not say it was listening in 60 s")


def written(stream) -> str:
    """What a server wrote so far to one of its output files, read without moving the offset it writes at."""
    return os.pread(stream.fileno(), 1 << 24, 0).decode("utf-8", "replace")


def stop(process: subprocess.Popen) -> tuple[str, str]:
    """Stop the server we started (by its pid) and return its stdout and stderr."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    texts = []
    for stream in process.outputs:  # type: ignore[attr-defined]
        stream.seek(0)
        texts.append(stream.read())
        stream.close()
    return texts[0], texts[1]


def load_soak():
    """scripts/soak.py as a module (it is a script, not part of the package): the load and crash tests drive it."""
    import importlib.util
    import sys

    if "soak" in sys.modules:
        return sys.modules["soak"]
    spec = importlib.util.spec_from_file_location("soak", ROOT / "scripts" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def need_browser(condition: bool, reason: str) -> None:
    """Skip a browser test whose tools are missing, unless INSIGHTS_MOCK_REQUIRE_BROWSER=1 (CI) says it must
    run: there a missing tool is a failure, never a skip."""
    import pytest

    if condition:
        return
    if os.environ.get("INSIGHTS_MOCK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and INSIGHTS_MOCK_REQUIRE_BROWSER=1 says the browser tests must run")
    pytest.skip(f"{reason} (apt-get install chromium nodejs npm; CI installs them)")
