"""Constants and small helpers shared by the mock's unit tests (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

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
