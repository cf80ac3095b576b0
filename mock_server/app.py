"""create_app(test_config=None): the mock, assembled once.

    config  ->  State (spec, tokens, store, clock, scenarios and their faults, journal, cache, validators)
            ->  HostGuard (RFC 9112's Host rules, before anything else)
                  API prefix:  ApiPipeline (mock_server.http.pipeline: every request to the seven operations)
                  otherwise:   the operator app (Flask: /__admin/*, /docs, /openapi.yaml; 404 elsewhere)

The returned Flask app is the whole mock: its wsgi_app is the chain above, so `app.test_client()`, werkzeug
and gunicorn all serve the same thing. The State is `app.extensions["insights_mock"]`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from .api import handlers
from .api.cache import ResponseCache
from .auth import TokenRegistry
from .config import explicit_keys, load_config
from .data.runtime import ScenarioRuntime
from .http.cors import CorsPolicy
from .http.host_guard import HostGuard
from .http.pipeline import ApiPipeline
from .http.routes import Router
from .journal import Journal, Redactor
from .operator import operator_app
from .spec import Spec, load_spec
from .sessions import DEFAULT, Session, SessionFactory, Sessions
from .state import EXTENSION, Clock, State
from .store import Dataset, open_store
from .validation import RequestValidator, ResponseValidator

__all__ = ["EXTENSION", "State", "create_app", "api_prefix"]


def create_app(test_config: dict[str, Any] | None = None, *, carry: State | None = None) -> Flask:
    """The app. `carry` (mock_server.reload) is the state of the app this one replaces: its store (data,
    recorded views), clock and journal are kept."""
    config = load_config(test_config)
    state = build_state(config, explicit_keys(test_config), carry)
    app = operator_app(state, config)
    api = ApiPipeline(state, Router(state.spec, handlers()))
    app.wsgi_app = HostGuard(ByPrefix(api_prefix(state.spec), api, app.wsgi_app))
    return app


def build_state(config: dict[str, Any], explicit: set[str], carry: State | None = None) -> State:
    spec = load_spec(config["SPEC_FILE"])
    tokens = TokenRegistry.from_file(config["TOKENS_FILE"])
    if carry is not None:
        anchor, clock, store = carry.anchor, carry.clock, carry.default.store
    else:
        anchor = config["NOW"] or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        clock = Clock(anchor, frozen=True) if config["FREEZE_CLOCK"] else Clock(config["NOW"])
        store = open_store(config["DB"], config["DATABASE_URL"])
    secrets = [token for token, _ in tokens.entries()] + [config["ADMIN_TOKEN"] or ""]
    if carry is not None:  # keep what was recorded; redact the new file's tokens and the old ones' too
        journal = carry.default.journal
        secrets = [*journal.redactor.secrets, *secrets]
        journal.redactor = Redactor(secrets)
    else:
        journal = Journal(config["JOURNAL_SIZE"], secrets, config.get("JOURNAL_DIR"))
    factory = SessionFactory(config=config, explicit=explicit, users=tokens.users, account=tokens.account,
                             main_store=store, clock=clock, anchor=anchor, secrets=secrets,
                             shared=bool(config["DB"] or config["DATABASE_URL"]))
    runtime = factory.runtime(config["SCENARIO"], anchor, store)
    default = Session(name=DEFAULT, store=store, scenarios=runtime, journal=journal, clock=clock, anchor=anchor,
                      response_cache=ResponseCache(store.version) if config["RESPONSE_CACHE"] else None)
    testing = bool(config.get("TESTING"))
    if store.ensure_loaded(lambda: _with_progress(runtime, testing)):
        factory.keep_template(runtime, store)  # the first session costs a copy, not a generation
    runtime.start()
    sessions = Sessions(default, factory)
    if carry is not None:
        sessions.adopt(carry.sessions)
    return State(
        config=config, spec=spec, tokens=tokens, clock=clock, anchor=anchor, cors=CorsPolicy(config["CORS_ORIGINS"]),
        request_validators={op.operation_id: RequestValidator(op, spec) for op in spec.operations.values()},
        response_validator=ResponseValidator(spec) if config["VALIDATE_RESPONSES"] else None,
        sessions=sessions, testing=testing,
    )


def _with_progress(runtime: ScenarioRuntime, testing: bool) -> Dataset:
    """The scenario's data made as the store loads it (flat memory), counted on a progress bar on stderr that
    shows itself if the load takes more than 2 s (none under TESTING)."""
    dataset = runtime.make_dataset(streaming=True)
    if testing:
        return dataset
    from .progress import with_progress

    sizes = runtime.settings.sizes
    return with_progress(dataset, sizes.views + sizes.audit_logs)


def api_prefix(spec: Spec) -> str:
    """The path every operation of the spec starts with (/api/v2/insights/kpis/audit-logs)."""
    return posixpath.commonpath([op.path.split("{", 1)[0] for op in spec.operations.values()]).rstrip("/")


class ByPrefix:
    """Paths under `prefix` to the API pipeline; everything else to the operator app."""

    def __init__(self, prefix: str, api: Callable, other: Callable) -> None:
        self.prefix, self.api, self.other = prefix, api, other
        self._under = prefix + "/"

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(self._under) or path == self.prefix:
            return self.api(environ, start_response)
        return self.other(environ, start_response)
