"""Scenarios: named states of the mock (fixtures/scenarios/NAME.yaml) a frontend developer switches between.

A scenario file sets the generated data (sizes, seed, popularity skew), the server-wide faults (latency, error
rate) and PINS: exact users, dashboards, tool mappings and audit entries laid on top of the generated data, so a
UI test can rely on a name, an id or a count. Pins are made consistent with the rest: a pinned dashboard with
`views: 42` gets 42 view events (so stats, most/recently viewed and its `view` audit entries agree) and a
`create` audit entry; every id has the spec's pattern. Files are checked with a JSON Schema (SCHEMA) and every
problem is reported as `file: path: problem`.

Precedence: the scenario's values replace the built-in defaults. Settings given explicitly (a command-line
flag, a MOCK_* variable, a test config) refine the scenario the server starts with (and again when it is
switched back to): `--scenario degraded --error-rate 0` is slow but never fails. A scenario switched to at
runtime applies as written, and the explicit settings only fill what it leaves unset: switching to `empty`
gives an empty tenant even on a server started with --views 100000.

Several processes (gunicorn workers) share one database: a switch or a reset loads the data and bumps a
generation counter in the same transaction (Store.load_scenario); every worker compares that counter with its
own at most every `sync_interval_s` and, when it moved, adopts the scenario's per-process settings (latency,
error rate, a fresh fault RNG). So a reset or a switch reaches every worker, not only the one that answered.
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from .config import ConfigError
from .datagen import AUDIT_ACTIONS, AUDIT_TYPES, ROLES, TOOLS, Sizes, generate, stream
from .faults import Faults, parse_latency
from .ids import object_id_ms
from .store.base import Dataset
from .timestamps import iso_ms, to_ms

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
OBJECT_ID_PATTERN = "^[0-9a-fA-F]{24}$"
# An ISO 8601 instant, or an offset before the data's anchor: "-2h", "-3d", "-1d12h30m", "now".
_RELATIVE = re.compile(r"-(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_SIZE_KEYS = {"users": "users", "dashboards": "dashboards", "mappings": "mappings", "views": "views",
              "auditLogs": "audit_logs", "historyDays": "history_days"}
_CONFIG_SIZE = {"users": "USERS", "dashboards": "DASHBOARDS", "mappings": "MAPPINGS", "views": "VIEWS",
                "audit_logs": "AUDIT_LOGS"}
DEFAULT_SYNC_INTERVAL_S = 0.1

_INSTANT = {"type": "string", "minLength": 1,
            "description": "ISO 8601 instant (2026-11-20T09:30:00Z) or an offset before the anchor (-2h, -3d)"}
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


def build_dataset(scenario: Scenario, settings: Settings, *, anchor: datetime, users: list[dict],
                  account: str, streaming: bool = False) -> Dataset:
    """The generated data of the settings with the scenario's pins laid on top. Without pins the views and
    audit entries stay one-shot iterators (datagen.stream) that the store consumes as it loads, so a 1M-row
    scenario loads in flat memory; pins need the lists to check and extend. streaming=False: lists always."""
    pins = scenario.document.get("pins")
    if streaming and not pins:
        return stream(seed=settings.seed, anchor=anchor, users=users, account=account, sizes=settings.sizes)
    dataset = generate(seed=settings.seed, anchor=anchor, users=users, account=account, sizes=settings.sizes)
    if pins:
        _Pinner(scenario, settings.seed, anchor, dataset, users).apply(pins)
    return dataset


class _Pinner:
    def __init__(self, scenario: Scenario, seed: int, anchor: datetime, dataset: Dataset, users: list[dict]) -> None:
        self.where = str(scenario.path or scenario.name)
        self.anchor = anchor
        self.anchor_ms = to_ms(anchor)
        self.rng = random.Random(f"pins:{seed}")  # ids of the pins' events, the same on every run
        self.data = dataset
        self.token_users = list(users)
        self.by_ref: dict[str, dict] = {}
        for user in dataset.users:
            self.by_ref.setdefault(user["id"].lower(), user)
            self.by_ref.setdefault(user["email"].lower(), user)

    def fail(self, path: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.where}: pins.{path}: {message}")

    def claim(self, known: set[str], pinned_id: str, path: str, kind: str) -> str:
        """The pinned id, lower-cased, taken from `known`; a second pin of the same id is an error."""
        claimed = pinned_id.lower()
        if claimed in known:
            raise self.fail(f"{path}.id", f"{kind} {claimed} is pinned twice")
        known.add(claimed)
        return claimed

    def instant(self, value: str, path: str) -> int:
        text = value.strip()
        if text == "now":
            return self.anchor_ms - 1
        match = _RELATIVE.fullmatch(text)
        if match and any(match.groups()):
            d, h, m, s = (int(g or 0) for g in match.groups())
            return self.anchor_ms - int(timedelta(days=d, hours=h, minutes=m, seconds=s).total_seconds() * 1000)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise self.fail(path, f"{value!r} is neither an ISO 8601 instant nor an offset like -2h or -3d") \
                from None
        ms = to_ms(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
        if ms >= self.anchor_ms:
            raise self.fail(path, f"{value!r} is not before the data's anchor {iso_ms(self.anchor_ms)} "
                                  f"(pinned history happens before now; see --now)")
        return ms

    def user(self, ref: str, path: str) -> dict:
        user = self.by_ref.get(ref.strip().lower())
        if user is None:
            raise self.fail(path, f"{ref!r} is neither a token user nor a pinned user (give an e-mail or id)")
        return user

    def apply(self, pins: dict) -> None:
        data = self.data
        fixture_ids = {u["id"] for u in data.users}
        for i, pinned in enumerate(pins.get("users", [])):
            uid, email = pinned["id"].lower(), pinned["email"]
            if uid in self.by_ref or email.lower() in self.by_ref:
                clash = "id" if uid in self.by_ref else "e-mail"
                raise self.fail(f"users[{i}]", f"{clash} already belongs to another user "
                                               f"({'a token user' if uid in fixture_ids else 'the data'})")
            user = {"id": uid, "email": email, "name": pinned["name"], "role": pinned.get("role", "User")}
            data.users.append(user)
            self.by_ref[uid] = self.by_ref[email.lower()] = user

        known_dashboards = {d["dashboardId"].lower() for d in data.dashboards}
        refs: dict[str, dict] = {}
        views: list[tuple[int, dict]] = []
        entries: list[tuple[int, dict]] = []
        for i, pinned in enumerate(pins.get("dashboards", [])):
            path = f"dashboards[{i}]"
            did = self.claim(known_dashboards, pinned["id"], path, "dashboard")
            owner = self.user(pinned["owner"], f"{path}.owner")
            dashboard = {"dashboardId": did, "name": pinned["name"]}
            if "description" in pinned:
                dashboard["description"] = pinned["description"]
            dashboard["owner"] = {"userId": owner["id"], "email": owner["email"], "name": owner["name"]}
            dashboard["tags"] = list(pinned.get("tags", []))
            dashboard["kpiCount"] = pinned.get("kpiCount", 6)
            data.dashboards.append(dashboard)
            refs[did] = {"dashboardId": did, "name": pinned["name"]}

            count = pinned.get("views", 0)
            last = self.instant(pinned.get("lastViewedAt", "-1h"), f"{path}.lastViewedAt")
            first = (self.instant(pinned["firstViewedAt"], f"{path}.firstViewedAt") if "firstViewedAt" in pinned
                     else last - 29 * 86_400_000 if count > 1 else last)
            if first > last:
                raise self.fail(path, "firstViewedAt is after lastViewedAt")
            created = (self.instant(pinned["createdAt"], f"{path}.createdAt") if "createdAt" in pinned
                       else min(first, last) - 86_400_000 if count else self.anchor_ms - 30 * 86_400_000)
            if count and created >= first:
                raise self.fail(f"{path}.createdAt", "the dashboard must be created before its first view")
            viewers = [self.user(v, f"{path}.viewers[{j}]") for j, v in enumerate(pinned.get("viewers", []))] \
                or self.token_users or [owner]
            # Newest first: view j (0 = the latest, at lastViewedAt) is by viewers[j % len(viewers)], so the
            # first viewer's own last view is lastViewedAt.
            for j in range(count):
                ms = last if count == 1 else last - round((last - first) * j / (count - 1))
                viewer = viewers[j % len(viewers)]
                views.append((ms, {"_id": object_id_ms(ms, self.rng), "dashboardId": did,
                                   "userId": viewer["id"], "viewedAt": iso_ms(ms)}))
                entries.append(self.entry(ms, viewer, "dashboard", "view", did, ("dashboard", refs[did]), None))
            if pinned.get("createEntry", True):
                entries.append(self.entry(created, owner, "dashboard", "create", did, ("dashboard", refs[did]),
                                          {"kpiCount": dashboard["kpiCount"], "tags": dashboard["tags"]}))

        known_mappings = {m["mappingId"].lower() for m in data.mappings}
        mapping_refs: dict[str, dict] = {}
        for i, pinned in enumerate(pins.get("mappings", [])):
            path = f"mappings[{i}]"
            mid = self.claim(known_mappings, pinned["id"], path, "mapping")
            mapping = {"mappingId": mid, "tool": pinned["tool"], "name": pinned["name"]}
            data.mappings.append(mapping)
            mapping_refs[mid] = mapping
            if pinned.get("createEntry", True):
                created = self.instant(pinned.get("createdAt", "-60d"), f"{path}.createdAt")
                by = (self.user(pinned["createdBy"], f"{path}.createdBy") if "createdBy" in pinned
                      else (self.token_users or data.users)[0])
                entries.append(self.entry(created, by, "tool_mapping", "create", mid, ("tool_mapping", dict(mapping)),
                                          {"tool": mapping["tool"]}))

        taken = {e["_id"].lower() for e in data.audit_logs}
        for i, pinned in enumerate(pins.get("auditEntries", [])):
            path = f"auditEntries[{i}]"
            type_, action, target = pinned["type"], pinned["action"], pinned["target"].strip()
            ref = None
            if type_ in ("dashboard", "tool_mapping"):
                if not re.fullmatch(UUID_PATTERN, target):
                    raise self.fail(f"{path}.target", f"a {type_} target is a UUID, not {target!r}")
                target = target.lower()
                if type_ == "dashboard" and target in refs:
                    ref = ("dashboard", refs[target])
                elif type_ == "tool_mapping" and target in mapping_refs:
                    ref = ("tool_mapping", dict(mapping_refs[target]))
                elif not (type_ == "dashboard" and action == "view"):
                    # The spec names the target of every dashboard/tool_mapping entry (but a view of an
                    # unknown dashboard), so the target must be pinned here to have a name.
                    raise self.fail(f"{path}.target", f"{target} is not a pinned {type_.replace('_', ' ')}")
            user = self.user(pinned["user"], f"{path}.user")
            created = self.instant(pinned["timestamp"], f"{path}.timestamp")
            updated = self.instant(pinned["updatedAt"], f"{path}.updatedAt") if "updatedAt" in pinned else created
            if updated < created:
                raise self.fail(f"{path}.updatedAt", "is before the timestamp")
            _, entry = self.entry(created, user, type_, action, target, ref, pinned.get("details"),
                                  oid=pinned["id"].lower(), updated=updated)
            if entry["_id"] in taken:
                raise self.fail(f"{path}.id", f"audit entry id {entry['_id']} is used twice")
            entries.append((created, entry))
            taken.add(entry["_id"])

        data.views.extend(v for _, v in sorted(views, key=lambda item: item[0]))
        data.audit_logs.extend(e for _, e in sorted(entries, key=lambda item: (item[0], item[1]["_id"])))

    def entry(self, ms: int, user: dict, type_: str, action: str, target: str, ref: tuple[str, dict] | None,
              details: dict | None, *, oid: str | None = None, updated: int | None = None) -> tuple[int, dict]:
        entry = {"_id": oid or object_id_ms(ms, self.rng), "user_id": user["id"], "user_email": user["email"],
                 "type": type_, "action": action, "target_id": target, "account": self.data.account}
        if ref is not None:
            entry[ref[0]] = ref[1]
        if details is not None:
            entry["details"] = details
        entry["createdAt"] = iso_ms(ms)
        entry["updatedAt"] = iso_ms(ms if updated is None else updated)
        entry["__v"] = 0 if updated is None or updated == ms else 1
        return ms, entry


class ScenarioRuntime:
    """The active scenario of one app (one process), and how it follows the shared database."""

    def __init__(self, *, directory: str | Path, name: str, config: dict[str, Any], explicit: set[str],
                 anchor: datetime, users: list[dict], account: str,
                 sync_interval_s: float = DEFAULT_SYNC_INTERVAL_S) -> None:
        self.directory = Path(directory)
        self.config = config
        self.explicit = explicit
        self.anchor = anchor
        self.users = users
        self.account = account
        self.sync_interval_s = sync_interval_s
        self.startup = name  # the explicit settings refine this one (see settle)
        self.scenario = load(self.directory, name)
        self.settings = self._settle(self.scenario)
        self.generation = 0
        self.lock = threading.Lock()
        self._checked = time.monotonic()

    @property
    def name(self) -> str:
        return self.scenario.name

    def _settle(self, scenario: Scenario) -> Settings:
        # A function of the name only, so every worker settles a switched-to scenario the same way.
        return settle(scenario, self.config, self.explicit, refine=scenario.name == self.startup)

    def make_dataset(self, scenario: Scenario | None = None, settings: Settings | None = None, *,
                     streaming: bool = False) -> Dataset:
        """The scenario's data; streaming=True for a store to load (one-shot iterators, flat memory)."""
        return build_dataset(scenario or self.scenario, settings or self.settings, anchor=self.anchor,
                             users=self.users, account=self.account, streaming=streaming)

    def faults(self, previous: Faults | None = None) -> Faults:
        s = self.settings
        return Faults(seed=s.seed, latency=parse_latency(s.latency), error_rate=s.error_rate,
                      **({"sleep": previous.sleep} if previous is not None else {}))

    def adopt(self, state, scenario: Scenario, generation: int) -> None:
        """Take on a scenario's per-process settings (the data is already in the store)."""
        self.scenario = scenario
        self.settings = self._settle(scenario)
        self.generation = generation
        state.faults = self.faults(state.faults)

    def start(self, state) -> None:
        """After the store is loaded: record our scenario in a fresh database, or follow the one a database
        file already holds (another worker may have switched it)."""
        name, generation = state.store.claim_scenario(self.name)
        if name != self.name:
            self._follow(state, name, generation)
        self.generation = generation

    def switch(self, state, name: str) -> None:
        scenario = load(self.directory, name)
        settings = self._settle(scenario)
        dataset = self.make_dataset(scenario, settings, streaming=True)
        with self.lock:
            generation = state.store.load_scenario(dataset, scenario.name)
            self.scenario, self.settings = scenario, settings
            self.generation = generation
            state.faults = self.faults(state.faults)

    def reset(self, state) -> None:
        dataset = self.make_dataset(streaming=True)
        with self.lock:
            self.generation = state.store.load_scenario(dataset, self.name)
            state.faults = self.faults(state.faults)

    def sync(self, state) -> None:
        """Cheap unless due: one meta read per `sync_interval_s` per process, none with an in-memory store."""
        if state.config["DB"] is None and state.config.get("DATABASE_URL") is None:
            return
        now = time.monotonic()
        if now - self._checked < self.sync_interval_s:
            return
        self._checked = now
        name, generation = state.store.scenario_meta()
        if generation != self.generation and name is not None:
            with self.lock:
                if generation != self.generation:
                    self._follow(state, name, generation)

    def _follow(self, state, name: str, generation: int) -> None:
        try:
            scenario = load(self.directory, name)
        except ScenarioError as exc:  # the data is there; only this process's settings cannot follow
            import logging

            logging.getLogger("insights_mock").error("cannot follow scenario %r: %s", name, exc)
            scenario = Scenario(name=name, path=None, document={})
        self.adopt(state, scenario, generation)

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {"name": self.name, "description": self.scenario.description, "seed": s.seed,
                "latency": s.latency, "errorRate": s.error_rate, "skew": s.sizes.skew,
                "generation": self.generation}
