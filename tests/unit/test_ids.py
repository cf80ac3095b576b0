"""ObjectIds and request ids: layout, determinism with an rng, uniqueness across threads and forked processes."""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mock_server.ids import is_object_id, object_id, object_id_ms, object_id_time, request_id
from mock_server.timestamps import to_ms

HEX24 = re.compile(r"[0-9a-f]{24}")
AT = datetime(2026, 11, 20, 9, 15, 2, 123000, tzinfo=UTC)


def test_layout_is_seconds_then_eight_bytes():
    oid = object_id(AT)
    assert HEX24.fullmatch(oid)
    assert int(oid[:8], 16) == int(AT.timestamp())
    assert object_id_time(oid) == AT.replace(microsecond=0)


def test_default_time_is_now():
    before = int(datetime.now(UTC).timestamp())
    oid = object_id()
    after = int(datetime.now(UTC).timestamp())
    assert before <= int(oid[:8], 16) <= after


def test_naive_means_utc_and_other_zones_convert():
    naive = AT.replace(tzinfo=None)
    assert object_id(naive)[:8] == object_id(AT)[:8]
    plus_two = AT.astimezone(timezone(timedelta(hours=2)))
    assert object_id(plus_two)[:8] == object_id(AT)[:8]


def test_same_rng_seed_gives_same_ids():
    a = [object_id(AT, random.Random(7)) for _ in range(3)]
    b = [object_id(AT, random.Random(7)) for _ in range(3)]
    assert a == b
    rng1, rng2 = random.Random(7), random.Random(8)
    assert [object_id(AT, rng1) for _ in range(5)] != [object_id(AT, rng2) for _ in range(5)]


def test_ms_fast_path_equals_datetime_form():
    rng1, rng2 = random.Random(3), random.Random(3)
    for _ in range(50):
        assert object_id_ms(to_ms(AT), rng1) == object_id(AT, rng2)


@pytest.mark.parametrize("at", [datetime(1969, 12, 31, 23, 59, tzinfo=UTC), datetime(2107, 1, 1, tzinfo=UTC)])
def test_instants_outside_four_bytes_are_refused(at):
    with pytest.raises(ValueError):
        object_id(at)
    with pytest.raises(ValueError):
        object_id_ms(to_ms(at), random.Random(1))


def _minted_in_threads(mint_one, threads: int = 8, each: int = 5000) -> list[str]:
    """Every id that `threads` threads minted with `mint_one()`, `each` per thread, all at the same time."""
    results: list[list[str]] = [[] for _ in range(threads)]

    def mint(bucket: list[str]) -> None:
        bucket.extend(mint_one() for _ in range(each))

    workers = [threading.Thread(target=mint, args=(bucket,)) for bucket in results]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return [minted for bucket in results for minted in bucket]


def test_unique_across_threads():
    all_ids = _minted_in_threads(lambda: object_id(AT))
    assert len(set(all_ids)) == len(all_ids) == 40_000


def _mint_in_child(queue) -> None:
    queue.put([object_id(AT) for _ in range(2000)])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is what gunicorn does; needs a POSIX system")
def test_forked_children_do_not_repeat_the_parent():
    parent = [object_id(AT) for _ in range(2000)]
    batches = _batches_from_forked_children(_mint_in_child)
    all_ids = parent + [oid for batch in batches for oid in batch]
    assert len(set(all_ids)) == len(all_ids)
    # Each process has its own random part (bytes 4..8), so counters that happen to meet cannot collide.
    process_parts = {batch[0][8:18] for batch in batches} | {parent[0][8:18]}
    assert len(process_parts) == 4


def test_is_object_id_and_time_parsing():
    assert is_object_id("507f1f77bcf86cd799439011")
    assert is_object_id("507F1F77BCF86CD799439011")
    assert not is_object_id("507f1f77bcf86cd79943901")
    assert not is_object_id("507f1f77bcf86cd799439011\n")
    assert not is_object_id("zzzf1f77bcf86cd799439011")
    with pytest.raises(ValueError):
        object_id_time("nope")


def test_request_ids_are_32_hex_and_unique_across_threads():
    all_ids = _minted_in_threads(request_id)
    assert len(set(all_ids)) == len(all_ids) == 40_000
    assert all(len(rid) == 32 and int(rid, 16) >= 0 for rid in all_ids[:100])


def _request_ids_in_child(queue) -> None:
    queue.put([request_id() for _ in range(100)])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is what gunicorn does; needs a POSIX system")
def test_forked_children_draw_their_own_request_id_prefix():
    parent = [request_id() for _ in range(100)]
    batches = _batches_from_forked_children(_request_ids_in_child)
    all_ids = parent + [rid for batch in batches for rid in batch]
    assert len(set(all_ids)) == len(all_ids)
    assert len({batch[0][:16] for batch in batches} | {parent[0][:16]}) == 4


def _batches_from_forked_children(mint, children: int = 3) -> list[list[str]]:
    """What `mint(queue)` puts on the queue in each of `children` forked processes."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=mint, args=(queue,)) for _ in range(children)]
    for proc in procs:
        proc.start()
    batches = [queue.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    return batches
