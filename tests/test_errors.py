"""errors.py: the one place failures become the spec's Error body."""

from __future__ import annotations

import pytest
from flask import Flask, g

from mock_helpers import ADMIN, SPEC_PATH, url
from mock_server.errors import (ApiError, BadRequest, Forbidden, InternalError, NotFound, Unauthorized,
                                error_response, register_error_handlers)
from mock_server.spec import load_spec

SPEC = load_spec(SPEC_PATH)


@pytest.fixture
def bare():
    """A bare Flask app with only the error handlers, to test them in isolation."""
    app = Flask("bare")
    register_error_handlers(app)

    @app.route("/raise/<kind>")
    def raising(kind):
        g.request_id = "rid-1"
        if kind == "op":
            g.operation = SPEC.operation("getAuditLog")
            raise NotFound()
        if kind == "explicit":
            g.operation = SPEC.operation("getAuditLog")
            raise NotFound("Not Found - Something else", error="gone_away", details=[{"message": "d"}])
        if kind == "headers":
            raise Unauthorized(headers={"WWW-Authenticate": 'Bearer realm="x"'})
        if kind == "http":
            from werkzeug.exceptions import Conflict
            raise Conflict()
        raise KeyError("boom")

    return app


def test_defaults_of_the_exception_classes():
    assert (BadRequest.status, BadRequest.error) == (400, "bad_request")
    assert (Unauthorized.status, Unauthorized.error) == (401, "invalid_token")
    assert (Forbidden.status, Forbidden.error) == (403, "insufficient_scope")
    assert (NotFound.status, NotFound.error) == (404, "not_found")
    assert (InternalError.status, InternalError.error) == (500, "internal_error")
    error = ApiError("m", status=418, error="teapot", details=[{"message": "x"}])
    assert (error.status, error.error, error.message, error.details) == (418, "teapot", "m", [{"message": "x"}])


def test_an_operation_s_example_supplies_the_words(bare):
    body = bare.test_client().get("/raise/op").json
    assert body == {"status": 404, "error": "not_found", "message": "Not Found - Audit log entry not found",
                    "requestId": "rid-1"}


def test_explicit_words_win(bare):
    body = bare.test_client().get("/raise/explicit").json
    assert body == {"status": 404, "error": "gone_away", "message": "Not Found - Something else",
                    "details": [{"message": "d"}], "requestId": "rid-1"}


def test_headers_are_carried(bare):
    response = bare.test_client().get("/raise/headers")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="x"'
    assert response.json["message"] == "Authentication required - No valid API token provided"


def test_other_http_errors_get_the_schema_too(bare):
    response = bare.test_client().get("/raise/http")
    assert response.status_code == 409
    assert response.json["error"] == "conflict"
    assert response.json["message"].startswith("Conflict - ")


def test_unexpected_is_a_bare_500(bare):
    response = bare.test_client().get("/raise/other")
    assert response.status_code == 500
    assert response.json == {"status": 500, "error": "internal_error",
                             "message": "Internal server error - Unexpected server-side issue", "requestId": "rid-1"}


def test_error_response_leaves_out_empty_details():
    app = Flask("bare")
    with app.test_request_context("/"):
        response = error_response(400, "bad_request", "m", details=[])
        assert response.get_json() == {"status": 400, "error": "bad_request", "message": "m"}
        assert response.mimetype == "application/json"


def test_in_the_app_every_error_is_json_with_the_schema_keys(client):
    for response in (client.get(url("/dashboard/most-viewed")), client.get("/x"),
                     client.patch(url("/dashboard/most-viewed"), headers=ADMIN),
                     client.get(url("/dashboard/x/stats"), headers=ADMIN)):
        assert response.mimetype == "application/json"
        assert {"status", "error", "message"} <= set(response.json) <= {"status", "error", "message", "details",
                                                                       "requestId"}
        assert response.json["status"] == response.status_code
