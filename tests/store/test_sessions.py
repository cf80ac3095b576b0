"""The stores' part of sessions, on every kind: siblings copied from a template and dropped, and the session
registry (claims, limits, eviction, TTL) in one transaction of the shared database."""

from __future__ import annotations

import threading

import pytest

from mock_server.store.sessions import SessionLimitError

from .model import ANCHOR, DANA, small_dataset

LIMITS = {"limit": 3, "ttl_ms": 60_000, "busy_ms": 1_000}


def answers(store, dashboard: str) -> tuple:
    return (store.counts(), store.most_viewed(50), store.recently_viewed(DANA["id"], 50),
            store.dashboard_stats(dashboard, ANCHOR.date()))


def test_a_sibling_copied_from_a_template_answers_as_it_and_is_its_own(store_kind, store, dataset):
    template = store.sibling("_t-test")
    template.ensure_loaded(small_dataset)
    dashboard = dataset.dashboards[0]["dashboardId"]
    copy = store.sibling("s1.0001", copy_of=template)
    try:
        assert answers(copy, dashboard) == answers(template, dashboard)
        assert copy.record_view(dashboard, DANA, ANCHOR)["viewCount"] == template.dashboard_stats(
            dashboard, ANCHOR.date())["totalViews"] + 1
        assert copy.audit_logs("dashboard", dashboard, 1, 1, _no_filter()).items[0]["action"] == "view"
        before_main = answers(store, dashboard)
        assert answers(template, dashboard) != answers(copy, dashboard)  # the template is untouched
        assert answers(store, dashboard) == before_main
        if store_kind != "sqlite-memory":  # in memory, a sibling lives in its one handle
            again = store.sibling("s1.0001", copy_of=template)  # opened again (another process): the same data
            assert answers(again, dashboard) == answers(copy, dashboard)
            again.close()
    finally:
        copy.close()
        template.close()


def test_a_dropped_sibling_is_gone(store_kind, store):
    template = store.sibling("_t-drop")
    template.ensure_loaded(small_dataset)
    copy = store.sibling("gone.0001", copy_of=template)
    assert copy.counts()["views"] > 0
    copy.close()
    store.drop_sibling("gone.0001")
    store.drop_sibling("gone.0001")  # nothing left: no error
    reopened = store.sibling("gone.0001")
    try:
        if store_kind != "sqlite-memory":  # an in-memory sibling is new at every opening anyway
            assert reopened.is_empty()
    finally:
        reopened.close()
        template.close()


def _no_filter():
    from mock_server.store.base import AuditLogFilter

    return AuditLogFilter()


def test_a_claim_makes_then_marks_used_and_a_delete_forgets(store):
    table = store.sessions
    made = table.claim("a", at_ms=1_000, **LIMITS, scenario="busy")
    assert made.created and made.dropped == [] and made.record.scenario == "busy"
    again = table.claim("a", at_ms=2_000, **LIMITS)
    assert not again.created and again.record.incarnation == made.record.incarnation
    assert table.get("a").last_used_ms == 2_000 and table.get("a").created_ms == 1_000
    assert table.claim("b", at_ms=2_000, **LIMITS, create=False) is None and table.get("b") is None
    assert table.touch("a", 3_000) and not table.touch("b", 3_000)
    table.update("a", scenario="empty")
    assert [r.name for r in table.all()] == ["a"] and table.get("a").scenario == "empty"
    assert table.delete("a").incarnation == made.record.incarnation and table.delete("a") is None
    remade = table.claim("a", at_ms=4_000, **LIMITS)
    assert remade.created and remade.record.incarnation != made.record.incarnation


def test_past_the_limit_the_least_recently_used_idle_session_goes_or_the_claim_is_refused(store):
    table = store.sessions
    for i, name in enumerate(("a", "b", "c")):
        table.claim(name, at_ms=1_000 + i, **LIMITS)
    with pytest.raises(SessionLimitError) as refused:
        table.claim("d", at_ms=1_500, **LIMITS)  # all used within busy_ms
    assert refused.value.limit == 3 and table.get("d") is None
    table.claim("a", at_ms=2_900, **LIMITS)  # a is busy again; b (1001) and c (1002) are idle at 3000
    claim = table.claim("d", at_ms=3_000, **LIMITS)
    assert claim.created and [r.name for r in claim.dropped] == ["b"]
    assert [r.name for r in table.all()] == ["a", "c", "d"]


def test_sessions_idle_past_the_ttl_are_dropped(store):
    table = store.sessions
    table.claim("old", at_ms=1_000, **LIMITS)
    table.claim("new", at_ms=50_000, **LIMITS)
    assert [r.name for r in table.expire(70_000, 60_000)] == ["old"]
    assert [r.name for r in table.all()] == ["new"]
    claim = table.claim("other", at_ms=200_000, **LIMITS)
    assert [r.name for r in claim.dropped] == ["new"]


@pytest.mark.shared_database
def test_two_processes_meeting_a_new_session_at_once_make_it_once(make_store):
    stores = [make_store() for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    claims = []

    def claim(store) -> None:
        barrier.wait()
        claims.append(store.sessions.claim("same", at_ms=1_000, **LIMITS))

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(c.created for c in claims) == [False, False, False, True]
    assert len({c.record.incarnation for c in claims}) == 1
    assert [r.name for r in stores[0].sessions.all()] == ["same"]
