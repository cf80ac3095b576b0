"""faults.py: Prefer code/delay, ?__code, server-wide latency and error rate, reproducible by seed."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from mock_helpers import ADMIN, SPEC, UNKNOWN_OBJECT_ID, UNKNOWN_UUID, operations, url
from mock_server.config import ConfigError
from mock_server.errors import BadRequest
from mock_server.faults import MAX_DELAY_MS, Faults, parse_latency, parse_prefer

PARAMS = {"dashboardId": UNKNOWN_UUID, "mappingId": UNKNOWN_UUID, "auditLogId": UNKNOWN_OBJECT_ID}


def _documented():
    for op_id, method, path in operations():
        op = SPEC["paths"][path][method.lower()]
        for code in op["responses"]:
            yield op_id, method, path, int(code)


def _example(op_id: str, code: int):
    from mock_server.spec import load_spec
    from mock_helpers import SPEC_PATH
    return load_spec(SPEC_PATH).operations[op_id].responses[code].example


@pytest.fixture
def sleeps(app):
    """Record delays instead of sleeping."""
    recorded: list[float] = []
    app.extensions["insights_mock"].default.faults.sleep = recorded.append
    return recorded


# --- parsing ----------------------------------------------------------------------------------------------

def test_prefer_parsing_follows_rfc_7240():
    assert parse_prefer(["code=500, delay=100"]) == {"code": "500", "delay": "100"}
    assert parse_prefer(["Code=404", "code=500"]) == {"code": "404"}  # the first mention wins
    assert parse_prefer(['code="403"; foo=bar', "return=minimal"]) == {"code": "403", "return": "minimal"}
    assert parse_prefer(["respond-async , wait=10"]) == {"respond-async": "", "wait": "10"}
    assert parse_prefer([]) == {}


@pytest.mark.parametrize("header", ["code==5", "=500", "code=5 00", 'code="500'])
def test_unparseable_prefer_is_a_400(header):
    with pytest.raises(BadRequest) as caught:
        parse_prefer([header])
    assert caught.value.details[0]["name"] == "Prefer"


def test_plan_reads_code_and_delay():
    faults = Faults(seed=1, latency=None, error_rate=0)
    documented = (200, 400, 401, 403, 500)
    plan = faults.plan(["code=500, delay=250"], MultiDict(), documented)
    assert (plan.code, plan.delay_ms, plan.applied) == (500, 250, "code=500, delay=250")
    plan = faults.plan(["code=500"], MultiDict({"__code": "403"}), documented)
    assert (plan.code, plan.code_source) == (403, "query")  # the query string wins
    assert faults.plan([f"delay={MAX_DELAY_MS * 5}"], MultiDict(), documented).delay_ms == MAX_DELAY_MS
    assert faults.plan(["return=minimal"], MultiDict(), documented).applied is None


@pytest.mark.parametrize("prefer, query, message", [
    (["code=abc"], {}, "code must be an HTTP status code"),
    (["code="], {}, "code must be an HTTP status code"),
    (["code=404"], {}, "code 404 is not documented for this operation; documented: 200, 400, 401, 403, 500"),
    ([], {"__code": "999"}, "code must be an HTTP status code"),
    (["delay=-5"], {}, "delay must be a whole number of milliseconds"),
    (["delay=1.5"], {}, "delay must be a whole number of milliseconds"),
    (["delay=soon"], {}, "delay must be a whole number of milliseconds"),
    # Prism's: refused rather than silently ignored, naming what is supported instead
    (["example=empty"], {}, "example= is Prism's and not supported here"),
    (["dynamic=true"], {}, "dynamic= is Prism's and not supported here"),
    (["code=200, dynamic=false"], {}, "supports code=<status> (documented here: 200, 400, 401, 403, 500"),
    (["delay=10", 'example="a b"'], {}, "not from the spec's named examples"),
])
def test_bad_fault_values_are_refused(prefer, query, message):
    faults = Faults(seed=1, latency=None, error_rate=0)
    with pytest.raises(BadRequest) as caught:
        faults.plan(prefer, MultiDict(query), (200, 400, 401, 403, 500))
    assert message in caught.value.details[0]["message"]


@pytest.mark.parametrize("text, expected", [("100", (100, 100)), ("50-300", (50, 300)), (" 5 - 6 ", (5, 6)),
                                            (None, None), ("", None), ("0", None)])
def test_parse_latency(text, expected):
    assert parse_latency(text) == expected


@pytest.mark.parametrize("text", ["fast", "300-50", "-5", "1-99999", "1.5"])
def test_parse_latency_refuses(text):
    with pytest.raises(ConfigError):
        parse_latency(text)


def test_draws_are_reproducible_per_seed():
    def sequence(seed):
        faults = Faults(seed=seed, latency=(50, 300), error_rate=0.3)
        return [faults.draw() for _ in range(50)]

    assert sequence(7) == sequence(7)
    assert sequence(7) != sequence(8)
    draws = sequence(7)
    assert all(50 <= latency <= 300 for latency, _ in draws)
    assert {fail for _, fail in draws} == {True, False}


# --- over HTTP ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op_id, method, path, code", list(_documented()))
def test_every_documented_code_can_be_forced_without_a_token(client, op_id, method, path, code):
    target = path.format(**PARAMS)
    for response in (client.open(target, method=method, headers={"Prefer": f"code={code}"}),
                     client.open(f"{target}?__code={code}", method=method)):
        assert response.status_code == code
        body = response.json
        example = _example(op_id, code)
        if code >= 400:
            assert body.pop("requestId") == response.headers["X-Request-Id"]
        assert body == example
        if code in (401, 403):
            assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert response.headers["Preference-Applied"] == f"code={code}"


def test_an_undocumented_code_names_the_documented_ones(client):
    response = client.get(url(f"/{UNKNOWN_OBJECT_ID}"), headers={"Prefer": "code=418"})
    assert response.status_code == 400
    assert response.json["details"] == [{"location": "header", "name": "Prefer", "message":
                                         "code 418 is not documented for this operation; "
                                         "documented: 200, 400, 401, 403, 404, 500"}]
    response = client.get(url(f"/dashboard/{UNKNOWN_UUID}/stats?__code=404"))
    assert response.json["details"][0]["name"] == "__code"


NO_400 = (200, 401, 403, 500)  # recently and most viewed: the source lists no 400 for them


@pytest.mark.parametrize("prefer, query", [
    (["code=400"], {}), (["code=404"], {}), (["code=abc"], {}), (["code==5"], {}), (['code="500'], {}),
    ([], {"__code": "400"}), ([], {"__code": "999"}), ([], {"__code": ["500", "500"]}), (["delay=soon"], {}),
])
def test_without_a_400_what_cannot_be_honoured_is_ignored(prefer, query):
    plan = Faults(seed=1, latency=None, error_rate=0).plan(prefer, MultiDict(query), NO_400)
    assert (plan.code, plan.delay_ms, plan.applied) == (None, None, None)


def test_without_a_400_what_can_be_honoured_still_is():
    faults = Faults(seed=1, latency=None, error_rate=0)
    assert faults.plan(["code=500, delay=soon"], MultiDict(), NO_400).applied == "code=500"
    assert faults.plan(["code=418, delay=20"], MultiDict({"__code": "403"}), NO_400).applied == "code=403, delay=20"


@pytest.mark.parametrize("op", ["recently-viewed", "most-viewed"])
def test_prefer_code_400_is_not_honoured_where_the_source_lists_no_400(client, op):
    for response in (client.get(url(f"/dashboard/{op}"), headers={**ADMIN, "Prefer": "code=400"}),
                     client.get(url(f"/dashboard/{op}?__code=400"), headers=ADMIN),
                     client.get(url(f"/dashboard/{op}"), headers={**ADMIN, "Prefer": "code=5 00"})):
        assert response.status_code == 200 and "Preference-Applied" not in response.headers
        assert response.json == client.get(url(f"/dashboard/{op}"), headers=ADMIN).json
    assert client.get(url(f"/dashboard/{op}"), headers={"Prefer": "code=400"}).status_code == 401  # no token


def test_forcing_skips_parameter_validation_and_code_does_not_trip_it(client):
    assert client.get(url("/dashboard/not-a-uuid/stats?__code=500")).status_code == 500
    response = client.get(url("/dashboard/most-viewed?limit=2&__code=200"), headers=ADMIN)
    assert response.status_code == 200
    response = client.get(url("/dashboard/most-viewed?limit=2&__other=1"), headers=ADMIN)
    assert response.status_code == 200 and len(response.json["data"]) == 2


def test_prefer_delay_waits_and_replaces_latency(app_factory):
    app = app_factory(LATENCY="40-60")
    recorded: list[float] = []
    app.extensions["insights_mock"].default.faults.sleep = recorded.append
    client = app.test_client()
    client.get(url("/dashboard/most-viewed"), headers={**ADMIN, "Prefer": "delay=250"})
    client.get(url("/dashboard/most-viewed"), headers={**ADMIN, "Prefer": "code=500, delay=100"})
    client.get(url("/dashboard/most-viewed"), headers={**ADMIN, "Prefer": "delay=60000"})
    client.get(url("/dashboard/most-viewed"), headers=ADMIN)
    assert recorded[:3] == [0.25, 0.1, MAX_DELAY_MS / 1000]
    assert 0.040 <= recorded[3] <= 0.060


def test_delay_zero_does_not_sleep(client, sleeps):
    client.get(url("/dashboard/most-viewed"), headers={**ADMIN, "Prefer": "delay=0"})
    assert sleeps == []


def test_latency_and_errors_do_not_touch_operator_endpoints(app_factory):
    app = app_factory(LATENCY="100", ERROR_RATE=1)
    recorded: list[float] = []
    app.extensions["insights_mock"].default.faults.sleep = recorded.append
    client = app.test_client()
    assert client.get("/__admin/health").status_code == 200
    assert client.get("/openapi.yaml").status_code == 200
    assert client.options(url("/dashboard/most-viewed"), headers={"Origin": "http://localhost:3000",
                                                                   "Access-Control-Request-Method": "GET"}).status_code == 200
    assert recorded == []


def test_error_rate_one_fails_every_api_request_with_the_documented_500(app_factory):
    client = app_factory(ERROR_RATE=1).test_client()
    response = client.get(url("/dashboard/most-viewed"), headers=ADMIN)
    assert response.status_code == 500
    assert response.json["message"] == "Internal server error - Unexpected server-side issue"
    assert "error rate" in response.json["details"][0]["message"]
    assert client.get(url("/dashboard/most-viewed")).status_code == 500  # before authentication, too


def test_error_rate_is_reproducible_under_a_seed(app_factory):
    def statuses(seed):
        client = app_factory(ERROR_RATE=0.5, SEED=seed).test_client()
        return [client.get(url("/dashboard/most-viewed?limit=1"), headers=ADMIN).status_code for _ in range(30)]

    first = statuses(3)
    assert first == statuses(3)
    assert set(first) == {200, 500}
    assert first != statuses(4)


def test_reset_restarts_the_fault_sequence(app_factory):
    client = app_factory(ERROR_RATE=0.5, SEED=3).test_client()
    first = [client.get(url("/dashboard/most-viewed?limit=1"), headers=ADMIN).status_code for _ in range(20)]
    client.post("/__admin/reset")
    assert first == [client.get(url("/dashboard/most-viewed?limit=1"), headers=ADMIN).status_code for _ in range(20)]


@pytest.mark.parametrize("prefer", ["example=notFound", "dynamic=true", "code=500, example=serverError"])
def test_prisms_preferences_are_a_400_in_the_error_body_even_without_a_token(client, prefer):
    response = client.get(url(f"/dashboard/{UNKNOWN_UUID}/stats"), headers={"Prefer": prefer})
    assert response.status_code == 400
    body = response.json
    assert body["error"] == "bad_request" and body["status"] == 400
    detail = body["details"][0]
    assert detail["location"] == "header" and detail["name"] == "Prefer"
    assert "Prism's" in detail["message"] and "code=<status>" in detail["message"] and "delay=<ms>" in detail["message"]
    assert "Preference-Applied" not in response.headers


@pytest.mark.parametrize("prefer", ["example=notFound", "dynamic=true"])
def test_prisms_preferences_are_ignored_where_the_source_lists_no_400(client, prefer):
    """Most viewed documents no 400 (the source lists none): RFC 7240 lets a server ignore a preference, and
    the answer is the normal one, saying nothing was applied."""
    response = client.get(url("/dashboard/most-viewed"), headers={"Prefer": prefer, **ADMIN})
    assert response.status_code == 200 and "Preference-Applied" not in response.headers
