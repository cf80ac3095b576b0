"""The application state: everything one app (one process) holds, built once by create_app.

Typed and Flask-free. Each part owns what it changes: the store its data, the scenario runtime its
settings and faults, the journal its entries, the response cache its answers; the state only holds them
and serialises what must not run at once in this process (a reset and a scenario switch), so nothing
outside takes a lock of its. The pipeline's steps receive it; Flask's operator endpoints find it with
`State.current()`.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from . import ids
from .api.cache import ResponseCache
from .auth import Principal, TokenRegistry
from .data.generate import Sizes
from .data.runtime import ScenarioRuntime
from .faults import Faults
from .http.cors import CorsPolicy
from .journal import Journal
from .spec import Spec
from .store.base import Dataset, Store
from .validation import RequestValidator, ResponseValidator

EXTENSION = "insights_mock"  # app.extensions[EXTENSION] is the State
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


class Clock:
    """The app's notion of now. With an anchor from NOW the clock starts there and runs at real speed,
    so data, "today" and new views line up with the generated history; otherwise it is real UTC time."""

    def __init__(self, anchor: datetime | None) -> None:
        self._anchor = anchor
        self._started = time.monotonic()

    def now(self) -> datetime:
        if self._anchor is None:
            return datetime.now(UTC)
        return self._anchor + timedelta(seconds=time.monotonic() - self._started)

    def today(self) -> date:
        return self.now().date()


@dataclass
class State:
    config: dict[str, Any]
    spec: Spec
    tokens: TokenRegistry
    store: Store
    clock: Clock
    anchor: datetime
    scenarios: ScenarioRuntime
    journal: Journal
    cors: CorsPolicy
    request_validators: dict[str, RequestValidator]
    response_validator: ResponseValidator | None  # None: responses are not checked against the spec
    response_cache: ResponseCache | None  # None: every GET is answered anew
    testing: bool = False
    _loading: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @staticmethod
    def current() -> State:
        """The state of the Flask app handling this request (operator endpoints)."""
        from flask import current_app

        return current_app.extensions[EXTENSION]

    @property
    def faults(self) -> Faults:
        return self.scenarios.faults

    @property
    def sizes(self) -> Sizes:
        return self.scenarios.settings.sizes

    def make_dataset(self) -> Dataset:
        """The scenario's data, in lists."""
        return self.scenarios.make_dataset()

    def stream_dataset(self) -> Dataset:
        """The same data with views and audit entries made as the store loads them (flat memory), counted on
        a progress bar on stderr that shows itself if the load takes more than 2 s (none under TESTING)."""
        dataset = self.scenarios.make_dataset(streaming=True)
        if self.testing:
            return dataset
        from .progress import with_progress

        return with_progress(dataset, self.sizes.views + self.sizes.audit_logs)

    def authenticate(self, authorization: str | None) -> Principal:
        return self.tokens.authenticate(authorization, self.clock.now())

    def reset(self) -> None:
        """Regenerate the scenario's data from its seed and the anchor; restart the fault RNG (in every
        process sharing the database: the scenario generation moves)."""
        with self._loading:
            self.scenarios.reset()

    def switch_scenario(self, name: str) -> None:
        """Load scenario `name` (ScenarioError if there is none); one load at a time per process."""
        with self._loading:
            self.scenarios.switch(name)

    def close(self) -> None:
        self.store.close()

    @staticmethod
    def request_id(incoming: str) -> str:
        """A sane X-Request-Id of the client, echoed; otherwise a new one."""
        return incoming if _REQUEST_ID.fullmatch(incoming) else ids.request_id()
