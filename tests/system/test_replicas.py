"""Replicas: several served mocks (`serve --database-url`) on one PostgreSQL database, as a deployment behind
a load balancer runs them. Views sent to any replica are counted exactly, every replica's next answers show
them (the response cache is on: it follows the other replica's writes), a replica killed with -9 loses no
acknowledged view while the other keeps serving, and the contract suite passes against a replica."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from mock_helpers import ADMIN, NOW, ROOT, TOKENS, WRITERS, bearer, start, stop, url

pytestmark = [pytest.mark.live, pytest.mark.slow]

SIZES = ["--users", "12", "--dashboards", "12", "--mappings", "6", "--views", "600", "--audit-logs", "400"]
USER_OF = {t["token"]: t["user"]["id"] for t in TOKENS}


def _serve_replicas(database_url: str, *extra: list[str]) -> list:
    """Start one replica per `extra` argument list at the same time on the (empty) database: one of them
    loads it, the others wait for that load. Returns [(process, base url)]."""
    started: list = [None] * len(extra)
    errors: list = []

    def one(i: int) -> None:
        try:
            started[i] = start(["--database-url", database_url, "--now", NOW, *SIZES, *extra[i]])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(extra))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if errors:
        for item in started:
            if item is not None:
                stop(item[0])
        raise errors[0]
    return started


def _get(base: str, path: str, headers=ADMIN) -> dict:
    response = requests.get(base + url(path), headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _reads(base: str, dashboard: str) -> dict:
    """What a replica shows of one dashboard: its stats, its place in most viewed, the writers' recently
    viewed, and its audit log of views."""
    most = {d["dashboardId"]: d["viewCount"] for d in _get(base, "/dashboard/most-viewed?limit=50")["data"]}
    recent = {}
    for token in WRITERS:
        first = _get(base, "/dashboard/recently-viewed?limit=1", bearer(token))["data"][0]
        recent[token] = (first["dashboardId"], first["viewCount"])
    logs = _get(base, f"/dashboard/{dashboard}/logs?action=view&page_size=5&start_date=1970-01-01")
    return {"total": _get(base, f"/dashboard/{dashboard}/stats")["data"]["totalViews"],
            "most_viewed": most.get(dashboard), "recently_viewed": recent,
            "view_entries": logs["pagination"]["total_items"], "newest_entry": logs["data"][0]["createdAt"]}


def test_two_replicas_count_1000_concurrent_views_exactly_and_both_show_them(fresh_database):
    (a, base_a), (b, base_b) = _serve_replicas(fresh_database(), ["--workers", "2"], ["--workers", "2"])
    try:
        dashboard = _get(base_a, "/dashboard/most-viewed?limit=1")["data"][0]["dashboardId"]
        before = {base: _reads(base, dashboard) for base in (base_a, base_b)}  # and kept by the caches
        assert before[base_a] == before[base_b]
        start_total, start_entries = before[base_a]["total"], before[base_a]["view_entries"]
        sessions = threading.local()

        def post(i: int) -> tuple[int, int, str]:
            if not hasattr(sessions, "s"):
                sessions.s = requests.Session()
            response = sessions.s.post((base_a, base_b)[i % 2] + url(f"/dashboard/{dashboard}/view"),
                                       headers=bearer(WRITERS[i % len(WRITERS)]), timeout=60)
            data = response.json()["data"] if response.ok else {}
            return response.status_code, data.get("viewCount", -1), data.get("viewedAt", "")

        with ThreadPoolExecutor(max_workers=16) as pool:  # bounded: 16 in flight, 1000 in all
            results = list(pool.map(post, range(1000)))

        assert [status for status, _, _ in results].count(200) == 1000
        # each view got its own count, whichever replica answered: none lost, none counted twice
        assert sorted(count for _, count, _ in results) == list(range(start_total + 1, start_total + 1001))
        last = max(results, key=lambda r: r[1])
        for base in (base_a, base_b):  # the next answers of both replicas, caches warm from before
            shown = _reads(base, dashboard)
            assert shown["total"] == shown["most_viewed"] == start_total + 1000 == last[1], base
            assert shown["view_entries"] == start_entries + 1000, base
            assert shown["newest_entry"] == max(at for _, _, at in results), base
            assert shown["recently_viewed"] == {token: (dashboard, start_total + 1000) for token in WRITERS}, base
    finally:
        outputs = [stop(a), stop(b)]
    for _, err in outputs:
        assert "Traceback" not in err


def test_a_replica_killed_with_9_loses_no_acknowledged_view_and_the_other_serves_on(fresh_database):
    # The victim is one process (werkzeug), so that kill -9 stops the whole replica at once.
    (victim, base_a), (survivor, base_b) = _serve_replicas(fresh_database(), [], ["--workers", "2"])
    try:
        dashboard = _get(base_b, "/dashboard/most-viewed?limit=1")["data"][0]["dashboardId"]
        start_total = _get(base_b, f"/dashboard/{dashboard}/stats")["data"]["totalViews"]
        acknowledged = {base_a: 0, base_b: 0}
        unanswered = {base_a: 0, base_b: 0}  # sent, no answer: may or may not have been committed
        failures: list[str] = []
        lock = threading.Lock()
        killed = threading.Event()
        deadline = time.monotonic() + 60

        def write(base: str, token: str) -> None:
            session = requests.Session()
            sent = 0
            while time.monotonic() < deadline and sent < 2000:
                if killed.is_set() and base == base_a:
                    return
                sent += 1
                try:
                    response = session.post(base + url(f"/dashboard/{dashboard}/view"), headers=bearer(token),
                                            timeout=30)
                except requests.RequestException:
                    with lock:
                        unanswered[base] += 1
                    if base == base_b:
                        failures.append("the surviving replica did not answer")
                    return
                with lock:
                    if response.status_code == 200:
                        acknowledged[base] += 1
                    else:
                        failures.append(f"{base}: {response.status_code} {response.text[:200]}")
                if base == base_b and killed.is_set() and sent > 400:
                    return

        threads = [threading.Thread(target=write, args=((base_a, base_b)[i % 2], WRITERS[i % len(WRITERS)]))
                   for i in range(8)]
        for t in threads:
            t.start()
        while acknowledged[base_a] < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(victim.pid, signal.SIGKILL)  # mid-stream: its four writers have requests in flight
        killed.set()
        victim.wait(timeout=30)
        for t in threads:
            t.join(timeout=90)

        assert failures == []
        assert acknowledged[base_a] >= 300 and acknowledged[base_b] > 400
        total = _get(base_b, f"/dashboard/{dashboard}/stats")["data"]["totalViews"]
        counted = total - start_total
        acked = acknowledged[base_a] + acknowledged[base_b]
        # every acknowledged view is in; beyond them, at most the victim's requests in flight at the kill
        assert acked <= counted <= acked + unanswered[base_a], (acknowledged, unanswered, counted)
        logs = _get(base_b, f"/dashboard/{dashboard}/logs?action=view&page_size=1&start_date=1970-01-01")["pagination"]["total_items"]
        most = {d["dashboardId"]: d["viewCount"] for d in _get(base_b, "/dashboard/most-viewed?limit=50")["data"]}
        assert most[dashboard] == total
        assert logs >= counted
    finally:
        if victim.poll() is None:
            victim.kill()
        stop(victim)
        _, err = stop(survivor)
    assert "Traceback" not in err


def test_the_contract_suite_passes_against_a_replica(fresh_database):
    database_url = fresh_database()
    (replica, base), = _serve_replicas(database_url, ["--workers", "2"])
    with psycopg.connect(database_url) as conn:  # no operation lists tool mappings: the suite is told some
        mappings = [m for (m,) in conn.execute("SELECT DISTINCT target_id FROM audit_logs"
                                               " WHERE type = 'tool_mapping' ORDER BY 1 LIMIT 3")]
    assert mappings
    tokens = {"CONTRACT_MAPPING_IDS": ",".join(mappings),
              "CONTRACT_TOKEN": "mock-admin-token", "CONTRACT_READONLY_TOKEN": "mock-user-readonly-token",
              "CONTRACT_READONLY_ROLE": "User", "CONTRACT_NO_ROLE_TOKEN": "mock-user-token",
              "CONTRACT_NO_ROLE_ROLE": "User", "CONTRACT_NO_SCOPE_TOKEN": "mock-noscope-token",
              "CONTRACT_EXPIRED_TOKEN": "mock-expired-token"}
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONTRACT_")}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "contract_tests", "--base-url", base, "-m", "not meta", "-q",
             "-p", "no:cacheprovider", "-rs"],
            cwd=ROOT, env={**env, **tokens}, capture_output=True, text=True, timeout=900)
    finally:
        _, err = stop(replica)
    tail = "\n".join(done.stdout.splitlines()[-40:])
    assert done.returncode == 0, f"{tail}\n{done.stderr[-3000:]}"
    summary = re.search(r"(\d+) passed(.*) in [\d.]+s", tail)
    assert summary and int(summary.group(1)) >= 100, tail
    assert "failed" not in summary.group(2) and "skipped" not in summary.group(2), tail  # every token given
    assert "Traceback" not in err


def test_a_scenario_switch_and_a_reset_on_one_replica_are_followed_by_the_other(fresh_database):
    (a, base_a), (b, base_b) = _serve_replicas(fresh_database(), [], ["--workers", "2"])
    try:
        assert _get(base_b, "/dashboard/most-viewed?limit=5")["data"]  # the default scenario has views
        switched = requests.post(base_a + "/__admin/scenario", json={"name": "empty"}, timeout=60)
        assert switched.status_code == 200, switched.text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # each worker of B checks the generation every 0.1 s
            seen = [requests.get(base_b + "/__admin/scenario", timeout=10).json()["name"] for _ in range(6)]
            if seen == ["empty"] * 6:
                break
            time.sleep(0.1)
        assert seen == ["empty"] * 6
        assert _get(base_b, "/dashboard/most-viewed?limit=5")["data"] == []
        dashboard = "123e4567-e89b-42d3-a456-426614174000"
        assert requests.post(base_b + url(f"/dashboard/{dashboard}/view"), headers=bearer(WRITERS[0]),
                             timeout=10).json()["data"]["viewCount"] == 1
        assert requests.post(base_a + "/__admin/reset", timeout=60).status_code == 200
        assert _get(base_b, f"/dashboard/{dashboard}/stats")["data"]["totalViews"] == 0  # reset for all
    finally:
        outputs = [stop(a), stop(b)]
    for _, err in outputs:
        assert "Traceback" not in err
