"""What the checks share: the operation ids, the spec's defaults, and parsers of what went over the wire.

Also used by the targeted tests and the state model (contract_tests.model), through contract_tests.checks,
which re-exports everything here.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from urllib.parse import parse_qs, unquote, urlsplit

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


def ok_list_body(response, case, operations) -> list | None:
    if response.status_code != 200 or operation_id(case) not in operations:
        return None
    payload = body(response)
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        return None
    return payload["data"]


def fail(message: str) -> None:
    raise AssertionError(message)


def same_id(a, b) -> bool:
    """Ids compare case-insensitively: the Uuid and ObjectId patterns admit upper-case hex, and a UUID or an
    ObjectId names the same thing in either case (RFC 9562 section 4: UUIDs are case-insensitive on input)."""
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


def summary_of(item: dict) -> str:
    keys = ("dashboardId", "viewCount", "lastViewedAt", "_id", "createdAt", "action", "user_id", "target_id")
    return ", ".join(f"{k}={item[k]!r}" for k in keys if k in item)
