"""CORS: which browser origins may call the mock, for the API pipeline and the operator endpoints alike.

One policy, applied in two places with the same answers: the pipeline's `cors` step (API paths) and the
operator app's after-request hook (/__admin, /docs, /openapi.yaml). It behaves as flask-cors did with the
options the mock used (which cannot run as a step of a WSGI pipeline): no Origin, no CORS headers; an
allowed Origin is echoed (or `*` when any origin is allowed), never with credentials; a preflight answers
the allowed methods and whichever of the requested headers are allowed, cached for 10 minutes.
"""

from __future__ import annotations

from collections.abc import Iterable

METHODS = "GET, HEAD, POST, DELETE, OPTIONS"
ALLOW_HEADERS = frozenset({"authorization", "content-type", "prefer", "x-request-id", "x-mock-session"})
EXPOSE_HEADERS = "X-Request-Id, WWW-Authenticate, Preference-Applied, X-Mock-Session"
MAX_AGE_S = "600"


class CorsPolicy:
    def __init__(self, origins: Iterable[str]) -> None:
        origins = list(origins)
        self.wildcard = "*" in origins
        self.origins = frozenset(origins)

    def allow_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for this Origin, or None when it is not allowed."""
        if origin is None:
            return None
        if self.wildcard:
            return "*"
        return origin if origin in self.origins else None

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
