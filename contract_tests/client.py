"""Hand-written requests for the targeted tests, sent and judged exactly like generated ones.

`ApiClient.check(...)` builds a schemathesis Case for an operation of the spec, sends it to the target and
runs every check on the answer (built-in and contract_tests/checks.py), so a targeted test reports a broken
rule with the same curl reproducer as the property tests. `Discovery` finds real ids through the API itself
(most viewed, logs), so the tests work against any deployment's data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemathesis import GenerationMode

from contract_tests import checks, loader, spec
from contract_tests.reporting import violated


class ApiClient:
    @property
    def token(self) -> str | None:
        return getattr(self._token, "token", self._token)

    def __init__(self, target, token) -> None:
        """`token`: a token, a Principal (whose token may change: OAuth2 refresh), or None."""
        self.target = target
        self._token = token
        self.schema = loader.load(target.settings, [GenerationMode.POSITIVE])

    def case(self, operation_id: str, *, path: dict | None = None, query: dict | None = None, authorization="token"):
        """A Case with the client's token, or with `authorization` as the literal header (None: no header)."""
        headers = {}
        if authorization == "token":
            if self.token is not None:
                headers["Authorization"] = f"Bearer {self.token}"
        elif authorization is not None:
            headers["Authorization"] = authorization
        operation = self.schema.find_operation_by_id(operation_id)
        return operation.Case(path_parameters=path or {}, query=query or {}, headers=headers)

    def send(self, operation_id: str, **kwargs):
        case = self.case(operation_id, **kwargs)
        return case, case.call(**self.target.call_kwargs())

    def check(self, operation_id: str, *, excluded_checks=None, **kwargs):
        """Send and run every check; raises schemathesis' FailureGroup (with curl) on a broken rule."""
        case, response = self.send(operation_id, **kwargs)
        case.validate_response(response, excluded_checks=excluded_checks, transport_kwargs=self.target.call_kwargs())
        return response

    def ok(self, operation_id: str, **kwargs):
        """`check`, and the answer must be 200; returns the decoded body."""
        response = self.check(operation_id, **kwargs)
        violated("documented_success", response.status_code == 200, f"{operation_id} did not answer 200", response)
        return response, checks.body(response)


@dataclass
class Discovery:
    """Real ids of the target's data, found through its list operations (bounded: a few dozen requests)."""

    dashboards: list[dict] = field(default_factory=list)  # most viewed, up to 100
    busiest_dashboard: str | None = None
    busiest_dashboard_total: int = 0
    entries: list[dict] = field(default_factory=list)  # page 1 of the busiest dashboard's log
    mappings: list[str] = field(default_factory=list)
    busiest_mapping: str | None = None
    busiest_mapping_total: int = 0

    @property
    def entry_ids(self) -> list[str]:
        return [e["_id"] for e in self.entries if isinstance(e, dict) and "_id" in e]

    @property
    def user_ids(self) -> list[str]:
        return list(dict.fromkeys(e["user_id"] for e in self.entries if isinstance(e, dict) and "user_id" in e))


PROBED_TARGETS = 10


# The whole history (the lists default to the last 7 days): the busiest log overall is the best to page through.
WHOLE_LOG = {"start_date": "1970-01-01", "page_size": 1}


def discover(api: ApiClient, mapping_ids: list[str], dashboard_ids: tuple[str, ...] = ()) -> Discovery:
    """Best effort and unjudged: discovery only needs ids, so a broken rule in these answers is left to the tests
    that check those operations (one defect then fails the tests about it, not every test that needs ids).
    `dashboard_ids`: dashboards whose logs are probed besides those most viewed lists (the ones seeding viewed)."""
    found = Discovery()
    payload = _data(api, checks.MOST_VIEWED, query={"limit": 100})
    found.dashboards = [d for d in payload.get("data") or [] if isinstance(d, dict) and isinstance(d.get("dashboardId"), str)]
    probed = dict.fromkeys([*(d["dashboardId"] for d in found.dashboards[:PROBED_TARGETS]), *dashboard_ids])
    for dashboard_id in probed:
        total = _total(_data(api, checks.DASHBOARD_LOGS, path={"dashboardId": dashboard_id}, query=WHOLE_LOG))
        if total > found.busiest_dashboard_total:
            found.busiest_dashboard, found.busiest_dashboard_total = dashboard_id, total
    if found.busiest_dashboard:
        page = _data(api, checks.DASHBOARD_LOGS, path={"dashboardId": found.busiest_dashboard}, query={**WHOLE_LOG, "page_size": 100})
        found.entries = [e for e in page.get("data") or [] if isinstance(e, dict) and isinstance(e.get("_id"), str)]
    found.mappings = list(mapping_ids)
    for mapping_id in found.mappings[:PROBED_TARGETS]:
        total = _total(_data(api, checks.MAPPING_LOGS, path={"mappingId": mapping_id}, query=WHOLE_LOG))
        if total > found.busiest_mapping_total:
            found.busiest_mapping, found.busiest_mapping_total = mapping_id, total
    return found


def _data(api: ApiClient, operation_id: str, **kwargs) -> dict:
    _, response = api.send(operation_id, **kwargs)
    payload = checks.body(response)
    violated(
        "discovery",
        response.status_code == 200 and isinstance(payload, dict),
        f"discovering the target's data: {operation_id} with the read-write token did not answer 200 with JSON",
        response,
    )
    return payload


def _total(page: dict) -> int:
    total = (page.get("pagination") or {}).get("total_items")
    return total if isinstance(total, int) else 0


def example_path_parameters() -> dict[str, str]:
    return {name: spec.example_of_parameter(name) for name in ("dashboardId", "mappingId", "auditLogId")}
