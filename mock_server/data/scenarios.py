"""Scenarios: named states of the mock (fixtures/scenarios/NAME.yaml) a frontend developer switches between.

A scenario file sets the generated data (sizes, seed, popularity skew), the server-wide faults (latency, error
rate) and PINS: exact users, dashboards, tool mappings and audit entries laid on top of the generated data, so a
UI test can rely on a name, an id or a count (data/pins.py makes them consistent with the rest). Files are
checked with a JSON Schema (SCHEMA) and every problem is reported as `file: path: problem`.

Precedence: the scenario's values replace the built-in defaults. Settings given explicitly (a command-line
flag, a MOCK_* variable, a test config) refine the scenario the server starts with (and again when it is
switched back to): `--scenario degraded --error-rate 0` is slow but never fails. A scenario switched to at
runtime applies as written, and the explicit settings only fill what it leaves unset: switching to `empty`
gives an empty tenant even on a server started with --views 100000.

The active scenario of a process, and how every worker follows a switch, is data/runtime.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from ..config import ConfigError
from ..faults import parse_latency
from .generate import Sizes
from .vocab import AUDIT_ACTIONS, AUDIT_TYPES, ROLES, TOOLS

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
OBJECT_ID_PATTERN = "^[0-9a-fA-F]{24}$"
_SIZE_KEYS = {"users": "users", "dashboards": "dashboards", "mappings": "mappings", "views": "views",
              "auditLogs": "audit_logs", "historyDays": "history_days"}
_CONFIG_SIZE = {"users": "USERS", "dashboards": "DASHBOARDS", "mappings": "MAPPINGS", "views": "VIEWS",
                "audit_logs": "AUDIT_LOGS"}

_INSTANT = {"type": "string", "minLength": 1,
            "description": "ISO 8601 instant (2026-11-20T09:30:00Z), an offset before the anchor (-2h, -3d), or "
                           "a time of a day before the anchor's UTC day (-1d@16:42:07.318)"}
_USER_REF = {"type": "string", "minLength": 1, "description": "e-mail or id of a token user or a pinned user"}
_COUNT = {"type": "integer", "minimum": 0, "maximum": 10_000_000}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "insights-mock scenario",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "description": {"type": "string"},
        "seed": {"type": "integer"},
        "sizes": {
            "type": "object", "additionalProperties": False,
            "properties": {**{key: _COUNT for key in _SIZE_KEYS if key != "historyDays"},
                           "historyDays": {"type": "integer", "minimum": 1, "maximum": 3650}},
        },
        "skew": {"type": "number", "minimum": 0, "maximum": 5},
        "latency": {"type": ["string", "integer"], "description": "ms: 100 or a range 50-300; 0 for none"},
        "errorRate": {"type": "number", "minimum": 0, "maximum": 1},
        "pins": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "users": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "required": ["id", "email", "name"],
                    "properties": {"id": {"type": "string", "pattern": OBJECT_ID_PATTERN},
                                   "email": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"},
                                   "name": {"type": "string", "minLength": 1},
                                   "role": {"enum": list(ROLES)}}}},
                "dashboards": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "required": ["id", "name", "owner"],
                    "properties": {
                        "id": {"type": "string", "pattern": UUID_PATTERN},
                        "name": {"type": "string", "minLength": 1, "maxLength": 200},
                        "description": {"type": "string"},
                        "owner": _USER_REF,
                        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}},
                        "kpiCount": {"type": "integer", "minimum": 0, "maximum": 1000},
                        "createdAt": _INSTANT,
                        "views": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
                        "firstViewedAt": _INSTANT,
                        "lastViewedAt": _INSTANT,
                        "viewers": {"type": "array", "minItems": 1, "items": _USER_REF},
                        "viewTimes": {"type": "array", "minItems": 1, "items": _INSTANT,
                                      "description": "each view's instant (instead of views/first/last)"},
                        "createEntry": {"type": "boolean"},
                    }}},
                "mappings": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "required": ["id", "name", "tool"],
                    "properties": {"id": {"type": "string", "pattern": UUID_PATTERN},
                                   "name": {"type": "string", "minLength": 1},
                                   "tool": {"enum": list(TOOLS)},
                                   "createdAt": _INSTANT,
                                   "createdBy": _USER_REF,
                                   "createEntry": {"type": "boolean"}}}},
                "auditEntries": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["id", "type", "action", "target", "user", "timestamp"],
                    "properties": {"id": {"type": "string", "pattern": OBJECT_ID_PATTERN},
                                   "type": {"enum": list(AUDIT_TYPES)},
                                   "action": {"enum": list(AUDIT_ACTIONS)},
                                   "target": {"type": "string", "minLength": 1},
                                   "user": _USER_REF,
                                   "timestamp": _INSTANT,
                                   "updatedAt": _INSTANT,
                                   "details": {"type": "object"}}}},
            },
        },
    },
}
_VALIDATOR = Draft202012Validator(SCHEMA)


class ScenarioError(ConfigError):
    """A scenario that cannot be used: unknown name, unreadable or invalid file, inconsistent pins.
    `status` is what the admin endpoint answers (404 unknown, 400 invalid)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path | None
    document: dict[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return self.document.get("description", "").strip()


@dataclass(frozen=True)
class Settings:
    """What a scenario and the explicit configuration settle on."""

    seed: int
    sizes: Sizes
    latency: str | None
    error_rate: float


def available(directory: str | Path) -> list[str]:
    return sorted(p.stem for p in Path(directory).glob("*.yaml") if NAME.fullmatch(p.stem))


def load(directory: str | Path, name: str) -> Scenario:
    """The scenario `name` of `directory`, schema-checked. Unknown names list the available ones."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ScenarioError(f"scenario name {name!r} is not a name like busy or new-tenant "
                            f"(lower-case letters, digits, - and _)")
    path = Path(directory) / f"{name}.yaml"
    if not path.is_file():
        names = available(directory)
        raise ScenarioError(f"unknown scenario {name!r}; available in {directory}: "
                            f"{', '.join(names) if names else '(none)'}", status=404)
    return Scenario(name=name, path=path, document=parse(path.read_text(encoding="utf-8"), str(path)))


def parse(text: str, where: str) -> dict[str, Any]:
    """The document of a scenario file, or ScenarioError naming the file, the path and every problem."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{where}: not valid YAML: {exc}") from None
    if document is None:
        document = {}
    problems = sorted(_VALIDATOR.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    if problems:
        lines = [f"{where}: {_path(e.absolute_path)}: {e.message}" for e in problems[:20]]
        raise ScenarioError("invalid scenario file:\n  " + "\n  ".join(lines))
    if "latency" in document:
        try:
            parse_latency(str(document["latency"]))
        except ConfigError as exc:
            raise ScenarioError(f"{where}: latency: {exc}") from None
    return document


def _path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def settle(scenario: Scenario, config: dict[str, Any], explicit: set[str], *, refine: bool = True) -> Settings:
    """The scenario's values over the defaults; the explicit configuration over both (refine) or only where
    the scenario is silent (not refine: a scenario switched to at runtime)."""
    doc = scenario.document
    ours = explicit if refine else set()
    seed = config["SEED"] if "SEED" in ours or "seed" not in doc else doc["seed"]
    doc_sizes = {_SIZE_KEYS[k]: v for k, v in doc.get("sizes", {}).items()}
    sizes: dict[str, Any] = dict(doc_sizes)
    for field_name, key in _CONFIG_SIZE.items():
        if key in explicit and config[key] is not None and (refine or field_name not in doc_sizes):
            sizes[field_name] = config[key]
    if "skew" in doc:
        sizes["skew"] = float(doc["skew"])
    latency = config["LATENCY"] if "LATENCY" in ours or "latency" not in doc else str(doc["latency"])
    rate = config["ERROR_RATE"] if "ERROR_RATE" in ours or "errorRate" not in doc else float(doc["errorRate"])
    try:
        return Settings(seed=seed, sizes=Sizes(**sizes), latency=latency, error_rate=rate)
    except ValueError as exc:
        raise ScenarioError(f"{scenario.path}: {exc}") from None
