"""gunicorn's gthread worker, with the requests gunicorn itself refuses (a request line over its limit, too
many or too large headers, a request line or header it cannot parse, HTTP/2 over plain text) answered in the
spec's Error body instead of gunicorn's HTML page, as werkzeug's handler in serving.py does for `serve`.

Only the error path differs from gthread: serving the app is untouched, so the bench's ceiling, served with
the same settings, measures the same server.
"""

from __future__ import annotations

from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import ThreadWorker

from .errors import refusal_body

try:
    from ssl import SSLError
except ImportError:  # pragma: no cover - Python without ssl
    SSLError = OSError  # type: ignore[misc,assignment]

# gunicorn's own status for each refusal (gunicorn.workers.base.Worker.handle_error); order matters, the
# response-header errors subclass the request-header ones and are the application's fault.
_STATUS: tuple[tuple[type[BaseException], int, str], ...] = (
    (http_errors.InvalidResponseHeader, 500, "Internal Server Error"),
    (http_errors.InvalidResponseHeaderName, 500, "Internal Server Error"),
    (http_errors.ConfigurationProblem, 500, "Internal Server Error"),
    (http_errors.LimitRequestLine, 414, "URI Too Long"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large"),
    (http_errors.ExpectationFailed, 417, "Expectation Failed"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden"),
    (SSLError, 403, "Forbidden"),
    (http_errors.ParseException, 400, "Bad Request"),
)


def refusal_status(exc: BaseException) -> tuple[int, str]:
    for kind, status, phrase in _STATUS:
        if isinstance(exc, kind):
            return status, phrase
    return 500, "Internal Server Error"


class JsonRefusalsWorker(ThreadWorker):
    def handle_error(self, req, client, addr, exc) -> None:
        status, phrase = refusal_status(exc)
        if status >= 500:
            self.log.exception("Error handling request")
        else:
            # The reason only, never str(exc): it quotes the request's bytes, which may be a token.
            self.log.warning("Refused a request from %s: %s", (addr or ("",))[0], type(exc).__name__)
        body = refusal_body(status, phrase)
        head = (f"HTTP/1.1 {status} {phrase}\r\nConnection: close\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nX-Content-Type-Options: nosniff\r\n\r\n").encode("latin-1")
        try:
            util.write_nonblock(client, head + body)
        except Exception:  # the client may be gone already; nothing to answer then
            self.log.debug("Failed to send the refusal")
