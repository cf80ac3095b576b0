"""Operator endpoints outside the API prefix:

    GET    /__admin/health                  status, counts, scenario, journal, reload state
    POST   /__admin/reset                   regenerate the current scenario's data (every worker follows)
    GET    /__admin/scenario                the current scenario and the available ones
    POST   /__admin/scenario  {"name": ..}  switch to another scenario (data and faults, every worker)
    GET    /__admin/requests                the request journal, newest first
                                            (?limit= ?operationId= ?status=404|4xx ?method= ?since=ISO)
    DELETE /__admin/requests                clear the journal

Each acts on the session the request names (X-Mock-Session or the mock_session cookie; the default one
without), as the API does; /__admin/sessions (sessions.py) lists and manages sessions by name.

On a loopback HOST they are open (a developer's own machine), unless ADMIN_TOKEN is set. On any other
HOST they need `Authorization: Bearer <ADMIN_TOKEN>`, and without an ADMIN_TOKEN they are locked: a mock
reachable from a network must not let anyone wipe its state. A locked operator API answers 401 naming
MOCK_ADMIN_TOKEN, so whoever runs it in a container learns how to unlock it (a 404 said nothing).
/__admin/health of the default session is always open: container probes and compose healthchecks carry
no token, and it holds no secret (counts, scenario, settings); naming a session there is guarded as the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from datetime import datetime

import orjson
from flask import Blueprint, Response, current_app, request

from .. import journal as journal_mod
from ..data import scenarios
from . import json_response
from ..errors import ApiError, BadRequest, Unauthorized
from ..sessions import DEFAULT, Session, requested_name
from ..state import State
from ..timestamps import iso


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def blueprint() -> Blueprint:
    bp = Blueprint("admin", __name__, url_prefix="/__admin")
    bp.before_request(guard)
    bp.add_url_rule("/reset", view_func=reset, methods=["POST"])
    bp.add_url_rule("/health", view_func=health, methods=["GET"])
    bp.add_url_rule("/scenario", view_func=get_scenario, methods=["GET"])
    bp.add_url_rule("/scenario", view_func=switch_scenario, methods=["POST"])
    bp.add_url_rule("/requests", view_func=get_requests, methods=["GET"])
    bp.add_url_rule("/requests", view_func=clear_requests, methods=["DELETE"])
    return bp


ADMIN_CHALLENGE = 'Bearer realm="insights-admin"'
LOCKED_MESSAGE = "Authentication required - The operator API is locked: this mock listens beyond loopback " \
                 "and has no MOCK_ADMIN_TOKEN"
LOCKED_DETAILS = [{"location": "header", "name": "Authorization",
                   "message": "start the mock with MOCK_ADMIN_TOKEN=<a secret> in its environment and send "
                              "Authorization: Bearer <that secret>; GET /__admin/health needs no token"}]


def guard() -> None:
    if request.method == "OPTIONS" or (request.endpoint == "admin.health" and _default_session()):
        return
    config = State.current().config
    token = config["ADMIN_TOKEN"]
    if token is None:
        if is_loopback(config["HOST"]):
            return
        raise Unauthorized(LOCKED_MESSAGE, details=LOCKED_DETAILS, headers={"WWW-Authenticate": ADMIN_CHALLENGE})
    scheme, _, given = (request.headers.get("Authorization") or "").strip().partition(" ")
    expected = hashlib.sha256(token.encode()).digest()
    actual = hashlib.sha256(given.strip().encode()).digest()
    if scheme.lower() != "bearer" or not hmac.compare_digest(expected, actual):
        raise Unauthorized("Authentication required - The operator API needs Authorization: Bearer "
                           "<the value of MOCK_ADMIN_TOKEN>",
                           headers={"WWW-Authenticate": ADMIN_CHALLENGE})


def _default_session() -> bool:
    """Whether the request names no session: open health is for probes of the default session only, so that
    no unauthenticated caller can make sessions through it."""
    return requested_name(request.environ) in (None, DEFAULT)


def requested_session() -> Session:
    """The session the request names (X-Mock-Session or the mock_session cookie; made on first use), caught
    up with what other workers did to it."""
    session = State.current().sessions.for_request(request.environ)
    session.scenarios.sync()
    return session


def summary(session: Session) -> dict:
    return {
        "session": session.name,
        "scenario": session.scenarios.name,
        "seed": session.scenarios.settings.seed,
        "anchor": iso(session.anchor),
        "now": iso(session.clock.now()),
        "frozenClock": session.clock.frozen,
        "counts": session.store.counts(),
    }


def reset() -> Response:
    return reset_session(requested_session())


def reset_session(session: Session) -> Response:
    started = time.perf_counter()
    session.reset()
    return json_response({"status": "reset", **summary(session),
                          "duration_ms": round((time.perf_counter() - started) * 1000, 1)})


def health() -> Response:
    state = State.current()
    session = requested_session()
    return json_response({
        "status": "ok",
        "port": _bound_port(),
        **summary(session),
        "operations": len(state.spec.operations),
        "validateResponses": state.response_validator is not None,
        "latency": session.scenarios.settings.latency,
        "errorRate": session.scenarios.settings.error_rate,
        "journal": {"size": session.journal.size, "shared": session.journal.shared},
        "sessions": {"max": state.sessions.limit, "ttlSeconds": state.sessions.ttl_s},
        "reload": _reload_status(),
    })


def _bound_port() -> int | None:
    """The port this server listens on, as the server reports it (werkzeug and gunicorn put the listener's
    own address in SERVER_PORT): with --port 0, the free port it bound."""
    try:
        return int(request.environ.get("SERVER_PORT", ""))
    except ValueError:
        return None


def _reload_status() -> dict:
    status = current_app.extensions.get("insights_mock_reload")
    return status.describe() if status is not None else {"enabled": False}


def get_scenario() -> Response:
    session = requested_session()
    return json_response({**session.scenarios.describe(), "session": session.name,
                          "available": scenarios.available(session.scenarios.directory)})


def switch_scenario() -> Response:
    return switch_session_scenario(requested_session())


def switch_session_scenario(session: Session) -> Response:
    body = request.get_data()
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    name = payload.get("name") if isinstance(payload, dict) else None
    if not isinstance(name, str) or set(payload) - {"name"}:
        names = ", ".join(scenarios.available(session.scenarios.directory))
        raise BadRequest('Bad Request - Send a JSON object like {"name": "empty"}',
                         details=[{"location": "body", "name": "name", "message": f"available: {names}"}])
    started = time.perf_counter()
    try:
        session.switch_scenario(name)
        if session.incarnation is not None:  # a worker opening the session later starts there
            State.current().sessions.table.update(session.name, scenario=name)
    except scenarios.ScenarioError as exc:
        error = "not_found" if exc.status == 404 else "invalid_scenario"
        prefix = "Not Found" if exc.status == 404 else "Bad Request"
        raise ApiError(f"{prefix} - Cannot switch to scenario {name!r}", error=error, status=exc.status,
                       details=[{"message": line.strip()} for line in str(exc).splitlines() if line.strip()]) \
            from None
    return json_response({"status": "switched", **summary(session),
                          "description": session.scenarios.scenario.description,
                          "duration_ms": round((time.perf_counter() - started) * 1000, 1)})


JOURNAL_FILTERS = ("limit", "operationId", "status", "method", "since")


def get_requests() -> Response:
    return session_requests(requested_session())


def session_requests(session: Session) -> Response:
    args = request.args
    problems = [{"location": "query", "name": name, "message": f"not a filter; the filters are {', '.join(JOURNAL_FILTERS)}"}
                for name in args if name not in JOURNAL_FILTERS]  # a misspelt filter must not show everything
    limit = 50
    if "limit" in args:
        try:
            limit = int(args["limit"])
            if not 1 <= limit <= 100_000:
                raise ValueError
        except ValueError:
            problems.append({"location": "query", "name": "limit", "message": "a whole number from 1"})
    status = args.get("status")
    if status is not None and not (len(status) == 3 and (status.isdigit() or
                                   (status[0] in "12345" and status[1:].lower() == "xx"))):
        problems.append({"location": "query", "name": "status",
                         "message": "a status code like 404 or a class like 4xx"})
    since_ns = None
    if "since" in args:
        try:
            since = datetime.fromisoformat(args["since"].replace("Z", "+00:00"))
            if since.tzinfo is None:
                raise ValueError
            since_ns = int(since.timestamp() * 1e9)
        except ValueError:
            problems.append({"location": "query", "name": "since",
                             "message": "an ISO 8601 instant with a zone, like 2026-11-25T12:00:00Z"})
    if problems:
        raise BadRequest("Bad Request - Invalid journal filter", details=problems)
    entries = journal_mod.select(session.journal.entries(), limit=limit, operation_id=args.get("operationId"),
                                 status=status.lower() if status else None,
                                 method=args["method"].upper() if "method" in args else None, since_ns=since_ns)
    return json_response({"session": session.name, "size": session.journal.size, "enabled": session.journal.enabled,
                          "count": len(entries), "entries": entries})


def clear_requests() -> Response:
    return clear_session_requests(requested_session())


def clear_session_requests(session: Session) -> Response:
    session.journal.clear()
    return json_response({"status": "cleared", "session": session.name, "size": session.journal.size})
