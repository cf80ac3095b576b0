"""Data the suite makes for itself on an empty tenant, and what it says when it may not.

A new tenant has no views and no audit entries: most viewed is empty, so discovery (client.discover) finds no
dashboard, and every rule that needs a listed dashboard or a log with entries would skip - a green run that
checked little. Where the suite may write (a local target, or --allow-writes), it records views, the API's
only write, on dashboards it knows exist (those most viewed lists, and --dashboard-ids /
CONTRACT_DASHBOARD_IDS, since no operation lists dashboards), then discovers again. Where it may not, the
rules that needed the data skip with `no_data(...)`: the reason names the rules and the remedy, and the
verdict (verdict.py) lists those rules as skipped, with why.

Not made here: mapping audit entries (no operation writes them; CONTRACT_MAPPING_IDS names mappings that have
some). On a target the suite resets (in-process, --serve-mock) the mock's seeded data is never empty.
"""

from __future__ import annotations

import re
import uuid

from contract_tests.checks import RECORD_VIEW

# Distinct counts per dashboard, so most viewed has an order by viewCount to check (not only tie-breaks), and
# the busiest log has 3 entries: enough for a page walk of several pages and for the filters.
VIEWS_PER_DASHBOARD = (3, 2, 1)
NO_DATA = "no data"
# "rule_a, rule_b: no data: ..." (or "...: no writes: ", conftest.require_writes) -> the rules; verdict.py
# attributes the skip to each of them.
NO_DATA_REASON = re.compile(r"^(?P<rules>[a-z][a-z0-9_]*(?:, [a-z][a-z0-9_]*)*): no (?:data|writes): ")


def thin(found) -> bool:
    """Too little for the targeted tests: fewer than 2 listed dashboards, or no log with 3 entries."""
    return len(found.dashboards) < 2 or found.busiest_dashboard_total < VIEWS_PER_DASHBOARD[0]


def dashboards_to_view(found, settings) -> list[str]:
    listed = [d["dashboardId"] for d in found.dashboards]
    known = list(dict.fromkeys(i.lower() for i in [*listed, *settings.dashboard_ids]))
    if not known:
        # No dashboard is known to exist: a view of a well-formed id that names none is still counted and
        # logged (recordDashboardView), so the stats and log rules get data; the lists never show it.
        known = [str(uuid.uuid4())]
    return known[: len(VIEWS_PER_DASHBOARD)]


def make_data(api, found, settings) -> list[str]:
    """Record views (unjudged, like discovery: the tests judge the view operation) and return the dashboards
    viewed. A refused write leaves the data thin; the tests' skip reasons then say what is missing."""
    viewed = []
    for dashboard_id, count in zip(dashboards_to_view(found, settings), VIEWS_PER_DASHBOARD):
        for _ in range(count):
            _, response = api.send(RECORD_VIEW, path={"dashboardId": dashboard_id})
            if response.status_code != 200:
                return viewed
        viewed.append(dashboard_id)
    return viewed


def no_data(settings, rules: str | tuple[str, ...], what: str, remedy: str | None = None) -> str:
    """The skip reason of a test that found no data for `rules`: names them, what was missing, and the remedy
    (`remedy` for data no write of the API makes)."""
    rules = (rules,) if isinstance(rules, str) else rules
    if remedy is None and not settings.writes_allowed:
        remedy = "rerun with --allow-writes (CONTRACT_ALLOW_WRITES=1) so the suite records views to make it"
    elif remedy is None and not settings.dashboard_ids:
        remedy = ("the suite may record views but knows no existing dashboard to view (no operation lists "
                  "dashboards): set CONTRACT_DASHBOARD_IDS (--dashboard-ids)")
    elif remedy is None:
        remedy = "the suite recorded views on --dashboard-ids and still found too little"
    return f"{', '.join(rules)}: {NO_DATA}: {what}; {remedy}"


def rules_of_skip(reason: str) -> list[str]:
    match = NO_DATA_REASON.match(reason)
    return match.group("rules").split(", ") if match else []
