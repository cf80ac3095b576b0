"""Stand-in deployments: the real mock with a few answers changed, served over HTTP on 127.0.0.1.

Run with --base-url, the suite treats a stand-in as a deployment (not strict about x-assumption, calibrating the
spec) although it is local: strictness and calibration follow --base-url, not the host. Each stand-in differs
from the spec in known ways, so a test can assert that the suite reports exactly those: test_assumed.py (a
difference in an assumed detail xfails, a stated one fails) and test_calibration.py (the observed differences
become calibration.md and calibration.patch.json).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from urllib.parse import parse_qs

from werkzeug.serving import make_server

from contract_tests.broken_variants import answer_of

# (method, path, query, status, payload) -> payload, edited or replaced; only JSON bodies are offered.
Change = Callable[[str, str, dict, int, object], object]

MOST_VIEWED = "/dashboard/most-viewed"
RECENTLY_VIEWED = "/dashboard/recently-viewed"
EXTRA_FIELD = "folder"  # the calibration stand-in's field the spec lacks
DROPPED_OPTIONAL = "description"  # an optional DashboardSummary field it never sends
UNKNOWN_TOOL = "youtrack"  # a ToolMappingRef.tool outside ToolName's enum
ERROR_EXTRA = "traceId"  # a field its error bodies carry and Error lacks
NOW = "2026-11-25T12:00:00Z"


def changing(app, change: Change):
    """A WSGI layer in front of the mock: every JSON answer passes through `change`."""
    inner = app.wsgi_app

    def wsgi(environ, start_response):
        status_line, headers, body = answer_of(inner, environ)
        status = int(status_line.split()[0])
        if any(k.lower() == "content-type" and "json" in v for k, v in headers) and body:
            query = parse_qs(environ.get("QUERY_STRING", ""))
            payload = change(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), query, status, json.loads(body))
            body = json.dumps(payload).encode()
            headers = [(k, str(len(body)) if k.lower() == "content-length" else v) for k, v in headers]
        start_response(status_line, headers)
        return [body]

    app.wsgi_app = wsgi
    return app


def _dashboard_lists(path: str, status: int, payload) -> list | None:
    if status == 200 and (path.endswith(MOST_VIEWED) or path.endswith(RECENTLY_VIEWED)) and isinstance(payload, dict):
        return [i for i in payload.get("data") or [] if isinstance(i, dict)]
    return None


def assumed_only(method, path, query, status, payload):
    """Differs only where the spec assumes: most viewed drops kpiCount (its being required is assumption #28) and
    breaks viewCount ties by lastViewedAt ascending (the tie-breaks are assumption #3); the counts stay in order.
    The seeded data has ties among the 100 most viewed (limit=100, as test_smaller_limit_is_a_prefix asks) whose
    view times differ, so the tie-break difference shows on every run, not only when generation meets it."""
    if status == 200 and path.endswith(MOST_VIEWED):
        items = payload["data"]
        for item in items:
            item.pop("kpiCount", None)
        items.sort(key=lambda i: i["lastViewedAt"])
        items.sort(key=lambda i: -i["viewCount"])  # stable: ties keep the ascending view times
    return payload


def stated_break(method, path, query, status, payload):
    """Breaks what the source states: most viewed is "ordered by total view count"; this one, ascending."""
    if status == 200 and path.endswith(MOST_VIEWED):
        payload["data"].sort(key=lambda i: i["viewCount"])
    return payload


def calibration_differences(method, path, query, status, payload):
    """Four differences calibration must name: an extra field, a never-sent optional field, a value outside an
    enum, an error body with a field the spec lacks. None of them breaks the spec (objects are open, `tool` is
    open in responses, `description` is optional), so the run itself passes."""
    for item in _dashboard_lists(path, status, payload) or ():
        item[EXTRA_FIELD] = "Team A"
        item.pop(DROPPED_OPTIONAL, None)
    if status == 200 and "/mapping/" in path and isinstance(payload, dict):
        for entry in payload.get("data") or ():
            ref = entry.get("tool_mapping") if isinstance(entry, dict) else None
            if isinstance(ref, dict) and ref.get("tool") == "jira":
                ref["tool"] = UNKNOWN_TOOL
    if status >= 400 and isinstance(payload, dict):
        payload[ERROR_EXTRA] = "0af7651916cd43dd8448eb211c80319c"
    return payload


def honest(method, path, query, status, payload):
    return payload


STAND_INS: dict[str, Change] = {
    "assumed-only": assumed_only,
    "stated-break": stated_break,
    "calibration": calibration_differences,
    "honest": honest,
}


class Served:
    """A stand-in on 127.0.0.1 (free port) in a thread of this process; `stop()` shuts it down."""

    def __init__(self, name: str, seed: int = 42) -> None:
        from mock_server import create_app

        from contract_tests.settings import DEFAULT_MOCK_SEED

        # The data is anchored at a fixed instant: the same lists (and ties) whatever the day of the run.
        config = {"SEED": seed or DEFAULT_MOCK_SEED, "DB": None, "LATENCY": None, "ERROR_RATE": 0.0, "NOW": NOW,
                  "VALIDATE_RESPONSES": False, "PROPAGATE_EXCEPTIONS": False}
        self.app = changing(create_app(config), STAND_INS[name])
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request would bury the test output
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def mapping_ids(self, limit: int = 5) -> list[str]:
        return [m["mappingId"] for m in self.app.extensions["insights_mock"].default.make_dataset().mappings[:limit]]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
