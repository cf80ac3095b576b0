"""Fixtures of the store tests: every test of test_contract.py runs against each kind of store.

A kind names a store and the database it keeps its state in. `make_store()` opens a new store on the
test's database (a fresh, empty one per test): call it twice for two stores sharing one database, as two
gunicorn workers (or two replicas) do; in a forked child it opens the child's own. `store` is one such
store, loaded with small_dataset(). Kinds whose database cannot be shared (in memory) skip the tests that
need two stores (`shared_database`).

Adding a kind (e.g. "postgres", given a database URL): a name in STORE_KINDS, a line in SHARED, a branch
in `database` (a fresh database for the test, dropped after it) and in `open_kind`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from mock_server.store import Store, open_store

from .model import small_dataset

STORE_KINDS = ("sqlite-memory", "sqlite-file")
SHARED = {"sqlite-memory": False, "sqlite-file": True}  # can two stores (two processes) share its database?


def open_kind(kind: str, database: str | None) -> Store:
    """A new store of `kind` on `database` (what the `database` fixture gave); also in a forked child."""
    if kind == "sqlite-memory":
        return open_store(None)
    if kind == "sqlite-file":
        return open_store(database)
    raise ValueError(f"unknown store kind {kind!r}")


@pytest.fixture(params=STORE_KINDS)
def store_kind(request) -> str:
    return request.param


@pytest.fixture
def database(store_kind, tmp_path) -> Iterator[str | None]:
    """Where the test's stores keep their state: None (each in-memory store has its own), a file path."""
    if store_kind == "sqlite-memory":
        yield None
    elif store_kind == "sqlite-file":
        yield str(tmp_path / "mock.db")
    else:
        raise ValueError(f"unknown store kind {store_kind!r}")


@pytest.fixture
def make_store(store_kind, database) -> Iterator[Callable[[], Store]]:
    opened: list[Store] = []

    def make() -> Store:
        store = open_kind(store_kind, database)
        opened.append(store)
        return store

    make.kind = store_kind  # type: ignore[attr-defined]
    make.shared = SHARED[store_kind]  # type: ignore[attr-defined]
    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store) -> Store:
    made = make_store()
    made.load(small_dataset())
    return made


@pytest.fixture
def dataset():
    return small_dataset()  # the same data `store` was loaded with (a new object: views may be one-shot)


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("shared_database") is not None and "store_kind" in item.fixturenames:
            kind = item.callspec.params.get("store_kind")
            if kind is not None and not SHARED[kind]:
                item.add_marker(pytest.mark.skip(reason=f"{kind}: a database of one store"))


def pytest_configure(config):
    config.addinivalue_line("markers", "shared_database: needs two stores on one database (skipped in memory)")
