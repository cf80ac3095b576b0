"""The application state: everything one app (one process) holds, built once by create_app.

Typed and Flask-free. Each part owns what it changes: a session (mock_server.sessions) its store, scenario
runtime, journal and response cache; the state only holds what the sessions share, and the sessions. The
pipeline's steps receive it; Flask's operator endpoints find it with `State.current()`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from . import ids
from .auth import Principal, TokenRegistry
from .http.cors import CorsPolicy
from .sessions import Session, Sessions
from .spec import Spec
from .validation import RequestValidator, ResponseValidator

EXTENSION = "insights_mock"  # app.extensions[EXTENSION] is the State
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


class Clock:
    """The app's notion of now. With an anchor from NOW the clock starts there and runs at real speed,
    so data, "today" and new views line up with the generated history; otherwise it is real UTC time.
    A frozen clock stays at its anchor: screenshot tests see the same "5 minutes ago" in every run."""

    def __init__(self, anchor: datetime | None, *, frozen: bool = False) -> None:
        if frozen and anchor is None:
            raise ValueError("a frozen clock needs an anchor")
        self._anchor = anchor
        self.frozen = frozen
        self._started = time.monotonic()

    def now(self) -> datetime:
        if self._anchor is None:
            return datetime.now(UTC)
        if self.frozen:
            return self._anchor
        return self._anchor + timedelta(seconds=time.monotonic() - self._started)

    def today(self) -> date:
        return self.now().date()


@dataclass
class State:
    """What every session shares (the spec, the tokens, the server's clock, CORS, the validators) and the
    sessions themselves: the data, scenario, faults, journal and response cache live in a Session
    (mock_server.sessions), the default one being the mock as a request without a session name sees it."""

    config: dict[str, Any]
    spec: Spec
    tokens: TokenRegistry
    clock: Clock
    anchor: datetime
    cors: CorsPolicy
    request_validators: dict[str, RequestValidator]
    response_validator: ResponseValidator | None  # None: responses are not checked against the spec
    sessions: Sessions
    testing: bool = False

    @staticmethod
    def current() -> State:
        """The state of the Flask app handling this request (operator endpoints)."""
        from flask import current_app

        return current_app.extensions[EXTENSION]

    @property
    def default(self) -> Session:
        """The default session: requests that name none."""
        return self.sessions.default

    def authenticate(self, authorization: str | None, clock: Clock | None = None) -> Principal:
        return self.tokens.authenticate(authorization, (clock or self.clock).now())

    def close(self) -> None:
        self.sessions.close()
        self.default.close()

    @staticmethod
    def request_id(incoming: str) -> str:
        """A sane X-Request-Id of the client, echoed; otherwise a new one."""
        return incoming if _REQUEST_ID.fullmatch(incoming) else ids.request_id()
