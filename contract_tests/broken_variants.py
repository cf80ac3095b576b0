"""Deliberately broken variants of the real mock, to prove the suite catches what it claims to catch.

Each variant starts from `create_app` and breaks one promise of the spec the way a real backend might:
a WSGI layer that rewrites responses (in front of the whole app, as a faulty gateway or handler would), a
store method swapped for a faulty one, or a tokens file granting too much. The layers know the mock only by
its paths and answers, as the suite does.
`pytest contract_tests --mock-variant NAME` runs the whole suite against one of them in-process;
test_meta.py asserts that every variant makes the suite fail, naming the rule it broke, and that the
unmodified mock passes.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from urllib.parse import parse_qs
from pathlib import Path

import yaml
from flask import Flask


STATE_KEY = "insights_mock"  # where the mock keeps its per-app state (mock_server.app.EXTENSION)
PATH_IDS = ("dashboardId", "mappingId", "auditLogId")


@dataclass(frozen=True)
class Variant:
    name: str
    breaks: str  # the promise of the spec it breaks
    caught_by: tuple[str, ...]  # rules (checks or targeted rules) expected to report it; any one suffices
    build: Callable[[Callable, dict], Flask]


MOST_VIEWED_PATH = "/dashboard/most-viewed"

Rewrite = Callable[[str, str, int, bytes], tuple[int, bytes]]  # (method, path, status, body) -> (status, body)


def answer_of(wsgi_app, environ) -> tuple[str, list, bytes]:
    """The whole answer of a WSGI app (status line, headers, body), for a layer that rewrites it before it is sent."""
    captured = {}

    def keep(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    body = b"".join(wsgi_app(environ, keep))
    return captured["status"], captured["headers"], body


def _rewriting(app: Flask, rewrite: Rewrite) -> Flask:
    """Put `rewrite` in front of the app: it sees every answer (status and body) and may change both."""
    inner = app.wsgi_app

    def wsgi(environ, start_response):
        status_line, headers, body = answer_of(inner, environ)
        status = int(status_line.split()[0])
        new_status, new_body = rewrite(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), status, body)
        headers = [(k, str(len(new_body)) if k.lower() == "content-length" else v) for k, v in headers]
        reason = status_line.split(" ", 1)[1] if new_status == status else "CHANGED"
        start_response(f"{new_status} {reason}", headers)
        return [new_body]

    app.wsgi_app = wsgi
    return app


def _most_viewed_changed(change: Callable[[dict], None]) -> Rewrite:
    """A rewrite of the successful most-viewed answers: `change` edits the parsed body in place."""
    def rewrite(method, path, status, body):
        if status != 200 or method != "GET" or not path.endswith(MOST_VIEWED_PATH):
            return status, body
        payload = json.loads(body)
        change(payload)
        return status, json.dumps(payload).encode()
    return rewrite


def missing_required_field(factory, config) -> Flask:
    return _rewriting(factory(config), _most_viewed_changed(lambda p: [item.pop("viewCount", None) for item in p["data"]]))


def unauthenticated_as_200(factory, config) -> Flask:
    def let_everyone_in(method, path, status, body):
        return (200 if status == 401 else status), body

    return _rewriting(factory(config), let_everyone_in)


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
    return _rewriting(factory(config), _most_viewed_changed(lambda p: p["data"].reverse()))


def view_not_counted(factory, config) -> Flask:
    """Recording a view answers as if it was stored (viewCount + 1) but stores nothing."""
    app = factory(config)
    store = app.extensions[STATE_KEY].default.store  # the default session's: the one the suite's requests use

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
    def crash_on_bad_ids(method, path, status, body):
        if status != 400:
            return status, body
        details = json.loads(body).get("details") or []
        if any(d.get("location") == "path" and d.get("name") in PATH_IDS for d in details if isinstance(d, dict)):
            crash = {"status": 500, "error": "internal_error", "message": "Internal server error - Unexpected server-side issue"}
            return 500, json.dumps(crash).encode()
        return status, body

    return _rewriting(factory(config), crash_on_bad_ids)


def role_failure_as_scope(factory, config) -> Flask:
    """A 403 for a missing site role says insufficient_scope, as if another token would do (the reviewed bug)."""
    def call_it_scope(method, path, status, body):
        if status != 403:
            return status, body
        payload = json.loads(body)
        if payload.get("error") == "insufficient_role":
            payload["error"] = "insufficient_scope"
        return status, json.dumps(payload).encode()

    return _rewriting(factory(config), call_it_scope)


def _stats_changed(change: Callable[[dict], None]) -> Rewrite:
    """A rewrite of the successful stats answers: `change` edits the parsed `data` in place."""
    def rewrite(method, path, status, body):
        if status != 200 or method != "GET" or not path.endswith("/stats"):
            return status, body
        payload = json.loads(body)
        change(payload["data"])
        return status, json.dumps(payload).encode()
    return rewrite


def ids_case_sensitive(factory, config) -> Flask:
    """Path ids are looked up as sent, so an id in upper case (which the Uuid and ObjectId patterns allow)
    names nothing: its stats are zeros, its log is empty, its entry is 404, and its view counts elsewhere."""
    app = factory(config)
    inner = app.wsgi_app

    def wsgi(environ, start_response):
        segments = environ.get("PATH_INFO", "").split("/")
        for index, segment in enumerate(segments):
            if _ID_SEGMENT.fullmatch(segment) and segment != segment.lower():
                segments[index] = _NOTHING[len(segment)]
        environ["PATH_INFO"] = "/".join(segments)
        return inner(environ, start_response)

    app.wsgi_app = wsgi
    return app


_ID_SEGMENT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{24}")
_NOTHING = {36: "00000000-0000-4000-8000-000000000000", 24: "0" * 24}  # well-formed ids of nothing


def limit_not_clamped(factory, config) -> Flask:
    """A `limit` below 1 gives an empty list instead of counting as 1 (the Limit parameter's description)."""
    def empty_below_one(method, path, status, body):
        if status != 200 or method != "GET" or not path.endswith(("/most-viewed", "/recently-viewed")):
            return status, body
        query = parse_qs(_CURRENT_QUERY.get(""), keep_blank_values=True)
        sent = query.get("limit", [""])
        if len(sent) == 1 and re.fullmatch(r"-?\d+", sent[0]) and int(sent[0]) < 1:
            payload = json.loads(body)
            payload["data"] = []
            return status, json.dumps(payload).encode()
        return status, body

    return _remember_query(_rewriting(factory(config), empty_below_one))


_CURRENT_QUERY: dict[str, str] = {}


def _remember_query(app: Flask) -> Flask:
    """The rewrites see method and path only; this keeps the query of the request being answered."""
    inner = app.wsgi_app

    def wsgi(environ, start_response):
        _CURRENT_QUERY[""] = environ.get("QUERY_STRING", "")
        return inner(environ, start_response)

    app.wsgi_app = wsgi
    return app


def unique_viewers_not_distinct(factory, config) -> Flask:
    """uniqueViewers counts views, not distinct users (still within the bound stats_consistent can see)."""
    return _rewriting(factory(config), _stats_changed(lambda d: d.update(uniqueViewers=d["totalViews"])))


def series_ends_yesterday(factory, config) -> Flask:
    """The daily series is the 30 days before today: today's views are missing from it (still 30 consecutive
    days, summed right, so stats_consistent cannot see it)."""
    def shift(data):
        days = data["dailyViews"]
        for day in days:
            day["date"] = (date.fromisoformat(day["date"]) - timedelta(days=1)).isoformat()
        days[:] = [{"date": (date.fromisoformat(days[0]["date"]) - timedelta(days=1)).isoformat(), "views": 0}] + days[:-1]
        data["viewsLast30Days"] = sum(d["views"] for d in days)
        data["viewsLast7Days"] = sum(d["views"] for d in days[-7:])

    return _rewriting(factory(config), _stats_changed(shift))


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
        Variant("role-as-scope", "a role failure is reported as insufficient_scope", ("role_is_not_scope", "auth_challenge_semantics"), role_failure_as_scope),
        Variant("malformed-id-500", "a malformed path id is answered 500", ("malformed_id_rejected", "not_a_server_error"), malformed_id_is_500),
        Variant("ids-case-sensitive", "a path id in upper case names nothing", ("ids_accepted_in_any_case",), ids_case_sensitive),
        Variant("limit-not-clamped", "a limit below 1 gives an empty list", ("limit_default_and_clamped",), limit_not_clamped),
        Variant("unique-viewers-not-distinct", "uniqueViewers counts views, not viewers", ("unique_viewers_counted",), unique_viewers_not_distinct),
        Variant("series-ends-yesterday", "the daily series leaves out today", ("view_in_daily_series",), series_ends_yesterday),
    )
}


def build(name: str, factory: Callable, config: dict) -> Flask:
    if name not in VARIANTS:
        raise ValueError(f"unknown mock variant {name!r}; known: {', '.join(VARIANTS)}")
    return VARIANTS[name].build(factory, config)
