"""Fuzzing the mock in-process: schemathesis' examples, coverage and fuzzing phases, with valid and invalid
data, over every operation of openapi.yaml, seeded so a run replays exactly.

Every answer must be a status the operation documents (or the app's routing 404/405 when generated path
values leave the route), `application/json`, an `Error` body for every 4xx/5xx, no 5xx at all (nothing here
asks for one), no traceback and no token in the body; and schemathesis' own checks (response schema, status
code conformance, negative data rejected, ignored auth, ...) must pass on each response.

The CI run is short (FUZZ_EXAMPLES per operation in the fuzzing phase, valid and invalid data together; the
coverage phase always generates every case the schema defines). The long run is `python scripts/fuzz.py
--examples 5000`, which runs this module with a larger count and prints the cases actually run, per operation,
phase and mode; `--served` sends them over HTTP to `insights-mock serve` (werkzeug, or gunicorn with
`--workers N`) instead. The counts are collected here, per response, not estimated.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from datetime import date
from pathlib import Path

import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, settings as hypothesis_settings
from schemathesis import GenerationMode

from schemathesis.checks import negative_data_rejection
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mock_helpers import NOW, SMALL, SPEC, SPEC_PATH, TOKENS
from mock_server import create_app

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
SEED = int(os.environ.get("FUZZ_SEED", "20261126"))
REPORT = os.environ.get("FUZZ_REPORT")  # a JSON file the counts are written to (scripts/fuzz.py reads it)
TOKEN = "mock-admin-token"
ERROR_SCHEMA = {"$ref": "#/components/schemas/Error", "components": SPEC["components"]}
# Requests that ask the mock for a status (Prism-style forcing): not generated on purpose.
FORCING_QUERY, FORCING_HEADER = "__code", "prefer"
TRACEBACK = re.compile(rb"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+")
SECRETS = tuple(entry["token"].encode() for entry in TOKENS)

# With FUZZ_BASE_URL (scripts/fuzz.py --served) the same cases go over HTTP to a served mock instead.
BASE_URL = os.environ.get("FUZZ_BASE_URL") or None
APP = None if BASE_URL else create_app({
    "TESTING": True, "PROPAGATE_EXCEPTIONS": False, "NOW": NOW, **SMALL, "SEED": 42, "DB": None, "LATENCY": None,
    "ERROR_RATE": 0.0,
    # Every response is checked against the spec by the app too; a mismatch becomes a 500 here.
    "VALIDATE_RESPONSES": True})
BEHIND_GUNICORN = bool(BASE_URL) and os.environ.get("FUZZ_SERVER") == "gunicorn"
CALL = {"base_url": BASE_URL, "timeout": 30} if BASE_URL else {}

schema = schemathesis.openapi.from_path(SPEC_PATH, config=schemathesis.Config(seed=SEED))
schema.app = APP
schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
schema.config.generation.update(modes=list(GenerationMode), max_examples=EXAMPLES, database="none")
schema.config.phases.coverage.generate_duplicate_query_parameters = True  # ?limit=1&limit=2 and the like


@schema.auth()
class AdminToken:
    def get(self, case, context):
        return TOKEN

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schema.hook
def filter_query(context, query):
    return not (isinstance(query, dict) and any(str(k).lower() == FORCING_QUERY for k in query))


@schema.hook
def filter_headers(context, headers):
    return not (isinstance(headers, dict) and any(str(k).lower() == FORCING_HEADER for k in headers))


def documented_statuses(case) -> set[int]:
    if case.method.upper() != case.operation.method.upper():
        return {405}  # the coverage phase tries methods the path does not have (schemathesis checks Allow)
    responses = SPEC["paths"][case.operation.path][case.method.lower()]["responses"]
    return {int(code) for code in responses}


def answer_problems(case, response) -> list[str]:
    """What is wrong with one answer, in words (empty when it is right)."""
    problems = []
    status = response.status_code
    method = case.method.upper()
    if method == "OPTIONS":
        # Answered for CORS preflights: an empty 200 that lists the allowed methods.
        allow = (response.headers.get("allow") or [""])[0]
        if status != 200 or case.operation.method.upper() not in allow or response.content:
            problems.append(f"OPTIONS answered {status} with Allow {allow!r} and {len(response.content or b'')} bytes")
        return problems
    documented = documented_statuses(case)
    # A generated path value with a slash or an empty segment leaves the route: the app's 404/405, also Errors.
    if status not in documented and status not in (404, 405) and not gunicorn_refusal(response):
        problems.append(f"status {status} is not documented ({sorted(documented)})")
    if status >= 500:
        problems.append(f"a {status} nobody asked for")
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith("application/json"):
        problems.append(f"content type {content_type!r}")
    raw = response.content or b""
    if TRACEBACK.search(raw):
        problems.append("a traceback in the body")
    for secret in SECRETS:
        if secret in raw:
            problems.append("a token in the body")
    try:
        body = json.loads(raw)
    except ValueError:
        problems.append("a body that is not JSON")
        return problems
    if status >= 400:
        errors = [e.message for e in jsonschema.Draft202012Validator(ERROR_SCHEMA).iter_errors(body)]
        if errors:
            problems.append(f"not the Error schema: {errors[:3]}")
        elif body["status"] != status:
            problems.append(f"body status {body['status']} != {status}")
    return problems


def _day(value) -> date | None:
    try:
        return date.fromisoformat(str(value)) if len(str(value)) == 10 else None
    except ValueError:
        return None


def breaks_the_start_end_rule(case) -> bool:
    query = case.query if isinstance(case.query, dict) else {}
    start, end = _day(query.get("start_date")), _day(query.get("end_date"))
    return start is not None and end is not None and start > end


# gunicorn refuses a request line or header over its limits itself, before the app runs (414/431), and
# mock_server/gunicorn_worker.py answers that in the Error schema. Only over HTTP: in process, never.
GUNICORN_LIMITS = (414, 431)


def gunicorn_refusal(response) -> bool:
    return BEHIND_GUNICORN and response.status_code in GUNICORN_LIMITS


class Tally:
    """Cases run, by operation, phase and generation mode, and their statuses."""

    def __init__(self) -> None:
        self.cases: Counter[tuple[str, str, str]] = Counter()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.gunicorn_refusals: Counter[int] = Counter()  # status -> refusals by gunicorn's own limits

    def record(self, case, status: int) -> None:
        meta = case.meta
        phase = meta.phase.name.value if meta is not None else "explicit"
        mode = meta.generation.mode.value if meta is not None else "positive"
        self.cases[(case.operation.label, phase, mode)] += 1
        self.statuses[(case.operation.label, status)] += 1

    def of(self, label: str) -> dict[str, int]:
        found: Counter[str] = Counter()
        for (op, phase, mode), n in self.cases.items():
            if op == label:
                found[f"{phase}/{mode}"] += n
        return dict(found)

    def as_json(self) -> dict:
        operations: dict[str, dict] = {}
        for (op, phase, mode), n in sorted(self.cases.items()):
            operations.setdefault(op, {"cases": {}, "statuses": {}})["cases"][f"{phase}/{mode}"] = n
        for (op, status), n in sorted(self.statuses.items()):
            operations.setdefault(op, {"cases": {}, "statuses": {}})["statuses"][str(status)] = n
        return {"seed": SEED, "examples": EXAMPLES, "total": sum(self.cases.values()), "operations": operations,
                "gunicorn_refusals": {str(k): v for k, v in sorted(self.gunicorn_refusals.items())}}


TALLY = Tally()


@pytest.fixture(scope="module", autouse=True)
def fuzz_report():
    yield TALLY
    if REPORT:
        Path(REPORT).write_text(json.dumps(TALLY.as_json(), indent=2), encoding="utf-8")


@pytest.fixture
def cases_of_this_operation(request):
    """After an operation's test: it was fuzzed in both phases, with valid and invalid data."""
    seen: list = []
    yield seen
    assert seen, f"{request.node.name}: no case was generated"
    label = seen[0].operation.label
    ran = TALLY.of(label)
    missing = [key for key in ("coverage/positive", "coverage/negative", "fuzzing/positive", "fuzzing/negative")
               if not ran.get(key)]
    assert not missing, f"{label}: no cases in {missing}; ran {ran}"


@schema.parametrize()
@hypothesis_settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                           HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_every_fuzzed_request_gets_a_documented_json_answer(case, cases_of_this_operation):
    response = case.call(**CALL)
    TALLY.record(case, response.status_code)
    if gunicorn_refusal(response):
        TALLY.gunicorn_refusals[response.status_code] += 1  # counted, and judged like every other answer
    if not cases_of_this_operation:
        cases_of_this_operation.append(case)
    problems = answer_problems(case, response)
    assert not problems, f"{case.method} {case.formatted_path} -> {response.status_code}: {problems}\n" \
                         f"{(response.content or b'')[:600]!r}\n{case.as_curl_command()}"
    if breaks_the_start_end_rule(case):
        # Schema-valid but refused by the rule the spec states in prose ("start_date must not be after end_date"): a 400,
        # as answer_problems accepted above, not a rejection of valid data.
        case.validate_response(response, excluded_checks=[positive_data_acceptance], transport_kwargs=CALL)
    elif 400 not in documented_statuses(case):
        # Recently/most viewed document no 400 (the source lists none): an odd `limit` is clamped, as the spec
        # says, so invalid data is not rejected there; every other check still runs.
        case.validate_response(response, excluded_checks=[negative_data_rejection], transport_kwargs=CALL)
    else:
        case.validate_response(response, transport_kwargs=CALL)


# --- the judge itself: it fails on crafted bad answers (no check here can pass vacuously) ----------------------

def _answer(status: int, content: bytes, content_type: str = "application/json", method: str = "GET"):
    import requests
    from schemathesis import Response

    operation = schema["/api/v2/insights/kpis/audit-logs/dashboard/{dashboardId}/logs"]["GET"]  # it documents a 400
    case = operation.Case(method=method, query={})
    request = requests.Request(method, "http://localhost/x").prepare()
    return case, Response(status, {"content-type": [content_type]}, content, request, 0.0, True)


GOOD_400 = b'{"status": 400, "error": "bad_request", "message": "Bad Request - page_size"}'


@pytest.mark.parametrize("status, content, content_type, expected", [
    (500, b"<html>Internal Server Error</html>", "text/html", "nobody asked"),
    (500, b'{"status": 500, "error": "internal_error", "message": "x"}', "application/json", "nobody asked"),
    (418, b'{"status": 418, "error": "teapot", "message": "x"}', "application/json", "not documented"),
    (400, b'{"detail": "bad"}', "application/json", "not the Error schema"),
    (400, b'{"status": 401, "error": "bad_request", "message": "x"}', "application/json", "body status"),
    (400, GOOD_400[:-1] + b', "details": [{"message": "Traceback (most recent call last)"}]}', "application/json",
     "traceback"),
    (400, GOOD_400[:-1] + b', "details": [{"message": "mock-admin-token"}]}', "application/json", "token"),
    (400, GOOD_400, "text/plain", "content type"),
])
def test_the_judge_flags_bad_answers(status, content, content_type, expected):
    case, response = _answer(status, content, content_type)
    assert any(expected in problem for problem in answer_problems(case, response))


def test_the_judge_accepts_a_documented_error():
    assert answer_problems(*_answer(400, GOOD_400)) == []
