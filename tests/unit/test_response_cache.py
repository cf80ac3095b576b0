"""api/cache.py: a GET's answer is reused while the data is unchanged, and never after a write.

Unit tests of ResponseCache with a version under the test's control, then the app: two apps on one --db
file stand for two gunicorn workers (tests/system/test_replicas.py does the same for PostgreSQL replicas)."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest
import requests

from conftest import make_app
from mock_helpers import ADMIN, AUDITOR, NOW, READONLY, bearer, start, stop, url
from mock_server.api.cache import ResponseCache

DAY = date(2026, 11, 25)


class Version:
    def __init__(self) -> None:
        self.value: int | None = 0

    def __call__(self) -> int | None:
        return self.value


class Maker:
    def __init__(self, version: Version | None = None, move_to: int | None = None) -> None:
        self.calls, self.version, self.move_to = 0, version, move_to

    def __call__(self) -> tuple[int, bytes]:
        self.calls += 1
        if self.version is not None:  # a write lands while the answer is being made
            self.version.value = self.move_to
        return 200, b'{"n": %d}' % self.calls


def key(**params) -> object:
    return ResponseCache.key("getMostViewedDashboards", "u1", DAY, params)


def test_an_answer_is_made_once_while_the_version_stands():
    version, make = Version(), Maker()
    cache = ResponseCache(version)
    assert cache.get(key(limit=5), make) == cache.get(key(limit=5), make) == (200, b'{"n": 1}')
    assert make.calls == 1


def test_another_key_is_another_answer():
    cache, make = ResponseCache(Version()), Maker()
    cache.get(key(limit=5), make)
    cache.get(key(limit=6), make)
    cache.get(ResponseCache.key("getMostViewedDashboards", "u2", DAY, {"limit": 5}), make)
    cache.get(ResponseCache.key("getMostViewedDashboards", "u1", DAY + timedelta(days=1), {"limit": 5}), make)
    assert make.calls == 4


def test_a_new_version_drops_every_kept_answer():
    version, make = Version(), Maker()
    cache = ResponseCache(version)
    cache.get(key(limit=5), make)
    version.value = 2
    assert cache.get(key(limit=5), make) == (200, b'{"n": 2}')
    assert cache.get(key(limit=5), make) == (200, b'{"n": 2}')
    assert make.calls == 2


def test_nothing_is_kept_while_a_write_is_under_way():
    version, make = Version(), Maker()
    version.value = None
    cache = ResponseCache(version)
    cache.get(key(limit=5), make)
    cache.get(key(limit=5), make)
    assert make.calls == 2


@pytest.mark.parametrize("move_to", [None, 2], ids=["a write began", "a write ended"])
def test_an_answer_made_across_a_write_is_not_kept(move_to):
    version = Version()
    cache = ResponseCache(version)
    cache.get(key(limit=5), Maker(version, move_to))  # the version moved while the answer was made
    version.value = 0  # back where it was made from: had the answer been kept under 0, it would be reused
    make = Maker()
    cache.get(key(limit=5), make)
    assert make.calls == 1


def test_at_most_size_answers_are_kept():
    cache, make = ResponseCache(Version(), size=2), Maker()
    for limit in (1, 2, 3):
        cache.get(key(limit=limit), make)
    for limit in (1, 2, 3):
        cache.get(key(limit=limit), make)
    assert make.calls == 4  # 1 and 2 kept, 3 made twice


def test_at_most_max_bytes_of_bodies_are_kept():
    cache, make = ResponseCache(Version(), max_bytes=20), Maker()  # each body is 8 bytes: two fit
    for limit in (1, 2, 3, 1, 2, 3):
        cache.get(key(limit=limit), make)
    assert make.calls == 4


def test_parameters_that_cannot_make_a_key_are_never_kept():
    unhashable = ResponseCache.key("op", "u1", DAY, {"tags": ["a"]})
    cache, make = ResponseCache(Version()), Maker()
    assert cache.get(unhashable, make) == (200, b'{"n": 1}')  # made, not kept (a new version: no lookup)
    assert cache.get(unhashable, make) == (200, b'{"n": 2}')  # the lookup, not the keeping, meets it
    assert make.calls == 2


# -- in the app -------------------------------------------------------------------------------------------

STATS = "/dashboard/{}/stats"


@pytest.fixture
def workers(tmp_path):
    """Two apps on one database file, as two gunicorn workers."""
    db = str(tmp_path / "mock.db")
    apps = [make_app(DB=db) for _ in range(2)]
    yield apps
    for app in apps:
        app.extensions["insights_mock"].default.store.close()


class StoreCalls:
    """Counts the store's calls of one read method of an app."""

    def __init__(self, app, monkeypatch, name: str) -> None:
        store = app.extensions["insights_mock"].default.store
        real, self.calls = getattr(store, name), 0

        def counted(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)


def _a_dashboard(client) -> str:
    return client.get(url("/dashboard/most-viewed?limit=1"), headers=ADMIN).json["data"][0]["dashboardId"]


def test_a_view_recorded_by_one_worker_is_in_the_next_read_of_the_other(workers, monkeypatch):
    one, two = (app.test_client() for app in workers)
    dashboard = _a_dashboard(one)
    stats = StoreCalls(workers[0], monkeypatch, "dashboard_stats")
    first = one.get(url(STATS.format(dashboard)), headers=ADMIN).json["data"]
    assert one.get(url(STATS.format(dashboard)), headers=ADMIN).json["data"] == first
    assert stats.calls == 1  # the second answer was reused
    for _ in range(2):
        viewed = two.post(url(f"/dashboard/{dashboard}/view"), headers=ADMIN)
        assert viewed.status_code == 200, viewed.json
        after = one.get(url(STATS.format(dashboard)), headers=ADMIN).json["data"]
        assert after["totalViews"] == viewed.json["data"]["viewCount"]
    assert after["totalViews"] == first["totalViews"] + 2
    assert stats.calls == 3
    most = one.get(url("/dashboard/most-viewed?limit=50"), headers=ADMIN).json["data"]
    assert {d["dashboardId"]: d["viewCount"] for d in most}[dashboard] == after["totalViews"]


def test_every_request_is_still_authenticated_authorised_and_validated(workers):
    client = workers[0].test_client()
    most = url("/dashboard/most-viewed?limit=3")
    assert client.get(most, headers=ADMIN).status_code == 200
    assert client.get(most, headers=ADMIN).status_code == 200  # reused
    assert client.get(most).status_code == 401
    assert client.get(most, headers=bearer("mock-expired-token")).status_code == 401
    assert client.get(most, headers=bearer("mock-noscope-token")).status_code == 403
    assert client.get(url("/dashboard/most-viewed?limit=0"), headers=ADMIN).status_code == 400
    assert client.get(most, headers=AUDITOR).status_code == 403  # role: dashboard views are not an auditor's
    assert client.get(most, headers=READONLY).status_code == 200


def test_each_user_gets_their_own_recently_viewed(workers):
    client = workers[0].test_client()
    recent = url("/dashboard/recently-viewed?limit=50")
    mine = [client.get(recent, headers=bearer(token)).json["data"]
            for token in ("mock-admin-token", "mock-user-token", "mock-admin-token")]
    assert mine[0] == mine[2] and mine[0] != mine[1]


def test_each_answer_has_its_own_request_id(workers):
    client = workers[0].test_client()
    most = url("/dashboard/most-viewed")
    ids = {client.get(most, headers=ADMIN).headers["X-Request-Id"] for _ in range(3)}
    ids.add(client.get(most, headers={**ADMIN, "X-Request-Id": "mine-1"}).headers["X-Request-Id"])
    assert len(ids) == 4 and "mine-1" in ids


def test_stats_move_on_with_the_day(workers, monkeypatch):
    client = workers[0].test_client()
    state = workers[0].extensions["insights_mock"]
    dashboard = _a_dashboard(client)
    today = state.clock.today()
    first = client.get(url(STATS.format(dashboard)), headers=ADMIN).json["data"]
    monkeypatch.setattr(state.clock, "today", lambda: today + timedelta(days=1))
    later = client.get(url(STATS.format(dashboard)), headers=ADMIN).json["data"]
    assert first["dailyViews"][-1]["date"] == today.isoformat()
    assert later["dailyViews"][-1]["date"] == (today + timedelta(days=1)).isoformat()


def test_a_reset_is_seen_by_the_next_read(workers):
    one, two = (app.test_client() for app in workers)
    dashboard = _a_dashboard(one)
    before = one.get(url(STATS.format(dashboard)), headers=ADMIN).json["data"]["totalViews"]
    two.post(url(f"/dashboard/{dashboard}/view"), headers=ADMIN)
    assert one.get(url(STATS.format(dashboard)), headers=ADMIN).json["data"]["totalViews"] == before + 1
    assert two.post("/__admin/reset").status_code == 200
    assert one.get(url(STATS.format(dashboard)), headers=ADMIN).json["data"]["totalViews"] == before


def test_in_memory_a_view_is_in_the_next_read(client, monkeypatch):
    dashboard = _a_dashboard(client)
    before = client.get(url(STATS.format(dashboard)), headers=ADMIN).json["data"]["totalViews"]
    client.post(url(f"/dashboard/{dashboard}/view"), headers=ADMIN)
    assert client.get(url(STATS.format(dashboard)), headers=ADMIN).json["data"]["totalViews"] == before + 1


def test_turned_off_every_read_asks_the_store(app_factory, monkeypatch):
    app = app_factory(RESPONSE_CACHE=False)
    assert app.extensions["insights_mock"].default.response_cache is None
    client = app.test_client()
    calls = StoreCalls(app, monkeypatch, "most_viewed")
    for _ in range(3):
        assert client.get(url("/dashboard/most-viewed"), headers=ADMIN).status_code == 200
    assert calls.calls == 3


# -- served: gunicorn, two worker processes --------------------------------------------------------------

def _workers_seen(base: str) -> set[int]:
    return {entry["worker"] for entry in requests.get(base + "/__admin/requests?limit=1000").json()["entries"]}


@pytest.mark.slow
def test_served_by_two_workers_every_read_after_a_view_shows_it(tmp_path):
    process, base = start(["--workers", "2", "--db", str(tmp_path / "mock.db"), "--now", NOW])
    sessions: list[requests.Session] = []
    try:
        # Kept-alive connections, spread by the kernel over the workers' SO_REUSEPORT sockets; a worker still
        # starting has no socket yet, so connections are added until both workers have answered some.
        deadline = time.monotonic() + 30
        while True:
            for _ in range(4):
                sessions.append(requests.Session())
                sessions[-1].headers.update(ADMIN)
                assert sessions[-1].get(base + url("/dashboard/most-viewed?limit=1")).status_code == 200
            if len(_workers_seen(base)) == 2:
                break
            assert time.monotonic() < deadline, "one worker answered everything for 30 s"
            time.sleep(0.2)
        most = sessions[0].get(base + url("/dashboard/most-viewed?limit=1")).json()["data"]
        stats = base + url(STATS.format(most[0]["dashboardId"]))
        view = base + url(f"/dashboard/{most[0]['dashboardId']}/view")
        for round_ in range(6):
            for session in sessions:  # every worker has the answer cached
                assert session.get(stats).status_code == 200
            viewed = sessions[round_ % len(sessions)].post(view).json()["data"]["viewCount"]
            seen = {session.get(stats).json()["data"]["totalViews"] for session in sessions}
            assert seen == {viewed}, round_
    finally:
        for session in sessions:
            session.close()
        stop(process)
