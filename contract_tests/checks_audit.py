"""Checks of the audit-log operations, and of ids: the order and paging of the two log lists, ids echoing
the path, the entries' references, and the filters honoured on every page."""

from __future__ import annotations

import math
from datetime import UTC

import schemathesis

from contract_tests.checks_common import (
    AUDIT_LOG, DASHBOARD_LOGS, DEFAULT_PAGE, DEFAULT_PAGE_SIZE, DEFAULT_WINDOW_DAYS, LOG_LISTS, RECORD_VIEW, STATS,
    as_int, body, day_filter, fail, ok_list_body, operation_id, same_id, sent_path_value, sent_query, single,
    summary_of, timestamp,
)


@schemathesis.check
def audit_logs_order(ctx, response, case):
    """Audit-log pages: createdAt descending, ties by _id descending, no entry twice."""
    items = ok_list_body(response, case, LOG_LISTS)
    if items is None:
        return None
    ids = [str(e.get("_id", "")).lower() for e in items if isinstance(e, dict)]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        fail(f"entries listed twice on one page: {sorted(duplicates)}")
    for index in range(len(items) - 1):
        a, b = items[index], items[index + 1]
        ta, tb = timestamp(a.get("createdAt")), timestamp(b.get("createdAt"))
        if ta is None or tb is None:
            return None
        if (ta, str(a.get("_id", "")).lower()) < (tb, str(b.get("_id", "")).lower()):
            fail(
                f"data[{index}] and data[{index + 1}] are out of order (createdAt desc, then _id desc):\n"
                f"  data[{index}]: {summary_of(a)}\n  data[{index + 1}]: {summary_of(b)}"
            )
    return None


@schemathesis.check
def pagination_consistent(ctx, response, case):
    """`pagination` agrees with the request and with `data`: page and page_size echo the request (defaults 1 and
    50), total_pages == ceil(total_items / page_size), has_next == (page < total_pages), and the page holds
    min(page_size, total_items - (page - 1) * page_size) entries, never fewer than 0."""
    items = ok_list_body(response, case, LOG_LISTS)
    if items is None:
        return None
    meta = body(response).get("pagination")
    if not isinstance(meta, dict):
        return None  # the schema check reports a missing or malformed pagination
    query = sent_query(response)
    page = as_int(single(query, "page", DEFAULT_PAGE))
    size = as_int(single(query, "page_size", DEFAULT_PAGE_SIZE))
    total, pages, has_next = meta.get("total_items"), meta.get("total_pages"), meta.get("has_next")
    problems = []
    if page is not None and meta.get("page") != page:
        problems.append(f"pagination.page is {meta.get('page')!r}, the request asked for page {page}")
    if size is not None and meta.get("page_size") != size:
        problems.append(f"pagination.page_size is {meta.get('page_size')!r}, the request asked for {size}")
    page = meta.get("page") if page is None else page
    size = meta.get("page_size") if size is None else size
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (page, size, total, pages)) and size > 0:
        if pages != math.ceil(total / size):
            problems.append(f"total_pages is {pages}, ceil(total_items {total} / page_size {size}) is {math.ceil(total / size)}")
        if isinstance(has_next, bool) and has_next != (page < pages):
            problems.append(f"has_next is {has_next} on page {page} of {pages}")
        expected = min(size, max(0, total - (page - 1) * size))
        if len(items) != expected:
            problems.append(
                f"page {page} holds {len(items)} entries; with total_items {total} and page_size {size} it must hold {expected}"
            )
    if len(items) > (size if isinstance(size, int) else len(items)):
        problems.append(f"{len(items)} entries exceed page_size {size}")
    if problems:
        fail("pagination disagrees with the request or the data:\n  " + "\n  ".join(problems))
    return None


@schemathesis.check
def ids_match_request(ctx, response, case):
    """Ids in a 200 body are the ids the path asked for: stats and view dashboardId, the audit entry's _id,
    every log entry's target_id (and its type: a dashboard's log holds dashboard entries)."""
    if response.status_code != 200:
        return None
    op = operation_id(case)
    payload = body(response)
    if not isinstance(payload, dict):
        return None
    data = payload.get("data")
    if op in (STATS, RECORD_VIEW):
        wanted = sent_path_value(response, case, "dashboardId")
        if isinstance(data, dict) and wanted is not None and not same_id(data.get("dashboardId"), wanted):
            fail(f"data.dashboardId is {data.get('dashboardId')!r}, the path asked for {wanted!r}")
    elif op == AUDIT_LOG:
        wanted = sent_path_value(response, case, "auditLogId")
        if isinstance(data, dict):
            if wanted is not None and not same_id(data.get("_id"), wanted):
                fail(f"data._id is {data.get('_id')!r}, the path asked for {wanted!r}")
    elif op in LOG_LISTS and isinstance(data, list):
        name = "dashboardId" if op == DASHBOARD_LOGS else "mappingId"
        wanted = sent_path_value(response, case, name)
        for index, entry in enumerate(data):
            if not isinstance(entry, dict):
                continue
            if wanted is not None and not same_id(entry.get("target_id"), wanted):
                fail(f"data[{index}].target_id is {entry.get('target_id')!r}, the path asked for {name} {wanted!r}")
            expected_type = "dashboard" if op == DASHBOARD_LOGS else "tool_mapping"
            if entry.get("type") != expected_type:
                fail(f"data[{index}] has type {entry.get('type')!r} in the {expected_type} log of {wanted}")
    return None


@schemathesis.check
def audit_entry_references(ctx, response, case):
    """AuditLogEntry: "`dashboard` is present on entries of type `dashboard` and `tool_mapping` on entries of
    type `tool_mapping`, and then names the target of `target_id`", except on a `view` of an unknown dashboard."""
    if response.status_code != 200 or operation_id(case) not in (*LOG_LISTS, AUDIT_LOG):
        return None
    payload = body(response)
    data = payload.get("data") if isinstance(payload, dict) else None
    entries = [("data", data)] if isinstance(data, dict) else list(enumerate(data)) if isinstance(data, list) else []
    for where, entry in entries:
        if isinstance(entry, dict):
            _check_entry_refs(entry, where if isinstance(where, str) else f"data[{where}]")
    return None


def _check_entry_refs(entry: dict, where: str) -> None:
    kind = entry.get("type")
    for ref_name, ref_type, id_field in (("dashboard", "dashboard", "dashboardId"), ("tool_mapping", "tool_mapping", "mappingId")):
        ref = entry.get(ref_name)
        view_of_unknown_dashboard = ref_name == "dashboard" and entry.get("action") == "view"
        if kind == ref_type and not isinstance(ref, dict) and not view_of_unknown_dashboard:
            fail(f"{where} is of type {kind!r} but has no `{ref_name}` reference (the spec says it is present)")
        if isinstance(ref, dict) and kind == ref_type and not same_id(ref.get(id_field), entry.get("target_id")):
            fail(f"{where}.{ref_name}.{id_field} is {ref.get(id_field)!r} but target_id is {entry.get('target_id')!r}")


@schemathesis.check
def audit_filters_honoured(ctx, response, case):
    """Every entry of a filtered page satisfies the filter: action=, user_id=, type=, start_date and end_date
    (UTC days, inclusive); a start_date after end_date is refused, as the parameters' descriptions say; and
    without a date filter the page lies within 7 UTC days (FACTS.md: the last 7 days), its newest and oldest
    entries at most 6 days apart. The server's "today" is not judged here: a mock may run at --now, and
    test_targeted.py compares the default list with the explicit window of the server's today."""
    if operation_id(case) not in LOG_LISTS or response.status_code >= 500:
        return None
    query = sent_query(response)
    start, end = day_filter(query)
    if response.status_code == 200 and start is not None and end is not None and start > end:
        fail(f"start_date={start} is after end_date={end} and was accepted with 200")
    items = ok_list_body(response, case, LOG_LISTS)
    if items is None:
        return None
    dated = any(k in query for k in ("start_date", "end_date"))
    days = [t.astimezone(UTC).date() for t in (timestamp(e.get("createdAt")) for e in items if isinstance(e, dict))
            if t is not None]
    if not dated and days and (max(days) - min(days)).days > DEFAULT_WINDOW_DAYS - 1:
        fail(f"without start_date/end_date the list holds the last {DEFAULT_WINDOW_DAYS} days, but its entries "
              f"run from {min(days)} to {max(days)}")
    action, user, kind = single(query, "action"), single(query, "user_id"), single(query, "type")
    for index, entry in enumerate(items):
        if not isinstance(entry, dict):
            continue
        if action is not None and entry.get("action") != action:
            fail(f"data[{index}] has action {entry.get('action')!r}; the request filtered action={action}")
        if kind is not None and entry.get("type") != kind:
            fail(f"data[{index}] has type {entry.get('type')!r}; the request filtered type={kind}")
        if user is not None and not same_id(entry.get("user_id"), user):
            fail(f"data[{index}] has user_id {entry.get('user_id')!r}; the request filtered user_id={user}")
        created = timestamp(entry.get("createdAt"))
        if created is None:
            continue
        day = created.astimezone(UTC).date()
        if start is not None and day < start:
            fail(f"data[{index}] was created at {entry.get('createdAt')}, before start_date={start}")
        if end is not None and day > end:
            fail(f"data[{index}] was created at {entry.get('createdAt')}, after end_date={end}")
    return None
