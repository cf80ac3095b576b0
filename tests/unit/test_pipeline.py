"""http/pipeline.py: one pipeline for every API request; each step runs at most once, errors included."""

from __future__ import annotations

from collections import Counter

import pytest

from mock_helpers import ADMIN, UNKNOWN_OBJECT_ID, UNKNOWN_UUID, bearer, url

FIRST_PART = ["read_request", "session", "route", "cors", "faults", "authenticate", "authorize", "validate", "respond"]
TAIL = ["check", "headers", "log", "journal"]


@pytest.fixture
def counted(app, monkeypatch):
    """The app, with every step of its pipeline and the calls below them counted."""
    pipeline = app.wsgi_app.app.api
    counts: Counter = Counter()

    def counting(name, step):
        def run(state, ex):
            counts[name] += 1
            return step(state, ex)
        return name, run

    pipeline.steps = [counting(name, step) for name, step in pipeline.steps]
    pipeline.tail = [counting(name, step) for name, step in pipeline.tail]
    state = app.extensions["insights_mock"]
    for owner, method in ((state.tokens, "authenticate"), (state.default.store, "audit_log"), (state.default.store, "most_viewed"),
                          (state.default.store, "record_view")):
        original = getattr(owner, method)

        def wrapped(*args, _original=original, _name=method, **kwargs):
            counts["call:" + _name] += 1
            return _original(*args, **kwargs)
        monkeypatch.setattr(owner, method, wrapped)
    assert [name for name, _ in pipeline.steps] == FIRST_PART and [name for name, _ in pipeline.tail] == TAIL
    return app.test_client(), counts


def ran(counts) -> dict[str, int]:
    return {name: n for name, n in counts.items() if not name.startswith("call:")}


@pytest.mark.parametrize("method, path, headers, status, last", [
    ("GET", "/dashboard/most-viewed", ADMIN, 200, "respond"),
    ("POST", f"/dashboard/{UNKNOWN_UUID}/view", ADMIN, 200, "respond"),
    ("GET", "/dashboard/most-viewed", {}, 401, "authenticate"),
    ("GET", "/dashboard/most-viewed", bearer("mock-auditor-token"), 403, "authorize"),
    ("GET", f"/dashboard/{UNKNOWN_UUID}/logs?page_size=0", ADMIN, 400, "validate"),
    ("GET", f"/{UNKNOWN_OBJECT_ID}", ADMIN, 404, "respond"),
    ("GET", "/dashboard/most-viewed", {"Prefer": "code=500"}, 500, "faults"),
    ("GET", "/dashboard/most-viewed", {"Prefer": "code=200"}, 200, "faults"),
    ("GET", "/no/such/path", ADMIN, 404, "route"),
    ("GET", f"/dashboard/{UNKNOWN_UUID}/stats", {**ADMIN, "X-Mock-Session": "no spaces"}, 400, "session"),
    ("GET", "/dashboard/most-viewed", {**ADMIN, "X-Mock-Session": "test-7"}, 200, "respond"),
    ("OPTIONS", "/dashboard/most-viewed", {"Origin": "http://localhost:5173",
                                          "Access-Control-Request-Method": "GET"}, 200, "cors"),
])
def test_each_step_runs_once_and_the_tail_always(counted, method, path, headers, status, last):
    client, counts = counted
    response = client.open(url(path), method=method, headers=headers)
    assert response.status_code == status
    expected = {name: 1 for name in FIRST_PART[:FIRST_PART.index(last) + 1] + TAIL}
    assert ran(counts) == expected
    assert counts["call:authenticate"] == (1 if FIRST_PART.index(last) >= FIRST_PART.index("authenticate") else 0)


def test_an_unknown_audit_entry_reads_the_store_once(counted):
    client, counts = counted
    assert client.get(url(f"/{UNKNOWN_OBJECT_ID}"), headers=ADMIN).status_code == 404
    assert (counts["call:audit_log"], counts["call:authenticate"]) == (1, 1)


def test_a_browser_call_takes_the_same_steps(counted):
    client, counts = counted
    response = client.get(url("/dashboard/most-viewed"), headers={**ADMIN, "Origin": "http://localhost:5173"})
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert ran(counts) == {name: 1 for name in FIRST_PART + TAIL}
    assert counts["call:most_viewed"] == 1


def test_a_step_s_exception_is_rendered_once_with_the_tail(counted, monkeypatch):
    client, counts = counted
    state = client.application.extensions["insights_mock"]

    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(state.default.store, "most_viewed", broken)
    response = client.get(url("/dashboard/most-viewed"), headers={**ADMIN, "Origin": "http://localhost:5173"})
    assert response.status_code == 500 and response.json["error"] == "internal_error"
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"  # errors get CORS too
    assert response.json["requestId"] == response.headers["X-Request-Id"]
    assert ran(counts) == {name: 1 for name in FIRST_PART + TAIL}


def test_head_runs_the_get_and_sends_no_body(counted):
    client, counts = counted
    head = client.head(url("/dashboard/most-viewed"), headers=ADMIN)
    get = client.get(url("/dashboard/most-viewed"), headers=ADMIN)
    assert head.status_code == 200 and head.get_data() == b""
    assert int(head.headers["Content-Length"]) == len(get.get_data())
