"""operator-openapi.yaml: the operator API's own OpenAPI document is valid, lists exactly the /__admin routes
the app has (a new operator endpoint fails here until it is described), is served open at
/__admin/openapi.yaml, and the app's answers (successes, errors, the locked 401) satisfy it."""

from __future__ import annotations

import re

import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_spec_validator import validate

from mock_helpers import ADMIN, ROOT, bearer, url

DOCUMENT = yaml.safe_load((ROOT / "operator-openapi.yaml").read_text(encoding="utf-8"))
OPERATOR = OpenAPI.from_dict(DOCUMENT)


class _ResponseSide(WerkzeugOpenAPIRequest):
    """The request as openapi-core needs it to judge a response: its body was consumed by the app, and a
    response is judged on its own."""

    @property
    def body(self) -> bytes:
        return b""


def judge(response) -> None:
    """openapi-core's verdict on one answer, against the operator document (raises on any mismatch)."""
    OPERATOR.validate_response(_ResponseSide(response.request), WerkzeugOpenAPIResponse(response))


def test_the_document_is_valid_openapi_3_1():
    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1")


def test_it_lists_exactly_the_operator_routes_of_the_app(app):
    routes = {(method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)) for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/__admin/") for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item
                  if method != "parameters"}
    assert routes == documented


def test_it_is_served_open_off_loopback_without_a_token(app_factory):
    client = app_factory(HOST="0.0.0.0").test_client()
    response = client.get("/__admin/openapi.yaml")
    assert response.status_code == 200 and response.mimetype == "application/yaml"
    assert response.data == (ROOT / "operator-openapi.yaml").read_bytes()
    judge(response)


def test_the_answers_on_loopback_satisfy_the_document(client):
    client.get(url("/dashboard/most-viewed"), headers=ADMIN)  # one journal entry to describe
    answers = [
        client.get("/__admin/health"),
        client.get("/__admin/scenario"),
        client.get("/__admin/requests?limit=5&status=2xx&method=get&since=2020-01-01T00:00:00Z"),
        client.get("/__admin/requests?operationid=getAuditLog"),  # a misspelt filter: 400
        client.post("/__admin/scenario", json={"name": "empty"}),
        client.post("/__admin/scenario", json={"name": "no-such-scenario"}),  # 404
        client.post("/__admin/scenario", data="not json", content_type="application/json"),  # 400
        client.post("/__admin/reset"),
        client.delete("/__admin/requests"),
    ]
    assert [r.status_code for r in answers] == [200, 200, 200, 400, 200, 404, 400, 200, 200]
    assert client.get("/__admin/requests").json["count"] == 0  # cleared: the entries above were checked non-empty
    for response in answers:
        judge(response)


def test_the_session_answers_satisfy_the_document(client):
    answers = [
        client.post("/__admin/sessions", json={"name": "t1", "scenario": "empty", "now": "2026-11-20T10:00:00Z"}),
        client.post("/__admin/sessions", json={"nam": "t1"}),  # 400
        client.post("/__admin/sessions", json={"name": "t2", "scenario": "no-such"}),  # 404
        client.get("/__admin/sessions"),
        client.get("/__admin/sessions/t1"),
        client.get("/__admin/sessions/default"),
        client.get("/__admin/sessions/nope"),  # 404
        client.post("/__admin/sessions/t1/reset"),
        client.get("/__admin/sessions/t1/scenario"),
        client.post("/__admin/sessions/t1/scenario", json={"name": "default"}),
        client.get("/__admin/sessions/t1/requests?limit=3"),
        client.delete("/__admin/sessions/t1/requests"),
        client.get("/__admin/scenario", headers={"X-Mock-Session": "t1"}),
        client.get("/__admin/health", headers={"X-Mock-Session": "bad name!"}),  # 400
        client.delete("/__admin/sessions/default"),  # 400
        client.delete("/__admin/sessions/t1"),
    ]
    assert [r.status_code for r in answers] == [201, 400, 404, 200, 200, 200, 404, 200, 200, 200, 200, 200, 200,
                                                 400, 400, 200]
    for response in answers:
        judge(response)


def test_the_locked_and_the_token_answers_satisfy_the_document(app_factory):
    locked = app_factory(HOST="0.0.0.0").test_client()
    unlocked = app_factory(HOST="0.0.0.0", ADMIN_TOKEN="s3cret-admin").test_client()
    for method, path in (("GET", "/__admin/scenario"), ("POST", "/__admin/reset"), ("GET", "/__admin/requests"),
                         ("DELETE", "/__admin/requests")):
        for response in (locked.open(path, method=method), unlocked.open(path, method=method, headers=ADMIN)):
            assert response.status_code == 401
            judge(response)
        allowed = unlocked.open(path, method=method, headers=bearer("s3cret-admin"))
        assert allowed.status_code == 200
        judge(allowed)
    judge(locked.get("/__admin/health"))


def test_a_wrong_answer_is_caught():
    """The judge can fail: an answer missing a required field of the document is refused."""
    import pytest
    from flask import Flask, Response

    fake = Flask("fake")
    fake.add_url_rule("/__admin/health", view_func=lambda: Response('{"status": "ok"}', mimetype="application/json"))
    with pytest.raises(Exception):
        judge(fake.test_client().get("/__admin/health"))
