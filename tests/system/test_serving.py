"""serving.py: werkzeug's handler hides its version; gunicorn workers share one database correctly."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from mock_helpers import ADMIN, DEFAULT_PINNED, WRITERS, bearer, start, stop, url
from mock_server.config import ConfigError
from mock_server.serving import _Handler, bind_address, claim_port, gunicorn_options, prime_database
from mock_server.store import StoreError, open_store


@pytest.mark.parametrize("host, expected", [("127.0.0.1", "127.0.0.1:80"), ("::1", "[::1]:80"),
                                            ("[::1]", "[::1]:80"), ("localhost", "localhost:80")])
def test_bind_address(host, expected):
    assert bind_address(host, 80) == expected


def test_gunicorn_workers_each_listen_with_so_reuseport():
    assert gunicorn_options("127.0.0.1", 8000, 2)["reuse_port"] is True


def test_claim_port_refuses_a_port_another_server_listens_on():
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # even one that would share it
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(ConfigError, match="cannot listen on 127.0.0.1:"):
            claim_port("127.0.0.1", other.getsockname()[1])


def test_claim_port_turns_port_0_into_one_free_port():
    port = claim_port("127.0.0.1", 0)
    assert port > 0
    assert claim_port("127.0.0.1", port) == port  # free again: the probe was closed


def test_prime_database_loads_the_file_in_a_child_and_reports_its_errors(tmp_path):
    db = tmp_path / "mock.db"
    prime_database({"DB": str(db), "VIEWS": 50, "AUDIT_LOGS": 40, "VALIDATE_RESPONSES": False})
    store = open_store(str(db))
    try:
        assert not store.is_empty() and store.counts()["views"] == 50 + DEFAULT_PINNED["views"]
    finally:
        store.close()
    bad = tmp_path / "notes.db"
    bad.write_text("not a database at all " * 100)
    with pytest.raises(StoreError, match="cannot be used"):
        prime_database({"DB": str(bad)})
    with pytest.raises(ConfigError):
        prime_database({"DB": str(tmp_path / "other.db"), "VIEWS": -1})


def test_werkzeug_handler_hides_versions():
    assert _Handler.version_string(object.__new__(_Handler)) == "insights-mock"


@pytest.mark.slow
def test_gunicorn_workers_count_1000_concurrent_views_exactly(tmp_path):
    db = tmp_path / "mock.db"
    process, base = start(["--workers", "4", "--db", str(db), "--views", "600", "--audit-logs", "300",
                           "--no-validate-responses"])
    try:
        top = requests.get(base + url("/dashboard/most-viewed?limit=1"), headers=ADMIN, timeout=10).json()["data"][0]
        dashboard, before = top["dashboardId"], top["viewCount"]
        sessions = threading.local()

        def post(i: int) -> tuple[int, int]:
            if not hasattr(sessions, "s"):
                sessions.s = requests.Session()
            response = sessions.s.post(base + url(f"/dashboard/{dashboard}/view"),
                                       headers=bearer(WRITERS[i % len(WRITERS)]), timeout=60)
            return response.status_code, response.json()["data"]["viewCount"] if response.ok else -1

        with ThreadPoolExecutor(max_workers=16) as pool:  # bounded: 16 in flight, 1000 in all
            results = list(pool.map(post, range(1000)))

        assert [status for status, _ in results].count(200) == 1000
        # Each view saw its own count: no two writers read the same total, none was lost.
        assert sorted(count for _, count in results) == list(range(before + 1, before + 1001))
        stats = requests.get(base + url(f"/dashboard/{dashboard}/stats"), headers=ADMIN, timeout=10).json()["data"]
        assert stats["totalViews"] == before + 1000
        most = requests.get(base + url("/dashboard/most-viewed?limit=1"), headers=ADMIN, timeout=10).json()["data"][0]
        assert (most["dashboardId"], most["viewCount"]) == (dashboard, before + 1000)
        served_by = {requests.get(base + "/__admin/health", timeout=10).headers.get("Server") for _ in range(3)}
        assert served_by == {"gunicorn"}  # gunicorn's bare name, no version
    finally:
        out, err = stop(process)
    assert "Traceback" not in err
