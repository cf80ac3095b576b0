"""Pins: the exact users, dashboards, tool mappings and audit entries of a scenario, laid on generated data.

Pins are made consistent with the rest: a pinned dashboard with `views: 42` gets 42 view events (so stats,
most/recently viewed and its `view` audit entries agree) and a `create` audit entry; every id has the spec's
pattern. A pin that cannot be made consistent is a ScenarioError naming the file and the pin's path.
"""

from __future__ import annotations

import itertools
import random
import re
from datetime import UTC, datetime, timedelta

from ..ids import object_id_ms
from ..store.base import Dataset
from ..timestamps import iso_ms, to_ms
from .generate import generate, stream
from .scenarios import UUID_PATTERN, Scenario, ScenarioError, Settings
from .vocab import VIEWER_ROLES

# An ISO 8601 instant, or an offset before the data's anchor: "-2h", "-3d", "-1d12h30m", "now".
_RELATIVE = re.compile(r"-(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
# A time of a UTC day before the anchor's: "-1d@16:42:07.318" is yesterday at 16:42:07.318. The spec's examples
# are pinned this way, so their day counts (7 and 30 days, dailyViews) come out the same whatever the hour.
_DAY_TIME = re.compile(r"-(\d+)d@(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?")


def build_dataset(scenario: Scenario, settings: Settings, *, anchor: datetime, users: list[dict],
                  account: str, streaming: bool = False) -> Dataset:
    """The generated data of the settings with the scenario's pins laid on top. streaming=True: the views and
    audit entries stay one-shot iterators (generate.stream) that the store consumes as it loads, so a 1M-row
    scenario loads in flat memory, and the pins' own follow them; a pinned audit id that a generated entry
    also has (64 random bits: never in practice) then fails the load on the store's unique index instead of
    here. streaming=False: lists always."""
    pins = scenario.document.get("pins")
    if streaming:  # pins are appended to the streams (the default scenario pins the spec's examples)
        dataset = stream(seed=settings.seed, anchor=anchor, users=users, account=account, sizes=settings.sizes)
    else:
        dataset = generate(seed=settings.seed, anchor=anchor, users=users, account=account, sizes=settings.sizes)
    if pins:
        _Pinner(scenario, settings.seed, anchor, dataset, users).apply(pins)
    return dataset


class _Pinner:
    def __init__(self, scenario: Scenario, seed: int, anchor: datetime, dataset: Dataset, users: list[dict]) -> None:
        self.where = str(scenario.path or scenario.name)
        self.anchor = anchor
        self.anchor_ms = to_ms(anchor)
        self.rng = random.Random(f"pins:{seed}")  # ids of the pins' events, the same on every run
        self.data = dataset
        self.token_users = list(users)
        self.by_ref: dict[str, dict] = {}
        for user in dataset.users:
            self.by_ref.setdefault(user["id"].lower(), user)
            self.by_ref.setdefault(user["email"].lower(), user)

    def fail(self, path: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.where}: pins.{path}: {message}")

    def claim(self, known: set[str], pinned_id: str, path: str, kind: str) -> str:
        """The pinned id, lower-cased, taken from `known`; a second pin of the same id is an error."""
        claimed = pinned_id.lower()
        if claimed in known:
            raise self.fail(f"{path}.id", f"{kind} {claimed} is pinned twice")
        known.add(claimed)
        return claimed

    def instant(self, value: str, path: str) -> int:
        text = value.strip()
        if text == "now":
            return self.anchor_ms - 1
        day_time = _DAY_TIME.fullmatch(text)
        if day_time:
            days, hour, minute, second = (int(g) for g in day_time.groups()[:4])
            start_of_day = self.anchor_ms - self.anchor_ms % 86_400_000 - days * 86_400_000
            ms = start_of_day + ((hour * 60 + minute) * 60 + second) * 1000 + int(day_time.group(5) or 0)
            if days < 1 or hour > 23 or minute > 59 or second > 59:
                raise self.fail(path, f"{value!r}: a day before today (-1d or more) at a time of day, like -1d@16:42:07.318")
            return ms
        match = _RELATIVE.fullmatch(text)
        if match and any(match.groups()):
            d, h, m, s = (int(g or 0) for g in match.groups())
            return self.anchor_ms - int(timedelta(days=d, hours=h, minutes=m, seconds=s).total_seconds() * 1000)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise self.fail(path, f"{value!r} is neither an ISO 8601 instant nor an offset like -2h or -3d") \
                from None
        ms = to_ms(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
        if ms >= self.anchor_ms:
            raise self.fail(path, f"{value!r} is not before the data's anchor {iso_ms(self.anchor_ms)} "
                                  f"(pinned history happens before now; see --now)")
        return ms

    def user(self, ref: str, path: str) -> dict:
        user = self.by_ref.get(ref.strip().lower())
        if user is None:
            raise self.fail(path, f"{ref!r} is neither a token user nor a pinned user (give an e-mail or id)")
        return user

    def apply(self, pins: dict) -> None:
        data = self.data
        fixture_ids = {u["id"] for u in data.users}
        for i, pinned in enumerate(pins.get("users", [])):
            uid, email = pinned["id"].lower(), pinned["email"]
            if uid in self.by_ref or email.lower() in self.by_ref:
                clash = "id" if uid in self.by_ref else "e-mail"
                raise self.fail(f"users[{i}]", f"{clash} already belongs to another user "
                                               f"({'a token user' if uid in fixture_ids else 'the data'})")
            user = {"id": uid, "email": email, "name": pinned["name"], "role": pinned.get("role", "User")}
            data.users.append(user)
            self.by_ref[uid] = self.by_ref[email.lower()] = user

        known_dashboards = {d["dashboardId"].lower() for d in data.dashboards}
        refs: dict[str, dict] = {}
        views: list[tuple[int, dict]] = []
        entries: list[tuple[int, dict]] = []
        for i, pinned in enumerate(pins.get("dashboards", [])):
            path = f"dashboards[{i}]"
            did = self.claim(known_dashboards, pinned["id"], path, "dashboard")
            owner = self.user(pinned["owner"], f"{path}.owner")
            dashboard = {"dashboardId": did, "name": pinned["name"]}
            if "description" in pinned:
                dashboard["description"] = pinned["description"]
            dashboard["owner"] = {"userId": owner["id"], "email": owner["email"], "name": owner["name"]}
            dashboard["tags"] = list(pinned.get("tags", []))
            dashboard["kpiCount"] = pinned.get("kpiCount", 6)
            data.dashboards.append(dashboard)
            refs[did] = {"dashboardId": did, "name": pinned["name"]}

            times = sorted((self.instant(t, f"{path}.viewTimes[{j}]") for j, t in enumerate(pinned.get("viewTimes", []))),
                           reverse=True)
            if times and ({"views", "firstViewedAt", "lastViewedAt"} & set(pinned)):
                raise self.fail(path, "give viewTimes or views/firstViewedAt/lastViewedAt, not both")
            count = len(times) or pinned.get("views", 0)
            last = times[0] if times else self.instant(pinned.get("lastViewedAt", "-1h"), f"{path}.lastViewedAt")
            first = (times[-1] if times else
                     self.instant(pinned["firstViewedAt"], f"{path}.firstViewedAt") if "firstViewedAt" in pinned
                     else last - 29 * 86_400_000 if count > 1 else last)
            if first > last:
                raise self.fail(path, "firstViewedAt is after lastViewedAt")
            created = (self.instant(pinned["createdAt"], f"{path}.createdAt") if "createdAt" in pinned
                       else min(first, last) - 86_400_000 if count else self.anchor_ms - 30 * 86_400_000)
            if count and created >= first:
                raise self.fail(f"{path}.createdAt", "the dashboard must be created before its first view")
            # By default every token user whose role may view dashboards (the others get 403 on views).
            viewers = [self.user(v, f"{path}.viewers[{j}]") for j, v in enumerate(pinned.get("viewers", []))] \
                or [u for u in self.token_users if u["role"] in VIEWER_ROLES] or [owner]
            if count and any(v["role"] not in VIEWER_ROLES for v in viewers):
                raise self.fail(f"{path}.viewers", f"only the roles {', '.join(VIEWER_ROLES)} may view dashboards")
            # Newest first: view j (0 = the latest, at lastViewedAt) is by viewers[j % len(viewers)], so the
            # first viewer's own last view is lastViewedAt.
            for j in range(count):
                ms = times[j] if times else last if count == 1 else last - round((last - first) * j / (count - 1))
                viewer = viewers[j % len(viewers)]
                views.append((ms, {"_id": object_id_ms(ms, self.rng), "dashboardId": did,
                                   "userId": viewer["id"], "viewedAt": iso_ms(ms)}))
                entries.append(self.entry(ms, viewer, "dashboard", "view", did, ("dashboard", refs[did]), None))
            if pinned.get("createEntry", True):
                entries.append(self.entry(created, owner, "dashboard", "create", did, ("dashboard", refs[did]),
                                          {"kpiCount": dashboard["kpiCount"], "tags": dashboard["tags"]}))

        known_mappings = {m["mappingId"].lower() for m in data.mappings}
        mapping_refs: dict[str, dict] = {}
        for i, pinned in enumerate(pins.get("mappings", [])):
            path = f"mappings[{i}]"
            mid = self.claim(known_mappings, pinned["id"], path, "mapping")
            mapping = {"mappingId": mid, "tool": pinned["tool"], "name": pinned["name"]}
            data.mappings.append(mapping)
            mapping_refs[mid] = mapping
            if pinned.get("createEntry", True):
                created = self.instant(pinned.get("createdAt", "-60d"), f"{path}.createdAt")
                by = (self.user(pinned["createdBy"], f"{path}.createdBy") if "createdBy" in pinned
                      else (self.token_users or data.users)[0])
                entries.append(self.entry(created, by, "tool_mapping", "create", mid, ("tool_mapping", dict(mapping)),
                                          {"tool": mapping["tool"]}))

        taken = {e["_id"].lower() for e in data.audit_logs} if isinstance(data.audit_logs, list) else set()
        for i, pinned in enumerate(pins.get("auditEntries", [])):
            path = f"auditEntries[{i}]"
            type_, action, target = pinned["type"], pinned["action"], pinned["target"].strip()
            ref = None
            if type_ in ("dashboard", "tool_mapping"):
                if not re.fullmatch(UUID_PATTERN, target):
                    raise self.fail(f"{path}.target", f"a {type_} target is a UUID, not {target!r}")
                target = target.lower()
                if type_ == "dashboard" and target in refs:
                    ref = ("dashboard", refs[target])
                elif type_ == "tool_mapping" and target in mapping_refs:
                    ref = ("tool_mapping", dict(mapping_refs[target]))
                elif not (type_ == "dashboard" and action == "view"):
                    # The spec names the target of every dashboard/tool_mapping entry (but a view of an
                    # unknown dashboard), so the target must be pinned here to have a name.
                    raise self.fail(f"{path}.target", f"{target} is not a pinned {type_.replace('_', ' ')}")
            user = self.user(pinned["user"], f"{path}.user")
            created = self.instant(pinned["timestamp"], f"{path}.timestamp")
            updated = self.instant(pinned["updatedAt"], f"{path}.updatedAt") if "updatedAt" in pinned else created
            if updated < created:
                raise self.fail(f"{path}.updatedAt", "is before the timestamp")
            _, entry = self.entry(created, user, type_, action, target, ref, pinned.get("details"),
                                  oid=pinned["id"].lower(), updated=updated)
            if entry["_id"] in taken:
                raise self.fail(f"{path}.id", f"audit entry id {entry['_id']} is used twice")
            entries.append((created, entry))
            taken.add(entry["_id"])

        pinned_views = [v for _, v in sorted(views, key=lambda item: item[0])]
        pinned_entries = [e for _, e in sorted(entries, key=lambda item: (item[0], item[1]["_id"]))]
        if isinstance(data.views, list):
            data.views.extend(pinned_views)
            data.audit_logs.extend(pinned_entries)
        else:  # streams: the store reads the generated rows, then the pinned ones
            data.views = itertools.chain(data.views, pinned_views)
            data.audit_logs = itertools.chain(data.audit_logs, pinned_entries)

    def entry(self, ms: int, user: dict, type_: str, action: str, target: str, ref: tuple[str, dict] | None,
              details: dict | None, *, oid: str | None = None, updated: int | None = None) -> tuple[int, dict]:
        entry = {"_id": oid or object_id_ms(ms, self.rng), "user_id": user["id"], "user_email": user["email"],
                 "type": type_, "action": action, "target_id": target, "account": self.data.account}
        if ref is not None:
            entry[ref[0]] = ref[1]
        if details is not None:
            entry["details"] = details
        entry["createdAt"] = iso_ms(ms)
        entry["updatedAt"] = iso_ms(ms if updated is None else updated)
        entry["__v"] = 0 if updated is None or updated == ms else 1
        return ms, entry
