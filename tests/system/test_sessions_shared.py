"""Sessions across processes: with `--workers 2` on one SQLite file, and with two replicas on one PostgreSQL
database, a session is the same whichever process answers. Parallel sessions record views through both
processes and each sees exactly its own in every read; a session deleted through one process is gone for
the other at its next request; the journal of a session holds its requests from every worker."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from mock_helpers import ADMIN, NOW, bearer, start, stop, url

pytestmark = [pytest.mark.live, pytest.mark.slow]

SIZES = ["--users", "12", "--dashboards", "12", "--mappings", "6", "--views", "600", "--audit-logs", "400"]
READER = bearer("mock-opsera-admin-token")
CLOSE = {"Connection": "close"}  # a new connection per request: the kernel spreads them over the workers
WANTED = {"p1": 2, "p2": 3, "p3": 4, "p4": 6}


def _call(method: str, base: str, path: str, session: str | None, headers=ADMIN) -> requests.Response:
    h = {**headers, **CLOSE, **({"X-Mock-Session": session} if session else {})}
    response = requests.request(method, base + path, headers=h, timeout=30)
    assert response.status_code in (200, 201), (method, path, session, response.status_code, response.text)
    return response


def _reads(base: str, session: str | None, dashboard: str) -> dict:
    stats = _call("GET", base, url(f"/dashboard/{dashboard}/stats"), session).json()["data"]
    most = _call("GET", base, url("/dashboard/most-viewed?limit=50"), session).json()["data"]
    recent = _call("GET", base, url("/dashboard/recently-viewed?limit=50"), session).json()["data"]
    logs = _call("GET", base, url(f"/dashboard/{dashboard}/logs?pageSize=5"), session, READER).json()
    return {"total": stats["totalViews"], "most": {d["dashboardId"]: d["viewCount"] for d in most}.get(dashboard),
            "recent": {d["dashboardId"]: d["viewCount"] for d in recent}.get(dashboard),
            "entries": logs["pagination"]["totalItems"]}


def _exercise(bases: list[str]) -> None:
    """Parallel sessions, each request to the next of `bases` (one server of workers, or replicas)."""
    first = bases[0]
    dashboard = _call("GET", first, url("/dashboard/most-viewed?limit=1"), None).json()["data"][0]["dashboardId"]
    before = _reads(first, None, dashboard)

    def work(name: str) -> tuple[str, list[int], list[dict]]:
        counts = [_call("POST", bases[i % len(bases)], url(f"/dashboard/{dashboard}/view"), name).json()["data"]
                  ["viewCount"] for i in range(WANTED[name])]
        return name, counts, [_reads(base, name, dashboard) for base in bases]

    with ThreadPoolExecutor(len(WANTED)) as pool:
        results = list(pool.map(work, WANTED))
    for name, counts, seen in results:
        n = WANTED[name]
        assert counts == list(range(before["total"] + 1, before["total"] + n + 1)), name
        for reads in seen:  # every process answers the same for the session
            assert reads == {"total": before["total"] + n, "most": before["total"] + n,
                             "recent": before["total"] + n, "entries": before["entries"] + n}, name
    assert all(_reads(base, None, dashboard) == before for base in bases)  # the default session: unchanged

    # Deleted through one process, a session is made anew by the next request to any other.
    assert _call("DELETE", bases[-1], "/__admin/sessions/p4", None, {}).json()["status"] == "deleted"
    for base in bases:
        assert _reads(base, "p4", dashboard)["total"] == before["total"]
    listed = _call("GET", first, "/__admin/sessions", None, {}).json()
    assert sorted(s["name"] for s in listed["sessions"]) == ["p1", "p2", "p3", "p4"]


def test_sessions_are_shared_by_the_workers_of_one_file(tmp_path):
    process, base = start(["--workers", "2", "--db", str(tmp_path / "mock.db"), "--now", NOW, *SIZES])
    try:
        _exercise([base])
        # The journal of a session has its requests from both workers, and only them.
        journal = _call("GET", base, "/__admin/sessions/p2/requests?limit=1000", None, {}).json()
        assert journal["count"] == WANTED["p2"] + 4  # its views and its four reads
        assert all(e["path"].startswith(url("/dashboard/")) for e in journal["entries"])
        workers = {e["worker"] for e in journal["entries"]}
        everything = _call("GET", base, "/__admin/sessions/p1/requests?limit=1000", None, {}).json()["entries"]
        assert len(workers | {e["worker"] for e in everything}) == 2, "both workers should have served sessions"
    finally:
        stop(process)


def test_sessions_are_shared_by_postgresql_replicas(fresh_database):
    database = fresh_database()
    first = start(["--database-url", database, "--now", NOW, *SIZES])
    second = start(["--database-url", database, "--now", NOW, *SIZES])
    try:
        _exercise([first[1], second[1]])
    finally:
        stop(first[0])
        stop(second[0])
