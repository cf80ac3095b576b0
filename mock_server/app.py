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
from .state import EXTENSION, Clock, State
from .store import open_store
from .timestamps import data_anchor
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
        anchor, clock, store = carry.anchor, carry.clock, carry.store
    else:
        anchor = data_anchor(config["NOW"])
        clock, store = Clock(config["NOW"]), open_store(config["DB"], config["DATABASE_URL"])
    secrets = [token for token, _ in tokens.entries()] + [config["ADMIN_TOKEN"] or ""]
    if carry is not None:  # keep what was recorded; redact the new file's tokens and the old ones' too
        journal = carry.journal
        journal.redactor = Redactor([*journal.redactor.secrets, *secrets])
    else:
        journal = Journal(config["JOURNAL_SIZE"], secrets, config.get("JOURNAL_DIR"))
    scenarios = ScenarioRuntime(directory=config["SCENARIOS_DIR"], name=config["SCENARIO"], config=config,
                                explicit=explicit, anchor=anchor, users=tokens.users, account=tokens.account,
                                store=store, shared=bool(config["DB"] or config["DATABASE_URL"]),
                                sync_interval_s=config.get("SCENARIO_SYNC_S", 0.1))
    state = State(
        config=config, spec=spec, tokens=tokens, store=store, clock=clock, anchor=anchor, scenarios=scenarios,
        journal=journal, cors=CorsPolicy(config["CORS_ORIGINS"]),
        request_validators={op.operation_id: RequestValidator(op, spec) for op in spec.operations.values()},
        response_validator=ResponseValidator(spec) if config["VALIDATE_RESPONSES"] else None,
        response_cache=ResponseCache(store.version) if config["RESPONSE_CACHE"] else None,
        testing=bool(config.get("TESTING")),
    )
    store.ensure_loaded(state.stream_dataset)
    scenarios.start()
    return state


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
