"""Targeted tests: rules that random data rarely reaches, checked on the target's real data.

Pagination over a busy log, filters against the full log, list prefixes, unknown ids, malformed ids, routing
errors (the record-a-view scenario, `limit`'s clamping and the id forms: test_targeted_views.py). Every request
also goes through all checks. A test without the data it needs skips with seeding.no_data: the reason names
its rules and the remedy.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contract_tests import checks, spec
from contract_tests.conftest import require_writes
from contract_tests.reporting import ContractViolation, violated
from contract_tests.seeding import no_data
from contract_tests.test_targeted_views import spellings

MAX_PAGES = 10  # bounds the page walk on a big deployment


def _log_path(op: str, target_id: str) -> dict:
    return {"dashboardId": target_id} if op == checks.DASHBOARD_LOGS else {"mappingId": target_id}


def _busiest(found, op: str, settings, rules) -> tuple[str, int]:
    """The log with the most entries, or a skip naming `rules` and why there was no data."""
    if op == checks.DASHBOARD_LOGS:
        target_id, total = found.busiest_dashboard, found.busiest_dashboard_total
        what, remedy = "no dashboard log with 2 entries was found (most viewed, and the dashboards viewed)", None
    else:
        target_id, total = found.busiest_mapping, found.busiest_mapping_total
        what = "no tool mapping with 2 audit entries is known"
        remedy = "set CONTRACT_MAPPING_IDS (no operation lists mappings, and none writes their entries)"
    if not target_id or total < 2:
        pytest.skip(no_data(settings, rules, what, remedy))
    return target_id, total


def _pin_day(api, op, path, discovered) -> str:
    """The last day of a window that writes cannot change: yesterday (server time) when the log has 2 entries
    by then; else today, as on a tenant whose data the suite made just now (seeding.py), whose callers then
    check that the log did not move meanwhile (`_unmoved`)."""
    yesterday = _yesterday(api, discovered)
    _, head = api.ok(op, path=path, query={"end_date": yesterday, "page_size": 1})
    if head["pagination"]["total_items"] >= 2:
        return yesterday
    return _server_today(api, discovered).isoformat()


def _unmoved(api, op, path, pinned_to, total, discovered) -> None:
    """A window ending today may grow while a test reads it (others' writes): then the comparison is void."""
    if pinned_to != _server_today(api, discovered).isoformat():
        return  # a past day is stable
    _, head = api.ok(op, path=path, query={"end_date": pinned_to, "page_size": 1})
    if head["pagination"]["total_items"] != total:
        pytest.skip(f"the log of {path} changed today while it was read; cannot compare")


@pytest.mark.parametrize("op", checks.LOG_LISTS)
def test_consecutive_pages_do_not_overlap(op, api, discovered, settings, fresh_state):
    """Walking a busy log page by page gives every entry once, in order across page boundaries, and the page
    after the last is empty. The walk is pinned with `end_date` = yesterday (UTC), so entries written
    meanwhile (by this suite or anyone on a shared deployment) cannot shift the pages; on a log of today only
    (the suite's own views on an empty tenant) it ends today and is void if the log moved."""
    target_id, _ = _busiest(discovered, op, settings, ("pages_do_not_overlap", "page_past_the_end_is_empty"))
    path = _log_path(op, target_id)
    pinned = {"end_date": _pin_day(api, op, path, discovered)}
    _, head = api.ok(op, path=path, query={**pinned, "page_size": 1})
    total = head["pagination"]["total_items"]
    size = max(1, math.ceil(total / MAX_PAGES))
    pages = math.ceil(total / size)
    seen: dict[str, int] = {}
    previous_last, previous_response = None, None
    for page in range(1, pages + 1):
        response, payload = api.ok(op, path=path, query={**pinned, "page": page, "page_size": size})
        items = payload["data"]
        for entry in items:
            violated(
                "pages_do_not_overlap",
                entry["_id"] not in seen,
                f"entry {entry['_id']} is on page {page} and on page {seen.get(entry['_id'])} (page_size {size})",
                previous_response,
                response,
            )
            seen[entry["_id"]] = page
        if previous_last is not None and items:
            first = items[0]
            violated(
                "pages_do_not_overlap",
                (first["createdAt"], first["_id"].lower()) < (previous_last["createdAt"], previous_last["_id"].lower()),
                f"page {page} starts with an entry ({first['createdAt']}, {first['_id']}) not older than the last "
                f"of page {page - 1} ({previous_last['createdAt']}, {previous_last['_id']})",
                previous_response,
                response,
            )
        previous_last = items[-1] if items else previous_last
        previous_response = response
    _unmoved(api, op, path, pinned["end_date"], total, discovered)
    violated(
        "pages_do_not_overlap",
        len(seen) == total,
        f"{pages} pages of {size} gave {len(seen)} distinct entries; total_items said {total}",
        previous_response,
    )
    response, payload = api.ok(op, path=path, query={**pinned, "page": pages + 1, "page_size": size})
    violated("page_past_the_end_is_empty", payload["data"] == [], f"page {pages + 1} of {pages} is not empty", response)


def _server_today(api, discovered):
    """The server's UTC day: DashboardStats' daily series ends today (the spec); this machine's date otherwise."""
    dashboard = discovered.busiest_dashboard or spec.example_of_parameter("dashboardId")
    response, payload = api.ok(checks.STATS, path={"dashboardId": dashboard})
    daily = (payload.get("data") or {}).get("dailyViews") if isinstance(payload, dict) else None
    last = checks.parse_day(daily[-1].get("date")) if isinstance(daily, list) and daily and isinstance(daily[-1], dict) else None
    return last or datetime.now(UTC).date()


def _yesterday(api, discovered) -> str:
    """The server's last whole UTC day: a window ending there does not move while the suite (or anyone) writes
    today."""
    return (_server_today(api, discovered) - timedelta(days=1)).isoformat()


def _pinned_full_log(api, op, target_id, discovered):
    """The whole log up to yesterday (or today, see `_pin_day`), pinned with `end_date` so later writes do not
    change it (see the page walk)."""
    path = _log_path(op, target_id)
    pinned_to = _pin_day(api, op, path, discovered)
    _, payload = api.ok(op, path=path, query={"end_date": pinned_to, "page_size": 1000})
    if not payload["data"]:
        pytest.skip(f"the log of {target_id} has no entries up to {pinned_to}")
    if payload["pagination"]["total_items"] > len(payload["data"]):
        pytest.skip(f"the log of {target_id} has more than 1000 entries; filter completeness needs it on one page")
    return payload["data"], pinned_to


@pytest.mark.parametrize("op", checks.LOG_LISTS)
def test_filters_select_exactly_the_matching_entries(op, api, discovered, settings, fresh_state):
    """Each filter returns every matching entry of the full log and nothing else (the check proves "nothing
    else" on every response; this proves "every"), the days of start_date/end_date inclusive."""
    target_id, _ = _busiest(discovered, op, settings, "filters_complete")
    full, pinned_to = _pinned_full_log(api, op, target_id, discovered)
    sample = full[len(full) // 2]
    queries = [{"action": action} for action in sorted({e["action"] for e in full})][:4]
    queries.append({"action": "export" if all(e["action"] != "export" for e in full) else "create"})
    day = sample["createdAt"][:10]
    queries.append({"user_id": sample["user_id"]})
    queries.append({"user_id": sample["user_id"].upper()})
    queries.append({"type": sample["type"]})
    queries.append({"type": "pipeline" if sample["type"] != "pipeline" else "registry"})  # another type: none
    queries.append({"start_date": day})
    queries.append({"end_date": day})
    queries.append({"start_date": day, "end_date": day})
    queries.append({"action": sample["action"], "user_id": sample["user_id"], "end_date": day})
    for query in queries:
        query = {"end_date": pinned_to, **query}
        wanted = [e["_id"] for e in full if _matches(e, query)]
        response, payload = api.ok(op, path=_log_path(op, target_id), query={**query, "page_size": 1000})
        got = [e["_id"] for e in payload["data"]]
        violated(
            "filters_complete",
            got == wanted and payload["pagination"]["total_items"] == len(wanted),
            f"filter {query} on the log of {target_id}: {len(wanted)} of its {len(full)} entries match "
            f"({wanted[:5]}...), the answer lists {len(got)} ({got[:5]}...) with total_items "
            f"{payload['pagination']['total_items']}",
            response,
        )
    _unmoved(api, op, _log_path(op, target_id), pinned_to, len(full), discovered)


def _matches(entry: dict, query: dict) -> bool:
    created = checks.timestamp(entry["createdAt"])
    if "action" in query and entry["action"] != query["action"]:
        return False
    if "user_id" in query and entry["user_id"].lower() != query["user_id"].lower():
        return False
    if "type" in query and entry["type"] != query["type"]:
        return False
    day = created.astimezone(UTC).date()
    if "start_date" in query and day < checks.parse_day(query["start_date"]):
        return False
    if "end_date" in query and day > checks.parse_day(query["end_date"]):
        return False
    return True


@pytest.mark.parametrize("op", checks.LOG_LISTS)
def test_start_date_after_end_date_is_rejected(op, api, fresh_state):
    """The parameters say `start_date` must not be after `end_date`: such a request is a 400 in the Error body."""
    response = api.check(
        op,
        path=_log_path(op, spec.example_of_parameter("dashboardId")),
        query={"start_date": "2026-11-02", "end_date": "2026-11-01"},
    )
    violated("start_after_end_rejected", response.status_code == 400,
             "start_date after end_date was not refused with 400", response)


@pytest.mark.parametrize("op", checks.LOG_LISTS)
def test_without_dates_the_list_holds_the_last_7_days(op, api, discovered, settings, fresh_state):
    """FACTS.md: without a date filter the list holds the last 7 days. Every entry of the default list is
    recent (the check audit_filters_honoured), and the default list is the 7-day window's list, as far as the
    window is stable: it is compared with start_date = 6 days before today, UTC (today and the 6 days before).
    "Today" is the server's: the last day of a dashboard's stats series (a mock may run at --now)."""
    target_id, _ = _busiest(discovered, op, settings, "default_window_is_7_days")
    path = _log_path(op, target_id)
    today = _server_today(api, discovered)
    window = {"start_date": (today - timedelta(days=checks.DEFAULT_WINDOW_DAYS - 1)).isoformat(),
              "end_date": today.isoformat()}
    for _attempt in range(STABLE_ATTEMPTS):
        _, explicit = api.ok(op, path=path, query={**window, "page_size": 1000})
        response, default = api.ok(op, path=path, query={"page_size": 1000})
        _, again = api.ok(op, path=path, query={**window, "page_size": 1000})
        if explicit == again and _server_today(api, discovered) == today:
            break
    else:
        pytest.skip("the last 7 days of this log kept changing; cannot compare")
    violated("default_window_is_7_days", default["data"] == explicit["data"],
             f"without dates the log of {target_id} lists {default['pagination']['total_items']} entries, the last "
             f"7 days ({window}) hold {explicit['pagination']['total_items']}", response)



STABLE_ATTEMPTS = 3


@pytest.mark.parametrize("op", (checks.MOST_VIEWED, checks.RECENTLY_VIEWED))
def test_smaller_limit_is_a_prefix(op, api, settings, fresh_state):
    """`limit` cuts the same ordered list: the first k items of limit=100 are the items of limit=k. Judged only
    when limit=100 reads the same before and after (on a shared deployment views may reorder the list)."""
    _, payload = api.ok(op, query={"limit": 100})
    everything = [d["dashboardId"] for d in payload["data"]]
    if len(everything) < 2:
        pytest.skip(no_data(settings, "limit_is_a_prefix", f"{op} lists fewer than 2 dashboards"))
    for limit in sorted({1, 2, len(everything) // 2, len(everything) - 1} - {0}):
        for _attempt in range(STABLE_ATTEMPTS):
            response, payload = api.ok(op, query={"limit": limit})
            got = [d["dashboardId"] for d in payload["data"]]
            response_all, payload = api.ok(op, query={"limit": 100})
            again = [d["dashboardId"] for d in payload["data"]]
            if again == everything:
                break
            everything = again  # the list moved under us: try again on the new order
        else:
            pytest.skip(f"{op} kept changing across {STABLE_ATTEMPTS} reads (a busy shared deployment)")
        violated(
            "limit_is_a_prefix",
            got == everything[:limit],
            f"limit={limit} gave {got}, the first {limit} of limit=100 are {everything[:limit]}",
            response,
            response_all,
        )


def test_unknown_ids_give_empty_results(api, fresh_state):
    """Well-formed ids of nothing: zero stats with null times, empty log pages, and 404 for one audit entry."""
    dashboard, mapping, entry = str(uuid.uuid4()), str(uuid.uuid4()), uuid.uuid4().hex[:24]
    response, payload = api.ok(checks.STATS, path={"dashboardId": dashboard})
    data = payload["data"]
    violated(
        "unknown_dashboard_has_zero_stats",
        data["totalViews"] == 0 and data["firstViewedAt"] is None and all(d["views"] == 0 for d in data["dailyViews"]),
        f"dashboard {dashboard} was never viewed, yet its stats are not zero",
        response,
    )
    for op, path in ((checks.DASHBOARD_LOGS, {"dashboardId": dashboard}), (checks.MAPPING_LOGS, {"mappingId": mapping})):
        response, payload = api.ok(op, path=path)
        violated(
            "unknown_target_has_empty_log",
            payload["data"] == [] and payload["pagination"]["total_items"] == 0,
            f"{op} of an id that names nothing is not an empty page",
            response,
        )
    response = api.check(checks.AUDIT_LOG, path={"auditLogId": entry})
    violated("unknown_entry_is_404", response.status_code == 404, f"audit entry {entry} does not exist", response)


def test_audit_entry_by_id_matches_the_log(api, discovered, settings, fresh_state):
    """An entry read by id is the entry the log listed, its id in lower, upper or mixed case (the ObjectId pattern)."""
    if not discovered.entries:
        pytest.skip(no_data(settings, "entry_by_id_matches_log", "no audit entry was found through the dashboards' logs"))
    for entry in discovered.entries[:3]:
        for spelling in (entry["_id"], *spellings(entry["_id"])):  # lower, upper, mixed: the ObjectId pattern
            response, payload = api.ok(checks.AUDIT_LOG, path={"auditLogId": spelling})
            violated(
                "entry_by_id_matches_log",
                payload["data"] == entry,
                f"GET {spelling} differs from the entry in the log of {entry['target_id']}",
                response,
            )


MALFORMED_IDS = {
    "dashboardId": ["not-a-uuid", "123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400", "zzzzzzzz-e89b-12d3-a456-426614174000"],
    "mappingId": ["not-a-uuid", "123e4567e89b12d3a456426614174000", "1"],
    "auditLogId": ["xyz", "507f1f77bcf86cd79943901", "507f1f77bcf86cd7994390111", "507f1f77bcf86cd79943901g"],
}


@pytest.mark.parametrize("op", [op.operation_id for op in spec.operations() if op.path_params])
def test_malformed_ids_are_rejected(op, api, settings, fresh_state):
    """A malformed path id is the caller's mistake: 400 in the Error body, naming the parameter; never a 5xx."""
    operation = spec.operation(op)
    if operation.writes:
        require_writes(settings, ("malformed_id_rejected",))
    (name,) = operation.path_params
    for value in MALFORMED_IDS[name]:
        response = api.check(op, path={name: value})
        violated(
            "malformed_id_rejected",
            response.status_code == 400,
            f"{op} with {name}={value!r} answered {response.status_code}; the spec documents 400",
            response,
        )
        details = checks.body(response).get("details") or []
        violated(
            "malformed_id_rejected",
            any(isinstance(d, dict) and d.get("name") == name for d in details),
            f"the 400 for {name}={value!r} does not name {name} in details",
            response,
        )


def test_routing_errors_use_the_error_body(target, settings):
    """Paths and methods outside the spec answer 404 / 405 (with Allow) in the one Error body."""
    stats_path = spec.operation(checks.STATS).path.replace("{dashboardId}", spec.example_of_parameter("dashboardId"))
    # Where the suite may not write, no unsafe method is sent, even one the spec does not list.
    delete, put = ("DELETE", "PUT") if settings.writes_allowed else ("TRACE", "TRACE")
    cases = [
        ("GET", checks.PREFIX + "/no-such-resource/at-all", 404),
        ("GET", "/no-such-path", 404),
        (delete, stats_path, 405),
        (put, checks.PREFIX + "/dashboard/most-viewed", 405),
    ]
    for method, path, status in cases:
        response = target.raw(method, path)
        violated("routing_error_status", response.status_code == status, f"{method} {path} should be {status}", response)
        try:
            checks.error_body_conformance(None, response, None)
        except AssertionError as exc:
            raise ContractViolation("error_body_conformance", f"{method} {path}: {exc}") from None
        if status == 405:
            violated("routing_error_status", bool(checks.header(response, "Allow")), "405 without an Allow header", response)
