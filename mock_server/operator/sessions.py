"""Operator endpoints of sessions, by name (the other /__admin endpoints act on the session a request names):

    GET    /__admin/sessions                          the live sessions: name, scenario, sizes, created, last used
    POST   /__admin/sessions  {"name", "scenario"?, "now"?}
                                                      make one, in a scenario or with a frozen clock at `now`
    GET    /__admin/sessions/NAME                     one session
    DELETE /__admin/sessions/NAME                     drop it (its data, journal and registry entry)
    POST   /__admin/sessions/NAME/reset               regenerate its data
    GET    /__admin/sessions/NAME/scenario            its scenario
    POST   /__admin/sessions/NAME/scenario {"name"}   switch it
    GET    /__admin/sessions/NAME/requests            its journal (the filters of /__admin/requests)
    DELETE /__admin/sessions/NAME/requests            clear it

NAME `default` is the default session (which cannot be deleted). They are guarded as every /__admin path.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from flask import Blueprint, Response, request

from ..errors import ApiError, BadRequest, NotFound
from ..sessions import DEFAULT, Session, describe
from ..state import State
from . import admin, json_response

_CREATE_FIELDS = {"name", "scenario", "now"}


def blueprint() -> Blueprint:
    bp = Blueprint("sessions", __name__, url_prefix="/__admin/sessions")
    bp.before_request(admin.guard)
    bp.add_url_rule("", view_func=list_sessions, methods=["GET"])
    bp.add_url_rule("", view_func=create_session, methods=["POST"])
    bp.add_url_rule("/<name>", view_func=get_session, methods=["GET"])
    bp.add_url_rule("/<name>", view_func=delete_session, methods=["DELETE"])
    bp.add_url_rule("/<name>/reset", view_func=lambda name: admin.reset_session(_named(name)), methods=["POST"],
                    endpoint="reset")
    bp.add_url_rule("/<name>/scenario", view_func=get_scenario, methods=["GET"])
    bp.add_url_rule("/<name>/scenario", view_func=lambda name: admin.switch_session_scenario(_named(name)),
                    methods=["POST"], endpoint="switch")
    bp.add_url_rule("/<name>/requests", view_func=lambda name: admin.session_requests(_named(name)),
                    methods=["GET"], endpoint="requests")
    bp.add_url_rule("/<name>/requests", view_func=lambda name: admin.clear_session_requests(_named(name)),
                    methods=["DELETE"], endpoint="clear_requests")
    return bp


def _named(name: str) -> Session:
    """An existing session (404 otherwise: naming one here does not make it)."""
    sessions = State.current().sessions
    session = sessions.default if name == DEFAULT else sessions.get(name, create=False)
    session.scenarios.sync()
    return session


def list_sessions() -> Response:
    sessions = State.current().sessions
    records = sessions.records()
    return json_response({"max": sessions.limit, "ttlSeconds": sessions.ttl_s, "count": len(records),
                          "default": sessions.default.describe(),
                          "sessions": [describe(r, sessions.opened(r.name)) for r in records]})


def get_session(name: str) -> Response:
    session = _named(name)
    if session.incarnation is None:
        return json_response({**session.describe(), **admin.summary(session)})
    record = State.current().sessions.table.get(name)
    if record is None:
        raise NotFound(f"Not Found - No session {name!r}", error="not_found")
    return json_response({**describe(record, session), **admin.summary(session)})


def create_session() -> Response:
    body = request.get_data()
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str) or set(payload) - _CREATE_FIELDS:
        raise BadRequest('Bad Request - Send a JSON object like {"name": "test-7", "scenario": "busy", '
                         '"now": "2026-11-20T10:00:00Z"}',
                         details=[{"location": "body", "message": "name is required; scenario and now are optional"}])
    scenario = payload.get("scenario")
    if scenario is not None and not isinstance(scenario, str):
        raise BadRequest("Bad Request - scenario must be a scenario name",
                         details=[{"location": "body", "name": "scenario", "message": "a string"}])
    now = _instant(payload.get("now"))
    try:
        session = State.current().sessions.create(payload["name"], scenario=scenario, now=now)
    except admin.scenarios.ScenarioError as exc:
        raise ApiError(f"{'Not Found' if exc.status == 404 else 'Bad Request'} - Cannot use scenario {scenario!r}",
                       error="not_found" if exc.status == 404 else "invalid_scenario", status=exc.status,
                       details=[{"message": str(exc)}]) from None
    return json_response({"status": "created", **session.describe(), **admin.summary(session)}, 201)


def _instant(value) -> datetime | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError
    except ValueError:
        raise BadRequest("Bad Request - now must be an ISO 8601 instant with a zone",
                         details=[{"location": "body", "name": "now", "message": "like 2026-11-20T10:00:00Z"}]) from None
    return parsed.astimezone(UTC)


def delete_session(name: str) -> Response:
    if name == DEFAULT:
        raise BadRequest("Bad Request - The default session cannot be deleted; POST /__admin/reset resets it",
                         error="bad_request")
    if not State.current().sessions.delete(name):
        raise NotFound(f"Not Found - No session {name!r}", error="not_found")
    return json_response({"status": "deleted", "name": name})


def get_scenario(name: str) -> Response:
    session = _named(name)
    return json_response({**session.scenarios.describe(), "session": session.name,
                          "available": admin.scenarios.available(session.scenarios.directory)})
