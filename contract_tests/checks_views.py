"""Checks of the dashboard-view operations: the order and size of the two dashboard lists, and the stats
agreeing with themselves."""

from __future__ import annotations

import re
from datetime import date, timedelta

import schemathesis

from contract_tests.checks_common import (
    DEFAULT_LIMIT, MAX_LIMIT, MIN_LIMIT, MOST_VIEWED, RECENTLY_VIEWED, STATS, as_int, body, fail, ok_list_body,
    operation_id, sent_query, summary_of, timestamp,
)


def _check_dashboard_order(items, key, describe) -> None:
    seen = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return
        ident = str(item.get("dashboardId", "")).lower()
        if ident in seen:
            fail(f"dashboard {ident} listed twice (data[{index}]); lists hold one item per dashboard")
        seen.add(ident)
    for index in range(len(items) - 1):
        a, b = key(items[index]), key(items[index + 1])
        if a is None or b is None:
            return  # malformed values: the schema check reports those
        if a > b:
            fail(
                f"data[{index}] and data[{index + 1}] are out of order ({describe}):\n"
                f"  data[{index}]: {summary_of(items[index])}\n  data[{index + 1}]: {summary_of(items[index + 1])}"
            )


def _desc_time(value) -> tuple | None:
    parsed = timestamp(value)
    return None if parsed is None else (-parsed.timestamp(),)


@schemathesis.check
def recently_viewed_order(ctx, response, case):
    """Recently viewed: one item per dashboard, lastViewedAt descending, ties by dashboardId ascending."""
    items = ok_list_body(response, case, (RECENTLY_VIEWED,))
    if items is None:
        return None

    def key(item):
        t = _desc_time(item.get("lastViewedAt"))
        return None if t is None else (t, str(item.get("dashboardId", "")).lower())

    _check_dashboard_order(items, key, "lastViewedAt desc, then dashboardId asc")
    return None


@schemathesis.check
def most_viewed_order(ctx, response, case):
    """Most viewed: viewCount descending, then lastViewedAt descending, then dashboardId ascending."""
    items = ok_list_body(response, case, (MOST_VIEWED,))
    if items is None:
        return None

    def key(item):
        count, t = item.get("viewCount"), _desc_time(item.get("lastViewedAt"))
        if not isinstance(count, int) or t is None:
            return None
        return (-count, t, str(item.get("dashboardId", "")).lower())

    _check_dashboard_order(items, key, "viewCount desc, then lastViewedAt desc, then dashboardId asc")
    return None


@schemathesis.check
def list_limit_honoured(ctx, response, case):
    """Dashboard lists hold at most `limit` items (default 10). The operations document no 400, so the spec
    says an odd `limit` is not refused: below 1 counts as 1, above 100 as 100, anything else (not an integer,
    repeated) as absent."""
    items = ok_list_body(response, case, (RECENTLY_VIEWED, MOST_VIEWED))
    if items is None:
        return None
    sent = sent_query(response).get("limit")
    limit = as_int(sent[0]) if sent is not None and len(sent) == 1 and re.fullmatch(r"-?\d+", sent[0]) else None
    limit = DEFAULT_LIMIT if limit is None else min(max(limit, MIN_LIMIT), MAX_LIMIT)
    if len(items) > limit:
        fail(f"{len(items)} items returned for limit={limit}")
    return None


# -- statistics -------------------------------------------------------------------------------------------------


@schemathesis.check
def stats_consistent(ctx, response, case):
    """Dashboard stats agree with themselves, as DashboardStats documents: 30 consecutive UTC days oldest first,
    viewsLast30Days/viewsLast7Days are the sums of those days, totals bound the windows, null first/last view
    times exactly when there are no views."""
    if response.status_code != 200 or operation_id(case) != STATS:
        return None
    payload = body(response)
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        return None
    days = data.get("dailyViews")
    if not isinstance(days, list) or len(days) != 30 or not all(isinstance(d, dict) for d in days):
        return None  # the schema check reports it
    try:
        dates = [date.fromisoformat(d["date"]) for d in days]
        views = [int(d["views"]) for d in days]
        total, unique = int(data["totalViews"]), int(data["uniqueViewers"])
        last7, last30 = int(data["viewsLast7Days"]), int(data["viewsLast30Days"])
    except (KeyError, TypeError, ValueError):
        return None
    problems = []
    for a, b in zip(dates, dates[1:]):
        if b - a != timedelta(days=1):
            problems.append(f"dailyViews dates are not consecutive ascending days ({a} then {b})")
            break
    if last30 != sum(views):
        problems.append(f"viewsLast30Days is {last30}, the 30 dailyViews sum to {sum(views)}")
    if last7 != sum(views[-7:]):
        problems.append(f"viewsLast7Days is {last7}, the last 7 dailyViews sum to {sum(views[-7:])}")
    if not last7 <= last30 <= total:
        problems.append(f"expected viewsLast7Days {last7} <= viewsLast30Days {last30} <= totalViews {total}")
    if unique > total or (total > 0 and unique < 1):
        problems.append(f"uniqueViewers {unique} is impossible with totalViews {total}")
    first, last = data.get("firstViewedAt"), data.get("lastViewedAt")
    if (total == 0) != (first is None) or (total == 0) != (last is None):
        problems.append(f"totalViews {total} with firstViewedAt {first!r} and lastViewedAt {last!r}")
    first_t, last_t = timestamp(first), timestamp(last)
    if first_t and last_t and first_t > last_t:
        problems.append(f"firstViewedAt {first} is after lastViewedAt {last}")
    if last_t and last30 and last_t.date() < dates[0]:
        problems.append(f"views counted in the last 30 days but lastViewedAt {last} is before {dates[0]}")
    if problems:
        fail("dashboard stats contradict themselves:\n  " + "\n  ".join(problems))
    return None
