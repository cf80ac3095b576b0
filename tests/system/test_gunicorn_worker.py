"""gunicorn_worker.py: gunicorn's own refusals get gunicorn's status and the Error body (the answers on a real
socket are in test_hostile_http.py, [gunicorn] cases)."""

from __future__ import annotations

import orjson
import pytest
from gunicorn.http import errors as http_errors

from mock_server.errors import refusal_body
from mock_server.gunicorn_worker import refusal_status
from mock_server.serving import gunicorn_options


@pytest.mark.parametrize("exc, status", [
    (http_errors.LimitRequestLine(5000, 4094), 414),
    (http_errors.LimitRequestHeaders("too many"), 431),
    (http_errors.InvalidRequestLine("GARBAGE"), 400),
    (http_errors.InvalidHTTPVersion("HTTP/2.0"), 400),
    (http_errors.InvalidHeader("Host"), 400),
    (http_errors.UnsupportedTransferCoding("gzip"), 501),
    (http_errors.ExpectationFailed("100-nope"), 417),
    (http_errors.InvalidResponseHeader("X-Bad"), 500),  # the app's fault, not the client's
    (ValueError("anything else"), 500),
])
def test_each_refusal_keeps_gunicorns_status(exc, status):
    assert refusal_status(exc)[0] == status


def test_the_refusal_body_is_the_error_schema_and_quotes_nothing_of_the_request():
    body = orjson.loads(refusal_body(414, "URI Too Long"))
    assert body == {"status": 414, "error": "uri_too_long",
                    "message": "URI Too Long - the HTTP server refused the request"}


def test_the_served_worker_is_ours_and_the_ceiling_shares_it():
    assert gunicorn_options("127.0.0.1", 0, 2)["worker_class"] == "mock_server.gunicorn_worker.JsonRefusalsWorker"
