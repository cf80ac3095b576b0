"""The one renderer (mock_server/http/errors.py): any failure becomes the spec's Error body."""

from __future__ import annotations

import logging

import pytest
from werkzeug.exceptions import Conflict, MethodNotAllowed, NotFound as RoutingNotFound, RequestEntityTooLarge

from mock_helpers import ADMIN, SPEC_PATH, url
from mock_server.errors import (ApiError, BadRequest, ContractViolation, Forbidden, InternalError, NotFound,
                                ResponseContractError, Unauthorized, error_body)
from mock_server.http.errors import render
from mock_server.spec import load_spec

SPEC = load_spec(SPEC_PATH)


def rendered(exc, op=None, **kwargs):
    options = {"method": "GET", "path": "/p", "request_id": "rid-1", "max_content_length": 1024, "testing": False}
    return render(exc, op, **{**options, **kwargs})


def test_defaults_of_the_exception_classes():
    assert (BadRequest.status, BadRequest.error) == (400, "bad_request")
    assert (Unauthorized.status, Unauthorized.error) == (401, "invalid_token")
    assert (Forbidden.status, Forbidden.error) == (403, "insufficient_scope")
    assert (NotFound.status, NotFound.error) == (404, "not_found")
    assert (InternalError.status, InternalError.error) == (500, "internal_error")
    error = ApiError("m", status=418, error="teapot", details=[{"message": "x"}])
    assert (error.status, error.error, error.message, error.details) == (418, "teapot", "m", [{"message": "x"}])


def test_an_operation_s_example_supplies_the_words():
    out = rendered(NotFound(), SPEC.operation("getAuditLog"))
    assert (out.status, out.body) == (404, {"status": 404, "error": "not_found",
                                            "message": "Not Found - Audit log entry not found", "requestId": "rid-1"})


def test_explicit_words_win():
    out = rendered(NotFound("Not Found - Something else", error="gone_away", details=[{"message": "d"}]),
                   SPEC.operation("getAuditLog"))
    assert out.body == {"status": 404, "error": "gone_away", "message": "Not Found - Something else",
                        "details": [{"message": "d"}], "requestId": "rid-1"}


def test_headers_are_carried():
    out = rendered(Unauthorized(headers={"WWW-Authenticate": 'Bearer realm="x"'}))
    assert out.status == 401 and out.headers == {"WWW-Authenticate": 'Bearer realm="x"'}
    assert out.body["message"] == "Authentication required - No valid API token provided"


def test_routing_errors_keep_werkzeug_s_headers():
    out = rendered(MethodNotAllowed(valid_methods=["POST", "OPTIONS"]), method="PUT")
    assert out.status == 405 and out.headers["Allow"] == "POST, OPTIONS"
    assert out.body["error"] == "method_not_allowed" and "PUT" in out.body["message"]
    assert rendered(RoutingNotFound()).body["message"] == "Not Found - No operation at this path"
    too_large = rendered(RequestEntityTooLarge())
    assert too_large.status == 413 and "1024" in too_large.body["details"][0]["message"]


def test_other_http_errors_get_the_schema_too():
    out = rendered(Conflict())
    assert out.status == 409 and out.body["error"] == "conflict" and out.body["message"].startswith("Conflict - ")


def test_unexpected_is_a_bare_500_and_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="insights_mock"):
        out = rendered(KeyError("boom"))
    assert (out.status, out.body) == (500, {"status": 500, "error": "internal_error",
                                            "message": "Internal server error - Unexpected server-side issue",
                                            "requestId": "rid-1"})
    assert any(r.exc_info and "boom" in str(r.exc_info[1]) for r in caplog.records)


def test_a_contract_violation_is_a_500_with_its_details():
    out = rendered(ContractViolation([{"message": "body: wrong"}]))
    assert out.status == 500 and out.body["error"] == "response_validation_failed"
    assert out.body["details"] == [{"message": "body: wrong"}]


def test_under_testing_a_contract_error_is_raised_on():
    with pytest.raises(ResponseContractError):
        rendered(ResponseContractError("x"), testing=True)


def test_error_body_leaves_out_empty_details_and_request_id():
    assert error_body(400, "bad_request", "m", details=[]) == {"status": 400, "error": "bad_request", "message": "m"}


def test_in_the_app_every_error_is_json_with_the_schema_keys(client):
    for response in (client.get(url("/dashboard/most-viewed")), client.get("/x"),
                     client.patch(url("/dashboard/most-viewed"), headers=ADMIN),
                     client.get(url("/dashboard/x/stats"), headers=ADMIN), client.post("/__admin/health"),
                     client.get(url("/no/such/operation"))):
        assert response.mimetype == "application/json"
        assert {"status", "error", "message"} <= set(response.json) <= {"status", "error", "message", "details",
                                                                       "requestId"}
        assert response.json["status"] == response.status_code
        assert response.json["requestId"] == response.headers["X-Request-Id"]
