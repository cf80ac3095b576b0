"""State of the mock behind the Store interface (base.py): SQLite (store/sqlite.py, the embedded default) or
PostgreSQL (store/postgres.py, `--database-url`: state shared by replicas)."""

from __future__ import annotations

from typing import Any

from mock_server.store.base import AuditLogFilter, Dataset, Page, Store, StoreError
from mock_server.store.sqlite import SQLiteStore
from mock_server.store.sqlite import open_store as open_sqlite_store

__all__ = ["AuditLogFilter", "Dataset", "Page", "SQLiteStore", "Store", "StoreError", "open_store"]


def open_store(db_path: str | None, database_url: str | None = None, **sqlite_options: Any) -> Store:
    """The PostgreSQL store of `database_url` if one is given, else the SQLite store (`db_path`: a file
    shared by the processes of one machine; None: in memory). Raises StoreError if it cannot be used."""
    if database_url is None:
        return open_sqlite_store(db_path, **sqlite_options)
    if db_path is not None:
        raise StoreError("a SQLite file (--db) and a database URL (--database-url) cannot both be the store")
    from mock_server.store.postgres import PostgresStore  # psycopg is an optional extra

    return PostgresStore(database_url)
