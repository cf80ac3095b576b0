"""CORS: which browser origins may call the mock, for the API pipeline and the operator endpoints alike.

One policy, applied in two places with the same answers: the pipeline's `cors` step (API paths) and the
operator app's after-request hook (/__admin, /docs, /openapi.yaml). It behaves as flask-cors did with the
options the mock used (which cannot run as a step of a WSGI pipeline): no Origin, no CORS headers; an
allowed Origin is echoed (or `*` when any origin is allowed), never with credentials; a preflight answers
the allowed methods and whichever of the requested headers are allowed, cached for 10 minutes.

A refused Origin still gets its answer (without CORS headers, as the spec allows), which the browser then
hides from the page: the log said 200 and nothing said why. So each refused Origin is logged once, as a
warning with the --cors-origins value that would allow it (once per process: each gunicorn worker says it).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

_logger = logging.getLogger("insights_mock")
# A client sending a new Origin on every request must neither grow this set nor flood the log.
MAX_REPORTED_ORIGINS = 32
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9.\[\]:-]+")  # scheme://host[:port], as browsers send

METHODS = "GET, HEAD, POST, DELETE, OPTIONS"
ALLOW_HEADERS = frozenset({"authorization", "content-type", "prefer", "x-request-id", "x-mock-session"})
EXPOSE_HEADERS = "X-Request-Id, WWW-Authenticate, Preference-Applied, X-Mock-Session"
MAX_AGE_S = "600"


class CorsPolicy:
    def __init__(self, origins: Iterable[str]) -> None:
        origins = list(origins)
        self.wildcard = "*" in origins
        self.origins = frozenset(origins)
        self._listed = list(dict.fromkeys(origins))  # as given, for the hint
        self._reported: set[str] = set()
        self._lock = threading.Lock()

    def allow_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for this Origin, or None when it is not allowed."""
        if origin is None:
            return None
        if self.wildcard:
            return "*"
        if origin in self.origins:
            return origin
        self._refused(origin)
        return None

    def _refused(self, origin: str) -> None:
        with self._lock:
            if origin in self._reported or len(self._reported) > MAX_REPORTED_ORIGINS:
                return
            self._reported.add(origin)
            full = len(self._reported) > MAX_REPORTED_ORIGINS
        if full:
            _logger.warning("CORS: more than %d origins refused; no further refused origin is logged",
                            MAX_REPORTED_ORIGINS)
            return
        # The Origin is the client's text: quoted by repr, and suggested as a flag only if it is an origin,
        # so that it cannot forge a log line or a shell command.
        value = ",".join([*self._listed, origin]) if _ORIGIN.fullmatch(origin) else "<the page's origin>"
        _logger.warning("CORS: refused Origin %r: it is not in --cors-origins (MOCK_CORS_ORIGINS), so the browser "
                        "hides this mock's answers from that page. To allow it, serve with --cors-origins '%s' "
                        "(or '*' for any origin)", origin, value)

    def actual(self, origin: str | None) -> list[tuple[str, str]]:
        """The headers of an actual (not preflight) response to a request with this Origin; errors too."""
        allowed = self.allow_origin(origin)
        if allowed is None:
            return []
        headers = [("Access-Control-Allow-Origin", allowed), ("Access-Control-Expose-Headers", EXPOSE_HEADERS)]
        if allowed != "*":
            headers.append(("Vary", "Origin"))  # the answer depends on the Origin: caches must know
        return headers

    def preflight(self, origin: str | None, method: str | None, requested: str | None) -> list[tuple[str, str]]:
        """The headers of a preflight (OPTIONS with Origin and Access-Control-Request-Method)."""
        allowed = self.allow_origin(origin)
        if allowed is None:
            return []
        headers = [("Access-Control-Allow-Origin", allowed)]
        if method is not None and method.strip().upper() in METHODS.split(", "):
            headers.append(("Access-Control-Allow-Methods", METHODS))
            asked = sorted(h.strip() for h in (requested or "").split(",") if h.strip().lower() in ALLOW_HEADERS)
            if asked:
                headers.append(("Access-Control-Allow-Headers", ", ".join(asked)))
            headers.append(("Access-Control-Max-Age", MAX_AGE_S))
        if allowed != "*":
            headers.append(("Vary", "Origin"))
        return headers


def is_preflight(method: str, origin: str | None, request_method: str | None) -> bool:
    return method == "OPTIONS" and origin is not None and request_method is not None
