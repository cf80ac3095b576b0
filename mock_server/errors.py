"""Domain exceptions, and the one place where any failure becomes the spec's `Error` body.

Code anywhere raises an `ApiError` (status, snake_case `error`, `message`, optional `details` and
headers); `register_error_handlers` turns those, Flask's own HTTP errors (404, 405 with its `Allow`
header, 413, ...) and any unexpected exception into `{status, error, message, details?, requestId}`.
When a message is left out, the documented example of the current operation for that status supplies
it, so the wording lives in openapi.yaml. A 500 never carries a traceback; the log does.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    status = 500
    error = "internal_error"
    message = "Internal server error - Unexpected server-side issue"

    def __init__(self, message: str | None = None, *, details: list[dict] | None = None,
                 headers: dict[str, str] | None = None, error: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message or self.message)
        # What the raiser left out comes from the operation's documented example (see _handle_api_error).
        self.explicit = frozenset(k for k, v in (("message", message), ("error", error)) if v is not None)
        if message is not None:
            self.message = message
        if error is not None:
            self.error = error
        if status is not None:
            self.status = status
        self.details = details
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400
    error = "bad_request"
    message = "Bad Request - Invalid request"


class Unauthorized(ApiError):
    status = 401
    error = "invalid_token"
    message = "Authentication required - No valid API token provided"


class Forbidden(ApiError):
    status = 403
    error = "insufficient_scope"
    message = "Insufficient permissions - Valid token but lacks required permissions"


class NotFound(ApiError):
    status = 404
    error = "not_found"
    message = "Not Found"


class InternalError(ApiError):
    pass


class ResponseContractError(RuntimeError):
    """A response the server built does not match openapi.yaml: a bug of the mock, never of the client."""


CONTRACT_VIOLATION = ("response_validation_failed",
                      "Internal server error - The mock built a response that does not match its spec")


def contract_violation(where: str, status: int, problems: list[str], *, testing: bool) -> list[dict]:
    """A response of the mock broke its spec: under test that fails the test (raises); otherwise it is logged
    at ERROR and the caller answers 500 CONTRACT_VIOLATION with the returned details."""
    message = f"response {status} of {where} does not match openapi.yaml: " + "; ".join(problems)
    if testing:
        raise ResponseContractError(message)
    logging.getLogger("insights_mock").error(message)
    return [{"message": p} for p in problems]


def error_response(status: int, error: str, message: str, details: list[dict] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """The only constructor of error responses inside Flask."""
    response = Response(orjson.dumps(error_body(status, error, message, details, request_id_or_none())),
                        status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_body(status: int, error: str, message: str, details: list[dict] | None = None,
               request_id: str | None = None) -> dict[str, Any]:
    """The only constructor of error bodies: Flask's handlers and the HTTP server's own refusals use it."""
    body: dict[str, Any] = {"status": status, "error": error, "message": message}
    if details:
        body["details"] = details
    if request_id:
        body["requestId"] = request_id
    return body


def snake_code(phrase: str) -> str:
    """An HTTP reason phrase as the Error schema's snake_case code ("Request Header Fields Too Large")."""
    return re.sub(r"[^a-z]+", "_", phrase.lower()).strip("_") or "error"


def refusal_body(status: int, phrase: str) -> bytes:
    """The Error body of a request the HTTP server itself refuses before the app sees it (werkzeug's handler,
    gunicorn's worker). Never quotes the request: its bytes may be a token or garbage."""
    return orjson.dumps(error_body(status, snake_code(phrase), f"{phrase} - the HTTP server refused the request"))


def request_id_or_none() -> str | None:
    try:
        return g.get("request_id")
    except RuntimeError:  # outside a request
        return None


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)


def _documented(status: int) -> dict:
    """The example body the current operation documents for this status, if any."""
    op = g.get("operation")
    if op is None:
        return {}
    response = op.responses.get(status)
    example = response.example if response is not None else None
    return example if isinstance(example, dict) else {}


def _handle_api_error(exc: ApiError) -> Response:
    documented = _documented(exc.status)
    message = exc.message if "message" in exc.explicit else documented.get("message", exc.message)
    error = exc.error if "error" in exc.explicit else documented.get("error", exc.error)
    return error_response(exc.status, error, message, exc.details, exc.headers)


def _handle_http_exception(exc: HTTPException) -> Response:
    # Start from werkzeug's own response so headers it sets (Allow on 405) survive.
    original = exc.get_response()
    status = exc.code or 500
    if status == 404:
        error, message = "not_found", "Not Found - No operation at this path"
        details = [{"message": "GET /openapi.yaml lists the operations this server answers"}]
    elif status == 405:
        allowed = original.headers.get("Allow", "")
        error, message = "method_not_allowed", f"Method Not Allowed - {request.method} is not supported here"
        details = [{"location": "header", "name": "Allow", "message": f"Allowed methods: {allowed}"}]
    elif status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        error, message = "payload_too_large", "Payload Too Large - The request body is too large"
        details = [{"location": "body", "message": f"At most {limit} bytes are accepted"}] if limit else None
    elif status >= 500:
        return _handle_unexpected(exc)
    else:
        error, message, details = snake_code(exc.name), f"{exc.name} - {exc.description}", None
    headers = {k: v for k, v in original.headers.items() if k.lower() not in ("content-type", "content-length")}
    return error_response(status, error, message, details, headers)


def _handle_unexpected(exc: BaseException) -> Response:
    if isinstance(exc, ResponseContractError) and current_app.testing:
        raise exc
    current_app.logger.error("unexpected error in %s %s", request.method, request.path, exc_info=exc)
    return error_response(500, InternalError.error, InternalError.message)
