"""Targeted tests of the view operations and of the forms of input the spec allows: the record-a-view scenario
end to end (counts, the daily series, distinct viewers, the lists), `limit`'s default and clamping, and path
ids accepted in every form the Uuid and ObjectId schemas allow (lower, upper and mixed case).

Each compares answers of the same target, read twice around the request under test where others may write
(a shared deployment), so a moving target voids a comparison instead of failing it.
"""

from __future__ import annotations

import uuid
from datetime import UTC

import pytest

from contract_tests import checks
from contract_tests.conftest import require_writes
from contract_tests.model import ServerModel
from contract_tests.reporting import violated
from contract_tests.seeding import no_data

STABLE_ATTEMPTS = 3
ID_RULE = "ids_accepted_in_any_case"
LIMIT_RULE = "limit_default_and_clamped"


def test_record_view_is_reflected_everywhere(api, discovered, settings, fresh_state):
    """The issue's scenario: record a view of the most viewed dashboard, then stats, logs, recently viewed and
    most viewed must agree (exactly on an exclusive target, at least on a shared one)."""
    require_writes(settings, ("view_counted", "view_logged", "recently_viewed_after_view", "view_in_daily_series",
                              "most_viewed_matches_stats"))
    if not discovered.dashboards:
        pytest.skip(no_data(settings, ("view_counted", "view_logged", "recently_viewed_after_view",
                                      "view_in_daily_series", "most_viewed_matches_stats"),
                            "most viewed lists no dashboard on this target"))
    model = ServerModel(exclusive=api.target.exclusive, user_id=settings.principal("full").user_id)
    dashboard = api.ok(checks.MOST_VIEWED, query={"limit": 1})[1]["data"][0]["dashboardId"]

    def step(op, **kwargs):
        case, response = api.send(op, **kwargs)
        case.validate_response(response, transport_kwargs=api.target.call_kwargs())
        violated("documented_success", response.status_code == 200, f"{op} did not answer 200", response)
        model.observe(response, case)
        return response, checks.body(response)

    step(checks.MOST_VIEWED, query={"limit": 100})
    _, before = step(checks.STATS, path={"dashboardId": dashboard})
    _, logs_before = step(checks.DASHBOARD_LOGS, path={"dashboardId": dashboard}, query={"page_size": 1})
    view_response, view = step(checks.RECORD_VIEW, path={"dashboardId": dashboard})
    violated(
        "view_counted",
        view["data"]["viewCount"] >= before["data"]["totalViews"] + 1,
        f"viewCount {view['data']['viewCount']} after {before['data']['totalViews']} views",
        view_response,
    )
    response, after = step(checks.STATS, path={"dashboardId": dashboard})
    violated(
        "view_counted",
        after["data"]["totalViews"] >= before["data"]["totalViews"] + 1,
        f"stats totalViews went from {before['data']['totalViews']} to {after['data']['totalViews']} across a view",
        response,
    )
    _check_series_counts_view(api.target.exclusive, before["data"], after["data"], view["data"], response)
    response, logs_after = step(checks.DASHBOARD_LOGS, path={"dashboardId": dashboard}, query={"page_size": 1})
    violated(
        "view_logged",
        logs_after["pagination"]["total_items"] >= logs_before["pagination"]["total_items"] + 1,
        "the dashboard's log did not grow by the view's entry",
        response,
    )
    step(checks.DASHBOARD_LOGS, path={"dashboardId": dashboard}, query={"action": "view", "page_size": 5})
    response, recent = step(checks.RECENTLY_VIEWED, query={"limit": 100})
    violated(
        "recently_viewed_after_view",
        any(d["dashboardId"] == dashboard for d in recent["data"]),
        f"dashboard {dashboard}, just viewed, is not in the caller's recently viewed",
        response,
    )
    response, most = step(checks.MOST_VIEWED, query={"limit": 100})
    _, stats = step(checks.STATS, path={"dashboardId": dashboard})
    listed = next((d for d in most["data"] if checks.same_id(d["dashboardId"], dashboard)), None)
    if api.target.exclusive and listed is not None:
        # Both say "total views by all users" and "the last view by anyone" (most viewed's description).
        violated(
            "most_viewed_matches_stats",
            listed["viewCount"] == stats["data"]["totalViews"]
            and checks.parse_instant(listed["lastViewedAt"]) == checks.parse_instant(stats["data"]["lastViewedAt"]),
            f"most viewed shows {dashboard} with viewCount {listed['viewCount']} and lastViewedAt "
            f"{listed['lastViewedAt']}; its stats say totalViews {stats['data']['totalViews']} and lastViewedAt "
            f"{stats['data']['lastViewedAt']}",
            response,
        )


def test_view_of_unknown_dashboard_counts_but_is_not_listed(api, settings, fresh_state):
    """docs/ARCHITECTURE.md: a view of a well-formed unknown id answers 200 and counts in its stats, but the
    dashboard lists only show dashboards that exist."""
    require_writes(settings, ("view_counted", "view_logged", "unique_viewers_counted", "lists_show_existing_dashboards"))
    dashboard = str(uuid.uuid4())
    response, view = api.ok(checks.RECORD_VIEW, path={"dashboardId": dashboard})
    violated("view_counted", view["data"]["viewCount"] == 1, "the first view of a new id must count 1", response)
    # The view is also a `view` entry in the dashboard's audit log (recordDashboardView's description).
    response, logs = api.ok(checks.DASHBOARD_LOGS, path={"dashboardId": dashboard})
    violated(
        "view_logged",
        [(e["action"], e["user_id"].lower()) for e in logs["data"]] == [("view", view["data"]["userId"].lower())],
        f"the log of {dashboard} must hold exactly the `view` entry of the call",
        response,
    )
    response, stats = api.ok(checks.STATS, path={"dashboardId": dashboard})
    violated("view_counted", stats["data"]["totalViews"] == 1, "stats do not count the view of the unknown id", response)
    # uniqueViewers is a distinct count: a second view by the same user adds a view, not a viewer.
    api.ok(checks.RECORD_VIEW, path={"dashboardId": dashboard})
    response, again = api.ok(checks.STATS, path={"dashboardId": dashboard})
    violated(
        "unique_viewers_counted",
        (stats["data"]["uniqueViewers"], again["data"]["totalViews"], again["data"]["uniqueViewers"]) == (1, 2, 1),
        f"one user viewed {dashboard} once, then twice: uniqueViewers {stats['data']['uniqueViewers']}, then "
        f"totalViews {again['data']['totalViews']} and uniqueViewers {again['data']['uniqueViewers']} (expected 1, "
        "then 2 and 1)",
        response,
    )
    for op in (checks.RECENTLY_VIEWED, checks.MOST_VIEWED):
        response, payload = api.ok(op, query={"limit": 100})
        violated(
            "lists_show_existing_dashboards",
            all(d["dashboardId"] != dashboard for d in payload["data"]),
            f"{op} lists {dashboard}, an id that names no dashboard",
            response,
        )


def _check_series_counts_view(exclusive: bool, before: dict, after: dict, view: dict, response) -> None:
    """DashboardStats: `dailyViews` ends today (the day of a view made now), and the view is counted in its day
    and in both windows: exactly one more on an exclusive target, at least one more on a shared one."""
    viewed = checks.parse_instant(view["viewedAt"])
    last_day = after["dailyViews"][-1]["date"]
    violated(
        "view_in_daily_series",
        viewed is not None and last_day == viewed.astimezone(UTC).date().isoformat(),
        f"a view recorded at {view['viewedAt']}: the daily series must end that (UTC) day, it ends {last_day}",
        response,
    )
    if before["dailyViews"][-1]["date"] != last_day:
        return  # midnight passed between the reads: the days differ, counts cannot be compared
    grew = [
        ("today's dailyViews", before["dailyViews"][-1]["views"], after["dailyViews"][-1]["views"]),
        ("viewsLast7Days", before["viewsLast7Days"], after["viewsLast7Days"]),
        ("viewsLast30Days", before["viewsLast30Days"], after["viewsLast30Days"]),
    ]
    wrong = [f"{name} {a} -> {b}" for name, a, b in grew if (b != a + 1 if exclusive else b < a + 1)]
    violated("view_in_daily_series", not wrong, "one view recorded, but " + ", ".join(wrong), response)


# -- limit ------------------------------------------------------------------------------------------------------

# (sent, the limit it must act as): the Limit parameter's description (no 400 is documented, so it clamps).
CLAMPED = (({}, 10), ({"limit": 0}, 1), ({"limit": -3}, 1), ({"limit": 101}, 100), ({"limit": 100000}, 100),
           ({"limit": "ten"}, 10), ({"limit": "2.5"}, 10))


def _ids(payload) -> list[str]:
    return [d["dashboardId"].lower() for d in payload["data"]]


@pytest.mark.parametrize("op", (checks.MOST_VIEWED, checks.RECENTLY_VIEWED))
def test_limit_default_and_clamping(op, api, settings, fresh_state):
    """Without `limit` the list is that of limit=10; below 1 it is limit=1's, above 100 limit=100's, and a
    value that is not an integer is ignored (the default). Judged on the same list read around each request."""
    _, payload = api.ok(op, query={"limit": 100})
    if len(payload["data"]) < 2:
        pytest.skip(no_data(settings, LIMIT_RULE, f"{op} lists fewer than 2 dashboards"))
    for sent, acts_as in CLAMPED:
        for _attempt in range(STABLE_ATTEMPTS):
            _, reference = api.ok(op, query={"limit": acts_as})
            response, got = api.ok(op, query=sent)
            _, again = api.ok(op, query={"limit": acts_as})
            if _ids(reference) == _ids(again):
                break
        else:
            pytest.skip(f"{op} kept changing across {STABLE_ATTEMPTS} reads (a busy shared deployment)")
        violated(
            LIMIT_RULE,
            _ids(got) == _ids(reference),
            f"{op} with {sent or 'no limit'} must list what limit={acts_as} lists ({len(reference['data'])} "
            f"dashboards), it lists {len(got['data'])}",
            response,
        )


# -- id forms ---------------------------------------------------------------------------------------------------


def spellings(value: str) -> list[str]:
    """The other forms of an id the schemas allow: upper case, and mixed (upper first half); the patterns
    admit [0-9a-fA-F], and an id names the same thing in any case (RFC 9562 section 4 for UUIDs)."""
    half = len(value) // 2
    return [value.upper(), value[:half].upper() + value[half:].lower()]


def _same_answer(payload) -> dict:
    """An answer with the echoed path id in lower case: the echo may keep the request's case (ids_match_request
    compares ids case-insensitively), the rest must be identical."""
    data = payload.get("data")
    if isinstance(data, dict) and isinstance(data.get("dashboardId"), str):
        data = {**data, "dashboardId": data["dashboardId"].lower()}
    return {**payload, "data": data}


ID_READS = ((checks.STATS, "dashboardId"), (checks.DASHBOARD_LOGS, "dashboardId"), (checks.MAPPING_LOGS, "mappingId"))


@pytest.mark.parametrize("op,name", ID_READS)
def test_uuid_path_ids_are_accepted_in_any_case(op, name, api, discovered, settings, fresh_state):
    """The Uuid schema admits upper-case hex: a dashboard's or mapping's id in upper or mixed case reads the same
    stats and log as in lower case (not a 400, not an empty answer of an unknown id)."""
    value = discovered.busiest_dashboard if name == "dashboardId" else discovered.busiest_mapping
    if not value:
        remedy = None if name == "dashboardId" else "set CONTRACT_MAPPING_IDS (no operation lists mappings)"
        pytest.skip(no_data(settings, ID_RULE, f"no {name} with data is known", remedy))
    query = {} if op == checks.STATS else {"start_date": "1970-01-01", "page_size": 1000}
    for spelling in spellings(value):
        for _attempt in range(STABLE_ATTEMPTS):
            _, lower = api.ok(op, path={name: value.lower()}, query=query)
            response, other = api.ok(op, path={name: spelling}, query=query)
            _, again = api.ok(op, path={name: value.lower()}, query=query)
            if lower == again:
                break
        else:
            pytest.skip(f"{op} of {value} kept changing across {STABLE_ATTEMPTS} reads")
        violated(ID_RULE, _same_answer(other) == _same_answer(lower),
                 f"{op} with {name} {spelling!r} answers differently from {value.lower()!r}", response)


def test_view_with_an_upper_case_id_counts_on_the_dashboard(api, discovered, settings, fresh_state):
    """Recording a view with the dashboard id in upper case counts on that dashboard (its stats, read in lower
    case, show one more view), not on another id."""
    require_writes(settings, (ID_RULE,))
    value = discovered.busiest_dashboard or (discovered.dashboards[0]["dashboardId"] if discovered.dashboards else None)
    if not value:
        pytest.skip(no_data(settings, ID_RULE, "no dashboard is known"))
    _, before = api.ok(checks.STATS, path={"dashboardId": value.lower()})
    view_response, view = api.ok(checks.RECORD_VIEW, path={"dashboardId": value.upper()})
    response, after = api.ok(checks.STATS, path={"dashboardId": value.lower()})
    total, then = before["data"]["totalViews"], after["data"]["totalViews"]
    violated(ID_RULE, then == total + 1 if api.target.exclusive else then >= total + 1,
             f"a view of {value.upper()} took the stats of {value.lower()} from {total} to {then} views",
             view_response, response)


def test_view_body_is_ignored(api, discovered, settings, fresh_state):
    """recordDashboardView takes no body, "a body, if sent, is ignored": a body claiming another dashboard, count
    and time changes nothing - the answer is the plain view of the path's dashboard, counted once."""
    require_writes(settings, ("view_body_ignored",))
    value = discovered.busiest_dashboard or (discovered.dashboards[0]["dashboardId"] if discovered.dashboards else None)
    if not value:
        pytest.skip(no_data(settings, "view_body_ignored", "no dashboard is known"))
    _, before = api.ok(checks.STATS, path={"dashboardId": value})
    case = api.case(checks.RECORD_VIEW, path={"dashboardId": value})
    case.body = {"dashboardId": str(uuid.uuid4()), "viewCount": 1_000_000, "viewedAt": "2000-01-01T00:00:00.000Z"}
    case.media_type = "application/json"
    response = case.call(**api.target.call_kwargs())
    case.validate_response(response, transport_kwargs=api.target.call_kwargs())
    view = (checks.body(response) or {}).get("data") or {}
    total = before["data"]["totalViews"]
    counted = view.get("viewCount") == total + 1 if api.target.exclusive else (view.get("viewCount") or 0) >= total + 1
    violated(
        "view_body_ignored",
        response.status_code == 200 and checks.same_id(view.get("dashboardId"), value) and counted
        and not str(view.get("viewedAt", "")).startswith("2000-"),
        f"a view of {value} sent with a body answered {response.status_code} with {view}; the body must be "
        f"ignored (the dashboard had {total} views)",
        response,
    )
