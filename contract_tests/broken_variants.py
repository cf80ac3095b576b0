"""Deliberately broken variants of the real mock, to prove the suite catches what it claims to catch.

Each variant starts from `create_app` and breaks one promise of the spec the way a real backend might:
a hook that rewrites responses, a store method swapped for a faulty one, or a tokens file granting too much.
`pytest contract_tests --mock-variant NAME` runs the whole suite against one of them in-process;
test_meta.py asserts that every variant makes the suite fail, naming the rule it broke, and that the
unmodified mock passes.
"""

from __future__ import annotations

import atexit
import json
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import yaml
from flask import Flask, Response, request

from contract_tests import checks

STATE_KEY = "insights_mock"  # where the mock keeps its per-app state (mock_server.app.EXTENSION)
PATH_IDS = ("dashboardId", "mappingId", "auditLogId")


@dataclass(frozen=True)
class Variant:
    name: str
    breaks: str  # the promise of the spec it breaks
    caught_by: tuple[str, ...]  # rules (checks or targeted rules) expected to report it; any one suffices
    build: Callable[[Callable, dict], Flask]


def _operation_id(app: Flask) -> str | None:
    state = app.extensions[STATE_KEY]
    op = state.endpoints.get(request.endpoint or "")
    return op.operation_id if op is not None else None


def _rewrite_json(response: Response, change: Callable[[dict], None]) -> Response:
    payload = json.loads(response.get_data())
    change(payload)
    response.set_data(json.dumps(payload))
    return response


def missing_required_field(factory, config) -> Flask:
    app = factory(config)

    @app.after_request
    def drop_view_count(response):
        if response.status_code == 200 and _operation_id(app) == checks.MOST_VIEWED:
            return _rewrite_json(response, lambda p: [item.pop("viewCount", None) for item in p["data"]])
        return response

    return app


def unauthenticated_as_200(factory, config) -> Flask:
    app = factory(config)

    @app.after_request
    def let_everyone_in(response):
        if response.status_code == 401:
            response.status_code = 200
        return response

    return app


def readonly_token_writes(factory, config) -> Flask:
    """The server's tokens file grants the read-only token the write scope too; the suite still knows it as
    read-only (fixtures/tokens.yaml), as QA would know what their token is supposed to be."""
    tokens_path = Path(config.get("TOKENS_FILE") or Path(__file__).resolve().parent.parent / "fixtures" / "tokens.yaml")
    data = yaml.safe_load(tokens_path.read_text(encoding="utf-8"))
    for entry in data["tokens"]:
        if entry.get("scopes") == ["api-readonly"]:
            entry["scopes"] = ["api-readonly", "api"]
    broken = tempfile.NamedTemporaryFile("w", prefix="tokens-readonly-writes-", suffix=".yaml", delete=False)
    with broken:
        yaml.safe_dump(data, broken)
    atexit.register(os.unlink, broken.name)
    return factory({**config, "TOKENS_FILE": broken.name})


def most_viewed_unsorted(factory, config) -> Flask:
    app = factory(config)

    @app.after_request
    def reverse(response):
        if response.status_code == 200 and _operation_id(app) == checks.MOST_VIEWED:
            return _rewrite_json(response, lambda p: p["data"].reverse())
        return response

    return app


def view_not_counted(factory, config) -> Flask:
    """Recording a view answers as if it was stored (viewCount + 1) but stores nothing."""
    app = factory(config)
    store = app.extensions[STATE_KEY].store

    def record_view(dashboard_id, user, at):
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        total = store.dashboard_stats(dashboard_id.lower(), at.date())["totalViews"]
        return {
            "_id": uuid.uuid4().hex[:24],
            "dashboardId": dashboard_id.lower(),
            "userId": user["id"].lower(),
            "viewedAt": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
            "viewCount": total + 1,
        }

    store.record_view = record_view
    return app


def malformed_id_is_500(factory, config) -> Flask:
    """A malformed path id crashes the handler (500) instead of being refused (400)."""
    app = factory(config)

    @app.after_request
    def crash_on_bad_ids(response):
        if response.status_code != 400:
            return response
        details = json.loads(response.get_data()).get("details") or []
        if any(d.get("location") == "path" and d.get("name") in PATH_IDS for d in details if isinstance(d, dict)):
            body = {"status": 500, "error": "internal_error", "message": "Internal server error - Unexpected server-side issue"}
            return Response(json.dumps(body), status=500, mimetype="application/json")
        return response

    return app


VARIANTS = {
    v.name: v
    for v in (
        Variant("missing-field", "most viewed items lack the required viewCount", ("response_schema_conformance",), missing_required_field),
        Variant("unauthenticated-200", "a 401 goes out as 200", ("ignored_auth", "auth_matrix"), unauthenticated_as_200),
        Variant("readonly-writes", "the api-readonly token may record views", ("auth_matrix",), readonly_token_writes),
        Variant("unsorted-most-viewed", "most viewed comes out in reverse order", ("most_viewed_order",), most_viewed_unsorted),
        Variant(
            "view-not-counted",
            "a recorded view answers viewCount + 1 but is not stored",
            ("view_counted", "view_counts_agree", "stats_show_view", "view_logged"),
            view_not_counted,
        ),
        Variant("malformed-id-500", "a malformed path id is answered 500", ("malformed_id_rejected", "not_a_server_error"), malformed_id_is_500),
    )
}


def build(name: str, factory: Callable, config: dict) -> Flask:
    if name not in VARIANTS:
        raise ValueError(f"unknown mock variant {name!r}; known: {', '.join(VARIANTS)}")
    # The variants break answers with Flask hooks, which see only what Flask answers: the mock's WSGI fast path
    # (mock_server/pipeline.py) would answer successes around them.
    return VARIANTS[name].build(factory, {**config, "FAST_PATH": False})
