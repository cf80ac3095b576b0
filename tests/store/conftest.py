"""Fixtures of the store tests: every test of test_contract.py runs against each kind of store.

A kind names a store and the database it keeps its state in. `make_store()` opens a new store on the
test's database (a fresh, empty one per test): call it twice for two stores sharing one database, as two
gunicorn workers (or two replicas) do; in a forked child it opens the child's own. `store` is one such
store, loaded with small_dataset(). Kinds whose database cannot be shared (in memory) do not get the tests
that need two stores (`shared_database`).

"postgres" is a PostgresStore on a fresh database of the session's PostgreSQL server (tests/conftest.py's
`postgres_url`: skipped without one, a failure where INSIGHTS_MOCK_REQUIRE_POSTGRES=1, as in CI).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from mock_server.store import Store, open_store

from .model import small_dataset

STORE_KINDS = ("sqlite-memory", "sqlite-file", "postgres")
SHARED = {"sqlite-memory": False, "sqlite-file": True, "postgres": True}  # can two stores share its database?


def open_kind(kind: str, database: str | None) -> Store:
    """A new store of `kind` on `database` (what the `database` fixture gave); also in a forked child."""
    if kind == "sqlite-memory":
        return open_store(None)
    if kind == "sqlite-file":
        return open_store(database)
    if kind == "postgres":
        return open_store(None, database)
    raise ValueError(f"unknown store kind {kind!r}")


@pytest.fixture(params=STORE_KINDS)
def store_kind(request) -> str:
    return request.param


@pytest.fixture
def database(store_kind, tmp_path, request) -> Iterator[str | None]:
    """Where the test's stores keep their state: None (each in-memory store has its own), a file path, a
    database URL."""
    if store_kind == "sqlite-memory":
        yield None
    elif store_kind == "sqlite-file":
        yield str(tmp_path / "mock.db")
    elif store_kind == "postgres":
        yield request.getfixturevalue("fresh_database")()
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


def pytest_collection_modifyitems(config, items):
    """A test that needs two stores on one database is not made for a kind whose database is one store's
    (in memory): deselected, not skipped, since there is nothing it could check there."""
    kept, dropped = [], []
    for item in items:
        kind = getattr(getattr(item, "callspec", None), "params", {}).get("store_kind")
        needs_two = item.get_closest_marker("shared_database") is not None
        (dropped if needs_two and kind is not None and not SHARED[kind] else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_configure(config):
    config.addinivalue_line("markers", "shared_database: needs two stores on one database (skipped in memory)")
