"""The API pipeline: every request under the API prefix, read top to bottom.

    read_request   request id (a sane X-Request-Id is echoed), the query, the body (413 over the limit)
    session        X-Mock-Session or the mock_session cookie: the session whose state answers (made on first
                   use; 400 for a bad name, 503 when every session is busy); none named: the default one
    route          method and path to one operation (404; 405 with Allow)
    cors           OPTIONS: a CORS preflight or a plain OPTIONS, answered here without auth
    faults         Prefer / __code (400 if malformed), the delay or server-wide latency, a forced code
                   (before authentication, like Prism), the server-wide error rate (500)
    authenticate   the Bearer token (401)
    authorize      the operation's x-required-scopes and x-required-roles (403)
    validate       the parameters against the spec (400), typed for the handler
    respond        the handler, through the response cache
  then, for every request, errors included:
    check          the response against the spec (dev/test mode): a mismatch is a bug of the mock, raised
                   under TESTING, otherwise logged and answered 500 response_validation_failed
    headers        Content-Type/Length, nosniff, X-Request-Id, no-store, Preference-Applied, CORS
    log            one access-log line
    journal        one journal entry (mock_server.journal)

Each step runs at most once per request; the first that answers (cors, a forced code) or raises ends the
first part. An exception from any step becomes a response in one place (http/errors.py's render). Auth comes
before validation, as most real APIs do: a caller without access learns nothing about inputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson
from werkzeug.datastructures import Headers
from werkzeug.http import HTTP_STATUS_CODES

from .. import access_log
from ..api import Call, answer
from ..auth import Principal, authorize as check_access, forced_challenge
from ..errors import ApiError, InternalError, contract_violation
from ..journal import RAW_BODY_CAP
from ..spec import Operation
from .cors import is_preflight
from .errors import render
from .request import path_of, query_of, read_body
from .routes import Route, Router

if TYPE_CHECKING:
    from ..sessions import Session
    from ..state import State


class Exchange:
    """One request on its way through the steps, and the answer they make."""

    __slots__ = ("environ", "method", "path", "started", "request_id", "query", "request_body", "session", "route", "op",
                 "path_args", "principal", "params", "preference_applied", "status", "body", "payload",
                 "extra_headers", "headers")

    def __init__(self, environ: dict) -> None:
        self.environ = environ
        self.method: str = environ.get("REQUEST_METHOD", "GET")
        self.path = path_of(environ)
        self.started = time.perf_counter()
        self.request_id = ""
        self.query: Any = None
        self.request_body = b""
        self.session: Session | None = None  # None until the session step ran (then, e.g., the journal's)
        self.route: Route | None = None
        self.op: Operation | None = None  # set once routed (not for OPTIONS, which is no call of it)
        self.path_args: dict[str, str] = {}
        self.principal: Principal | None = None
        self.params: dict[str, Any] | None = None
        self.preference_applied: str | None = None
        self.status: int | None = None  # set by the step that answers, or by the renderer
        self.body = b""
        self.payload: Any = None  # the body before serialising, when a step made it (check reads it)
        self.extra_headers: dict[str, str] = {}
        self.headers: list[tuple[str, str]] = []

    def answer(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        self.status, self.payload = status, payload
        self.body = b"" if payload is None else orjson.dumps(payload)
        self.extra_headers.update(headers or {})


Step = Callable[["State", Exchange], None]


# -- the steps, in order ------------------------------------------------------------------------------------

def read_request(state: State, ex: Exchange) -> None:
    ex.request_id = state.request_id(ex.environ.get("HTTP_X_REQUEST_ID", ""))
    ex.request_body = read_body(ex.environ, state.config["MAX_CONTENT_LENGTH"])
    ex.query = query_of(ex.environ)


def session(state: State, ex: Exchange) -> None:
    ex.session = state.sessions.for_request(ex.environ)


def route(state: State, ex: Exchange, router: Router) -> None:
    ex.route, ex.path_args = router.match(ex.method, ex.path)
    if ex.route is not None:  # OPTIONS is no call of an operation: cors answers it
        ex.op = ex.route.op


def cors(state: State, ex: Exchange, router: Router) -> None:
    if ex.method != "OPTIONS":
        return  # actual requests get their CORS headers in `headers`, errors included
    environ = ex.environ
    origin, asked = environ.get("HTTP_ORIGIN"), environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
    headers = {"Allow": ", ".join(router.allowed_methods(ex.path))}
    if is_preflight(ex.method, origin, asked):
        headers.update(state.cors.preflight(origin, asked, environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")))
    ex.answer(200, None, headers)


def faults(state: State, ex: Exchange) -> None:
    faults_now = ex.session.scenarios.sync()
    op = ex.op
    prefer = ex.environ.get("HTTP_PREFER")
    plan = faults_now.plan([prefer] if prefer is not None else [], ex.query, op.documented_codes)
    ex.preference_applied = plan.applied
    latency_ms, fail = faults_now.draw()
    faults_now.wait(plan.delay_ms if plan.delay_ms is not None else latency_ms)
    if plan.code is not None:  # the documented response, with its example body (Prism's behaviour)
        example = op.responses[plan.code].example
        if plan.code < 400:
            ex.answer(plan.code, example)
            return
        body = example if isinstance(example, dict) else {}
        raise ApiError(body.get("message"), error=body.get("error"), status=plan.code, details=body.get("details"),
                       headers=forced_challenge(op, plan.code))
    if fail:
        raise InternalError(details=[{"message": f"Injected by the server-wide error rate ({faults_now.error_rate})"}])


def authenticate(state: State, ex: Exchange) -> None:
    ex.principal = state.authenticate(ex.environ.get("HTTP_AUTHORIZATION"), ex.session.clock)


def authorize(state: State, ex: Exchange) -> None:
    check_access(ex.principal, ex.op)


def validate(state: State, ex: Exchange) -> None:
    ex.params = state.request_validators[ex.op.operation_id].parse(ex.path_args, ex.query)


def respond(state: State, ex: Exchange) -> None:
    ex.status, ex.body = answer(ex.route.handler, Call(op=ex.op, params=ex.params, principal=ex.principal,
                                                       session=ex.session))


# -- the tail: every request ---------------------------------------------------------------------------------

def check(state: State, ex: Exchange) -> None:
    validator = state.response_validator
    if validator is None or ex.method == "OPTIONS":
        return
    problems = validator.problems(ex.op, ex.status, "application/json", Headers(ex.extra_headers), ex.body,
                                  document=ex.payload)
    if problems:
        where = ex.op.operation_id if ex.op is not None else f"{ex.method} {ex.path}"
        fail(state, ex, contract_violation(where, ex.status, problems, testing=state.testing))


def headers(state: State, ex: Exchange) -> None:
    out = ex.headers
    if ex.body or ex.method != "OPTIONS":
        out.append(("Content-Type", "application/json"))
    out += [("Content-Length", str(len(ex.body))), ("X-Content-Type-Options", "nosniff"),
            ("X-Request-Id", ex.request_id), ("Cache-Control", "no-store")]
    if ex.preference_applied:
        out.append(("Preference-Applied", ex.preference_applied))
    if ex.session is not None and ex.session.incarnation is not None:  # which session answered
        out.append(("X-Mock-Session", ex.session.name))
    out += ex.extra_headers.items()
    if ex.method != "OPTIONS":  # a preflight's CORS headers came with its answer
        out += state.cors.actual(ex.environ.get("HTTP_ORIGIN"))


def log(state: State, ex: Exchange) -> None:
    access_log.log_request(method=ex.method, path=ex.path, status=ex.status,
                           duration_ms=(time.perf_counter() - ex.started) * 1000,
                           operation_id=ex.op.operation_id if ex.op is not None else None,
                           user_id=ex.principal.user_id if ex.principal is not None else None,
                           request_id=ex.request_id)


def journal(state: State, ex: Exchange) -> None:
    kept = (ex.session or state.default).journal
    if not kept.enabled:
        return
    # Raw copies only: the request's method, path, query and headers are taken from the environ, and
    # everything is redacted, later, off the request thread (mock_server.journal).
    kept.record_wsgi(
        ex.environ, t_ns=time.time_ns(), worker=kept.pid, request_body=ex.request_body, status=ex.status,
        response_headers=list(ex.headers), response_body=ex.body[:RAW_BODY_CAP], response_size=len(ex.body),
        response_mimetype="application/json" if ex.body else None,
        duration_ms=(time.perf_counter() - ex.started) * 1000, request_id=ex.request_id,
        operation_id=ex.op.operation_id if ex.op is not None else None,
        user=ex.principal.user["email"] if ex.principal is not None else None)


def fail(state: State, ex: Exchange, exc: BaseException) -> None:
    """The one way an exception becomes the answer (http/errors.py)."""
    rendered = render(exc, ex.op, method=ex.method, path=ex.path, request_id=ex.request_id or None,
                      max_content_length=state.config["MAX_CONTENT_LENGTH"], testing=state.testing)
    ex.extra_headers = {}
    ex.answer(rendered.status, rendered.body, rendered.headers)


class ApiPipeline:
    """The WSGI app of the API prefix: the steps above, in that order, for every request."""

    def __init__(self, state: State, router: Router) -> None:
        self.state = state
        self.router = router
        # (name, step): what runs, in order; tests wrap them to count how often each runs.
        self.steps: list[tuple[str, Step]] = [
            ("read_request", read_request),
            ("session", session),
            ("route", lambda s, ex: route(s, ex, router)),
            ("cors", lambda s, ex: cors(s, ex, router)),
            ("faults", faults),
            ("authenticate", authenticate),
            ("authorize", authorize),
            ("validate", validate),
            ("respond", respond),
        ]
        self.tail: list[tuple[str, Step]] = [("check", check), ("headers", headers), ("log", log),
                                             ("journal", journal)]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        state, ex = self.state, Exchange(environ)
        try:
            for _, step in self.steps:
                step(state, ex)
                if ex.status is not None:
                    break
        except Exception as exc:  # noqa: BLE001 - every failure is answered, in the one renderer
            fail(state, ex, exc)
        for _, step in self.tail:
            step(state, ex)
        start_response(status_line(ex.status), ex.headers)
        return [b""] if ex.method == "HEAD" else [ex.body]


def status_line(status: int) -> str:
    return f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}"  # as werkzeug's Response
