"""Domain exceptions and the spec's `Error` body: what any layer may raise, and what every error looks like.

Code anywhere raises an `ApiError` (status, snake_case `error`, `message`, optional `details` and
headers). One function turns any exception into a response: `mock_server.http.errors.render`, used by
the API pipeline and by the operator endpoints' Flask handlers alike. When a message is left out, the
documented example of the operation for that status supplies it, so the wording lives in openapi.yaml.
Nothing here knows Flask or WSGI.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson


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
    """A response the server built does not match openapi.yaml: a bug of the mock, never of the client.
    Raised under TESTING, so the test that made the request fails."""


class ContractViolation(Exception):
    """Outside TESTING: the same finding, answered as a 500 `response_validation_failed` with `details`."""

    def __init__(self, details: list[dict]) -> None:
        super().__init__("response does not match openapi.yaml")
        self.details = details


CONTRACT_VIOLATION = ("response_validation_failed",
                      "Internal server error - The mock built a response that does not match its spec")


def contract_violation(where: str, status: int, problems: list[str], *, testing: bool) -> ContractViolation:
    """A response of the mock broke its spec: under test that fails the test (raises ResponseContractError);
    otherwise it is logged at ERROR and returned as a ContractViolation for the renderer to answer."""
    message = f"response {status} of {where} does not match openapi.yaml: " + "; ".join(problems)
    if testing:
        raise ResponseContractError(message)
    logging.getLogger("insights_mock").error(message)
    return ContractViolation([{"message": p} for p in problems])


def error_body(status: int, error: str, message: str, details: list[dict] | None = None,
               request_id: str | None = None) -> dict[str, Any]:
    """The only constructor of error bodies: the renderer and the HTTP server's own refusals use it."""
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
