"""State of the mock behind the Store interface (base.py); SQLite is the one implementation."""

from mock_server.store.base import AuditLogFilter, Dataset, Page, Store
from mock_server.store.sqlite import SQLiteStore, StoreError, open_store

__all__ = ["AuditLogFilter", "Dataset", "Page", "SQLiteStore", "Store", "StoreError", "open_store"]
