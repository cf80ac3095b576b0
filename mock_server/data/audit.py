"""The audit entries of the generated data, made one at a time as the store consumes them.

Their targets exist: a `create` for each dashboard and mapping at its creation time, later
updates/shares/exports (never a `delete`: dashboards and mappings stay listed), `view` entries that are copies
of the most recent view events (same user, dashboard, time), and some pipeline/registry/KPI activity, where a
`delete` can only be a target's last entry.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator

from mock_server.data.events import _DAY_MS, _YEAR_MS, _ViewEvents
from mock_server.data.vocab import _AREAS, _EDITOR_ROLES, _KPI_NAMES, _MAPPED_FIELDS, _TOOL_LABELS, TOOLS
from mock_server.ids import object_id_ms
from mock_server.timestamps import iso_ms


RECENT_EDIT_SHARE = 0.25  # of the dashboard and mapping edits, made in the last 7 days


class _AuditLog:
    """The audit-log methods of data/generate.py's _Generator, as a mixin: they draw from the generator's one
    rng and clock (the order of every draw is what makes the data reproducible) and read its anchor_ms,
    sizes and account."""

    def _entry(self, ms: int, user: dict, type_: str, action: str, target_id: str, ref: tuple[str, dict] | None,
               details: dict | None, edited: bool = False) -> dict:
        rng = self.rng
        oid = object_id_ms(ms, rng)
        updated = ms
        version = 0
        if edited:
            updated = min(ms + rng.randint(1_000, 2 * 3_600_000), self.anchor_ms - 1)
            version = 1
        entry = {
            "_id": oid,
            "user_id": user["id"],
            "user_email": user["email"],
            "type": type_,
            "action": action,
            "target_id": target_id,
            "account": self.account,
        }
        if ref is not None:
            entry[ref[0]] = ref[1]
        if details is not None:
            entry["details"] = details
        created = iso_ms(ms)
        entry["createdAt"] = created
        # Most entries were never edited: their one instant is formatted once (a third of a 1M-entry load
        # went to formatting instants).
        entry["updatedAt"] = created if updated == ms else iso_ms(updated)
        entry["__v"] = version
        return entry

    def _split(self, total: int, shares: list[float]) -> list[int]:
        """`total` split in proportion to shares, summing exactly to total."""
        weight = sum(shares)
        if total <= 0 or weight <= 0:
            return [0] * len(shares)
        counts = [int(total * s / weight) for s in shares]
        for i in sorted(range(len(shares)), key=lambda i: -shares[i])[: total - sum(counts)]:
            counts[i] += 1
        return counts

    def _audit_logs(self, users, dashboards, dash_created, popularity, mappings, map_created,
                    views: _ViewEvents) -> Iterator[dict]:
        """The audit entries, made one at a time as they are consumed (not in time order: the store orders
        them, generate() sorts its list)."""
        rng, clock, anchor = self.rng, self.clock, self.anchor_ms
        budget = self.sizes.audit_logs
        if budget <= 0 or not users:
            return
        by_id = {u["id"]: u for u in users}
        refs = {d["dashboardId"]: self._dash_ref(d) for d in dashboards}
        editors = [u for u in users if u["role"] in _EDITOR_ROLES] or users

        # Views: copies of the most recent view events, one per view, as the audit log holds a shorter history
        # than the view log: every view since the oldest copied one has its entry (openapi.yaml, AuditLogEntry),
        # so the last 7 days (the lists' default) hold every view of theirs.
        n_view = min(len(views), round(budget * 0.4))
        for i in range(len(views) - n_view, len(views)):
            ms, dash_i, user_i = views.unpack(i)
            dashboard_id = dashboards[dash_i]["dashboardId"]
            yield self._entry(ms, users[user_i], "dashboard", "view", dashboard_id,
                              ("dashboard", dict(refs[dashboard_id])), None)
        remaining = budget - n_view

        # Creation of each dashboard and mapping, by its owner (dashboards) or an editor (mappings).
        n_dcreate = min(len(dashboards), remaining)
        remaining -= n_dcreate
        n_mcreate = min(len(mappings), remaining)
        remaining -= n_mcreate
        for d, ms in list(zip(dashboards, dash_created))[:n_dcreate]:
            owner = by_id.get(d["owner"]["userId"], editors[0])
            yield self._entry(ms, owner, "dashboard", "create", d["dashboardId"],
                              ("dashboard", self._dash_ref(d)), {"kpiCount": d["kpiCount"], "tags": list(d["tags"])})
        for m, ms in list(zip(mappings, map_created))[:n_mcreate]:
            yield self._entry(ms, rng.choice(editors), "tool_mapping", "create", m["mappingId"],
                              ("tool_mapping", dict(m)), {"tool": m["tool"]})

        n_dash_ops, n_map_ops, n_other = self._split(
            remaining, [0.55 if dashboards else 0.0, 0.2 if mappings else 0.0, 0.25])
        recent = anchor - 180 * _DAY_MS
        if n_dash_ops:
            cum = list(itertools.accumulate(p + 0.02 for p in popularity))  # unviewed ones get some edits
            # No `delete`: a dashboard stays listed and viewed, so a delete would be followed by more history.
            actions, weights = ("update", "share", "export", "remove_kpi"), (45, 20, 25, 10)
            for _ in range(n_dash_ops):
                i = min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(dashboards) - 1)
                d = dashboards[i]
                ms = clock.draw(self._recent_low(max(dash_created[i] + 60_000, recent)))
                owner = by_id.get(d["owner"]["userId"])
                actor = owner if owner is not None and rng.random() < 0.5 else rng.choice(editors)
                kind = rng.choices(actions, weights)[0]
                action = "update" if kind == "remove_kpi" else kind  # removing a KPI widget edits the dashboard
                yield self._entry(ms, actor, "dashboard", action, d["dashboardId"],
                                  ("dashboard", self._dash_ref(d)), self._dashboard_details(kind, actor, users, d),
                                  edited=rng.random() < 0.08)
        for _ in range(n_map_ops):
            i = rng.randrange(len(mappings))
            m = mappings[i]
            ms = clock.draw(self._recent_low(max(map_created[i] + 60_000, recent)))
            if rng.random() < 0.8:
                details = {"changedFields": sorted(rng.sample(
                    ["projectKey", "credentials", "syncSchedule", "fieldMappings", "webhook", "branchFilter"],
                    rng.randint(1, 2)))}
            else:  # the mapping stays (an update, not a delete): a field mapping of its tool is removed from it
                details = {"removedFieldMappings": [rng.choice(_MAPPED_FIELDS[m["tool"]])]}
            yield self._entry(ms, rng.choice(editors), "tool_mapping", "update", m["mappingId"],
                              ("tool_mapping", dict(m)), details, edited=rng.random() < 0.08)
        yield from self._other_activity(n_other, editors)

    def _dashboard_details(self, action: str, actor: dict, users: list[dict], d: dict) -> dict:
        rng = self.rng
        if action == "update":
            return {"changedFields": sorted(rng.sample(
                ["name", "description", "filters", "layout", "kpis", "tags", "dateRange"], rng.randint(1, 3)))}
        if action == "share":
            others = [u["email"] for u in users if u["id"] != actor["id"]] or [actor["email"]]
            return {"sharedWith": sorted(rng.sample(others, min(len(others), rng.randint(1, 3)))),
                    "permission": rng.choice(["view", "view", "edit"])}
        if action == "export":
            return {"format": rng.choice(["pdf", "pdf", "csv", "png"]), "kpiCount": d["kpiCount"]}
        # remove_kpi, logged as an update: the dashboard stays (it is listed); a KPI widget on it goes
        return {"removedKpis": [rng.choice(_KPI_NAMES)]}

    def _other_activity(self, count: int, editors: list[dict]) -> Iterator[dict]:
        """Pipelines, tool-registry entries and KPIs: per target, a create first, a delete last, updates."""
        if count <= 0:
            return
        rng, clock, anchor = self.rng, self.clock, self.anchor_ms
        recent = anchor - 180 * _DAY_MS
        targets = []  # (type, target_id, label)
        for area, _key, slug in _AREAS:
            targets.append(("pipeline", object_id_ms(clock.between(anchor - 2 * _YEAR_MS, recent), rng),
                            f"{slug}-build-and-deploy"))
        for tool in TOOLS:
            targets.append(("registry", object_id_ms(clock.between(anchor - 2 * _YEAR_MS, recent), rng),
                            f"{_TOOL_LABELS[tool]} ({rng.choice(['prod', 'shared', 'eu'])})"))
        for kpi in _KPI_NAMES:
            targets.append(("kpi", "-".join(kpi.lower().split()), kpi))
        weights = [{"pipeline": 3.0, "registry": 1.0, "kpi": 1.5}[t[0]] for t in targets]
        per_target: dict[int, list[int]] = {}
        for _ in range(count):
            i = rng.choices(range(len(targets)), weights)[0]
            per_target.setdefault(i, []).append(clock.draw(recent))
        for i in sorted(per_target):
            type_, target_id, label = targets[i]
            times = sorted(per_target[i])
            for j, ms in enumerate(times):
                if j == 0 and len(times) > 1 and rng.random() < 0.4:
                    action = "create"
                elif j == len(times) - 1 and len(times) > 2 and rng.random() < 0.15:
                    action = "delete"
                else:
                    action = "update"
                key = {"pipeline": "pipelineName", "registry": "toolName", "kpi": "kpiName"}[type_]
                details = {key: label}
                if action == "update":
                    details["changedFields"] = sorted(rng.sample(
                        ["name", "settings", "schedule", "owner", "thresholds"], rng.randint(1, 2)))
                yield self._entry(ms, rng.choice(editors), type_, action, target_id, None, details,
                                  edited=rng.random() < 0.05)

    def _recent_low(self, low: int) -> int:
        """`low`, or for a share of the edits the start of the last week: the lists show the last 7 days by
        default, and a UI needs some edits of dashboards and mappings there to page through, not only views."""
        if self.rng.random() < RECENT_EDIT_SHARE:
            return max(low, self.anchor_ms - 7 * _DAY_MS)
        return low

    def _dash_ref(self, d: dict) -> dict:
        return {"dashboardId": d["dashboardId"], "name": d["name"]}
