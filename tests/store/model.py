"""Datasets for the store tests, and a naive model of the answers every store must give."""

from __future__ import annotations

import collections
import multiprocessing
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

from mock_server.data.generate import Sizes, generate
from mock_server.store import Dataset
from mock_server.timestamps import day_date, iso_ms, ms_from_iso

ROOT = Path(__file__).resolve().parents[2]
TOKENS = yaml.safe_load((ROOT / "fixtures" / "tokens.yaml").read_text(encoding="utf-8"))
FIXTURE_USERS = [{**t["user"], "role": t["role"]} for t in TOKENS["tokens"]]
ACCOUNT = TOKENS["account"]
ANCHOR = datetime(2026, 11, 25, tzinfo=UTC)
TODAY = date(2026, 11, 25)
SMALL = Sizes(users=12, dashboards=8, mappings=4, views=400, audit_logs=300)
UNKNOWN = "0f0e0d0c-0b0a-4908-8706-050403020100"
DANA = FIXTURE_USERS[0]


def small_dataset(seed: int = 3) -> Dataset:
    """A fresh dataset each call: views and audit entries may be one-shot, a store reads them once."""
    return generate(seed=seed, anchor=ANCHOR, users=FIXTURE_USERS, account=ACCOUNT, sizes=SMALL)


class Model:
    """Everything recomputed from the raw view events, the slow obvious way."""

    def __init__(self, dashboards: list[dict], views: list[tuple[str, str, int]]):
        self.dashboards = {d["dashboardId"]: d for d in dashboards}
        self.views = list(views)  # (user_id, dashboard_id, ms)

    def record(self, user_id: str, dashboard_id: str, ms: int) -> None:
        self.views.append((user_id, dashboard_id, ms))

    def of(self, dashboard_id: str) -> list[tuple[str, str, int]]:
        return [v for v in self.views if v[1] == dashboard_id]

    def stats(self, dashboard_id: str, today: date) -> dict:
        views = self.of(dashboard_id)
        per_day = collections.Counter(day_date(ms // 86_400_000) for _, _, ms in views)
        days = [today - timedelta(days=29 - i) for i in range(30)]
        daily = [{"date": d.isoformat(), "views": per_day.get(d, 0)} for d in days]
        return {
            "dashboardId": dashboard_id,
            "totalViews": len(views),
            "uniqueViewers": len({u for u, _, _ in views}),
            "viewsLast7Days": sum(x["views"] for x in daily[-7:]),
            "viewsLast30Days": sum(x["views"] for x in daily),
            "firstViewedAt": iso_ms(min(ms for _, _, ms in views)) if views else None,
            "lastViewedAt": iso_ms(max(ms for _, _, ms in views)) if views else None,
            "dailyViews": daily,
        }

    def most_viewed(self) -> list[tuple[str, int, str]]:
        rows = []
        for dashboard_id in self.dashboards:
            views = self.of(dashboard_id)
            if views:
                rows.append((dashboard_id, len(views), max(ms for _, _, ms in views)))
        rows.sort(key=lambda r: (-r[1], -r[2], r[0]))
        return [(d, n, iso_ms(last)) for d, n, last in rows]

    def recently_viewed(self, user_id: str) -> list[tuple[str, int, str]]:
        last: dict[str, int] = {}
        for u, d, ms in self.views:
            if u == user_id and d in self.dashboards:
                last[d] = max(last.get(d, ms), ms)
        rows = sorted(last.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(d, len(self.of(d)), iso_ms(ms)) for d, ms in rows]


def model_of(dataset: Dataset) -> Model:
    return Model(dataset.dashboards, [(v["userId"], v["dashboardId"], ms_from_iso(v["viewedAt"]))
                                      for v in dataset.views])


def brief(items: list[dict]) -> list[tuple[str, int, str]]:
    return [(i["dashboardId"], i["viewCount"], i["lastViewedAt"]) for i in items]


def record_many(store, dashboard_id: str, user: dict, calls: int, out: list, errors: list) -> None:
    """Record `calls` views of `user` one second apart; the counts answered go to `out`, failures to `errors`
    (a thread's body in the concurrency tests: the test fails on any error)."""
    for i in range(calls):
        try:
            out.append(store.record_view(dashboard_id, user, ANCHOR + timedelta(seconds=i))["viewCount"])
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on any
            errors.append(repr(exc))


def start_together(worker, args, n: int = 4) -> tuple[list[bool], int]:
    """Fork `n` processes running `worker(*args(barrier, calls, results))` at once: stores racing to load one
    database. What each reported (True: it loaded), and how many times the dataset was made."""
    ctx = multiprocessing.get_context("fork")
    barrier, calls, results = ctx.Barrier(n), ctx.Value("i", 0), ctx.Queue()
    workers = [ctx.Process(target=worker, args=args(barrier, calls, results)) for _ in range(n)]
    for w in workers:
        w.start()
    loaded = sorted(results.get(timeout=180) for _ in workers)
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    return loaded, calls.value


def record_in_threads(stores, dashboard_id: str, users: list[dict], calls: int) -> tuple[list[int], list[str]]:
    """One thread per user, each recording `calls` views on one of `stores` (a store, or a list of stores
    taken in turn: replicas); the counts answered and any errors."""
    stores = stores if isinstance(stores, list) else [stores]
    counts: list[int] = []
    errors: list[str] = []
    threads = [threading.Thread(target=record_many, args=(stores[i % len(stores)], dashboard_id, u, calls,
                                                           counts, errors)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return counts, errors
