"""The fast path: the common case of the seven operations, answered at the WSGI level in front of Flask.

Why: Flask's request context, werkzeug's Request, Headers and Response objects and the before/after hooks
cost more per request than the mock's own work (auth, validation, SQL, JSON). Under gunicorn that
overhead alone held reads to a third of a bare WSGI app's throughput (bench/README.md).

What it answers: a GET or POST whose method and path match one operation of the spec, without an Origin
header (CORS), a Prefer header or a `__code` parameter (faults), a request body, or a server-wide latency
or error rate in force (with neither in force, a draw of the fault RNG has no effect, and setting either
comes with a new RNG: the fast path draws nothing), and that succeeds. Everything else goes to the Flask app unchanged: OPTIONS, CORS,
forced codes and delays, 404/405, bodies, and every request that ends in an error. So each error still has
one path (errors.py), and each success has the same steps as Flask's pipeline, in the same order, by the
same functions: scenario sync, request id, authentication and authorisation, parameter validation
(MockState.authenticate and admit), the handler (api.answer: with the response cache), response validation, the same headers, the access log and the journal.

Routing, query parsing and parameter validation depend on the method, path and query string alone: the
pipeline keeps what it made of each one it answered (at most SEEN_SIZE), so a request seen before is only
authenticated and authorised, then answered (with the response cache, a repeated read does no parsing,
validation, SQL or JSON at all).

Handing a request over after work began is safe: an ApiError or any other exception raised before the
handler returned means nothing was changed (reads have no effect; a view is written in one transaction
that either committed, and the handler returned, or rolled back). Once a handler has returned, the fast
path answers itself. tests/test_pipeline.py checks that both paths give the same answers.
`FAST_PATH=false` (`--no-fast-path`) turns it off.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from werkzeug.datastructures import Headers, ImmutableMultiDict
from werkzeug.http import HTTP_STATUS_CODES

from . import access_log
from .api import Call, Handler, answer
from .auth import authorize
from .errors import CONTRACT_VIOLATION, ResponseContractError, contract_violation, error_body
from .journal import RAW_BODY_CAP
from .spec import Operation

_PARAM = re.compile(r"\{([^}/]+)\}")
_EMPTY_QUERY: ImmutableMultiDict = ImmutableMultiDict()

SEEN_SIZE = 4096  # requests whose parsed and validated parameters a pipeline keeps

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class _Route:
    __slots__ = ("op", "handler", "pattern")

    def __init__(self, op: Operation, handler: Handler) -> None:
        self.op, self.handler = op, handler
        # werkzeug's default converter: one path segment
        self.pattern = re.compile(_PARAM.sub(r"(?P<\1>[^/]+)", re.escape(op.path).replace(r"\{", "{")
                                             .replace(r"\}", "}")) + r"\Z")


class Router:
    """Method and path to the one operation they name, or None (Flask then routes: 404, 405, HEAD...)."""

    def __init__(self, handlers: dict[str, tuple[Operation, Handler]]) -> None:
        self._literal: dict[tuple[str, str], _Route] = {}
        self._templated: dict[str, list[_Route]] = {}
        for op, handler in handlers.values():
            route = _Route(op, handler)
            if "{" in op.path:
                self._templated.setdefault(op.method, []).append(route)
            else:
                self._literal[(op.method, op.path)] = route

    def match(self, method: str, path: str) -> tuple[_Route, dict[str, str]] | None:
        route = self._literal.get((method, path))
        if route is not None:
            return route, {}
        found = None
        for candidate in self._templated.get(method, ()):
            match = candidate.pattern.match(path)
            if match is not None:
                if found is not None:  # two templates fit: leave the choice to werkzeug's rule ordering
                    return None
                found = candidate, match.groupdict()
        return found


class ApiPipeline:
    """WSGI middleware: answers what it can (see the module docstring), hands the rest to `fallback`."""

    def __init__(self, state: Any, fallback: WSGIApp, handlers: dict[str, tuple[Operation, Handler]], *,
                 testing: bool) -> None:
        self.state = state  # app.MockState
        self.fallback = fallback
        self.router = Router(handlers)
        self.testing = testing
        # (method, path, query string) -> what _eligible and admit's validation made of them: both depend on
        # nothing else, so a request seen before skips routing, query parsing and validation (not auth).
        self._seen: dict[tuple, tuple[_Route, dict[str, str], Any, dict[str, Any]]] = {}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        seen_key = (environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), environ.get("QUERY_STRING", ""))
        seen = self._seen.get(seen_key)
        if seen is None:
            found = self._eligible(environ)
            if found is None:
                return self.fallback(environ, start_response)
            route, path_args, query = found
            params = None
        else:
            if not self._plain(environ):
                return self.fallback(environ, start_response)
            route, path_args, query, params = seen
        state, op = self.state, route.op
        started = time.perf_counter()
        try:
            state.scenarios.sync(state)
            faults = state.faults
            if faults.latency is not None or faults.error_rate:
                return self.fallback(environ, start_response)
            principal = state.authenticate(environ.get("HTTP_AUTHORIZATION"))
            if params is None:
                params = state.admit(op, principal, path_args, query)
                self._remember(seen_key, (route, path_args, query, params))
            else:  # the same method, path and query were parsed and validated before: only authorise
                authorize(principal, op)
            status, body = answer(route.handler, Call(op=op, params=params, principal=principal, state=state))
        except ResponseContractError:
            raise
        except Exception:  # noqa: BLE001 - nothing was changed: Flask's pipeline answers, errors included
            return self.fallback(environ, start_response)
        return self._answer(environ, start_response, op, status, body, principal, started)

    def _remember(self, key: tuple, seen: tuple) -> None:
        if len(self._seen) >= SEEN_SIZE:  # the keys are the clients' to choose: bounded, started over when full
            self._seen = {}
        self._seen[key] = seen

    @staticmethod
    def _plain(environ: dict) -> bool:
        """No CORS (Origin), no fault (Prefer), no body: what the fast path checks on every request."""
        return ("HTTP_ORIGIN" not in environ and "HTTP_PREFER" not in environ
                and "HTTP_TRANSFER_ENCODING" not in environ and environ.get("CONTENT_LENGTH") in (None, "", "0"))

    def _eligible(self, environ: dict) -> tuple[_Route, dict[str, str], Any] | None:
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "POST"):
            return None
        if not self._plain(environ):
            return None
        path = environ.get("PATH_INFO", "")
        if not path.isascii():  # werkzeug decodes non-ASCII paths; leave those to it
            return None
        found = self.router.match(method, path)
        if found is None:
            return None
        raw_query = environ.get("QUERY_STRING", "")
        if raw_query:
            try:  # as werkzeug's Request.args does
                query = ImmutableMultiDict(parse_qsl(raw_query.encode("latin-1").decode(), keep_blank_values=True,
                                                     errors="werkzeug.url_quote"))
            except (UnicodeError, ValueError):
                return None
            if "__code" in query:
                return None
        else:
            query = _EMPTY_QUERY
        return found[0], found[1], query

    def _answer(self, environ: dict, start_response: Callable, op: Operation, status: int, body: bytes,
                principal, started: float) -> list[bytes]:
        state = self.state
        request_id = state.request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   *state.api_headers(request_id)]
        if state.response_validator is not None:
            problems = state.response_validator.problems(op, status, "application/json", Headers(headers), body)
            if problems:
                status, body = self._violation(op, status, problems, request_id)
                headers[1] = ("Content-Length", str(len(body)))
        start_response(_status_line(status), headers)
        path = environ.get("PATH_INFO", "")
        access_log.log_request(method=environ["REQUEST_METHOD"], path=path, status=status,
                               duration_ms=(time.perf_counter() - started) * 1000, operation_id=op.operation_id,
                               user_id=principal.user_id, request_id=request_id)
        journal = state.journal
        if journal.enabled:
            # The request's method, path, query and headers are taken from the environ off the request thread.
            journal.record_wsgi(
                environ, t_ns=time.time_ns(), worker=journal.pid, request_body=b"", status=status,
                response_headers=headers, response_body=body[:RAW_BODY_CAP], response_size=len(body),
                response_mimetype="application/json", duration_ms=(time.perf_counter() - started) * 1000,
                request_id=request_id, operation_id=op.operation_id, user=principal.user["email"])
        return [body]

    def _violation(self, op: Operation, status: int, problems: list[str], request_id: str) -> tuple[int, bytes]:
        details = contract_violation(op.operation_id, status, problems, testing=self.testing)
        return 500, orjson.dumps(error_body(500, *CONTRACT_VIOLATION, details, request_id))


def _status_line(status: int) -> str:
    return f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}"  # as werkzeug's Response

