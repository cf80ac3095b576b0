"""The view ring (mock_server/store/view_ring.py) and how the SQLite store uses it: views of known dashboards
are answered from the ring, written into SQLite in batches, and seen by every read of every process."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml

from mock_server.data.generate import Sizes, generate
from mock_server.store import open_store, view_ring
from mock_server.store import sqlite as sqlite_store
from mock_server.store.view_ring import ViewRing

pytestmark = pytest.mark.skipif(sqlite_store.fcntl is None, reason="the ring goes with flock (POSIX)")

ROOT = Path(__file__).resolve().parents[1]
TOKENS = yaml.safe_load((ROOT / "fixtures" / "tokens.yaml").read_text(encoding="utf-8"))
USERS = [{**t["user"], "role": t["role"]} for t in TOKENS["tokens"]]
DANA = USERS[0]
ANCHOR = datetime(2026, 11, 25, tzinfo=UTC)
TODAY = date(2026, 11, 25)
UNKNOWN = "0f0e0d0c-0b0a-4908-8706-050403020100"


def small_dataset(seed: int = 3):
    return generate(seed=seed, anchor=ANCHOR, users=USERS, account=TOKENS["account"],
                    sizes=Sizes(users=12, dashboards=8, mappings=4, views=400, audit_logs=300))


@pytest.fixture
def path(tmp_path) -> str:
    return str(tmp_path / "mock.db")


@pytest.fixture
def no_folder(monkeypatch):
    """The folder thread never wakes: views stay in the ring until a read or a write takes them."""
    monkeypatch.setattr(sqlite_store, "FOLD_EVERY", 10**9)


def loaded(path: str):
    """A store on `path`, loaded with the small dataset (as a worker's first start)."""
    store = open_store(path)
    store.load(small_dataset())
    return store


def total(store, dashboard_id: str) -> int:
    return store.dashboard_stats(dashboard_id, TODAY)["totalViews"]


# -- the ring alone ------------------------------------------------------------------------------------

@pytest.fixture
def ring(tmp_path):
    r = ViewRing(str(tmp_path / "r-views"))
    yield r
    r.close()


def start(ring: ViewRing, counts: list[int], folded: int = 0) -> None:
    with ring.lock():
        ring.rebuild(b"x" * 16, counts, folded=folded)


def append(ring: ViewRing, slot: int) -> int | None:
    return ring.append(slot, lambda c: b"[%d,%d]" % (slot, c))


def test_append_counts_per_slot_and_keeps_the_records(ring):
    start(ring, [5, 0], folded=7)
    assert (ring.written, ring.folded, ring.pending()) == (7, 7, False)
    with ring.lock():
        counts = [append(ring, slot) for slot in (0, 1, 0)]
    assert counts == [6, 1, 7]
    assert [ring.record(seq) for seq in range(7, 10)] == [b"[0,6]", b"[1,1]", b"[0,7]"]
    assert ring.pending() and ring.written == 10
    ring.mark_folded(10)
    assert not ring.pending()


def test_a_full_ring_or_a_record_too_long_appends_nothing(ring):
    start(ring, [0])
    with ring.lock():
        assert ring.append(0, lambda c: b"x" * view_ring.RECORD) is None
        for _ in range(view_ring.CAPACITY):
            assert append(ring, 0) is not None
        assert append(ring, 0) is None
    assert ring.count(0) == view_ring.CAPACITY  # nothing counted for what was not appended


def test_a_holder_killed_after_publishing_its_view_has_the_count_raised(ring):
    """The order of append: busy, record, written (published), count, busy cleared. Killed between the
    publication and the count, the next holder raises the count, so the next view does not repeat it."""
    start(ring, [3])
    # what a holder killed at that point leaves: its record published, its count not raised
    record = b"[0,4]"
    at = view_ring._RECORDS
    view_ring._LEN.pack_into(ring._map, at, len(record))
    ring._map[at + 2:at + 2 + len(record)] = record
    ring._put(view_ring._BUSY, 1)
    ring._put(view_ring._WRITTEN, 1)
    with ring.lock():
        assert ring.count(0) == 4
        assert append(ring, 0) == 5


def test_a_holder_killed_before_publishing_leaves_no_view(ring):
    start(ring, [3])
    ring._put(view_ring._BUSY, 1)  # killed after marking, before publishing
    with ring.lock():
        assert (ring.written, ring.count(0)) == (0, 3)
        assert append(ring, 0) == 4


def test_a_process_killed_holding_the_lock_does_not_block_the_others(tmp_path):
    ring_path = str(tmp_path / "r-views")
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()

    def hold_and_die():
        r = ViewRing(ring_path)
        with r.lock():
            ready.set()
            time.sleep(60)

    child = ctx.Process(target=hold_and_die)
    child.start()
    try:
        assert ready.wait(30)
        os.kill(child.pid, 9)
        child.join(30)
        ring = ViewRing(ring_path)
        with ring.lock():  # flock went with the process
            pass
        ring.close()
    finally:
        if child.is_alive():
            child.kill()


# -- the store with its ring -----------------------------------------------------------------------------

def test_a_view_of_a_known_dashboard_waits_in_the_ring_and_every_read_sees_it(path, no_folder):
    one = loaded(path)
    two = open_store(path)  # another worker
    try:
        target = small_dataset().dashboards[0]["dashboardId"]
        base = total(one, target)
        event = one.record_view(target, DANA, ANCHOR)
        assert event["viewCount"] == base + 1
        assert one._ring.pending()  # answered from the ring, not yet in SQLite
        assert total(two, target) == base + 1  # the other worker's read writes it first
        assert not one._ring.pending()
        assert two.record_view(target, DANA, ANCHOR)["viewCount"] == base + 2
        assert any(d["dashboardId"] == target and d["viewCount"] == base + 2 for d in one.most_viewed(100))
        assert one.audit_logs("dashboard", target, 1, 1, sqlite_store.AuditLogFilter(action="view")).total >= 2
    finally:
        one.close()
        two.close()


def test_the_folder_thread_writes_the_ring_in_batches(path, monkeypatch):
    monkeypatch.setattr(sqlite_store, "FOLD_EVERY", 4)
    s = loaded(path)
    try:
        target = small_dataset().dashboards[1]["dashboardId"]
        for i in range(12):
            s.record_view(target, DANA, ANCHOR + timedelta(seconds=i))
        deadline = time.monotonic() + 30
        while s.write_stats()["views"] < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = s.write_stats()
        assert stats["views"] >= 8 and stats["turns"] <= stats["views"]
    finally:
        s.close()


def test_views_answered_by_a_killed_process_are_not_lost(path, no_folder):
    s = loaded(path)
    target = small_dataset().dashboards[2]["dashboardId"]
    base = total(s, target)
    ctx = multiprocessing.get_context("fork")
    answered, sender = ctx.Pipe(duplex=False)

    def record_and_die():
        sender.send([s.record_view(target, DANA, ANCHOR + timedelta(seconds=i))["viewCount"] for i in range(5)])
        os._exit(0)  # no close(), no fold: as a worker killed with -9

    child = ctx.Process(target=record_and_die)
    child.start()
    child.join(60)
    try:
        assert answered.poll(10) and answered.recv() == [base + i for i in range(1, 6)]
        assert s._ring.pending()
        assert total(s, target) == base + 5
        assert s.record_view(target, DANA, ANCHOR)["viewCount"] == base + 6
    finally:
        s.close()


def _left_in_the_ring(path: str, target: str, views: int, monkeypatch) -> int:
    """Load a store, record `views` views of `target` and close it without writing the ring into the file
    (as a process killed after answering); the dashboard's count before them."""
    s = loaded(path)
    base = total(s, target)
    for i in range(views):
        s.record_view(target, DANA, ANCHOR + timedelta(seconds=i))
    with monkeypatch.context() as patched:
        patched.setattr(sqlite_store.SQLiteStore, "_fold", lambda self: None)  # close() writes nothing
        s.close()
    return base


def test_pending_views_are_kept_across_a_restart(path, no_folder, monkeypatch):
    target = small_dataset().dashboards[3]["dashboardId"]
    base = _left_in_the_ring(path, target, 3, monkeypatch)
    again = open_store(path)
    try:
        assert total(again, target) == base + 3
        assert again.record_view(target, DANA, ANCHOR)["viewCount"] == base + 4
    finally:
        again.close()


def test_close_writes_the_ring_into_the_database_file(path, no_folder):
    s = loaded(path)
    target = small_dataset().dashboards[3]["dashboardId"]
    base = total(s, target)
    s.record_view(target, DANA, ANCHOR)
    s.close()
    os.unlink(path + "-views")  # the database file alone
    again = open_store(path)
    try:
        assert total(again, target) == base + 1
        assert again.record_view(target, DANA, ANCHOR)["viewCount"] == base + 2
    finally:
        again.close()


def test_a_ring_file_of_another_database_is_started_over(path, no_folder, monkeypatch):
    target = small_dataset().dashboards[0]["dashboardId"]
    _left_in_the_ring(path, target, 3, monkeypatch)
    for suffix in ("", "-wal", "-shm"):  # the database deleted, its ring file left behind
        Path(path + suffix).unlink(missing_ok=True)
    new = open_store(path)
    try:
        new.load(small_dataset())
        base = total(new, target)
        assert base == sum(1 for v in small_dataset().views if v["dashboardId"] == target)  # none of the old ring's
        assert new.record_view(target, DANA, ANCHOR)["viewCount"] == base + 1
        assert total(new, target) == base + 1
    finally:
        new.close()


def test_a_load_after_pending_views_starts_the_counts_from_the_new_data(path, no_folder):
    s = loaded(path)
    try:
        target = small_dataset().dashboards[0]["dashboardId"]
        for i in range(3):
            s.record_view(target, DANA, ANCHOR + timedelta(seconds=i))
        fresh = small_dataset(seed=4)
        s.load(fresh)
        known = fresh.dashboards[0]["dashboardId"]
        base = total(s, known)
        assert base == sum(1 for v in small_dataset(seed=4).views if v["dashboardId"] == known)
        assert s.record_view(known, DANA, ANCHOR)["viewCount"] == base + 1
        assert total(s, target if target == known else known) == base + 1
    finally:
        s.close()


def test_a_full_ring_hands_views_to_sqlite_and_counts_stay_exact(path, no_folder):
    s = loaded(path)
    try:
        target = small_dataset().dashboards[0]["dashboardId"]
        base = total(s, target)
        n = view_ring.CAPACITY + 50
        counts = [s.record_view(target, DANA, ANCHOR)["viewCount"] for _ in range(n)]
        assert counts == list(range(base + 1, base + n + 1))
        assert total(s, target) == base + n
    finally:
        s.close()


def test_known_and_unknown_dashboards_interleaved_across_two_stores(path, no_folder):
    one = loaded(path)
    two = open_store(path)
    try:
        target = small_dataset().dashboards[0]["dashboardId"]
        base = total(one, target)
        got_known, got_unknown = [], []
        for i in range(20):
            store = one if i % 2 else two
            got_known.append(store.record_view(target, DANA, ANCHOR)["viewCount"])
            got_unknown.append(store.record_view(UNKNOWN, DANA, ANCHOR)["viewCount"])
        assert got_known == list(range(base + 1, base + 21))
        assert got_unknown == list(range(1, 21))
        assert total(two, target) == base + 20 and total(one, UNKNOWN) == 20
    finally:
        one.close()
        two.close()


def _contents(store) -> dict:
    """Every table a view writes, without the random ids (views' and audit entries' ObjectIds)."""
    with store._conns.connection() as conn:
        audit = [{k: v for k, v in orjson.loads(doc).items() if k != "_id"} for (doc,) in conn.execute(
            "SELECT doc FROM audit_logs ORDER BY created_ms, target_id, user_id, seq")]
        return {
            "totals": conn.execute("SELECT * FROM dashboard_totals ORDER BY dashboard_id").fetchall(),
            "user_dashboard": conn.execute("SELECT * FROM user_dashboard ORDER BY 1, 2").fetchall(),
            "days": conn.execute("SELECT * FROM dashboard_days ORDER BY 1, 2").fetchall(),
            "audit_counts": conn.execute("SELECT * FROM audit_counts ORDER BY 1, 2, 3, 4").fetchall(),
            "views": conn.execute("SELECT dashboard_id, user_id, viewed_ms FROM views ORDER BY 3, 1, 2").fetchall(),
            "audit": audit,
        }


def test_a_fold_writes_exactly_what_writing_each_view_at_once_writes(path, monkeypatch):
    """The fold's set statements (_SQL_FOLD) against the inbox trigger, view by view (the in-memory store):
    the same views, in the same order, leave the same tables (new viewers, days, audit documents...)."""
    monkeypatch.setattr(sqlite_store, "FOLD_EVERY", 7)  # folds of various sizes, some by the thread
    data = small_dataset()
    direct, ringed = open_store(None), open_store(path)
    direct.load(small_dataset())
    ringed.load(small_dataset())
    try:
        dashboards = [d["dashboardId"] for d in data.dashboards[:4]]
        # users of the dataset and new ones: a new viewer views the same dashboard again within a fold
        users = USERS + [{"id": f"{0xab00 + n:024x}", "email": f"new{n}@acme.example"} for n in range(5)]
        for i in range(150):
            at = ANCHOR - timedelta(days=i % 9, minutes=i)
            dashboard, user = dashboards[(i // 6) % 4], users[(i // 3) % len(users)]
            assert ringed.record_view(dashboard, user, at)["viewCount"] == \
                direct.record_view(dashboard, user, at)["viewCount"]
            if i % 40 == 39:  # reads in between fold what is pending
                assert ringed.dashboard_stats(dashboard, TODAY) == direct.dashboard_stats(dashboard, TODAY)
        assert ringed.most_viewed(100) == direct.most_viewed(100)
        ringed._fold()
        assert not ringed._ring.pending()
        assert _contents(ringed) == _contents(direct)
    finally:
        direct.close()
        ringed.close()


def test_a_process_that_exits_without_closing_its_store_leaves_every_view_in_the_database_file(path):
    """A gunicorn worker stops without closing its app's store: the views still in the ring are written into
    the file at interpreter exit, so that the file alone (copied, say) holds them."""
    s = loaded(path)
    target = small_dataset().dashboards[0]["dashboardId"]
    base = total(s, target)
    s.close()
    script = (
        "import sys\n"
        "from datetime import datetime, UTC\n"
        "from mock_server.store import open_store, sqlite\n"
        "sqlite.FOLD_EVERY = 10**9\n"
        f"s = open_store({path!r})\n"
        f"user = {{'id': {DANA['id']!r}, 'email': {DANA['email']!r}}}\n"
        f"counts = [s.record_view({target!r}, user, datetime.now(UTC))['viewCount'] for _ in range(5)]\n"
        "assert s._ring.pending()\n"
        "print(counts)\n"
        "sys.exit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([base + i for i in range(1, 6)])
    os.unlink(path + "-views")  # the database file alone
    again = open_store(path)
    try:
        assert total(again, target) == base + 5
    finally:
        again.close()
