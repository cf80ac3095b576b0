"""Checks the spec states in prose, which schemathesis' built-in checks cannot see.

Each function is registered once with `@schemathesis.check`, so it runs on every response of the property
tests, the stateful tests and the targeted tests (anything that calls `case.call_and_validate` or
`case.validate_response`). A check raises AssertionError with a message that names the offending values;
schemathesis reports it as "Custom check failed: `<check name>`" with a curl reproducer.

A check only judges what one request/response pair can prove. What needs history (a view counted by the
stats, the viewed dashboard first in "recently viewed") lives in the state machine of test_stateful.py.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import schemathesis

from contract_tests import spec

PREFIX = "/api/v2/insights/kpis/audit-logs"
RECENTLY_VIEWED = "getRecentlyViewedDashboards"
MOST_VIEWED = "getMostViewedDashboards"
STATS = "getDashboardStats"
RECORD_VIEW = "recordDashboardView"
DASHBOARD_LOGS = "getDashboardAuditLogs"
MAPPING_LOGS = "getMappingAuditLogs"
AUDIT_LOG = "getAuditLog"
LOG_LISTS = (DASHBOARD_LOGS, MAPPING_LOGS)

DEFAULT_LIMIT = 10
MIN_LIMIT, MAX_LIMIT = 1, 100  # the range `limit` is clamped to
DEFAULT_PAGE = 1
DEFAULT_PAGE_SIZE = 50
# Parameters that force a response in the mock; the suite never sends them on its own.
FORCING_QUERY = "__code"
FORCING_HEADER = "prefer"

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_AUTH_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


# -- helpers shared with the tests ------------------------------------------------------------------------------


def operation_id(case) -> str | None:
    op = spec.operation_for(case.method, case.operation.path)
    return op.operation_id if op else None


def body(response):
    """The decoded JSON body, or None when there is none or it is not JSON."""
    try:
        return response.json()
    except Exception:
        return None


def header(response, name: str) -> str | None:
    values = response.headers.get(name.lower())
    if not values:
        return None
    return values[0] if isinstance(values, list) else values


def sent_query(response) -> dict[str, list[str]]:
    """The query string the server received, decoded: what the request really said, after serialization."""
    return parse_qs(urlsplit(response.request.url).query, keep_blank_values=True)


def sent_path_value(response, case, name: str) -> str | None:
    """A path parameter as sent on the wire (the URL segment), matched through the operation's template."""
    template = case.operation.path.strip("/").split("/")
    actual = urlsplit(response.request.url).path.strip("/").split("/")
    # A base path (deployment prefix) comes before the template; align from the end.
    if len(actual) < len(template):
        return None
    actual = actual[len(actual) - len(template):]
    for tmpl, value in zip(template, actual):
        if tmpl == "{" + name + "}":
            return unquote(value)
    return None


def single(query: dict[str, list[str]], name: str, default=None):
    """The one value of a query parameter; `default` when absent; None when repeated (ambiguous)."""
    values = query.get(name)
    if values is None:
        return default
    return values[0] if len(values) == 1 else None


def as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


_LEAP_SECOND = re.compile(r"(T\d{2}:\d{2}:)60(?:[.,]\d+)?", re.IGNORECASE)


def parse_instant(value) -> datetime | None:
    """An RFC 3339 date-time with an offset, or None (unparseable or naive input is not judged here).
    A leap second (:60) reads as the last instant of its minute."""
    if not isinstance(value, str):
        return None
    text, leap = _LEAP_SECOND.subn(r"\g<1>59.999999", value)
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
DEFAULT_WINDOW_DAYS = 7  # FACTS.md: without a date filter, the activity-log lists hold the last 7 days


def parse_day(value) -> date | None:
    """A YYYY-MM-DD day (start_date, end_date), or None (unparseable input is not judged here)."""
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def day_filter(query) -> tuple[date | None, date | None]:
    """(start_date, end_date) of a sent query, each None when absent or unparseable."""
    return parse_day(single(query, "start_date")), parse_day(single(query, "end_date"))


def timestamp(value) -> datetime | None:
    """A response timestamp in the spec's exact format, or None (the schema check reports bad formats)."""
    if not isinstance(value, str) or not _TIMESTAMP.match(value):
        return None
    return parse_instant(value)


def www_authenticate(response) -> tuple[str | None, dict[str, str]]:
    """(scheme, {param: value}) of the WWW-Authenticate header."""
    value = header(response, "WWW-Authenticate")
    if value is None:
        return None, {}
    scheme, _, rest = value.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _AUTH_PARAM.finditer(rest)}
    return scheme, params


def sent_authorization(response) -> str | None:
    return response.request.headers.get("Authorization")


def _ok_list_body(response, case, operations) -> list | None:
    if response.status_code != 200 or operation_id(case) not in operations:
        return None
    payload = body(response)
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        return None
    return payload["data"]


def _fail(message: str) -> None:
    raise AssertionError(message)


# -- error bodies and auth ----------------------------------------------------------------------------------------


@schemathesis.check
def error_body_conformance(ctx, response, case):
    """Every 4xx/5xx carries the one `Error` body as application/json, its `status` equal to the HTTP status,
    documented or not (routing 404/405 included)."""
    if response.status_code < 400:
        return None
    content_type = (header(response, "Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        _fail(f"{response.status_code} answered with Content-Type {content_type or '<none>'!r}, not application/json")
    payload = body(response)
    errors = spec.component_errors("Error", payload)
    if errors:
        _fail(f"{response.status_code} body is not the spec's Error schema:\n  " + "\n  ".join(errors))
    if payload["status"] != response.status_code:
        _fail(f"Error body says status {payload['status']} but the HTTP status is {response.status_code}")
    return None


@schemathesis.check
def auth_challenge_semantics(ctx, response, case):
    """401 and 403 follow RFC 6750 as the spec describes: 401 -> `WWW-Authenticate: Bearer`, with
    error="invalid_token" when a Bearer credential was sent and no error attribute when none was; 403 for a
    scope -> error="insufficient_scope" with a scope attribute naming the operation's scopes; 403 for a role -> body error insufficient_role and a
    challenge without error or scope."""
    status = response.status_code
    if status not in (401, 403):
        return None
    scheme, params = www_authenticate(response)
    if scheme is None:
        _fail(f"{status} without a WWW-Authenticate header")
    if scheme.lower() != "bearer":
        _fail(f"{status} challenges with scheme {scheme!r}, expected Bearer")
    payload = body(response)
    code = payload.get("error") if isinstance(payload, dict) else None
    if status == 401:
        credential = sent_authorization(response)
        if credential is None:
            if "error" in params:
                _fail(
                    f"401 to a request without credentials carries error={params['error']!r}; "
                    "RFC 6750 3.1 (and the spec) say no error attribute then"
                )
        elif credential.split(" ", 1)[0].lower() == "bearer":
            if params.get("error") != "invalid_token":
                _fail(f"401 to a Bearer credential must say error=\"invalid_token\", WWW-Authenticate has {params!r}")
            if code != "invalid_token":
                _fail(f"401 for a bad Bearer token: body error is {code!r}, expected 'invalid_token'")
        elif params.get("error") not in (None, "invalid_token"):
            # Another scheme (Basic, ...) is "no usable credentials": no error attribute, or invalid_token.
            _fail(f"401 to a non-Bearer credential carries error={params['error']!r}")
        return None
    if code == "insufficient_role":
        # A missing site role: no other token of the user would do, so the challenge claims no scope.
        if "error" in params or "scope" in params:
            _fail(f"403 for a missing role must claim no error/scope in WWW-Authenticate (RFC 6750 would have the "
                  f"client fetch another token for nothing), it has {params!r}")
        return None
    if params.get("error") != "insufficient_scope":
        _fail(f"403 must say error=\"insufficient_scope\" (or body error insufficient_role), WWW-Authenticate has {params!r}")
    if code != "insufficient_scope":
        _fail(f"403 body error is {code!r}, expected 'insufficient_scope' or 'insufficient_role'")
    scopes = (params.get("scope") or "").split()
    if not scopes:
        _fail("403 WWW-Authenticate has no scope attribute")
    op = spec.operation_for(case.method, case.operation.path)
    if op is not None and op.required_scopes and not set(scopes) <= op.required_scopes:
        _fail(f"403 names scope {' '.join(scopes)!r}; {op.operation_id} requires one of {sorted(op.required_scopes)}")
    return None


# -- lists: order, limits, pagination ----------------------------------------------------------------------------


def _check_dashboard_order(items, key, describe) -> None:
    seen = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return
        ident = str(item.get("dashboardId", "")).lower()
        if ident in seen:
            _fail(f"dashboard {ident} listed twice (data[{index}]); lists hold one item per dashboard")
        seen.add(ident)
    for index in range(len(items) - 1):
        a, b = key(items[index]), key(items[index + 1])
        if a is None or b is None:
            return  # malformed values: the schema check reports those
        if a > b:
            _fail(
                f"data[{index}] and data[{index + 1}] are out of order ({describe}):\n"
                f"  data[{index}]: {_summary(items[index])}\n  data[{index + 1}]: {_summary(items[index + 1])}"
            )


def _summary(item: dict) -> str:
    keys = ("dashboardId", "viewCount", "lastViewedAt", "_id", "createdAt", "action", "user_id", "target_id")
    return ", ".join(f"{k}={item[k]!r}" for k in keys if k in item)


def _desc_time(value) -> tuple | None:
    parsed = timestamp(value)
    return None if parsed is None else (-parsed.timestamp(),)


@schemathesis.check
def recently_viewed_order(ctx, response, case):
    """Recently viewed: one item per dashboard, lastViewedAt descending, ties by dashboardId ascending."""
    items = _ok_list_body(response, case, (RECENTLY_VIEWED,))
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
    items = _ok_list_body(response, case, (MOST_VIEWED,))
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
    items = _ok_list_body(response, case, (RECENTLY_VIEWED, MOST_VIEWED))
    if items is None:
        return None
    sent = sent_query(response).get("limit")
    limit = as_int(sent[0]) if sent is not None and len(sent) == 1 and re.fullmatch(r"-?\d+", sent[0]) else None
    limit = DEFAULT_LIMIT if limit is None else min(max(limit, MIN_LIMIT), MAX_LIMIT)
    if len(items) > limit:
        _fail(f"{len(items)} items returned for limit={limit}")
    return None


@schemathesis.check
def audit_logs_order(ctx, response, case):
    """Audit-log pages: createdAt descending, ties by _id descending, no entry twice."""
    items = _ok_list_body(response, case, LOG_LISTS)
    if items is None:
        return None
    ids = [str(e.get("_id", "")).lower() for e in items if isinstance(e, dict)]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        _fail(f"entries listed twice on one page: {sorted(duplicates)}")
    for index in range(len(items) - 1):
        a, b = items[index], items[index + 1]
        ta, tb = timestamp(a.get("createdAt")), timestamp(b.get("createdAt"))
        if ta is None or tb is None:
            return None
        if (ta, str(a.get("_id", "")).lower()) < (tb, str(b.get("_id", "")).lower()):
            _fail(
                f"data[{index}] and data[{index + 1}] are out of order (createdAt desc, then _id desc):\n"
                f"  data[{index}]: {_summary(a)}\n  data[{index + 1}]: {_summary(b)}"
            )
    return None


@schemathesis.check
def pagination_consistent(ctx, response, case):
    """`pagination` agrees with the request and with `data`: page and page_size echo the request (defaults 1 and
    50), total_pages == ceil(total_items / page_size), has_next == (page < total_pages), and the page holds
    min(page_size, total_items - (page - 1) * page_size) entries, never fewer than 0."""
    items = _ok_list_body(response, case, LOG_LISTS)
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
        _fail("pagination disagrees with the request or the data:\n  " + "\n  ".join(problems))
    return None


# -- identity and filters -----------------------------------------------------------------------------------------


def _same_id(a, b) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


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
        if isinstance(data, dict) and wanted is not None and not _same_id(data.get("dashboardId"), wanted):
            _fail(f"data.dashboardId is {data.get('dashboardId')!r}, the path asked for {wanted!r}")
    elif op == AUDIT_LOG:
        wanted = sent_path_value(response, case, "auditLogId")
        if isinstance(data, dict):
            if wanted is not None and not _same_id(data.get("_id"), wanted):
                _fail(f"data._id is {data.get('_id')!r}, the path asked for {wanted!r}")
    elif op in LOG_LISTS and isinstance(data, list):
        name = "dashboardId" if op == DASHBOARD_LOGS else "mappingId"
        wanted = sent_path_value(response, case, name)
        for index, entry in enumerate(data):
            if not isinstance(entry, dict):
                continue
            if wanted is not None and not _same_id(entry.get("target_id"), wanted):
                _fail(f"data[{index}].target_id is {entry.get('target_id')!r}, the path asked for {name} {wanted!r}")
            expected_type = "dashboard" if op == DASHBOARD_LOGS else "tool_mapping"
            if entry.get("type") != expected_type:
                _fail(f"data[{index}] has type {entry.get('type')!r} in the {expected_type} log of {wanted}")
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
            _fail(f"{where} is of type {kind!r} but has no `{ref_name}` reference (the spec says it is present)")
        if isinstance(ref, dict) and kind == ref_type and not _same_id(ref.get(id_field), entry.get("target_id")):
            _fail(f"{where}.{ref_name}.{id_field} is {ref.get(id_field)!r} but target_id is {entry.get('target_id')!r}")


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
        _fail(f"start_date={start} is after end_date={end} and was accepted with 200")
    items = _ok_list_body(response, case, LOG_LISTS)
    if items is None:
        return None
    dated = any(k in query for k in ("start_date", "end_date"))
    days = [t.astimezone(UTC).date() for t in (timestamp(e.get("createdAt")) for e in items if isinstance(e, dict))
            if t is not None]
    if not dated and days and (max(days) - min(days)).days > DEFAULT_WINDOW_DAYS - 1:
        _fail(f"without start_date/end_date the list holds the last {DEFAULT_WINDOW_DAYS} days, but its entries "
              f"run from {min(days)} to {max(days)}")
    action, user, kind = single(query, "action"), single(query, "user_id"), single(query, "type")
    for index, entry in enumerate(items):
        if not isinstance(entry, dict):
            continue
        if action is not None and entry.get("action") != action:
            _fail(f"data[{index}] has action {entry.get('action')!r}; the request filtered action={action}")
        if kind is not None and entry.get("type") != kind:
            _fail(f"data[{index}] has type {entry.get('type')!r}; the request filtered type={kind}")
        if user is not None and not _same_id(entry.get("user_id"), user):
            _fail(f"data[{index}] has user_id {entry.get('user_id')!r}; the request filtered user_id={user}")
        created = timestamp(entry.get("createdAt"))
        if created is None:
            continue
        day = created.astimezone(UTC).date()
        if start is not None and day < start:
            _fail(f"data[{index}] was created at {entry.get('createdAt')}, before start_date={start}")
        if end is not None and day > end:
            _fail(f"data[{index}] was created at {entry.get('createdAt')}, after end_date={end}")
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
        _fail("dashboard stats contradict themselves:\n  " + "\n  ".join(problems))
    return None
