"""The one renderer: any exception, from any step of the API pipeline or from an operator endpoint, becomes
the spec's Error body here, and nowhere else.

- `ApiError` (mock_server.errors): its status, words and headers; words it leaves out come from the
  operation's documented example for that status, so they live in openapi.yaml.
- werkzeug's HTTP errors (the router's 404 and 405 with `Allow`, 413 for a body over the limit, ...).
- `ContractViolation`: the mock's own answer broke its spec (500 `response_validation_failed`).
- anything else: a 500 without a traceback; the log has it. Under TESTING a `ResponseContractError` is
  raised on, so the test that made the request fails.
Flask-free: it returns status, headers and body, and the caller writes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from werkzeug.exceptions import HTTPException

from ..errors import (CONTRACT_VIOLATION, ApiError, ContractViolation, InternalError, ResponseContractError,
                      error_body, snake_code)
from ..spec import Operation

_logger = logging.getLogger("insights_mock")


@dataclass(frozen=True)
class Rendered:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)  # besides Content-Type and Content-Length


def render(exc: BaseException, op: Operation | None, *, method: str, path: str, request_id: str | None,
           max_content_length: int | None, testing: bool) -> Rendered:
    """The Error response of `exc`, raised while answering `method path` (for operation `op`, if known)."""
    if isinstance(exc, ApiError):
        documented = _documented(op, exc.status)
        message = exc.message if "message" in exc.explicit else documented.get("message", exc.message)
        error = exc.error if "error" in exc.explicit else documented.get("error", exc.error)
        return Rendered(exc.status, error_body(exc.status, error, message, exc.details, request_id), exc.headers)
    if isinstance(exc, ContractViolation):
        return Rendered(500, error_body(500, *CONTRACT_VIOLATION, exc.details, request_id))
    if isinstance(exc, HTTPException) and (exc.code or 500) < 500:
        return _http_error(exc, method, request_id, max_content_length)
    if isinstance(exc, ResponseContractError) and testing:
        raise exc
    _logger.error("unexpected error in %s %s", method, path, exc_info=exc)
    return Rendered(500, error_body(500, InternalError.error, InternalError.message, None, request_id))


def _documented(op: Operation | None, status: int) -> dict:
    """The example body the operation documents for this status, if any."""
    response = op.responses.get(status) if op is not None else None
    example = response.example if response is not None else None
    return example if isinstance(example, dict) else {}


def _http_error(exc: HTTPException, method: str, request_id: str | None, limit: int | None) -> Rendered:
    status = exc.code or 500
    # werkzeug's own headers survive (Allow on a 405, Location on a redirect)
    headers = {k: v for k, v in exc.get_response().headers.items() if k.lower() not in ("content-type", "content-length")}
    details = None
    if status == 404:
        error, message = "not_found", "Not Found - No operation at this path"
        details = [{"message": "GET /openapi.yaml lists the operations this server answers"}]
    elif status == 405:
        allowed = headers.get("Allow", "")
        error, message = "method_not_allowed", f"Method Not Allowed - {method} is not supported here"
        details = [{"location": "header", "name": "Allow", "message": f"Allowed methods: {allowed}"}]
    elif status == 413:
        error, message = "payload_too_large", "Payload Too Large - The request body is too large"
        details = [{"location": "body", "message": f"At most {limit} bytes are accepted"}] if limit else None
    else:
        error, message = snake_code(exc.name), f"{exc.name} - {exc.description}"
    return Rendered(status, error_body(status, error, message, details, request_id), headers)
