"""A realistic, deterministic dataset for the mock: users, dashboards, tool mappings, views, audit entries.

Same seed and same anchor give a byte-identical dataset: one seeded `Faker` instance (fixed locale) and one
`random.Random` drive everything, nothing reads the wall clock, the global RNG, the machine's locale or
set/dict iteration order of unsorted data. Everything happens strictly before the anchor.

What makes it look real:
- dashboards of a DevOps KPI product ("DORA Metrics – Checkout") owned by users, tagged, with KPI counts;
- views spread over the `history_days` before the anchor, Zipf-like across dashboards (a few very popular,
  a few never viewed), more on weekdays and in working hours, growing slowly towards the anchor; every
  fixture (token) user has a history, so each token's "recently viewed" is populated at once;
- audit entries whose targets exist: a `create` for each dashboard and mapping at its creation time, later
  updates/shares/exports, `view` entries that are copies of real view events (same user, dashboard, time),
  and some pipeline/registry/KPI activity.

Enumerations mirror openapi.yaml (tests/test_datagen.py checks them against the spec, so they cannot drift).
"""

from __future__ import annotations

import bisect
import itertools
import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from mock_server.bulk import no_cyclic_gc
from mock_server.ids import object_id_ms, object_id_ms_tail
from mock_server.store.base import Dataset
from mock_server.timestamps import MS_PER_DAY, iso_ms, to_ms

ROLES = ("Opsera Administrator", "Administrator", "Power User", "User", "Auditor", "Security Manager")
TOOLS = ("jira", "github", "gitlab", "bitbucket", "jenkins", "sonarqube", "azure-devops", "argocd")
AUDIT_TYPES = ("dashboard", "tool_mapping", "pipeline", "registry", "kpi")
AUDIT_ACTIONS = ("create", "update", "delete", "view", "share", "export")

FAKER_LOCALE = "en_US"


@dataclass(frozen=True)
class Sizes:
    """How much to generate. The defaults load in well under a second (see bench/)."""

    users: int = 25  # fixture users included; more fixture users than this are all kept
    dashboards: int = 40
    mappings: int = 24
    views: int = 6000
    audit_logs: int = 3000  # exact, whatever the mix
    history_days: int = 90  # views fall in these days before the anchor
    skew: float = 1.1  # Zipf exponent of dashboard popularity: 0 = flat, 2 = a few dashboards get most views

    def __post_init__(self) -> None:
        for name in ("users", "dashboards", "mappings", "views", "audit_logs"):
            if getattr(self, name) < 0:
                raise ValueError(f"Sizes.{name} must not be negative")
        if self.history_days < 1:
            raise ValueError("Sizes.history_days must be at least 1")
        if not 0.0 <= self.skew <= 5.0:
            raise ValueError("Sizes.skew must be between 0 and 5")


# Teams / product areas: display name, Jira-style project key, repository slug.
_AREAS = (
    ("Payments", "PAY", "payments"),
    ("Checkout", "CHK", "checkout"),
    ("Mobile App", "MOB", "mobile-app"),
    ("Platform Team", "PLAT", "platform"),
    ("Search", "SRCH", "search"),
    ("Identity", "IAM", "identity"),
    ("Billing", "BILL", "billing"),
    ("Data Pipeline", "DATA", "data-pipeline"),
    ("Notifications", "NOTIF", "notifications"),
    ("Onboarding", "ONB", "onboarding"),
    ("Inventory", "INV", "inventory"),
    ("Shipping", "SHIP", "shipping"),
    ("Web Storefront", "WEB", "storefront"),
    ("API Gateway", "GW", "api-gateway"),
    ("Fraud Detection", "FRD", "fraud-detection"),
    ("Customer Portal", "CP", "customer-portal"),
    ("Infrastructure", "INFRA", "infrastructure"),
    ("Release Engineering", "REL", "release-engineering"),
    ("Analytics", "ANL", "analytics"),
    ("Core Banking", "CORE", "core-banking"),
)

# Dashboard kinds: title, description ({area} filled in), tags, KPI count range.
_KINDS = (
    ("Pipeline Health", "Build success rate, pipeline duration and failing stages of the {area} pipelines.",
     ("pipelines", "ci"), (5, 12)),
    ("DORA Metrics", "Deployment frequency, lead time for changes, change failure rate and time to restore "
     "of {area}.", ("dora",), (4, 8)),
    ("Code Quality", "Quality gates, coverage, duplications and code smells of the {area} repositories.",
     ("sonarqube", "quality"), (4, 10)),
    ("Sprint Velocity", "Committed versus completed story points and carry-over per sprint of {area}.",
     ("jira", "agile"), (3, 7)),
    ("Deployment Frequency", "Production deployments per day and per service of {area}, with rollbacks.",
     ("dora", "deployments"), (2, 6)),
    ("Lead Time for Changes", "Time from first commit to production for {area}, by stage.",
     ("dora", "lead-time"), (3, 6)),
    ("Change Failure Rate", "Share of {area} deployments that caused an incident or a rollback.",
     ("dora", "reliability"), (2, 5)),
    ("Incident Response", "Open incidents, mean time to acknowledge and mean time to resolve for {area}.",
     ("incidents", "sre"), (4, 9)),
    ("Security Scans", "Open vulnerabilities by severity and time to fix from the {area} security scans.",
     ("security", "vulnerabilities"), (3, 8)),
    ("Test Automation", "Test pass rate, flaky tests and automation coverage of {area}.",
     ("testing", "qa"), (4, 10)),
    ("Release Readiness", "Open blockers, test status and change approvals ahead of the next {area} release.",
     ("release",), (5, 11)),
    ("Flow Metrics", "Flow velocity, flow time, flow load and flow efficiency of the {area} value stream.",
     ("flow", "value-stream"), (4, 8)),
    ("Pull Request Insights", "Pull request cycle time, review depth and merge rate of {area}.",
     ("github", "reviews"), (3, 7)),
    ("Backlog Health", "Backlog size, age of open issues and bugs versus features for {area}.",
     ("jira", "backlog"), (3, 6)),
)

_KPI_NAMES = (
    "Lead Time for Changes", "Deployment Frequency", "Change Failure Rate", "Mean Time to Restore",
    "Build Success Rate", "Pipeline Duration", "Code Coverage", "Open Vulnerabilities", "Sprint Burndown",
    "Cycle Time", "Flaky Tests", "Quality Gate Status", "Story Points Completed", "Pull Request Review Time",
    "Escaped Defects", "Deployment Rollbacks",
)

_TOOL_LABELS = {
    "jira": "Jira", "github": "GitHub", "gitlab": "GitLab", "bitbucket": "Bitbucket", "jenkins": "Jenkins",
    "sonarqube": "SonarQube", "azure-devops": "Azure DevOps", "argocd": "Argo CD",
}

_ROLE_WEIGHTS = {  # generated (non-fixture) users
    "Opsera Administrator": 1, "Administrator": 2, "Power User": 6, "User": 14, "Auditor": 1,
    "Security Manager": 1,
}
_EDITOR_ROLES = ("Opsera Administrator", "Administrator", "Power User")
_VIEWER_ROLE_ACTIVITY = {"Auditor": 0.3, "Security Manager": 0.3}

_WEEKDAY_WEIGHT = (1.0, 1.05, 1.05, 1.0, 0.85, 0.25, 0.18)  # Monday first
_DAY_MS = MS_PER_DAY
_YEAR_MS = 365 * _DAY_MS


def generate(*, seed: int, anchor: datetime, users: list[dict], account: str, sizes: Sizes) -> Dataset:
    """The dataset of `seed` anchored at `anchor`, in lists; `users` (the token users: {id, email, name,
    role}) are part of it and each gets a view history whenever sizes.views >= len(users). Views are in
    time order, audit entries in (createdAt, _id) order."""
    dataset = stream(seed=seed, anchor=anchor, users=users, account=account, sizes=sizes)
    with no_cyclic_gc():
        dataset.views = list(dataset.views)
        dataset.audit_logs = sorted(dataset.audit_logs, key=lambda e: (e["createdAt"], e["_id"]))
    return dataset


def stream(*, seed: int, anchor: datetime, users: list[dict], account: str, sizes: Sizes) -> Dataset:
    """The same data as generate(), with views and audit entries as one-shot iterators made while they
    are consumed (the audit entries in no particular order): what a store loads, in flat memory."""
    with no_cyclic_gc():
        return _Generator(seed, to_ms(anchor), users, account, sizes).run()


class _Clock:
    """Draws instants in [lo, anchor): weekday and working-hour skew, slowly growing usage."""

    def __init__(self, rng: random.Random, anchor_ms: int, history_days: int):
        self.rng = rng
        self.anchor_ms = anchor_ms
        self.history_start = anchor_ms - history_days * _DAY_MS
        self._days: dict[int, tuple[list[int], list[float]]] = {}

    def _table(self, lo: int) -> tuple[list[int], list[float]]:
        table = self._days.get(lo)
        if table is None:
            starts, cum, total = [], [], 0.0
            span = max(self.anchor_ms - self.history_start, 1)
            for day in range(lo // _DAY_MS, (self.anchor_ms - 1) // _DAY_MS + 1):
                start = day * _DAY_MS
                overlap = min(start + _DAY_MS, self.anchor_ms) - max(start, lo)
                if overlap <= 0:
                    continue
                trend = 1.0 + 0.5 * max(0, start - self.history_start) / span
                total += _WEEKDAY_WEIGHT[(day + 3) % 7] * trend * overlap / _DAY_MS
                starts.append(start)
                cum.append(total)
            table = self._days[lo] = (starts, cum)
        return table

    def draw(self, lo: int) -> int:
        """An instant in [lo, anchor) in epoch ms; lo must be < anchor."""
        rng = self.rng
        starts, cum = self._table(lo)
        start = starts[bisect.bisect_right(cum, rng.random() * cum[-1]) if len(starts) > 1 else 0]
        lo_d, hi_d = max(lo, start), min(start + _DAY_MS, self.anchor_ms)
        for _ in range(6):
            if rng.random() < 0.85:  # working hours, centred on 14:30 UTC (Europe afternoon, US morning)
                t = start + int(rng.gauss(52_200_000, 10_800_000))
            else:
                t = start + int(rng.random() * _DAY_MS)
            if lo_d <= t < hi_d:
                return t
        return lo_d + int(rng.random() * (hi_d - lo_d))

    def between(self, lo: int, hi: int) -> int:
        return lo + int(self.rng.random() * max(hi - lo, 1))


class _Generator:
    def __init__(self, seed: int, anchor_ms: int, fixture_users: list[dict], account: str, sizes: Sizes):
        from faker import Faker  # imported here: a 0.1 s import that only data generation needs

        self.rng = random.Random(seed)
        self.fake = Faker(FAKER_LOCALE)
        self.fake.seed_instance(seed)
        self.anchor_ms = anchor_ms
        self.account = account
        self.sizes = sizes
        self.clock = _Clock(self.rng, anchor_ms, sizes.history_days)
        # Sorted, so the caller's list order does not change the data.
        self.fixture_users = sorted(
            ({"id": u["id"].lower(), "email": u["email"], "name": u["name"], "role": u["role"]}
             for u in fixture_users),
            key=lambda u: u["id"],
        )
        org = account.removeprefix("org-").split("-")[0] or "acme"
        self.org = org
        first_domain = self.fixture_users[0]["email"].rpartition("@")[2] if self.fixture_users else ""
        self.email_domain = first_domain or f"{org}.example"

    # -- entities --------------------------------------------------------------------------------------

    def _users(self) -> list[dict]:
        rng, fake = self.rng, self.fake
        users = list(self.fixture_users)
        emails = {u["email"].lower() for u in users}
        ids = {u["id"] for u in users}
        roles, weights = list(_ROLE_WEIGHTS), list(_ROLE_WEIGHTS.values())
        for _ in range(max(0, self.sizes.users - len(users))):
            first, last = fake.first_name(), fake.last_name()
            local = ".".join("".join(c for c in part.lower() if c.isascii() and c.isalnum())
                             for part in (first, last))
            email = f"{local}@{self.email_domain}"
            for n in itertools.count(2):
                if email.lower() not in emails:
                    break
                email = f"{local}{n}@{self.email_domain}"
            emails.add(email.lower())
            joined = self.anchor_ms - self.clock.between(30 * _DAY_MS, 3 * _YEAR_MS)
            uid = object_id_ms(joined, rng)
            while uid in ids:  # 64 random bits: never in practice, but cheap to rule out
                uid = object_id_ms(joined, rng)
            ids.add(uid)
            users.append({"id": uid, "email": email, "name": f"{first} {last}",
                          "role": rng.choices(roles, weights)[0]})
        return users

    def _dashboards(self, users: list[dict]) -> tuple[list[dict], list[int]]:
        rng = self.rng
        owners = [u for u in users if u["role"] not in ("Auditor", "Security Manager")] or users
        combos = list(itertools.product(range(len(_KINDS)), range(len(_AREAS))))
        rng.shuffle(combos)
        dashboards, created = [], []
        history_start = self.clock.history_start
        for i in range(self.sizes.dashboards):
            kind_i, area_i = combos[i % len(combos)]
            title, description, kind_tags, (kpi_lo, kpi_hi) = _KINDS[kind_i]
            area, _key, slug = _AREAS[area_i]
            name = f"{title} – {area}"
            if i >= len(combos):
                name += f" ({i // len(combos) + 1})"
            owner = rng.choice(owners)
            if rng.random() < 0.12:  # a few new dashboards, created inside the view history
                created_ms = self.clock.between(history_start, self.anchor_ms - 3 * _DAY_MS)
            else:
                created_ms = self.clock.between(self.anchor_ms - 2 * _YEAR_MS, history_start - _DAY_MS)
            dashboard = {
                "dashboardId": self._uuid(),
                "name": name,
                "description": description.format(area=area),
                "owner": {"userId": owner["id"], "email": owner["email"], "name": owner["name"]},
                "tags": [slug, *kind_tags],
                "kpiCount": rng.randint(kpi_lo, kpi_hi),
            }
            if rng.random() < 0.1:  # descriptions are optional in the product, and some are left empty
                del dashboard["description"]
            dashboards.append(dashboard)
            created.append(min(created_ms, self.anchor_ms - 1))
        return dashboards, created

    def _mappings(self) -> tuple[list[dict], list[int]]:
        rng = self.rng
        combos = list(itertools.product(range(len(TOOLS)), range(len(_AREAS))))
        rng.shuffle(combos)
        mappings, created = [], []
        for i in range(self.sizes.mappings):
            tool_i, area_i = combos[i % len(combos)]
            tool = TOOLS[tool_i]
            name = self._mapping_name(tool, *_AREAS[area_i])
            if i >= len(combos):
                name += f" ({i // len(combos) + 1})"
            mappings.append({"mappingId": self._uuid(), "tool": tool, "name": name})
            created.append(self.clock.between(self.anchor_ms - 2 * _YEAR_MS, self.anchor_ms - 7 * _DAY_MS))
        return mappings, created

    def _mapping_name(self, tool: str, area: str, key: str, slug: str) -> str:
        label = _TOOL_LABELS[tool]
        return {
            "jira": f"{label} – {key} project",
            "github": f"{label} – {self.org}/{slug}",
            "gitlab": f"{label} – {self.org}/{slug}",
            "bitbucket": f"{label} – {key}/{slug}",
            "jenkins": f"{label} – {area} pipelines",
            "sonarqube": f"{label} – {slug}",
            "azure-devops": f"{label} – {area} board",
            "argocd": f"{label} – {slug}-prod",
        }[tool]

    def _uuid(self) -> str:
        # A version-4 layout from our rng (uuid.uuid4() would read os.urandom).
        n = self.rng.getrandbits(128)
        n = (n & ~(0xF000 << 64)) | (0x4000 << 64)
        n = (n & ~(0xC000 << 48)) | (0x8000 << 48)
        h = f"{n:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    # -- views -----------------------------------------------------------------------------------------

    def _views(self, users: list[dict], dashboards: list[dict],
               created: list[int]) -> tuple[_ViewEvents, list[float]]:
        """View events oldest first and each dashboard's popularity weight (reused for the other dashboard
        activity)."""
        rng, clock = self.rng, self.clock
        n_dash = len(dashboards)
        if not n_dash:
            return _ViewEvents.empty(), []
        ranks = list(range(n_dash))
        rng.shuffle(ranks)  # ranks[i]: popularity rank of dashboard i
        never_viewed = max(1, n_dash // 12) if n_dash >= 4 else 0
        popularity = [1.0 / (r + 1) ** self.sizes.skew for r in ranks]
        view_weight = [0.0 if r >= n_dash - never_viewed else p for r, p in zip(ranks, popularity)]
        viewable = [i for i in range(n_dash) if view_weight[i] > 0]
        cum_dash = list(itertools.accumulate(view_weight))
        total_views = self.sizes.views
        if not users or total_views <= 0:
            return _ViewEvents.empty(), popularity

        packing = _Packing(len(users), n_dash)
        events: list[int] = []  # packed (ms, dashboard index, user index): sorting them sorts the tuples
        lows = [max(clock.history_start, c + 60_000) for c in created]

        def add(user_i: int, dash_i: int) -> None:
            events.append(packing.pack(clock.draw(lows[dash_i]), dash_i, user_i))

        # Every token user first: a dozen distinct dashboards each, so recently viewed is full at once.
        n_fixture = len(self.fixture_users)
        if n_fixture and total_views >= n_fixture:
            per_user = max(1, min(12, len(viewable), total_views // (2 * n_fixture)))
            for user_i in range(n_fixture):
                for dash_i in self._weighted_sample(viewable, view_weight, per_user):
                    add(user_i, dash_i)

        activity = [rng.paretovariate(2.2) * _VIEWER_ROLE_ACTIVITY.get(u["role"], 1.0) for u in users]
        cum_users = list(itertools.accumulate(activity))
        favourites = [self._weighted_sample(viewable, view_weight, min(3, len(viewable))) for _ in users]
        last_user = len(users) - 1
        for _ in range(total_views - len(events)):
            user_i = min(bisect.bisect_right(cum_users, rng.random() * cum_users[-1]), last_user)
            if rng.random() < 0.3:
                dash_i = rng.choice(favourites[user_i])
            else:
                dash_i = bisect.bisect_right(cum_dash, rng.random() * cum_dash[-1])
                dash_i = min(dash_i, n_dash - 1)
            add(user_i, dash_i)

        events.sort()
        # The ids' random parts are drawn now, in time order, so the views can be made later in any order
        # of consumption without moving the generator's random sequence.
        tails = array("Q", (rng.getrandbits(64) for _ in events))
        views = _ViewEvents(events, tails, packing)
        for i in (0, len(views) - 1):  # ObjectIds hold seconds from 1970 to 2106: refuse early, not mid-load
            object_id_ms_tail(views.unpack(i)[0], 0)
        return views, popularity

    def _weighted_sample(self, population: list[int], weights: list[float], k: int) -> list[int]:
        """k distinct items, each draw weighted (random.sample's `counts` needs integers)."""
        pool = list(population)
        chosen = []
        for _ in range(min(k, len(pool))):
            w = [weights[i] for i in pool]
            pick = self.rng.choices(range(len(pool)), weights=w)[0]
            chosen.append(pool.pop(pick))
        return chosen

    # -- audit log -------------------------------------------------------------------------------------

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
        entry["createdAt"] = iso_ms(ms)
        entry["updatedAt"] = iso_ms(updated)
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

        # Views: copies of real view events (a sample: the product audits only some of them).
        n_view = min(len(views), round(budget * 0.4))
        for i in sorted(rng.sample(range(len(views)), n_view)):
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
            actions, weights = ("update", "share", "export", "delete"), (45, 20, 25, 10)
            for _ in range(n_dash_ops):
                i = min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(dashboards) - 1)
                d = dashboards[i]
                ms = clock.draw(max(dash_created[i] + 60_000, recent))
                owner = by_id.get(d["owner"]["userId"])
                actor = owner if owner is not None and rng.random() < 0.5 else rng.choice(editors)
                action = rng.choices(actions, weights)[0]
                yield self._entry(ms, actor, "dashboard", action, d["dashboardId"],
                                  ("dashboard", self._dash_ref(d)), self._dashboard_details(action, actor, users, d),
                                  edited=rng.random() < 0.08)
        for _ in range(n_map_ops):
            i = rng.randrange(len(mappings))
            m = mappings[i]
            ms = clock.draw(max(map_created[i] + 60_000, recent))
            action = "update" if rng.random() < 0.8 else "delete"
            if action == "update":
                details = {"changedFields": sorted(rng.sample(
                    ["projectKey", "credentials", "syncSchedule", "fieldMappings", "webhook", "branchFilter"],
                    rng.randint(1, 2)))}
            else:  # the mapping stays; a mapped project or field is removed from it
                details = {"removedFieldMappings": [rng.choice(["storyPoints", "epicLink", "sprint",
                                                                "severity", "component"])]}
            yield self._entry(ms, rng.choice(editors), "tool_mapping", action, m["mappingId"],
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
        # delete: the dashboard stays (it is listed); what was deleted is a KPI widget on it
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

    def _dash_ref(self, d: dict) -> dict:
        return {"dashboardId": d["dashboardId"], "name": d["name"]}

    # -- all -------------------------------------------------------------------------------------------

    def run(self) -> Dataset:
        """Users, dashboards and mappings as lists; views and audit entries as one-shot iterators, made as
        the store reads them, so a million of each never sit in memory as dicts."""
        users = self._users()
        dashboards, dash_created = self._dashboards(users)
        mappings, map_created = self._mappings()
        views, popularity = self._views(users, dashboards, dash_created)
        audit_logs = self._audit_logs(users, dashboards, dash_created, popularity, mappings, map_created, views)
        return Dataset(account=self.account, users=users, dashboards=dashboards, mappings=mappings,
                       views=views.dicts(dashboards, users), audit_logs=audit_logs)


class _Packing:
    """(ms, dashboard index, user index) in one int whose order is the tuple's order."""

    def __init__(self, n_users: int, n_dashboards: int):
        self.user_bits = max(1, (n_users - 1).bit_length())
        self.shift = self.user_bits + max(1, (n_dashboards - 1).bit_length())
        self.user_mask = (1 << self.user_bits) - 1
        self.dash_mask = (1 << (self.shift - self.user_bits)) - 1

    def pack(self, ms: int, dash_i: int, user_i: int) -> int:
        return (ms << self.shift) + (dash_i << self.user_bits) + user_i

    def unpack(self, packed: int) -> tuple[int, int, int]:
        return packed >> self.shift, (packed >> self.user_bits) & self.dash_mask, packed & self.user_mask


class _ViewEvents:
    """The view events, oldest first, as packed ints and the random parts of their ids: about 50 MB for a
    million views, where a million dicts took about 1 GB. The dicts are made as they are consumed."""

    def __init__(self, events: list[int], tails: array, packing: _Packing | None):
        self._events = events
        self._tails = tails
        self._packing = packing

    @classmethod
    def empty(cls) -> _ViewEvents:
        return cls([], array("Q"), None)

    def __len__(self) -> int:
        return len(self._events)

    def unpack(self, i: int) -> tuple[int, int, int]:
        return self._packing.unpack(self._events[i])

    def dicts(self, dashboards: list[dict], users: list[dict]) -> Iterator[dict]:
        unpack = self._packing.unpack if self._packing else None
        for packed, tail in zip(self._events, self._tails):
            ms, dash_i, user_i = unpack(packed)
            yield {
                "_id": object_id_ms_tail(ms, tail),
                "dashboardId": dashboards[dash_i]["dashboardId"],
                "userId": users[user_i]["id"],
                "viewedAt": iso_ms(ms),
            }
