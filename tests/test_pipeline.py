"""pipeline.py: the fast path answers exactly what Flask's pipeline would, and hands over everything else.

The parity test sends the same generated requests (every operation, every fixture token and none, ids that
exist, do not exist or are malformed, valid and invalid parameters, repeated and unknown ones) to two apps
built from the same seed, one with the fast path and one without, and compares status, headers and body.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_app
from mock_helpers import ADMIN, PREFIX, TOKENS, UNKNOWN_OBJECT_ID, UNKNOWN_UUID, bearer, url
from mock_server.errors import ResponseContractError
from mock_server.pipeline import ApiPipeline, Router


def pipeline_of(app) -> ApiPipeline:
    return app.wsgi_app.app  # HostGuard(ApiPipeline(Flask's wsgi_app))


class Counted:
    """Wraps the pipeline's fallback to count the requests handed to Flask."""

    def __init__(self, app) -> None:
        self.pipeline = pipeline_of(app)
        self.inner, self.calls = self.pipeline.fallback, 0
        self.pipeline.fallback = self

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.inner(environ, start_response)


@pytest.fixture(scope="module")
def twins():
    fast, slow = make_app(FAST_PATH=True), make_app(FAST_PATH=False)
    assert isinstance(pipeline_of(fast), ApiPipeline) and not isinstance(slow.wsgi_app.app, ApiPipeline)
    yield fast, slow
    for app in (fast, slow):
        app.extensions["insights_mock"].store.close()


def _ids(app) -> dict[str, list[str]]:
    client = app.test_client()
    dashboards = [d["dashboardId"] for d in client.get(url("/dashboard/most-viewed?limit=5"), headers=ADMIN).json["data"]]
    entries = client.get(url(f"/dashboard/{dashboards[0]}/logs?pageSize=3"), headers=ADMIN).json["data"]
    mapping = app.extensions["insights_mock"].make_dataset().mappings[0]["mappingId"]
    return {
        "dashboardId": [*dashboards[:2], dashboards[0].upper(), UNKNOWN_UUID, "not-a-uuid", "1" * 40],
        "mappingId": [mapping, UNKNOWN_UUID, "zzz"],
        "auditLogId": [entries[0]["_id"], entries[0]["_id"].upper(), UNKNOWN_OBJECT_ID, "xyz", "0" * 25],
    }


AUTHORIZATIONS = [f"Bearer {t['token']}" for t in TOKENS] + [None, "", "Bearer", "Bearer nope", "Basic abc",
                                                            "bearer mock-admin-token"]
VALUES = ["1", "2", "20", "100", "101", "0", "-3", "abc", "", "1.5", "2026-11-20T00:00:00Z", "2026-11-20",
          "view", "create", "65fb3eb4972a846916419f82", "99999999999999999999999"]
QUERY_NAMES = ["limit", "page", "pageSize", "from", "to", "action", "userId", "unknown"]


def _requests(operations, ids):
    def build(op, path_choice, query, authorization, request_id):
        path = op.path
        for name, choices in ids.items():
            path = path.replace("{" + name + "}", choices[path_choice % len(choices)])
        headers = {} if authorization is None else {"Authorization": authorization}
        if request_id:
            headers["X-Request-Id"] = request_id
        return op.method, path, query, headers

    return st.builds(build, st.sampled_from(operations), st.integers(0, 20),
                     st.lists(st.tuples(st.sampled_from(QUERY_NAMES), st.sampled_from(VALUES)), max_size=4),
                     st.sampled_from(AUTHORIZATIONS), st.sampled_from([None, "trace-1", "bad id!"]))


def _comparable(response, method):
    headers = {k: v for k, v in response.headers.items() if k != "X-Request-Id"}
    body = response.get_json(silent=True)
    if isinstance(body, dict):
        body.pop("requestId", None)
        if method == "POST" and response.status_code == 200:  # ids and instants of a new view differ
            body["data"].pop("_id")
            body["data"].pop("viewedAt")
    return response.status, headers, body if body is not None else response.get_data()


def test_both_paths_answer_alike(twins):
    fast, slow = twins
    # Reads only here: a view recorded in each app gets its own id and instant, which later pages would show.
    # test_both_paths_record_views_alike covers the POST.
    operations = sorted((op for op in fast.extensions["insights_mock"].spec.operations.values()
                         if op.method == "GET"), key=lambda o: o.operation_id)
    ids = _ids(fast)
    assert ids == _ids(slow)  # same seed, same data
    counted = Counted(fast)
    fast_client, slow_client = fast.test_client(), slow.test_client()
    seen: dict[int, int] = {}

    @settings(max_examples=400, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(_requests(operations, ids))
    def check(request):
        method, path, query, headers = request
        answers = [_comparable(client.open(PREFIX + path.removeprefix(PREFIX), method=method, query_string=query,
                                           headers=headers), method)
                   for client in (fast_client, slow_client)]
        assert answers[0] == answers[1], (method, path, query, headers)
        code = int(answers[0][0].split()[0])
        seen[code] = seen.get(code, 0) + 1

    try:
        check()
    finally:
        pipeline_of(fast).fallback = counted.inner
    # Not vacuous: the fast path answered, Flask answered, and errors of every kind were compared.
    assert {200, 400, 401, 403, 404} <= set(seen), seen
    assert 0 < counted.calls < sum(seen.values())


def test_both_paths_record_views_alike(app_factory):
    fast, slow = app_factory(FAST_PATH=True), app_factory(FAST_PATH=False)
    ids = _ids(fast)["dashboardId"]
    clients = fast.test_client(), slow.test_client()
    statuses = set()
    for authorization in AUTHORIZATIONS:
        for dashboard in ids:
            for query in ("", "limit=abc", "unknown=1"):
                headers = {} if authorization is None else {"Authorization": authorization}
                answers = [_comparable(client.post(url(f"/dashboard/{dashboard}/view"), query_string=query,
                                                   headers=headers), "POST") for client in clients]
                assert answers[0] == answers[1], (authorization, dashboard, query)
                statuses.add(int(answers[0][0].split()[0]))
    assert {200, 400, 401, 403} <= statuses
    for dashboard in ids[:2]:  # and the same counts came of it
        stats = [client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"] for client in clients]
        assert stats[0]["totalViews"] == stats[1]["totalViews"] and stats[0]["dailyViews"] == stats[1]["dailyViews"]


def test_the_fast_path_answers_successes_and_hands_errors_to_flask(app):
    counted, client = Counted(app), app.test_client()
    ok = client.get(url("/dashboard/most-viewed"), headers=ADMIN)
    assert ok.status_code == 200 and counted.calls == 0
    assert ok.headers["Cache-Control"] == "no-store" and ok.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(url("/dashboard/most-viewed")).status_code == 401 and counted.calls == 1
    assert client.get(url("/dashboard/most-viewed?limit=0"), headers=ADMIN).status_code == 400
    assert counted.calls == 2


@pytest.mark.parametrize("extra", [
    {"headers": {"Origin": "http://localhost:3000"}},
    {"headers": {"Prefer": "code=500"}},
    {"query_string": "__code=403"},
    {"query_string": "%5F_code=403"},
    {"data": b"{}", "content_type": "application/json"},
    {"method": "HEAD"},
    {"method": "OPTIONS"},
])
def test_cors_faults_bodies_and_other_methods_go_to_flask(app, extra):
    counted, client = Counted(app), app.test_client()
    extra = dict(extra)
    method = extra.pop("method", "GET")
    headers = {**ADMIN, **extra.pop("headers", {})}
    response = client.open(url("/dashboard/most-viewed"), method=method, headers=headers, **extra)
    assert counted.calls == 1
    assert response.status_code in (200, 204, 403, 500)


@pytest.mark.parametrize("extra", [
    {"headers": {"Origin": "http://localhost:3000"}},
    {"headers": {"Prefer": "code=500"}},
    {"data": b"{}", "content_type": "application/json"},
    {"headers": {"Transfer-Encoding": "chunked"}, "data": b"{}"},
])
def test_a_request_seen_before_still_goes_to_flask_with_cors_faults_or_a_body(app, extra):
    client = app.test_client()
    assert client.get(url("/dashboard/most-viewed"), headers=ADMIN).status_code == 200  # now remembered
    counted, extra = Counted(app), dict(extra)
    response = client.get(url("/dashboard/most-viewed"), headers={**ADMIN, **extra.pop("headers", {})}, **extra)
    assert counted.calls == 1
    assert response.status_code in (200, 500)


def test_a_request_seen_before_is_authenticated_and_authorised_again_but_not_parsed_again(app, monkeypatch):
    client, counted = app.test_client(), Counted(app)
    validator = app.extensions["insights_mock"].request_validators["getMostViewedDashboards"]
    parsed, parse = [], validator.parse
    monkeypatch.setattr(validator, "parse", lambda *args: parsed.append(args) or parse(*args))
    most = url("/dashboard/most-viewed?limit=3")
    for _ in range(3):
        assert client.get(most, headers=ADMIN).status_code == 200
    assert len(parsed) == 1 and counted.calls == 0
    assert client.get(most).status_code == 401
    assert client.get(most, headers=bearer("mock-noscope-token")).status_code == 403  # scope
    assert client.get(most, headers=bearer("mock-auditor-token")).status_code == 403  # role
    assert client.get(most, headers=bearer("mock-user-readonly-token")).json["data"] == \
        client.get(most, headers=ADMIN).json["data"]


def test_the_requests_a_pipeline_remembers_are_bounded(app, monkeypatch):
    monkeypatch.setattr("mock_server.pipeline.SEEN_SIZE", 2)
    client = app.test_client()
    for limit in range(1, 6):
        assert client.get(url(f"/dashboard/most-viewed?limit={limit}"), headers=ADMIN).status_code == 200
        assert len(pipeline_of(app)._seen) <= 2


def test_server_wide_faults_go_to_flask(app_factory):
    app = app_factory(LATENCY="1", ERROR_RATE=0.0)
    counted = Counted(app)
    assert app.test_client().get(url("/dashboard/most-viewed"), headers=ADMIN).status_code == 200
    assert counted.calls == 1


def test_a_view_is_recorded_once_on_the_fast_path(app):
    counted, client = Counted(app), app.test_client()
    dashboard = client.get(url("/dashboard/most-viewed?limit=1"), headers=ADMIN).json["data"][0]["dashboardId"]
    before = client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]["totalViews"]
    answer = client.post(url(f"/dashboard/{dashboard}/view"), headers=ADMIN)
    assert answer.status_code == 200 and answer.json["data"]["viewCount"] == before + 1 and counted.calls == 0
    refused = client.post(url(f"/dashboard/{dashboard}/view"), headers={"Authorization": "Bearer mock-auditor-token"})
    assert refused.status_code == 403 and counted.calls == 1  # Flask answered the error; nothing recorded
    assert client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]["totalViews"] == before + 1


def test_the_journal_and_access_log_see_the_fast_path_like_flask(twins, caplog):
    fast, slow = twins
    entries = []
    for app in (fast, slow):
        client = app.test_client()
        client.delete("/__admin/requests")
        with caplog.at_level("INFO", logger="insights_mock.access"):
            caplog.clear()
            client.get(url("/dashboard/most-viewed?limit=2"), headers={**ADMIN, "X-Request-Id": "same-id"})
            [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "insights_mock.access"]
        [entry] = client.get("/__admin/requests").json["entries"]
        for volatile in ("timestamp", "durationMs", "worker"):
            entry.pop(volatile)
        line.pop("ts"), line.pop("duration_ms")
        entries.append((entry, line))
    assert entries[0] == entries[1]


def test_a_response_that_breaks_the_spec_fails_under_test(app, monkeypatch):
    from mock_server.api import Ok

    pipeline = pipeline_of(app)
    route, _ = pipeline.router.match("GET", url("/dashboard/most-viewed"))
    monkeypatch.setattr(route, "handler", lambda call: Ok({"data": "not a list", "message": "x"}))
    with pytest.raises(ResponseContractError, match="getMostViewedDashboards"):
        app.test_client().get(url("/dashboard/most-viewed"), headers=ADMIN)


def test_a_response_that_breaks_the_spec_is_a_logged_500_when_not_testing(app_factory, monkeypatch, caplog):
    from mock_server.api import Ok

    app = app_factory(TESTING=False)
    route, _ = pipeline_of(app).router.match("GET", url("/dashboard/most-viewed"))
    monkeypatch.setattr(route, "handler", lambda call: Ok({"data": "not a list", "message": "x"}))
    response = app.test_client().get(url("/dashboard/most-viewed"), headers=ADMIN)
    assert response.status_code == 500 and response.json["error"] == "response_validation_failed"
    assert response.json["requestId"] == response.headers["X-Request-Id"]
    assert any("does not match openapi.yaml" in r.getMessage() for r in caplog.records)


def test_the_router_matches_each_operation_and_nothing_else(app):
    router = pipeline_of(app).router
    state = app.extensions["insights_mock"]
    for op in state.spec.operations.values():
        path = op.path.replace("{dashboardId}", UNKNOWN_UUID).replace("{mappingId}", UNKNOWN_UUID) \
            .replace("{auditLogId}", UNKNOWN_OBJECT_ID)
        route, args = router.match(op.method, path)
        assert route.op is op and all(v in (UNKNOWN_UUID, UNKNOWN_OBJECT_ID) for v in args.values())
        assert router.match("PUT", path) is None
        assert router.match(op.method, path + "/") is None
    assert router.match("GET", url("/dashboard/a/b/stats")) is None
    assert router.match("GET", "/api/v2/elsewhere") is None


def test_a_router_with_two_fitting_templates_leaves_the_choice_to_flask(app):
    state = app.extensions["insights_mock"]
    stats = state.spec.operations["getDashboardStats"]
    twin = dataclasses.replace(stats, operation_id="twin", path=stats.path.replace("stats", "{other}"))
    router = Router({"a": (stats, None), "b": (twin, None)})
    assert router.match("GET", url(f"/dashboard/{UNKNOWN_UUID}/stats")) is None
    assert router.match("GET", url(f"/dashboard/{UNKNOWN_UUID}/other"))[0].op is twin


def test_a_refused_caller_is_named_in_the_access_log_and_journal(twins, caplog):
    """A 403 is answered by Flask after the caller was authenticated: the log line and the entry name them."""
    for app in twins:
        client = app.test_client()
        client.delete("/__admin/requests")
        with caplog.at_level("INFO", logger="insights_mock.access"):
            caplog.clear()
            assert client.get(url("/dashboard/most-viewed"), headers={"Authorization": "Bearer mock-auditor-token"}
                              ).status_code == 403
            [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "insights_mock.access"]
        [entry] = client.get("/__admin/requests").json["entries"]
        auditor = next(t["user"] for t in TOKENS if t["token"] == "mock-auditor-token")
        assert line["userId"] == auditor["id"] and entry["user"] == auditor["email"]
