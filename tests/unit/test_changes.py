"""store/changes.py: the count of a database's writes, shared by the processes that use the file."""

from __future__ import annotations

import multiprocessing
import struct

import pytest

from mock_server.store.changes import Changes


@pytest.fixture(params=["memory", "file"])
def changes(request, tmp_path):
    made = Changes(None if request.param == "memory" else str(tmp_path / "mock.db-changes"))
    yield made
    made.close()


def test_a_write_hides_the_count_while_under_way_and_moves_it(changes):
    before = changes.value()
    assert before is not None and before % 2 == 0
    with changes.writing():
        assert changes.value() is None
    after = changes.value()
    assert after is not None and after > before and after % 2 == 0


def test_a_failed_write_still_ends_its_count(changes):
    before = changes.value()
    with pytest.raises(RuntimeError), changes.writing():
        raise RuntimeError("rolled back")
    assert changes.value() not in (None, before)


def test_two_openings_of_one_file_share_the_count(tmp_path):
    path = str(tmp_path / "mock.db-changes")
    one, two = Changes(path), Changes(path)
    try:
        seen = two.value()
        with one.writing():
            assert two.value() is None
        assert two.value() not in (None, seen)
    finally:
        one.close()
        two.close()


def _write_once(path: str) -> None:
    changes = Changes(path)
    with changes.writing():
        pass
    changes.close()


def test_a_write_in_another_process_is_seen(tmp_path):
    path = str(tmp_path / "mock.db-changes")
    changes = Changes(path)
    seen = changes.value()
    child = multiprocessing.get_context("spawn").Process(target=_write_once, args=(path,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert changes.value() not in (None, seen)
    changes.close()


def test_a_writer_killed_mid_write_leaves_no_stable_count_until_the_next_write(tmp_path):
    path = tmp_path / "mock.db-changes"
    path.write_bytes(struct.pack("=Q", 7))  # odd: a write began and never ended
    changes = Changes(str(path))
    assert changes.value() is None
    with changes.writing():
        assert changes.value() is None
    assert changes.value() == 10  # 7 -> 9 (under way) -> 10
    changes.close()


def test_an_existing_count_is_kept_when_the_file_is_opened_again(tmp_path):
    path = str(tmp_path / "mock.db-changes")
    first = Changes(path)
    with first.writing():
        pass
    value = first.value()
    first.close()
    again = Changes(path)
    assert again.value() == value
    again.close()
