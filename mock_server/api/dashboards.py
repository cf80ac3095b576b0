"""Dashboard views: recently viewed, most viewed, per-dashboard statistics, recording a view."""

from __future__ import annotations

from . import Call, Ok


def getRecentlyViewedDashboards(call: Call) -> Ok:  # noqa: N802 - named after the operationId
    return call.ok(call.store.recently_viewed(call.principal.user_id, call.params["limit"]))


def getMostViewedDashboards(call: Call) -> Ok:  # noqa: N802
    return call.ok(call.store.most_viewed(call.params["limit"]))


def getDashboardStats(call: Call) -> Ok:  # noqa: N802
    return call.ok(call.store.dashboard_stats(call.params["dashboardId"], call.clock.today()))


def recordDashboardView(call: Call) -> Ok:  # noqa: N802
    return call.ok(call.store.record_view(call.params["dashboardId"], call.principal.user, call.clock.now()))


HANDLERS = (getRecentlyViewedDashboards, getMostViewedDashboards, getDashboardStats, recordDashboardView)
