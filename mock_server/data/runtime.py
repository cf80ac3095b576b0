"""The active scenario of one process: its settings and faults, switched, reset, and following other workers.

Several processes (gunicorn workers) share one database: a switch or a reset loads the data and bumps a
generation counter in the same transaction (Store.load_scenario); every worker compares that counter with its
own at most every `sync_interval_s` and, when it moved, adopts the scenario's per-process settings (latency,
error rate, a fresh fault RNG). So a reset or a switch reaches every worker, not only the one that answered.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ..faults import Faults, parse_latency
from ..store.base import Dataset
from .pins import build_dataset
from .scenarios import Scenario, ScenarioError, Settings, load, settle

DEFAULT_SYNC_INTERVAL_S = 0.1


class ScenarioRuntime:
    """The active scenario of one app (one process), its faults, and how it follows the shared database.

    It owns what a scenario decides per process (its settings and the Faults made from them) and replaces
    them itself, when this process switches or resets, or when `sync` finds that another process did:
    nothing outside writes them. `shared`: the store is shared with other processes (a --db file, or a
    database server), so `sync` asks it, at most every `sync_interval_s`."""

    def __init__(self, *, directory: str | Path, name: str, config: dict[str, Any], explicit: set[str],
                 anchor: datetime, users: list[dict], account: str, store, shared: bool,
                 sync_interval_s: float = DEFAULT_SYNC_INTERVAL_S, startup: str | None = None) -> None:
        self.directory = Path(directory)
        self.config = config
        self.explicit = explicit
        self.anchor = anchor
        self.users = users
        self.account = account
        self.store = store
        self.shared = shared
        self.sync_interval_s = sync_interval_s
        self.startup = startup or name  # the explicit settings refine this one (see settle)
        self.scenario = load(self.directory, name)
        self.settings = self._settle(self.scenario)
        self.faults = self._faults()
        self.generation = 0
        self._lock = threading.Lock()
        self._checked = time.monotonic()

    @property
    def name(self) -> str:
        return self.scenario.name

    def _settle(self, scenario: Scenario) -> Settings:
        # A function of the name only, so every worker settles a switched-to scenario the same way.
        return settle(scenario, self.config, self.explicit, refine=scenario.name == self.startup)

    def make_dataset(self, scenario: Scenario | None = None, settings: Settings | None = None, *,
                     streaming: bool = False) -> Dataset:
        """The scenario's data; streaming=True for a store to load (one-shot iterators, flat memory)."""
        return build_dataset(scenario or self.scenario, settings or self.settings, anchor=self.anchor,
                             users=self.users, account=self.account, streaming=streaming)

    def _faults(self, previous: Faults | None = None) -> Faults:
        s = self.settings
        return Faults(seed=s.seed, latency=parse_latency(s.latency), error_rate=s.error_rate,
                      **({"sleep": previous.sleep} if previous is not None else {}))

    def _adopt(self, scenario: Scenario, settings: Settings, generation: int) -> None:
        """Take on a scenario's per-process settings (its data is in the store already)."""
        self.scenario, self.settings, self.generation = scenario, settings, generation
        self.faults = self._faults(self.faults)

    def start(self) -> None:
        """After the store is loaded: record our scenario in a fresh database, or follow the one a shared
        database already holds (another worker or replica may have switched it)."""
        name, generation = self.store.claim_scenario(self.name)
        if name != self.name:
            self._follow(name, generation)
        self.generation = generation

    def switch(self, name: str) -> None:
        scenario = load(self.directory, name)
        settings = self._settle(scenario)
        dataset = self.make_dataset(scenario, settings, streaming=True)
        with self._lock:
            self._adopt(scenario, settings, self.store.load_scenario(dataset, scenario.name))

    def reset(self) -> None:
        dataset = self.make_dataset(streaming=True)
        with self._lock:
            self._adopt(self.scenario, self.settings, self.store.load_scenario(dataset, self.name))

    def sync(self) -> Faults:
        """The faults in force, after following a switch or reset made by another process if one is due
        (one meta read per `sync_interval_s` per process; none for a store of this process alone)."""
        if self.shared:
            now = time.monotonic()
            if now - self._checked >= self.sync_interval_s:
                self._checked = now
                name, generation = self.store.scenario_meta()
                if generation != self.generation and name is not None:
                    with self._lock:
                        if generation != self.generation:
                            self._follow(name, generation)
        return self.faults

    def _follow(self, name: str, generation: int) -> None:
        try:
            scenario = load(self.directory, name)
        except ScenarioError as exc:  # the data is there; only this process's settings cannot follow
            import logging

            logging.getLogger("insights_mock").error("cannot follow scenario %r: %s", name, exc)
            scenario = Scenario(name=name, path=None, document={})
        self._adopt(scenario, self._settle(scenario), generation)

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {"name": self.name, "description": self.scenario.description, "seed": s.seed,
                "latency": s.latency, "errorRate": s.error_rate, "skew": s.sizes.skew,
                "generation": self.generation}
