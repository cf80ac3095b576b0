"""--reload: pick up edits to the tokens file, the spec and the scenario files without a restart.

`ReloadingApp` is the WSGI app the server runs: it hands every request to the current Flask app. A watcher
thread compares the files' (mtime, size) every `interval_s` (0.5 s); after a change it builds a new app with
the same configuration and swaps it in with one assignment, so a request is served entirely by the old app or
entirely by the new one. The new app keeps the old one's store (data, recorded views), clock and journal;
if the active scenario's own file changed, its data is regenerated from the new file.

A broken edit (invalid YAML, a spec error, a scenario that fails its schema) builds nothing: the old app
keeps serving, the error goes to stderr and to GET /__admin/health under "reload", until a later edit fixes
it. One process only: with gunicorn (--workers N) the CLI refuses --reload.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask

from .app import EXTENSION, create_app

STATUS_EXTENSION = "insights_mock_reload"
DEFAULT_INTERVAL_S = 0.5


class ReloadStatus:
    """What /__admin/health reports under "reload"; shared by every app the reloader builds."""

    def __init__(self) -> None:
        self.reloads = 0
        self.last_reload: str | None = None
        self.error: str | None = None
        self.error_at: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"enabled": True, "reloads": self.reloads, "lastReloadAt": self.last_reload,
                "error": self.error, "errorAt": self.error_at}


def watched_files(config: dict[str, Any]) -> list[Path]:
    files = [Path(config["SPEC_FILE"]), Path(config["TOKENS_FILE"])]
    directory = Path(config["SCENARIOS_DIR"])
    return files + sorted(directory.glob("*.yaml"))


def _snapshot(config: dict[str, Any]) -> dict[Path, tuple[int, int] | None]:
    found: dict[Path, tuple[int, int] | None] = {}
    for path in watched_files(config):
        try:
            stat = path.stat()
            found[path] = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            found[path] = None
    return found


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ReloadingApp:
    def __init__(self, test_config: dict[str, Any] | None = None, *, interval_s: float = DEFAULT_INTERVAL_S,
                 watch: bool = True, log: Callable[[str], None] | None = None) -> None:
        self.test_config = dict(test_config or {})
        self.status = ReloadStatus()
        self.log = log or (lambda text: print(f"insights-mock: {text}", file=sys.stderr, flush=True))
        self.app: Flask = create_app(self.test_config)
        self.app.extensions[STATUS_EXTENSION] = self.status
        self._snapshot = _snapshot(self.app.extensions[EXTENSION].config)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.interval_s = interval_s
        self._thread = None
        if watch:
            self._thread = threading.Thread(target=self._watch, name="insights-mock-reload", daemon=True)
            self._thread.start()

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)

    @property
    def state(self):
        return self.app.extensions[EXTENSION]

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive any surprise
                self.log(f"reload watcher: {exc!r}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def check(self) -> bool:
        """Rebuild if a watched file changed since the last look; True if a new app is now serving."""
        with self._lock:
            old = self.state
            current = _snapshot(old.config)
            if current == self._snapshot:
                return False
            changed = sorted(str(p) for p in set(current) | set(self._snapshot)
                             if current.get(p) != self._snapshot.get(p))
            self._snapshot = current
            scenario_file = Path(old.config["SCENARIOS_DIR"]) / f"{old.default.scenarios.name}.yaml"
            try:
                # Same configuration; the new app follows the scenario the store records (perhaps switched
                # at runtime) as a late worker would.
                app = create_app(self.test_config, carry=old)
                if str(scenario_file) in changed:
                    app.extensions[EXTENSION].default.reset()
            except Exception as exc:  # noqa: BLE001 - whatever a broken file raises, keep serving the old app
                self.status.error = f"{type(exc).__name__}: {exc}"
                self.status.error_at = _now()
                self.log(f"reload failed, still serving the previous state ({', '.join(changed)}): {exc}")
                return False
            app.extensions[STATUS_EXTENSION] = self.status
            self.app = app  # the swap: one reference assignment
            self.status.reloads += 1
            self.status.last_reload = _now()
            self.status.error = self.status.error_at = None
            self.log(f"reloaded after a change of {', '.join(changed)}")
            return True
