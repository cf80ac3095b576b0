"""The store tests: one contract for every store (test_contract.py), and what only SQLite has (test_sqlite.py)."""
