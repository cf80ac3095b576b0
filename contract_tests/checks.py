"""Checks the spec states in prose, which schemathesis' built-in checks cannot see.

Each check is registered once with `@schemathesis.check` (importing this module imports them all), so it runs
on every response of the property tests, the stateful tests and the targeted tests (anything that calls
`case.call_and_validate` or `case.validate_response`); `SCHEMATHESIS_HOOKS=contract_tests.checks` hands them
to the schemathesis CLI. A check raises AssertionError with a message that names the offending values;
schemathesis reports it as "Custom check failed: `<check name>`" with a curl reproducer.

A check only judges what one request/response pair can prove. What needs history (a view counted by the
stats, the viewed dashboard first in "recently viewed") lives in the state machine of test_stateful.py.

The checks live in modules by theme; this module is the one name the rest of the suite imports (`checks.X`):
- checks_common.py: operation ids, the spec's defaults, parsers of what went over the wire;
- checks_auth.py: the Error body and the RFC 6750 challenges;
- checks_views.py: the dashboard lists (order, limit) and the stats;
- checks_audit.py: the audit-log lists (order, paging, filters), ids echoing the path, entry references.
"""

from __future__ import annotations

from contract_tests.checks_common import (  # noqa: F401 - re-exported: the suite reads them as checks.X
    AUDIT_LOG, DASHBOARD_LOGS, DEFAULT_LIMIT, DEFAULT_PAGE, DEFAULT_PAGE_SIZE, DEFAULT_WINDOW_DAYS, FORCING_HEADER,
    FORCING_QUERY, LOG_LISTS, MAPPING_LOGS, MAX_LIMIT, MIN_LIMIT, MOST_VIEWED, PREFIX, RECENTLY_VIEWED, RECORD_VIEW,
    STATS, as_int, body, day_filter, header, operation_id, parse_day, parse_instant, same_id, sent_authorization,
    sent_path_value, sent_query, single, timestamp, www_authenticate,
)
from contract_tests.checks_auth import auth_challenge_semantics, error_body_conformance  # noqa: F401
from contract_tests.checks_views import list_limit_honoured, most_viewed_order, recently_viewed_order, stats_consistent  # noqa: F401
from contract_tests.checks_audit import (  # noqa: F401
    audit_entry_references, audit_filters_honoured, audit_logs_order, ids_match_request, pagination_consistent,
)
