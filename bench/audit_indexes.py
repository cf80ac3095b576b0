"""What each audit-log index costs the view write, and what the filtered log reads would lose without it.

    .venv/bin/python bench/audit_indexes.py [--size 100k] [--views 20000] [--rounds 2]

In process, figures only (nothing is asserted). A --db file is loaded with `--size` view events and audit
entries, then the dashboard with most entries gets `--views` more views through record_view (at runtime a
popular dashboard's entries become mostly `view`, which is what makes a narrower index set costly). Then:

1. the median wall time of one record_view (one write transaction: the event, its audit entry, every
   aggregate and index), with another connection committing between two views (SQLite then drops a
   connection's page cache): with the current indexes, and with each audit index dropped in turn (its
   marginal cost). Interleaved rounds; the median of the rounds.
2. The dashboard-logs reads of that dashboard (page 1 and page 50, page_size 20) for each filter
   combination, median microseconds of store.audit_logs(): the current five indexes against the narrowest
   set that keeps every plan an ordered index walk: audit_logs_target and audit_logs_target_user with
   `action` appended (covering: an action filter is checked inside the index, no table lookup),
   audit_logs_target_action and audit_logs_target_user_action dropped.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml

import mock_server.store.sql as store_sql
from mock_server.data.generate import Sizes, generate
from mock_server.store import open_store
from mock_server.store.base import AuditLogFilter

ANCHOR = datetime(2026, 11, 25, 12, tzinfo=UTC)
AUDIT_INDEXES = ("audit_logs_id", "audit_logs_target", "audit_logs_target_action", "audit_logs_target_user",
                 "audit_logs_target_user_action")
# The narrower set of part 2: two covering indexes, under the names audit_list_sql() already picks.
NARROW = ("CREATE INDEX audit_logs_target ON audit_logs (type, target_id, created_ms, id, action)",
          "CREATE INDEX audit_logs_target_user ON audit_logs (type, target_id, user_id, created_ms, id, action)")


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def load(path: str, size: int, views: int) -> tuple[str, dict]:
    tokens = yaml.safe_load((ROOT / "fixtures" / "tokens.yaml").read_text(encoding="utf-8"))
    users = [{**t["user"], "role": t["role"]} for t in tokens["tokens"]]
    data = generate(seed=1, anchor=ANCHOR, users=users, account=tokens["account"],
                    sizes=Sizes(views=size, audit_logs=size))
    store = open_store(path)
    store.load(data)
    conn = sqlite3.connect(path)
    (dashboard,) = conn.execute("SELECT target_id FROM audit_logs WHERE type = 'dashboard' GROUP BY 1"
                                " ORDER BY count(*) DESC LIMIT 1").fetchone()
    user = users[0]
    for i in range(views):
        store.record_view(dashboard, user, ANCHOR - timedelta(seconds=i))
    store.close()
    mix = conn.execute("SELECT action, count(*) FROM audit_logs WHERE type = 'dashboard' AND target_id = ?"
                       " GROUP BY 1 ORDER BY 2 DESC", (dashboard,)).fetchall()
    mine = conn.execute("SELECT action, count(*) FROM audit_logs WHERE type = 'dashboard' AND target_id = ?"
                        " AND user_id = ? GROUP BY 1 ORDER BY 2 DESC", (dashboard, user["id"].lower())).fetchall()
    conn.close()
    print(f"dashboard {dashboard}: {sum(n for _, n in mix)} entries {dict(mix)}; "
          f"{user['id']}'s: {dict(mine)}")
    return dashboard, user


def write_us(path: str, dashboard: str, user: dict, writes: int) -> float:
    store = open_store(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE IF NOT EXISTS bench_other_writer (x)")
    try:
        for _ in range(100):
            store.record_view(dashboard, user, datetime.now(UTC))
        times = []
        for _ in range(writes):
            other.execute("INSERT INTO bench_other_writer VALUES (1)")
            at = datetime.now(UTC)
            t = time.perf_counter()
            store.record_view(dashboard, user, at)
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e6
    finally:
        other.close()
        store.close()


def cases(user_id: str) -> list[tuple[str, dict]]:
    week = ANCHOR - timedelta(days=7)
    return [("no filter", {}), ("action=view", {"action": "view"}), ("action=delete", {"action": "delete"}),
            ("user", {"user_id": user_id}), ("user, action=view", {"user_id": user_id, "action": "view"}),
            ("user, action=share", {"user_id": user_id, "action": "share"}),
            ("last 7 days", {"created_from": week}),
            ("last 7 days, action=update", {"created_from": week, "action": "update"})]


def read_us(path: str, dashboard: str, user_id: str, calls: int) -> dict:
    store = open_store(path)
    try:
        out = {}
        for name, filters in cases(user_id):
            for page in (1, 50):
                times = []
                for _ in range(calls):
                    t = time.perf_counter()
                    store.audit_logs("dashboard", dashboard, page, 20, AuditLogFilter(**filters))
                    times.append(time.perf_counter() - t)
                out[(name, page)] = statistics.median(times) * 1e6
        return out
    finally:
        store.close()


def narrow_copy(src: str, dst: str) -> None:
    shutil.copy(src, dst)
    conn = sqlite3.connect(dst)
    for name in ("audit_logs_target", "audit_logs_target_action", "audit_logs_target_user",
                 "audit_logs_target_user_action"):
        conn.execute(f"DROP INDEX {name}")
    for statement in NARROW:
        conn.execute(statement)
    conn.commit()
    conn.close()


# The store's function that builds the audit-log SQL (INDEXED BY a name chosen per filter combination).
SQL_BUILDERS = ("audit_list_sql",)


def _narrow(sql):
    if isinstance(sql, str):
        return (sql.replace("audit_logs_target_user_action", "audit_logs_target_user")
                .replace("audit_logs_target_action", "audit_logs_target"))
    if isinstance(sql, tuple):
        return tuple(_narrow(part) for part in sql)
    return sql


def narrow_sql(original):
    """A SQL builder for the narrow set: the action indexes' queries go to the covering ones."""
    return lambda filters: _narrow(original(filters))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=100_000, help="view events and audit entries loaded")
    parser.add_argument("--views", type=int, default=20_000, help="views recorded on the busiest dashboard")
    parser.add_argument("--writes", type=int, default=1500, help="timed view writes per variant and round")
    parser.add_argument("--calls", type=int, default=60, help="timed calls per read")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="audit-indexes-")
    try:
        base = f"{tmp}/base.db"
        dashboard, user = load(base, args.size, args.views)
        variants = {"all five": f"{tmp}/all.db"}
        shutil.copy(base, variants["all five"])
        for name in AUDIT_INDEXES:
            variants[f"without {name}"] = f"{tmp}/{name}.db"
            shutil.copy(base, variants[f"without {name}"])
            conn = sqlite3.connect(variants[f"without {name}"])
            conn.execute(f"DROP INDEX {name}")
            conn.commit()
            conn.close()
        variants["narrow (2 covering)"] = f"{tmp}/narrow.db"
        narrow_copy(base, variants["narrow (2 covering)"])
        timings: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, path in variants.items():
                timings[name].append(write_us(path, dashboard, user, args.writes))
        full = statistics.median(timings["all five"])
        print(f"\none record_view, another writer committing between views ({args.rounds} rounds, median us)")
        for name in variants:
            us = statistics.median(timings[name])
            print(f"  {name:42s} {us:7.1f} us   {us - full:+7.1f} us")

        before = read_us(variants["all five"], dashboard, user["id"].lower(), args.calls)
        originals = {name: getattr(store_sql, name) for name in SQL_BUILDERS}
        for name, original in originals.items():
            setattr(store_sql, name, narrow_sql(original))
        try:
            after = read_us(variants["narrow (2 covering)"], dashboard, user["id"].lower(), args.calls)
        finally:
            for name, original in originals.items():
                setattr(store_sql, name, original)
        print(f"\ndashboard logs of that dashboard, page_size 20, median us per store.audit_logs() call")
        print(f"  {'filter':34s} {'all five':>10s} {'narrow':>10s} {'ratio':>7s}")
        for name, _ in cases(user["id"].lower()):
            for page in (1, 50):
                a, b = before[(name, page)], after[(name, page)]
                print(f"  {name + f', page {page}':34s} {a:10.0f} {b:10.0f} {b / a:7.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
