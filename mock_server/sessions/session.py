"""One session: the state a test sees, and nothing another test can touch.

A Session holds what used to be the whole mock's state: a store (its data), the scenario runtime (its
scenario, settings and fault RNG), a journal, a response cache and a clock. The default session is the mock
as it always was; every other one is made on first use from the same seed (mock_server.sessions.registry).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..api.cache import ResponseCache
from ..data.generate import Sizes
from ..data.runtime import ScenarioRuntime
from ..faults import Faults
from ..journal import Journal
from ..store.base import Store

DEFAULT = "default"  # the name of the session of requests that name none


@dataclass
class Session:
    name: str
    store: Store
    scenarios: ScenarioRuntime
    journal: Journal
    response_cache: ResponseCache | None  # None: every GET is answered anew
    clock: Any  # mock_server.state.Clock: the server's, or the session's own frozen one
    anchor: datetime
    key: str | None = None  # the sibling store's key (None: the default session, which is the main store)
    incarnation: str | None = None  # the registry's; None for the default session
    created_ms: int | None = None
    checked: float = field(default_factory=time.monotonic)  # when the registry last confirmed it (monotonic)
    _loading: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def faults(self) -> Faults:
        return self.scenarios.faults

    @property
    def sizes(self) -> Sizes:
        return self.scenarios.settings.sizes

    def make_dataset(self):
        """The session's scenario data, in lists (mock_server.store.base.Dataset)."""
        return self.scenarios.make_dataset()

    def reset(self) -> None:
        """Regenerate the scenario's data from its seed and the anchor; restart the fault RNG (in every process
        sharing the database: the scenario generation moves)."""
        with self._loading:
            self.scenarios.reset()

    def switch_scenario(self, name: str) -> None:
        """Load scenario `name` (ScenarioError if there is none); one load at a time per process."""
        with self._loading:
            self.scenarios.switch(name)

    def describe(self) -> dict[str, Any]:
        sizes = self.sizes
        return {"name": self.name, "scenario": self.scenarios.name,
                "sizes": {"users": sizes.users, "dashboards": sizes.dashboards, "mappings": sizes.mappings,
                          "views": sizes.views, "auditLogs": sizes.audit_logs},
                "frozenClock": bool(getattr(self.clock, "frozen", False))}

    def close(self) -> None:
        self.journal.close()
        self.store.close()
