"""WSGI middleware for what HTTP/1.1 requires of a request before any application sees it.

RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request that lacks a Host header, has more
than one, or has an invalid one. Neither werkzeug's server nor gunicorn checks this, so the app does, for
both, in the spec's Error body. HTTP/1.0 requests may omit Host.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import orjson

from .errors import error_body

# uri-host [ ":" port ]: a reg-name, an IPv4 address or a bracketed IP literal. A comma means the header was
# repeated (servers join repeated headers with ", "); whitespace or other bytes mean it is not a host.
_HOST = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+;=%-]+|\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[A-Za-z0-9._~!$&'()*+;=:-]+\])"
                   r"(?::[0-9]*)?")


def host_problem(environ: dict) -> str | None:
    """Why the request's Host header breaks RFC 9112, or None."""
    if environ.get("SERVER_PROTOCOL") != "HTTP/1.1":
        return None
    host = environ.get("HTTP_HOST")
    if host is None:
        return "An HTTP/1.1 request must carry a Host header (RFC 9112 section 3.2)"
    if not _HOST.fullmatch(host):
        return "The Host header must be one uri-host with an optional port (RFC 9112 section 3.2)"
    return None


class HostGuard:
    """Answers 400 in the Error schema to HTTP/1.1 requests without one valid Host header."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        problem = host_problem(environ)
        if problem is None:
            return self.app(environ, start_response)
        body = orjson.dumps(error_body(400, "bad_request", "Bad Request - Missing or invalid Host header",
                                       [{"location": "header", "name": "Host", "message": problem}]))
        start_response("400 Bad Request", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                           ("X-Content-Type-Options", "nosniff"), ("Connection", "close")])
        return [body]
