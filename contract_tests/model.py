"""A model of the server's state built from what it answered, to judge answers across operations.

It never assumes data: it learns counts, listed dashboards, log totals and entries from responses, and
checks every later response against what it learnt plus the views it recorded. On an exclusive target
(in-process, --serve-mock) nobody else writes, so counts must match exactly; on a shared deployment other
clients may add views concurrently, so counts may only grow (compared with >=) and the "viewed dashboard
comes first" rules become "nothing newer than our view is hidden".
"""

from __future__ import annotations

from datetime import UTC
from dataclasses import dataclass, field

from contract_tests import checks
from contract_tests.reporting import ContractViolation, describe


@dataclass
class RecordedView:
    dashboard_id: str
    viewed_at: str  # the response's viewedAt
    user_id: str | None


@dataclass
class ServerModel:
    exclusive: bool
    user_id: str | None = None  # of the token; learnt from the first view if not given
    counts: dict[str, int] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)
    views: list[RecordedView] = field(default_factory=list)
    # (operation, target id, filters) -> (total_items, number of our views at that time)
    log_totals: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    entries: dict[str, dict] = field(default_factory=dict)
    history: list = field(default_factory=list)  # responses of the scenario, for the failure report

    # -- reporting ------------------------------------------------------------------------------------------------

    def fail(self, rule: str, message: str, response) -> None:
        steps = "\n".join(
            f"  {i + 1}. {r.request.method} {r.request.url} -> {r.status_code}" for i, r in enumerate(self.history)
        )
        raise ContractViolation(
            rule,
            f"{message}\n\nScenario so far (state reset before step 1 on exclusive targets):\n{steps}\n\n"
            f"Failing step:\n{describe(response)}",
        )

    # -- observation ----------------------------------------------------------------------------------------------

    def observe(self, response, case) -> None:
        self.history.append(response)
        if response.status_code != 200:
            return
        payload = checks.body(response)
        if not isinstance(payload, dict):
            return
        op = checks.operation_id(case)
        data = payload.get("data")
        if op in (checks.MOST_VIEWED, checks.RECENTLY_VIEWED) and isinstance(data, list):
            self._dashboard_list(op, data, response)
        elif op == checks.STATS and isinstance(data, dict):
            self._count(data.get("dashboardId"), data.get("totalViews"), "stats totalViews", response)
            self._stats_after_views(data, response)
        elif op == checks.RECORD_VIEW and isinstance(data, dict):
            self._view(data, response)
        elif op in checks.LOG_LISTS and isinstance(data, list):
            self._log_page(op, case, response, data, payload.get("pagination"))
        elif op == checks.AUDIT_LOG and isinstance(data, dict):
            self._entry(data, response)

    def _count(self, dashboard_id, value, where: str, response) -> None:
        if not isinstance(dashboard_id, str) or not isinstance(value, int):
            return
        key = dashboard_id.lower()
        known = self.counts.get(key)
        if known is not None:
            if self.exclusive and value != known:
                self.fail(
                    "view_counts_agree",
                    f"{where} of dashboard {key} is {value}, but the server said {known} before and nothing was "
                    "recorded since",
                    response,
                )
            if not self.exclusive and value < known:
                self.fail("view_counts_agree", f"{where} of dashboard {key} went down from {known} to {value}", response)
        self.counts[key] = value

    def _dashboard_list(self, op, items, response) -> None:
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("dashboardId"), str):
                self.listed.add(item["dashboardId"].lower())
                self._count(item["dashboardId"], item.get("viewCount"), f"{op} viewCount", response)
        if op == checks.RECENTLY_VIEWED:
            self._recently_viewed(items, response)

    def _recently_viewed(self, items, response) -> None:
        items = [i for i in items if isinstance(i, dict)]
        first = items[0] if items else None
        # Our views, newest first. A view of a dashboard not known to exist may not be listed (unknown ids are
        # counted but never listed), so it is skipped; the newest view of a known dashboard must show.
        for view in sorted(self.views, key=lambda v: v.viewed_at, reverse=True):
            shown = next((i for i in items if str(i.get("dashboardId", "")).lower() == view.dashboard_id), None)
            if self.exclusive:
                tied = [i for i in items if first is not None and i.get("lastViewedAt") == first.get("lastViewedAt")]
                if shown is not None and shown in tied and shown.get("lastViewedAt") == view.viewed_at:
                    return
            elif shown is not None:
                if str(shown.get("lastViewedAt")) < view.viewed_at:
                    self.fail(
                        "recently_viewed_after_view",
                        f"dashboard {view.dashboard_id} shows lastViewedAt {shown.get('lastViewedAt')}, before our "
                        f"view at {view.viewed_at}",
                        response,
                    )
                return
            if view.dashboard_id not in self.listed:
                continue
            if self.exclusive:
                self.fail(
                    "recently_viewed_after_view",
                    f"we last viewed dashboard {view.dashboard_id} at {view.viewed_at}; it must come first in our "
                    f"recently viewed with that lastViewedAt, but data[0] is "
                    f"{first.get('dashboardId') if first else None} at {first.get('lastViewedAt') if first else None}",
                    response,
                )
            if not items or str(items[-1].get("lastViewedAt")) < view.viewed_at:
                self.fail(
                    "recently_viewed_after_view",
                    f"dashboard {view.dashboard_id}, viewed at {view.viewed_at}, is missing from recently viewed "
                    "although older views are listed",
                    response,
                )
            return

    def _view(self, data, response) -> None:
        dashboard_id = str(data.get("dashboardId", "")).lower()
        count = data.get("viewCount")
        user_id = data.get("userId")
        if self.user_id is not None and isinstance(user_id, str) and user_id.lower() != self.user_id.lower():
            self.fail("view_recorded_for_caller", f"the view was recorded for user {user_id}, the token's user is {self.user_id}", response)
        if self.user_id is None and isinstance(user_id, str):
            self.user_id = user_id.lower()
        known = self.counts.get(dashboard_id)
        if known is not None and isinstance(count, int):
            if self.exclusive and count != known + 1:
                self.fail(
                    "view_counted",
                    f"dashboard {dashboard_id} had {known} views; recording one answered viewCount {count}, "
                    f"expected exactly {known + 1}",
                    response,
                )
            if not self.exclusive and count < known + 1:
                self.fail("view_counted", f"dashboard {dashboard_id} had {known} views; after one more it says {count}", response)
        if isinstance(count, int):
            self.counts[dashboard_id] = count
        self.views.append(RecordedView(dashboard_id, str(data.get("viewedAt")), self.user_id))

    def _stats_after_views(self, data, response) -> None:
        key = str(data.get("dashboardId", "")).lower()
        ours = [v for v in self.views if v.dashboard_id == key]
        if not ours:
            return
        latest = max(v.viewed_at for v in ours)
        last = data.get("lastViewedAt")
        if last is None or str(last) < latest or (self.exclusive and str(last) != latest):
            self.fail(
                "stats_show_view",
                f"we viewed dashboard {key} at {latest}; its stats say lastViewedAt {last!r}",
                response,
            )

    def _log_page(self, op, case, response, items, pagination) -> None:
        for entry in items:
            if isinstance(entry, dict) and isinstance(entry.get("_id"), str):
                self._entry(entry, response)
        if not isinstance(pagination, dict) or not isinstance(pagination.get("total_items"), int):
            return
        query = checks.sent_query(response)
        name = "dashboardId" if op == checks.DASHBOARD_LOGS else "mappingId"
        target_id = (checks.sent_path_value(response, case, name) or "").lower()
        names = ("action", "user_id", "type", "start_date", "end_date")
        filters = tuple(checks.single(query, k) for k in names)
        if any(v is None and k in query for v, k in zip(filters, names)):
            return  # a repeated filter is ambiguous
        matching = self._matching_views(op, target_id, *filters)
        key = (op, target_id, filters)
        total = pagination["total_items"]
        known = self.log_totals.get(key)
        if known is not None:
            expected = known[0] + (matching - known[1])
            if self.exclusive and total != expected:
                self.fail(
                    "view_logged",
                    f"the log of {target_id} held {known[0]} matching entries; {matching - known[1]} view(s) of ours "
                    f"match since, so it must hold {expected}, it holds {total}",
                    response,
                )
            if not self.exclusive and total < expected:
                self.fail("view_logged", f"the log of {target_id} shrank from {expected} expected to {total}", response)
        self.log_totals[key] = (total, matching)
        page = checks.as_int(checks.single(query, "page", checks.DEFAULT_PAGE))
        if self.exclusive and page == 1 and op == checks.DASHBOARD_LOGS and matching and items:
            first = items[0]
            if first.get("action") != "view" or str(first.get("user_id", "")).lower() != (self.user_id or ""):
                self.fail(
                    "view_logged",
                    f"we viewed dashboard {target_id} last; the newest entry of its log must be our `view`, it is "
                    f"{first.get('action')!r} by {first.get('user_id')!r}",
                    response,
                )
        elif self.exclusive and matching and not items and page == 1:
            self.fail("view_logged", f"we viewed dashboard {target_id}; page 1 of its log is empty", response)

    def _matching_views(self, op, target_id, action, user_id, type_, start, end) -> int:
        if op != checks.DASHBOARD_LOGS or action not in (None, "view") or type_ not in (None, "dashboard"):
            return 0
        if user_id is not None and user_id.lower() != (self.user_id or ""):
            return 0
        # Our views are made now: the default window (the last 7 days) holds them; explicit days may not.
        lo, hi = checks.parse_day(start), checks.parse_day(end)
        count = 0
        for view in self.views:
            if view.dashboard_id != target_id:
                continue
            at = checks.parse_instant(view.viewed_at)
            day = at.astimezone(UTC).date() if at is not None else None
            if day is None or (lo is not None and day < lo) or (hi is not None and day > hi):
                continue
            count += 1
        return count

    def _entry(self, entry, response) -> None:
        """The same entry read twice (a page, then by id) reads the same. On a shared deployment only the
        fields that identify the event are compared (another client could legitimately update an entry)."""
        key = entry["_id"].lower()
        known = self.entries.get(key)
        if known is not None:
            fields = set(known) | set(entry) if self.exclusive else {"_id", "user_id", "type", "action", "target_id", "createdAt"}
            changed = sorted(k for k in fields if known.get(k) != entry.get(k))
            if changed:
                self.fail(
                    "audit_entries_agree",
                    f"audit entry {key} reads differently than before: {', '.join(changed)} changed",
                    response,
                )
        self.entries[key] = entry
