"""The store's interface: what the HTTP layer may ask of the state, and nothing about HTTP.

Every method speaks in the API's own field names (the JSON shapes of openapi.yaml's components), so a
handler only wraps the result in the `{data, message}` envelope. Timestamps are ISO 8601 strings with
milliseconds and `Z`; ids are strings. A store knows nothing of tokens, roles or requests.

Two stores implement it: SQLiteStore (store/sqlite.py, the embedded default: in memory, or one WAL file
shared by the workers of one machine) and PostgresStore (store/postgres.py, state shared by replicas on
several machines). Both return plain data (dicts, lists, strings, numbers): serialising is the HTTP
layer's job. Concurrency, durability and cross-process consistency are the database's: a store opens
transactions, it takes no locks of its own. tests/store/ runs one contract suite against both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Callable, Iterable, Protocol

from mock_server.store.sessions import SessionTable
from mock_server.timestamps import day_date, day_number, iso_ms


class StoreError(RuntimeError):
    """The database cannot be used (not ours, another schema version, unreachable, locked too long, closed)."""


@dataclass(frozen=True)
class AuditLogFilter:
    """Optional narrowing of an audit-log list; None means "any"."""

    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # inclusive
    action: str | None = None
    user_id: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[dict]
    total: int


@dataclass
class Dataset:
    """Everything a store is loaded with; produced by mock_server.data.generate from a seed and an anchor time.

    users:      {id, email, name, role}
    dashboards: DashboardSummary fields without the view figures:
                {dashboardId, name, description, owner: {userId, email, name}, tags, kpiCount}
    mappings:   ToolMappingRef {mappingId, tool, name}
    views:      {_id, dashboardId, userId, viewedAt}
    audit_logs: AuditLogEntry, vendor field names
    views and audit_logs may be one-shot iterators (mock_server.data.generate.stream): a store reads each of them once.
    """

    account: str
    users: list[dict] = field(default_factory=list)
    dashboards: list[dict] = field(default_factory=list)
    mappings: list[dict] = field(default_factory=list)
    views: Iterable[dict] = field(default_factory=list)
    audit_logs: Iterable[dict] = field(default_factory=list)


STATS_DAYS = 30  # the daily series of DashboardStats ends today


def stats_window(today: date) -> tuple[int, int]:
    """The first and last day (days since the epoch, UTC) of the stats window that ends `today`."""
    last = day_number(today)
    return last - STATS_DAYS + 1, last


def dashboard_stats(dashboard_id: str, today: date, totals: tuple | None, per_day: dict[int, int]) -> dict:
    """A DashboardStats from what a store read: `totals` (view count, unique viewers, first and last view in
    epoch ms) or None for a dashboard never viewed, and the views per day of the window."""
    first_day, last_day = stats_window(today)
    daily = [{"date": text, "views": per_day.get(d, 0)}
             for d, text in zip(range(first_day, last_day + 1), _day_texts(first_day))]
    view_count, unique, first_ms, last_ms = totals if totals else (0, 0, None, None)
    return {
        "dashboardId": dashboard_id,
        "totalViews": view_count,
        "uniqueViewers": unique,
        "viewsLast7Days": sum(item["views"] for item in daily[-7:]),
        "viewsLast30Days": sum(item["views"] for item in daily),
        "firstViewedAt": iso_ms(first_ms) if first_ms is not None else None,
        "lastViewedAt": iso_ms(last_ms) if last_ms is not None else None,
        "dailyViews": daily,
    }


@lru_cache(maxsize=16)
def _day_texts(first_day: int) -> tuple[str, ...]:
    """The ISO dates of a stats window; the same window serves a whole day of requests."""
    return tuple(day_date(d).isoformat() for d in range(first_day, first_day + STATS_DAYS))


class Store(Protocol):
    def load(self, dataset: Dataset) -> None:
        """Replace all state with the dataset (used at start-up and by /__admin/reset)."""

    def is_empty(self) -> bool:
        """True when nothing was loaded yet (a fresh --db file). Loading an empty Dataset counts as loaded."""

    def ensure_loaded(self, make_dataset: Callable[[], Dataset]) -> bool:
        """Load `make_dataset()` only if nothing was loaded yet, atomically: of several processes starting at
        once on one database file exactly one calls make_dataset and loads; the others wait for it and
        return False. Returns True if this call loaded."""

    def counts(self) -> dict[str, int]:
        """Row counts {users, dashboards, mappings, views, audit_logs}, for the operator's health check."""

    def recently_viewed(self, user_id: str, limit: int) -> list[dict]:
        """DashboardSummary items for the user's viewed dashboards, one per dashboard, newest view of
        this user first (ties: dashboardId ascending). lastViewedAt is the user's own last view,
        viewCount the dashboard's total. Views of unknown dashboards are not listed."""

    def most_viewed(self, limit: int) -> list[dict]:
        """DashboardSummary items ordered by viewCount desc, then lastViewedAt desc, then dashboardId asc.
        Only known dashboards with at least one view."""

    def dashboard_stats(self, dashboard_id: str, today: date) -> dict:
        """DashboardStats; an unknown id gives zeros, nulls and 30 zero days ending at `today`."""

    def record_view(self, dashboard_id: str, user: dict, at: datetime) -> dict:
        """Atomically insert a view event and a `view` audit entry (type dashboard) for `user`
        ({id, email, name, role}) at `at`, with new ObjectIds (mock_server.ids); return the ViewEvent with
        the dashboard's new total viewCount (counted inside the same transaction). One transaction: once
        this returns, every reader of the database (any process, any replica) sees the view.
        Safe under concurrent writers in several processes sharing one database."""

    def audit_logs(self, target_type: str, target_id: str, page: int, page_size: int,
                   filters: AuditLogFilter) -> Page:
        """AuditLogEntry items of one target, createdAt desc then _id desc, and the total matching; the page
        and its total are read in one snapshot."""

    def audit_log(self, audit_log_id: str) -> dict | None:
        """One AuditLogEntry by _id (case-insensitive hex), as stored, or None."""

    def version(self) -> int | None:
        """A number that moves with every committed write of the data (by any process or replica sharing
        it); None when it cannot tell (then nothing is kept). The response cache asks it before and after
        making an answer, at every request, and keeps the answer only if both agree."""

    def close(self) -> None:
        """Release connections."""

    # Scenarios (mock_server.data.runtime). The generation counts loads; every process sharing the database
    # compares it with its own to follow a switch or a reset made by another process.

    def load_scenario(self, dataset: Dataset, name: str) -> int:
        """Like load(), and in the same transaction record `name` as the scenario and bump the generation;
        return the new generation."""

    def claim_scenario(self, name: str) -> tuple[str, int]:
        """Record `name` as the scenario with generation 0 unless one is recorded; return (scenario,
        generation) as recorded."""

    def scenario_meta(self) -> tuple[str | None, int]:
        """(scenario, generation) as recorded; (None, 0) before any claim. Cheap: called periodically."""

    # Sessions (mock_server.sessions). `sessions` is the registry (mock_server.store.sessions.SessionTable) in
    # this store's database; each session's data is a sibling store: same kind, same place, its own data.

    sessions: SessionTable

    def sibling(self, key: str, *, copy_of: Store | None = None) -> Store:
        """The store named `key` beside this one (an in-memory database; a file in `<db>.sessions/`; a schema of
        the same PostgreSQL database), opened, and made if it does not exist; a new one is filled with a copy
        of `copy_of`'s data (a sibling of the same kind), atomically for every process opening it at once."""

    def drop_sibling(self, key: str) -> None:
        """Delete the sibling `key` and its data (nothing if there is none)."""
