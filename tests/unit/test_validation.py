"""validation.py: parameters validated and typed from the spec; responses checked against it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from werkzeug.datastructures import Headers, MultiDict

from mock_helpers import ADMIN, AUDITOR, SPEC_PATH, UNKNOWN_UUID, url
from mock_server.errors import BadRequest
from mock_server.spec import load_spec
from mock_server.validation import FORMAT_CHECKER, RequestValidator, ResponseValidator, parse_date_time

SPEC = load_spec(SPEC_PATH)


def parse(op_id: str, path: dict | None = None, query: dict | list | None = None) -> dict:
    return RequestValidator(SPEC.operation(op_id), SPEC).parse(path or {}, MultiDict(query or {}))


def details(op_id: str, path: dict | None = None, query=None) -> tuple[str, list[dict]]:
    with pytest.raises(BadRequest) as caught:
        parse(op_id, path, query)
    return caught.value.message, caught.value.details


# --- over HTTP: one 400 per kind of parameter ------------------------------------------------------------------

@pytest.mark.parametrize("path, headers, message, detail", [
    ("/dashboard/not-a-uuid/stats", ADMIN, "Bad Request - Invalid dashboard ID format",
     {"location": "path", "name": "dashboardId", "message": "'not-a-uuid' is not a 'uuid'"}),
    ("/dashboard/123e4567e89b12d3a456426614174000/view", ADMIN, "Bad Request - Invalid dashboard ID format",
     {"location": "path", "name": "dashboardId", "message": "'123e4567e89b12d3a456426614174000' is not a 'uuid'"}),
    ("/mapping/xyz/logs", AUDITOR, "Bad Request - Invalid mapping ID format",
     {"location": "path", "name": "mappingId", "message": "'xyz' is not a 'uuid'"}),
    ("/xyz", AUDITOR, "Bad Request - Invalid audit log ID format",
     {"location": "path", "name": "auditLogId", "message": "'xyz' does not match '^[0-9a-fA-F]{24}$'"}),
    (f"/dashboard/{UNKNOWN_UUID}/logs?page_size=1001", AUDITOR, "Bad Request - Invalid query parameter",
     {"location": "query", "name": "page_size", "message": "1001 is greater than the maximum of 1000"}),
    (f"/dashboard/{UNKNOWN_UUID}/logs?page=0", AUDITOR, "Bad Request - Invalid query parameter",
     {"location": "query", "name": "page", "message": "0 is less than the minimum of 1"}),
    (f"/dashboard/{UNKNOWN_UUID}/logs?action=read", AUDITOR, "Bad Request - Invalid query parameter",
     {"location": "query", "name": "action",
      "message": "'read' is not one of ['create', 'update', 'delete', 'view', 'share', 'export']"}),
    (f"/mapping/{UNKNOWN_UUID}/logs?start_date=2026-11-01T00:00:00Z", AUDITOR, "Bad Request - Invalid query parameter",
     {"location": "query", "name": "start_date", "message": "'2026-11-01T00:00:00Z' is not a 'date'"}),
    (f"/mapping/{UNKNOWN_UUID}/logs?end_date=2026-13-01", AUDITOR, "Bad Request - Invalid query parameter",
     {"location": "query", "name": "end_date", "message": "'2026-13-01' is not a 'date'"}),
    (f"/mapping/{UNKNOWN_UUID}/logs?user_id=bob", AUDITOR, "Bad Request - Invalid query parameter",
     {"location": "query", "name": "user_id", "message": "'bob' does not match '^[0-9a-fA-F]{24}$'"}),
    (f"/mapping/{UNKNOWN_UUID}/logs?type=widget", AUDITOR, "Bad Request - Invalid query parameter",
     {"location": "query", "name": "type",
      "message": "'widget' is not one of ['dashboard', 'tool_mapping', 'pipeline', 'registry', 'kpi']"}),
    (f"/mapping/{UNKNOWN_UUID}/logs?page=1&page=2", AUDITOR, "Bad Request - Invalid query parameter",
     {"location": "query", "name": "page", "message": "'page' is given 2 times; give it once"}),
])
def test_each_kind_of_bad_parameter_is_a_400_from_the_spec(client, path, headers, message, detail):
    response = client.get(url(path), headers=headers) if "/view" not in path else \
        client.post(url(path), headers=headers)
    assert response.status_code == 400
    body = response.json
    assert (body["status"], body["error"], body["message"]) == (400, "bad_request", message)
    assert body["details"] == [detail]


def test_several_problems_are_all_reported_and_the_path_message_wins(client):
    response = client.get(url("/dashboard/nope/logs?page=0&page_size=x&action=read"), headers=AUDITOR)
    body = response.json
    assert body["message"] == "Bad Request - Invalid dashboard ID format"
    assert [d["name"] for d in body["details"]] == ["dashboardId", "page", "page_size", "action"]


def test_unknown_query_parameters_are_ignored(client):
    response = client.get(url("/dashboard/most-viewed?limit=2&sort=desc&page=-1"), headers=ADMIN)
    assert response.status_code == 200 and len(response.json["data"]) == 2


# --- the parser ---------------------------------------------------------------------------------------------------

def test_values_are_typed_defaulted_and_normalised():
    values = parse("getDashboardAuditLogs", {"dashboardId": UNKNOWN_UUID.upper()},
                   {"start_date": "2026-11-01", "user_id": "ABCDEF0123456789ABCDEF01"})
    assert values == {"dashboardId": UNKNOWN_UUID, "page": 1, "page_size": 50,
                      "start_date": date(2026, 11, 1), "user_id": "abcdef0123456789abcdef01"}
    assert parse("getMostViewedDashboards") == {"limit": 10}
    assert parse("getMostViewedDashboards", query={"limit": "007"}) == {"limit": 7}


def test_a_huge_number_is_out_of_range_not_a_crash():
    message, found = details("getDashboardAuditLogs", {"dashboardId": UNKNOWN_UUID}, {"page": "9" * 5000})
    assert found[0]["name"] == "page" and len(found[0]["message"]) <= 300
    message, found = details("getDashboardAuditLogs", {"dashboardId": UNKNOWN_UUID}, {"page": "9" * 400})
    assert "greater than the maximum" in found[0]["message"]


@pytest.mark.parametrize("raw, limit", [
    (["0"], 1), (["-3"], 1), (["101"], 100), (["9" * 400], 100), (["9" * 5000], 10), (["ten"], 10), ([""], 10),
    (["1.5"], 10), (["2", "3"], 10), (["007"], 7), (["100"], 100),
])
def test_limit_is_clamped_or_ignored_never_refused(raw, limit):
    """Recently and most viewed document no 400 (the source lists none): `limit` is x-out-of-range: clamp."""
    for op_id in ("getMostViewedDashboards", "getRecentlyViewedDashboards"):
        assert parse(op_id, query=MultiDict([("limit", value) for value in raw])) == {"limit": limit}


@pytest.mark.parametrize("query, count", [("limit=0", 1), ("limit=101", 100), ("limit=ten", 10), ("limit=", 10)])
def test_an_odd_limit_answers_200(client, query, count):
    response = client.get(url(f"/dashboard/most-viewed?{query}"), headers=ADMIN)
    assert response.status_code == 200
    assert len(response.json["data"]) == min(count, len(client.get(url("/dashboard/most-viewed?limit=100"),
                                                                   headers=ADMIN).json["data"]))


def test_a_missing_path_parameter_is_reported():
    message, found = details("getDashboardStats")
    assert found == [{"location": "path", "name": "dashboardId", "message": "'dashboardId' is a required property"}]


def test_start_date_after_end_date():
    message, found = details("getMappingAuditLogs", {"mappingId": UNKNOWN_UUID},
                             {"start_date": "2026-11-02", "end_date": "2026-11-01"})
    assert found == [{"location": "query", "name": "start_date",
                      "message": "'start_date' must not be after 'end_date'"}]
    assert parse("getMappingAuditLogs", {"mappingId": UNKNOWN_UUID},
                 {"start_date": "2026-11-01", "end_date": "2026-11-01"})["end_date"] == date(2026, 11, 1)


@pytest.mark.parametrize("text, expected", [
    ("2026-11-01T00:00:00Z", datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-11-01t00:00:00.5z", datetime(2026, 11, 1, 0, 0, 0, 500000, tzinfo=UTC)),
    ("2026-11-01T01:30:00+01:30", datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-12-31T23:59:60Z", datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ("2026-11-01T00:00:00", None), ("2026-11-01 00:00:00Z", None), ("2026-02-30T00:00:00Z", None),
    ("2026-11-01T24:00:00Z", None), ("2026-11-01T00:00:00+24:00", None), ("", None),
])
def test_parse_date_time(text, expected):
    assert parse_date_time(text) == expected


@pytest.mark.parametrize("fmt, good, bad", [
    ("uuid", UNKNOWN_UUID, "00000000000040008000000000000000"),
    ("date", "2026-11-25", "20261125"),
    ("date-time", "2026-11-25T00:00:00Z", "2026-11-25"),
    ("email", "a@b.example", "a.example"),
])
def test_formats(fmt, good, bad):
    assert FORMAT_CHECKER.conforms(good, fmt)
    assert not FORMAT_CHECKER.conforms(bad, fmt)
    assert FORMAT_CHECKER.conforms(5, fmt)  # formats only judge strings


# --- responses ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checker():
    return ResponseValidator(SPEC)


def _headers(status: int) -> Headers:
    if status == 401:
        return Headers({"WWW-Authenticate": 'Bearer realm="insights"'})
    if status == 403:
        return Headers({"WWW-Authenticate": 'Bearer realm="insights", error="insufficient_scope"'})
    return Headers()


def test_every_documented_example_passes(checker):
    import orjson
    count = 0
    for op in SPEC.operations.values():
        for status, response in op.responses.items():
            for example in response.examples:  # the named ones too (the 400s of the log lists have two)
                problems = checker.problems(op, status, "application/json", _headers(status), orjson.dumps(example))
                assert problems == [], (op.operation_id, status, problems)
                count += 1
    assert count == 43  # 34 responses; the 400s of the log lists and every 403 have a second example


def test_the_checker_finds_what_is_wrong(checker):
    op = SPEC.operation("getAuditLog")
    ok = b'{"status":404,"error":"not_found","message":"Not Found"}'
    assert checker.problems(op, 404, "application/json", Headers(), ok) == []
    assert checker.problems(op, 409, "application/json", Headers(), ok) == [
        "getAuditLog does not document status 409 (documented: 200, 400, 401, 403, 404, 500)"]
    assert checker.problems(op, 404, "text/html", Headers(), ok) == ["content type 'text/html' is not application/json"]
    assert checker.problems(op, 404, "application/json", Headers(), b"{")[0].startswith("body is not JSON")
    assert checker.problems(op, 404, "application/json", Headers(), b'{"status":404}')[0].startswith("body: at /:")
    unauthorized = b'{"status":401,"error":"invalid_token","message":"No"}'
    assert checker.problems(op, 401, "application/json", Headers(), unauthorized) == ["header WWW-Authenticate is required"]
    assert checker.problems(op, 401, "application/json", Headers({"WWW-Authenticate": "Basic"}), unauthorized)[0] \
        .startswith("header WWW-Authenticate:")
    drifted = b'{"data":{"_id":"x"},"message":"m"}'
    assert "/data/_id" in checker.problems(op, 200, "application/json", Headers(), drifted)[0] or \
        "/data" in checker.problems(op, 200, "application/json", Headers(), drifted)[0]


def test_errors_outside_operations_must_still_be_the_error_schema(checker):
    assert checker.problems(None, 404, "application/json", Headers(), b'{"status":404,"error":"not_found","message":"x"}') == []
    assert checker.problems(None, 405, "application/json", Headers(), b'{"error":"x"}') != []
    assert checker.problems(None, 200, "text/plain", Headers(), b"anything") == []
