"""Sessions: one mock, many parallel tests, each with its own state (registry.py: naming, making, limits;
session.py: what one session holds). The registry itself is a table of the main database
(mock_server.store.sessions)."""

from .registry import COOKIE, HEADER, SessionFactory, SessionLimit, Sessions, check_name, describe, requested_name
from .session import DEFAULT, Session

__all__ = ["COOKIE", "DEFAULT", "HEADER", "Session", "SessionFactory", "SessionLimit", "Sessions", "check_name",
           "describe", "requested_name"]
