"""Audit log entries: of a dashboard, of a tool mapping, one by id."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from ..errors import NotFound
from ..store.base import AuditLogFilter
from . import Call, Ok

# FACTS.md: the vendor's activity-log lists hold the last 7 days when no date filter is given. Read as
# UTC days like start_date/end_date: today (by the mock's clock) and the 6 days before it.
DEFAULT_WINDOW_DAYS = 7


def day_bounds(start: date | None, end: date | None, today: date) -> tuple[datetime | None, datetime | None]:
    """The instants (inclusive) of the UTC days start_date..end_date; the last 7 days when neither is given,
    an open side when only one is."""
    if start is None and end is None:
        start, end = today - timedelta(days=DEFAULT_WINDOW_DAYS - 1), today
    lo = datetime.combine(start, time.min, UTC) if start is not None else None
    hi = datetime.combine(end, time.max, UTC) if end is not None else None  # 23:59:59.999999: the day's last ms
    return lo, hi


def _page(call: Call, target_type: str, target_id: str) -> Ok:
    params = call.params
    page, size = params["page"], params["page_size"]
    lo, hi = day_bounds(params.get("start_date"), params.get("end_date"), call.clock.today())
    filters = AuditLogFilter(created_from=lo, created_to=hi, action=params.get("action"),
                             user_id=params.get("user_id"), type=params.get("type"))
    result = call.store.audit_logs(target_type, target_id, page, size, filters)
    total_pages = -(-result.total // size)  # ceil
    return call.ok(result.items, pagination={
        "page": page, "page_size": size, "total_items": result.total,
        "total_pages": total_pages, "has_next": page < total_pages,
    })


def getDashboardAuditLogs(call: Call) -> Ok:  # noqa: N802 - named after the operationId
    return _page(call, "dashboard", call.params["dashboardId"])


def getMappingAuditLogs(call: Call) -> Ok:  # noqa: N802
    return _page(call, "tool_mapping", call.params["mappingId"])


def getAuditLog(call: Call) -> Ok:  # noqa: N802
    entry = call.store.audit_log(call.params["auditLogId"])
    if entry is None:
        raise NotFound()  # the message is the spec's 404 example
    return call.ok(entry)


HANDLERS = (getDashboardAuditLogs, getMappingAuditLogs, getAuditLog)
