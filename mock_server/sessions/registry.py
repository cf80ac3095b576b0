"""Sessions: which session a request names, and making, finding, limiting and dropping them.

A request names its session with the header `X-Mock-Session: <name>` or, from a browser page that cannot set
headers, the cookie `mock_session=<name>`; without either it is the default session's. The registry of
sessions is a table of the main database (mock_server.store.sessions), so every worker and every replica
sharing that database agrees on which sessions exist. A session's data is a sibling store of the main one
(an in-memory database, a file beside the --db file, or a schema of the PostgreSQL database), named by the
session and its incarnation, and copied from a template: the scenario's data generated from the seed once
per process and scenario, then copied (SQLite's backup, or INSERT ... SELECT): milliseconds, not the
generator's few hundred.

A worker that holds a session checks, at each request, that the registry still holds the same incarnation
(with a shared database another worker or replica may have deleted it, or its TTL may have run out), and
marks it used at most once a second. Nothing here locks anything across processes: the database does.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from werkzeug.http import parse_cookie

from ..api.cache import ResponseCache
from ..data import scenarios as scenario_files
from ..data.runtime import ScenarioRuntime
from ..errors import ApiError, BadRequest, NotFound
from ..journal import Journal
from ..store.base import Store
from ..store.sessions import SessionLimitError, SessionRecord
from ..timestamps import iso_ms
from .session import DEFAULT, Session

HEADER = "X-Mock-Session"
COOKIE = "mock_session"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,47}")  # fits a file name and a PostgreSQL schema name
TOUCH_INTERVAL_S = 1.0  # how often a process marks a session it serves as used (the TTL's clock)
TEMPLATES_KEPT = 8  # in-memory templates kept per process (one per scenario, settings and anchor)
TEMPLATE_AT_START_MAX = 200_000  # views + audit entries up to which the start-up data is kept as a template

_logger = logging.getLogger("insights_mock")


def requested_name(environ: dict) -> str | None:
    """The session a request names: the header, else the cookie, else None (the default session)."""
    header = environ.get("HTTP_X_MOCK_SESSION")
    if header is not None:
        return header.strip()
    cookie = environ.get("HTTP_COOKIE")
    if cookie and COOKIE in cookie:
        return parse_cookie(cookie).get(COOKIE)
    return None


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise BadRequest(f"Bad Request - {name[:80]!r} is not a session name",
                         error="invalid_session",
                         details=[{"location": "header", "name": HEADER,
                                   "message": "1 to 48 of A-Z a-z 0-9 . _ -, starting with a letter or digit "
                                              "(or the cookie mock_session)"}])
    return name


class SessionLimit(ApiError):
    status = 503
    error = "session_limit"


class SessionFactory:
    """Makes the Session of a registry record: its scenario runtime, its store (a copy of the template), its
    journal and cache. Holds what every session shares: the configuration, the tokens' users, the server's
    clock and anchor, the main store the siblings sit beside."""

    def __init__(self, *, config: dict[str, Any], explicit: set[str], users: list[dict], account: str,
                 main_store: Store, clock, anchor: datetime, secrets: list[str], shared: bool) -> None:
        self.config, self.explicit, self.users, self.account = config, explicit, users, account
        self.main_store, self.clock, self.anchor = main_store, clock, anchor
        self.secrets, self.shared = secrets, shared
        self._templates: OrderedDict[str, Store] = OrderedDict()

    def runtime(self, scenario: str, anchor: datetime, store: Store | None) -> ScenarioRuntime:
        config = self.config
        return ScenarioRuntime(directory=config["SCENARIOS_DIR"], name=scenario, config=config,
                               explicit=self.explicit, anchor=anchor, users=self.users, account=self.account,
                               store=store, shared=self.shared, startup=config["SCENARIO"],
                               sync_interval_s=config.get("SCENARIO_SYNC_S", 0.1))

    def open(self, record: SessionRecord, *, store: Store | None = None, journal: Journal | None = None) -> Session:
        """The session of `record`; `store` and `journal` are kept from a session this one replaces (reload)."""
        from ..state import Clock  # state imports this module

        now = datetime.fromtimestamp(record.now_ms / 1000, UTC) if record.now_ms is not None else None
        anchor = now or self.anchor
        clock = Clock(now, frozen=True) if now is not None else self.clock
        runtime = self.runtime(record.scenario or self.config["SCENARIO"], anchor, None)
        key = sibling_key(record)
        if store is None:
            store = self.main_store.sibling(key, copy_of=self.template(runtime))
        runtime.store = store
        runtime.start()
        if journal is None:
            directory = self.config.get("JOURNAL_DIR")
            journal = Journal(self.config["JOURNAL_SIZE"], self.secrets,
                              Path(directory) / "sessions" / key if directory else None)
        cache = ResponseCache(store.version) if self.config["RESPONSE_CACHE"] else None
        return Session(name=record.name, store=store, scenarios=runtime, journal=journal, response_cache=cache,
                       clock=clock, anchor=anchor, key=key, incarnation=record.incarnation,
                       created_ms=record.created_ms)

    def _template_key(self, runtime: ScenarioRuntime) -> str:
        identity = repr((runtime.name, runtime.settings, runtime.anchor.isoformat(), self.account, self.users))
        return "_t-" + hashlib.sha256(identity.encode()).hexdigest()[:16]

    def keep_template(self, runtime: ScenarioRuntime, pristine: Store) -> None:
        """Keep a copy of a store just loaded with the runtime's data as its template, if the data is small
        (a copy of a large dataset would double the memory of a mock that may never see a session)."""
        sizes = runtime.settings.sizes
        if self.config["MAX_SESSIONS"] > 0 and sizes.views + sizes.audit_logs <= TEMPLATE_AT_START_MAX:
            key = self._template_key(runtime)
            self._templates[key] = self.main_store.sibling(key, copy_of=pristine)

    def template(self, runtime: ScenarioRuntime) -> Store:
        """The pristine data of the runtime's scenario, settings and anchor, generated once per process."""
        key = self._template_key(runtime)
        store = self._templates.get(key)
        if store is not None:
            self._templates.move_to_end(key)
            return store
        store = self.main_store.sibling(key)
        store.ensure_loaded(lambda: runtime.make_dataset(streaming=True))
        self._templates[key] = store
        while len(self._templates) > TEMPLATES_KEPT:
            _, oldest = self._templates.popitem(last=False)
            oldest.close()  # an in-memory one is gone; a file or schema stays, for the next process that needs it
        return store

    def close(self) -> None:
        for store in self._templates.values():
            store.close()
        self._templates.clear()


def sibling_key(record: SessionRecord) -> str:
    return f"{record.name}.{record.incarnation[:8]}"


class Sessions:
    """The sessions of one app (process): the default one, and the named ones it has opened."""

    def __init__(self, default: Session, factory: SessionFactory) -> None:
        self.default = default
        self.factory = factory
        config = factory.config
        self.limit = config["MAX_SESSIONS"]
        self.ttl_s, self.busy_s = config["SESSION_TTL"], config["SESSION_BUSY_S"]
        self.table = factory.main_store.sessions
        self._live: dict[str, Session] = {}
        self._opening = threading.Lock()  # one session opened at a time in this process (its handles)

    def for_request(self, environ: dict) -> Session:
        """The session a request names (made on first use); BadRequest for a bad name, SessionLimit when
        every session is busy."""
        name = requested_name(environ)
        if name is None or name == DEFAULT:
            return self.default
        return self.get(check_name(name))

    def get(self, name: str, *, create: bool = True) -> Session:
        live = self._live.get(name)
        if live is not None and self._still_valid(live):
            return live
        with self._opening:
            live = self._live.get(name)
            if live is not None and self._still_valid(live):
                return live
            return self._claim(name, create=create)

    def _still_valid(self, session: Session) -> bool:
        """False if the registry no longer holds this incarnation (deleted, expired, replaced elsewhere)."""
        if self.factory.shared:
            record = self.table.get(session.name)
            if record is None or record.incarnation != session.incarnation:
                self._forget(session)
                return False
        now = time.monotonic()
        if now - session.checked >= TOUCH_INTERVAL_S:
            session.checked = now
            if not self.table.touch(session.name, _now_ms()):
                self._forget(session)
                return False
        return True

    def _claim(self, name: str, *, create: bool, scenario: str | None = None, now_ms: int | None = None) -> Session:
        if create and self.limit == 0:
            raise SessionLimit("Service Unavailable - Sessions are off (--max-sessions 0)",
                               details=[{"message": "start the mock with --max-sessions N (MOCK_MAX_SESSIONS)"}])
        try:
            claim = self.table.claim(name, at_ms=_now_ms(), limit=self.limit, ttl_ms=int(self.ttl_s * 1000),
                                     busy_ms=int(self.busy_s * 1000), create=create, scenario=scenario,
                                     now_ms=now_ms)
        except SessionLimitError as exc:
            raise SessionLimit(
                f"Service Unavailable - All {exc.limit} sessions are in use (--max-sessions {exc.limit})",
                details=[{"message": f"every live session was used in the last {exc.busy_s:g} s; delete one "
                                     "(DELETE /__admin/sessions/NAME), wait, or start the mock with a higher "
                                     "--max-sessions"}],
                headers={"Retry-After": str(max(1, round(exc.busy_s)))}) from None
        if claim is None:
            raise NotFound(f"Not Found - No session {name!r}", error="not_found")
        self._drop(claim.dropped)
        session = self.factory.open(claim.record)
        self._live[name] = session
        return session

    def create(self, name: str, *, scenario: str | None, now: datetime | None) -> Session:
        """A new session with its own scenario or frozen clock (POST /__admin/sessions); Conflict if it exists."""
        check_name(name)
        if name == DEFAULT:
            raise ApiError("Conflict - The default session always exists", error="conflict", status=409)
        if scenario is not None:
            scenario_files.load(self.factory.config["SCENARIOS_DIR"], scenario)  # ScenarioError before claiming
        with self._opening:
            if self.table.get(name) is not None:
                raise ApiError(f"Conflict - Session {name!r} exists", error="conflict", status=409,
                               details=[{"message": f"DELETE /__admin/sessions/{name} first, or reset it"}])
            now_ms = int(now.timestamp() * 1000) if now is not None else None
            return self._claim(name, create=True, scenario=scenario, now_ms=now_ms)

    def delete(self, name: str) -> bool:
        record = self.table.delete(check_name(name))
        if record is None:
            return False
        self._drop([record])
        return True

    def opened(self, name: str) -> Session | None:
        """The session `name` if this process has it open (it may exist in the registry only)."""
        return self._live.get(name)

    def records(self) -> list[SessionRecord]:
        """The live sessions of the registry, after dropping those whose TTL ran out."""
        self._drop(self.table.expire(_now_ms(), int(self.ttl_s * 1000)))
        return self.table.all()

    def _drop(self, records: list[SessionRecord]) -> None:
        for record in records:
            live = self._live.get(record.name)
            if live is not None and live.incarnation == record.incarnation:
                self._forget(live)
            try:
                self.factory.main_store.drop_sibling(sibling_key(record))
            except Exception as exc:  # noqa: BLE001 - the registry no longer lists it; its data is garbage
                _logger.warning("could not delete the data of session %r: %s", record.name, exc)

    def _forget(self, session: Session) -> None:
        if self._live.get(session.name) is session:
            del self._live[session.name]
        session.close()

    def adopt(self, old: Sessions) -> None:
        """Take over the sessions of the app this one replaces (reload): their data and journals, with
        runtimes made from the new configuration."""
        for name, session in old._live.items():
            record = self.table.get(name)
            if record is not None and record.incarnation == session.incarnation:
                self._live[name] = self.factory.open(record, store=session.store, journal=session.journal)
        old._live.clear()

    def close(self) -> None:
        for session in list(self._live.values()):
            session.close()
        self._live.clear()
        self.factory.close()


def _now_ms() -> int:
    return int(time.time() * 1000)


def describe(record: SessionRecord, session: Session | None) -> dict[str, Any]:
    """A session as GET /__admin/sessions lists it."""
    out: dict[str, Any] = {"name": record.name, "scenario": record.scenario, "created": iso_ms(record.created_ms),
                           "lastUsed": iso_ms(record.last_used_ms),
                           "now": iso_ms(record.now_ms) if record.now_ms is not None else None}
    if session is not None:
        out.update({key: value for key, value in session.describe().items() if key != "name"})
    return out
