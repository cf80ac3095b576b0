"""Audit log entries: of a dashboard, of a tool mapping, one by id."""

from __future__ import annotations

from ..errors import NotFound
from ..store.base import AuditLogFilter
from . import Call, Ok

RESOURCE = "audit_logs"


def _page(call: Call, target_type: str, target_id: str) -> Ok:
    params = call.params
    page, size = params["page"], params["pageSize"]
    filters = AuditLogFilter(created_from=params.get("from"), created_to=params.get("to"),
                             action=params.get("action"), user_id=params.get("userId"))
    result = call.store.audit_logs(target_type, target_id, page, size, filters)
    total_pages = -(-result.total // size)  # ceil
    return call.ok(result.items, pagination={
        "page": page, "pageSize": size, "totalItems": result.total,
        "totalPages": total_pages, "hasNext": page < total_pages,
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
