"""A realistic, deterministic dataset for the mock: users, dashboards, tool mappings, views, audit entries.

Same seed and same anchor give a byte-identical dataset: one seeded `Faker` instance (fixed locale) and one
`random.Random` drive everything, nothing reads the wall clock, the global RNG, the machine's locale or
set/dict iteration order of unsorted data. Everything happens strictly before the anchor.

What makes it look real:
- dashboards of a DevOps KPI product ("DORA Metrics – Checkout") owned by users, tagged, with KPI counts;
- views spread over the `history_days` before the anchor, Zipf-like across dashboards (a few very popular,
  a few never viewed), more on weekdays and in working hours, growing slowly towards the anchor; only users
  whose role may view dashboards (VIEWER_ROLES) view them, and every such fixture (token) user has a history,
  so each token's "recently viewed" is populated at once;
- audit entries whose targets exist: a `create` for each dashboard and mapping at its creation time, later
  updates/shares/exports (removing a KPI or a field mapping is an `update`; dashboards and mappings are never
  deleted, since they stay listed), `view` entries that are copies of the most recent view events (same user,
  dashboard, time: every view since the audit history's first view entry has one), and some
  pipeline/registry/KPI activity whose `delete`, if any, is its target's last entry (data/audit.py).

The words come from data/vocab.py, whose enumerations mirror openapi.yaml (tests/unit/test_datagen.py checks them
against the spec, so they cannot drift); the instants from data/events.py.
"""

from __future__ import annotations

import bisect
import itertools
import random
from array import array
from dataclasses import dataclass
from datetime import datetime

from mock_server.bulk import no_cyclic_gc
from mock_server.data.audit import _AuditLog
from mock_server.data.events import _DAY_MS, _YEAR_MS, _Clock, _Packing, _ViewEvents
from mock_server.data.vocab import _AREAS, _KINDS, _ROLE_WEIGHTS, _TOOL_LABELS, TOOLS, VIEWER_ROLES
from mock_server.ids import object_id_ms, object_id_ms_tail
from mock_server.store.base import Dataset
from mock_server.timestamps import to_ms

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


class _Generator(_AuditLog):
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

        # Only users whose role may view dashboards have views (Auditors and Security Managers get 403).
        may_view = [u["role"] in VIEWER_ROLES for u in users]
        if not any(may_view):
            return _ViewEvents.empty(), popularity
        # Every token user that may view first: a dozen distinct dashboards each, so recently viewed is full at once.
        n_fixture = sum(may_view[:len(self.fixture_users)])
        if n_fixture and total_views >= n_fixture:
            per_user = max(1, min(12, len(viewable), total_views // (2 * n_fixture)))
            for user_i in range(len(self.fixture_users)):
                if may_view[user_i]:
                    for dash_i in self._weighted_sample(viewable, view_weight, per_user):
                        add(user_i, dash_i)

        activity = [rng.paretovariate(2.2) if may_view[i] else 0.0 for i in range(len(users))]
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

    # -- all -------------------------------------------------------------------------------------------

    def run(self) -> Dataset:
        """Users, dashboards and mappings as lists; views and audit entries as one-shot iterators, made as
        the store reads them, so a million of each never sit in memory as dicts."""
        users = self._users()
        dashboards, dash_created = self._dashboards(users)
        mappings, map_created = self._mappings()
        views, popularity = self._views(users, dashboards, dash_created)
        # The lazy streams get copies: pins (data/pins.py) append to the dataset's lists before a store reads the
        # streams, and the generated rows must not see them (stream() and generate() give the same data).
        audit_logs = self._audit_logs(list(users), list(dashboards), dash_created, popularity, list(mappings),
                                      map_created, views)
        return Dataset(account=self.account, users=users, dashboards=dashboards, mappings=mappings,
                       views=views.dicts(list(dashboards), list(users)), audit_logs=audit_logs)
