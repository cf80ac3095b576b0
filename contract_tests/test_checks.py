"""Unit tests of the suite's own judges: each check and model rule fails on a crafted answer that breaks it and
passes on one that keeps it, so no check can pass vacuously. No target involved: the answers are synthetic."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from schemathesis import GenerationMode, Response

from contract_tests import checks, loader, spec
from contract_tests.model import ServerModel
from contract_tests.reporting import ContractViolation
from contract_tests.settings import Principal, is_local_url, principals_from_tokens_file, TOKENS_FILE
from contract_tests.test_auth import expected_statuses

# Unit tests of the judges: crafted answers, never the target (not run against --base-url or --serve-mock).
pytestmark = pytest.mark.self_test

SCHEMA = loader.load(loader.active(), [GenerationMode.POSITIVE])
D1, D2, D3 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"
USER = "64b7f0c2a1e3d4c5b6a79801"


def exchange(operation_id, data=None, *, status=200, path=None, query=None, headers=None, request_headers=None, raw=None):
    case = SCHEMA.find_operation_by_id(operation_id).Case(path_parameters=path or {}, query=query or {})
    url = "http://localhost" + spec.operation(operation_id).path
    for name, value in (path or {}).items():
        url = url.replace("{" + name + "}", value)
    request = requests.Request(case.method, url, params=query or {}, headers=request_headers or {}).prepare()
    content = raw if raw is not None else json.dumps(data).encode()
    response_headers = {"content-type": ["application/json"], **{k.lower(): [v] for k, v in (headers or {}).items()}}
    return case, Response(status, response_headers, content, request, 0.0, True)


def passes(check, case_response) -> bool:
    case, response = case_response
    try:
        check(None, response, case)
    except AssertionError:
        return False
    return True


def summary(dashboard_id, count, last):
    return {"dashboardId": dashboard_id, "name": "n", "owner": {"userId": USER, "email": "a@b.example", "name": "A"},
            "tags": [], "kpiCount": 1, "viewCount": count, "lastViewedAt": last}


def entry(_id, created, *, action="view", user=USER, target=D1):
    return {"_id": _id, "user_id": user, "user_email": "a@b.example", "type": "dashboard", "action": action,
            "target_id": target, "account": "org-acme-acc0", "dashboard": {"dashboardId": target, "name": "n"},
            "createdAt": created, "updatedAt": created, "__v": 0}


def page(items, page_no=1, size=50, total=None):
    total = len(items) if total is None else total
    pages = -(-total // size)
    return {"data": items, "message": "ok",
            "pagination": {"page": page_no, "page_size": size, "total_items": total, "total_pages": pages, "has_next": page_no < pages}}


T1, T2, T3 = "2026-11-20T10:00:00.000Z", "2026-11-21T10:00:00.000Z", "2026-11-22T10:00:00.000Z"


def test_most_viewed_order():
    good = [summary(D1, 9, T1), summary(D2, 5, T3), summary(D3, 5, T2)]
    assert passes(checks.most_viewed_order, exchange(checks.MOST_VIEWED, {"data": good, "message": "ok"}))
    tie_broken_wrong = [summary(D1, 9, T1), summary(D3, 5, T2), summary(D2, 5, T3)]
    assert not passes(checks.most_viewed_order, exchange(checks.MOST_VIEWED, {"data": tie_broken_wrong, "message": "ok"}))
    same_time_wrong_id = [summary(D2, 5, T2), summary(D1, 5, T2)]
    assert not passes(checks.most_viewed_order, exchange(checks.MOST_VIEWED, {"data": same_time_wrong_id, "message": "ok"}))


def test_recently_viewed_order_and_uniqueness():
    good = [summary(D2, 1, T3), summary(D1, 7, T2), summary(D3, 7, T2)]
    assert passes(checks.recently_viewed_order, exchange(checks.RECENTLY_VIEWED, {"data": good, "message": "ok"}))
    older_first = [summary(D1, 7, T2), summary(D2, 1, T3)]
    assert not passes(checks.recently_viewed_order, exchange(checks.RECENTLY_VIEWED, {"data": older_first, "message": "ok"}))
    twice = [summary(D1, 7, T3), summary(D1, 7, T2)]
    assert not passes(checks.recently_viewed_order, exchange(checks.RECENTLY_VIEWED, {"data": twice, "message": "ok"}))


def test_list_limit():
    items = [summary(D1, 3, T3), summary(D2, 2, T2), summary(D3, 1, T1)]
    assert passes(checks.list_limit_honoured, exchange(checks.MOST_VIEWED, {"data": items, "message": "ok"}, query={"limit": 3}))
    assert not passes(checks.list_limit_honoured, exchange(checks.MOST_VIEWED, {"data": items, "message": "ok"}, query={"limit": 2}))
    # an odd limit is clamped (0 counts as 1) or ignored (the default, 10), never refused
    assert not passes(checks.list_limit_honoured, exchange(checks.MOST_VIEWED, {"data": items[:2], "message": "ok"}, query={"limit": 0}))
    assert passes(checks.list_limit_honoured, exchange(checks.MOST_VIEWED, {"data": items[:1], "message": "ok"}, query={"limit": -4}))
    eleven = [summary(D1, 1, T1)] * 11
    assert not passes(checks.list_limit_honoured, exchange(checks.MOST_VIEWED, {"data": eleven, "message": "ok"}, query={"limit": "ten"}))
    assert passes(checks.list_limit_honoured, exchange(checks.MOST_VIEWED, {"data": eleven, "message": "ok"}, query={"limit": 500}))


def test_audit_logs_order():
    good = [entry("b" * 24, T2), entry("a" * 24, T2), entry("c" * 24, T1)]
    assert passes(checks.audit_logs_order, exchange(checks.DASHBOARD_LOGS, page(good), path={"dashboardId": D1}))
    id_ties_ascending = [entry("a" * 24, T2), entry("b" * 24, T2)]
    assert not passes(checks.audit_logs_order, exchange(checks.DASHBOARD_LOGS, page(id_ties_ascending), path={"dashboardId": D1}))


@pytest.mark.parametrize(
    "query, body, ok",
    [
        ({}, page([entry("a" * 24, T1)]), True),
        ({"page": 2, "page_size": 2}, page([entry("a" * 24, T1)], page_no=2, size=2, total=3), True),
        ({"page": 3, "page_size": 2}, page([], page_no=3, size=2, total=3), True),
        ({"page": 2, "page_size": 2}, page([entry("a" * 24, T1)], page_no=1, size=2, total=3), False),  # page not echoed
        ({"page_size": 2}, page([entry("a" * 24, T1)], size=2, total=3), False),  # short page
        ({}, {**page([]), "pagination": {"page": 1, "page_size": 50, "total_items": 0, "total_pages": 1, "has_next": False}}, False),
        ({}, {**page([entry("a" * 24, T1)]), "pagination": {"page": 1, "page_size": 50, "total_items": 1, "total_pages": 1, "has_next": True}}, False),
    ],
)
def test_pagination_consistent(query, body, ok):
    assert passes(checks.pagination_consistent, exchange(checks.DASHBOARD_LOGS, body, path={"dashboardId": D1}, query=query)) is ok


def test_ids_match_request():
    stats = {"data": {"dashboardId": D1.upper()}, "message": "ok"}
    assert passes(checks.ids_match_request, exchange(checks.STATS, stats, path={"dashboardId": D1}))
    assert not passes(checks.ids_match_request, exchange(checks.STATS, stats, path={"dashboardId": D2}))
    assert not passes(checks.ids_match_request, exchange(checks.DASHBOARD_LOGS, page([entry("a" * 24, T1, target=D2)]), path={"dashboardId": D1}))
    one = {"data": entry("a" * 24, T1), "message": "ok"}
    assert passes(checks.ids_match_request, exchange(checks.AUDIT_LOG, one, path={"auditLogId": "A" * 24}))
    assert not passes(checks.ids_match_request, exchange(checks.AUDIT_LOG, one, path={"auditLogId": "b" * 24}))


def test_audit_entry_references():
    good = entry("a" * 24, T1)
    assert passes(checks.audit_entry_references, exchange(checks.AUDIT_LOG, {"data": good, "message": "ok"}, path={"auditLogId": "a" * 24}))
    missing = {k: v for k, v in entry("a" * 24, T1, action="share").items() if k != "dashboard"}
    assert not passes(checks.audit_entry_references, exchange(checks.DASHBOARD_LOGS, page([missing]), path={"dashboardId": D1}))
    # a view may lack the reference: the view operation accepts ids of dashboards that do not exist
    view_of_unknown = {k: v for k, v in good.items() if k != "dashboard"}
    assert passes(checks.audit_entry_references, exchange(checks.DASHBOARD_LOGS, page([view_of_unknown]), path={"dashboardId": D1}))
    other = {**good, "dashboard": {"dashboardId": D2, "name": "n"}}
    assert not passes(checks.audit_entry_references, exchange(checks.AUDIT_LOG, {"data": other, "message": "ok"}, path={"auditLogId": "a" * 24}))


def test_audit_filters_honoured():
    items = page([entry("a" * 24, T2, action="view")])
    day = T2[:10]
    ok = exchange(checks.DASHBOARD_LOGS, items, path={"dashboardId": D1},
                  query={"action": "view", "start_date": day, "end_date": day, "user_id": USER.upper(), "type": "dashboard"})
    assert passes(checks.audit_filters_honoured, ok)
    for query in ({"action": "share"}, {"start_date": T3[:10]}, {"end_date": T1[:10]}, {"user_id": "0" * 24},
                  {"type": "pipeline"}):
        query = {"start_date": "2026-01-01", **query}
        assert not passes(checks.audit_filters_honoured, exchange(checks.DASHBOARD_LOGS, items, path={"dashboardId": D1}, query=query))
    reversed_window = exchange(checks.DASHBOARD_LOGS, page([]), path={"dashboardId": D1},
                               query={"start_date": T3[:10], "end_date": T1[:10]})
    assert not passes(checks.audit_filters_honoured, reversed_window)


def test_without_dates_only_the_last_7_days_are_listed():
    now = datetime.now(UTC)
    stamp = lambda days: (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # noqa: E731
    week = page([entry("b" * 24, stamp(0)), entry("a" * 24, stamp(6))])
    assert passes(checks.audit_filters_honoured, exchange(checks.DASHBOARD_LOGS, week, path={"dashboardId": D1}))
    month = page([entry("b" * 24, stamp(0)), entry("a" * 24, stamp(30))])
    assert not passes(checks.audit_filters_honoured, exchange(checks.DASHBOARD_LOGS, month, path={"dashboardId": D1}))
    # with a date filter the old entry is what was asked for
    assert passes(checks.audit_filters_honoured, exchange(checks.DASHBOARD_LOGS, month, path={"dashboardId": D1},
                                                          query={"start_date": "2000-01-01"}))


def _stats(views, total, first=T1, last=T3):
    days = [{"date": f"2026-10-{d:02d}", "views": 0} for d in range(27, 32)] + [
        {"date": f"2026-11-{d:02d}", "views": 0} for d in range(1, 26)
    ]
    for index, count in views.items():
        days[index]["views"] = count
    return {"data": {"dashboardId": D1, "totalViews": total, "uniqueViewers": 1 if total else 0,
                     "viewsLast7Days": sum(d["views"] for d in days[-7:]), "viewsLast30Days": sum(d["views"] for d in days),
                     "firstViewedAt": first if total else None, "lastViewedAt": last if total else None, "dailyViews": days},
            "message": "ok"}


def test_stats_consistent():
    assert passes(checks.stats_consistent, exchange(checks.STATS, _stats({29: 2, 3: 1}, 5, last="2026-11-25T08:00:00.000Z"), path={"dashboardId": D1}))
    assert passes(checks.stats_consistent, exchange(checks.STATS, _stats({}, 0), path={"dashboardId": D1}))
    wrong_sum = _stats({29: 2}, 5, last="2026-11-25T08:00:00.000Z")
    wrong_sum["data"]["viewsLast30Days"] = 3
    assert not passes(checks.stats_consistent, exchange(checks.STATS, wrong_sum, path={"dashboardId": D1}))
    more_recent_than_total = _stats({29: 6}, 5, last="2026-11-25T08:00:00.000Z")
    assert not passes(checks.stats_consistent, exchange(checks.STATS, more_recent_than_total, path={"dashboardId": D1}))
    zero_with_times = _stats({}, 0)
    zero_with_times["data"]["lastViewedAt"] = T3
    assert not passes(checks.stats_consistent, exchange(checks.STATS, zero_with_times, path={"dashboardId": D1}))
    gap = _stats({}, 0)
    gap["data"]["dailyViews"][10]["date"] = "2026-12-01"
    assert not passes(checks.stats_consistent, exchange(checks.STATS, gap, path={"dashboardId": D1}))


ERROR_401 = {"status": 401, "error": "invalid_token", "message": "Authentication required"}


def test_error_body_conformance():
    assert passes(checks.error_body_conformance, exchange(checks.STATS, ERROR_401, status=401, path={"dashboardId": D1}))
    assert not passes(checks.error_body_conformance, exchange(checks.STATS, {**ERROR_401, "status": 400}, status=401, path={"dashboardId": D1}))
    assert not passes(checks.error_body_conformance, exchange(checks.STATS, {"errors": ["x"]}, status=404, path={"dashboardId": D1}))
    assert not passes(checks.error_body_conformance, exchange(checks.STATS, None, status=500, raw=b"<h1>oops</h1>", path={"dashboardId": D1}))


def test_auth_challenge_semantics():
    no_credentials = {"WWW-Authenticate": 'Bearer realm="insights"'}
    invalid = {"WWW-Authenticate": 'Bearer realm="insights", error="invalid_token", error_description="expired"'}
    bearer = {"Authorization": "Bearer nope"}
    assert passes(checks.auth_challenge_semantics, exchange(checks.STATS, ERROR_401, status=401, headers=no_credentials, path={"dashboardId": D1}))
    assert not passes(checks.auth_challenge_semantics, exchange(checks.STATS, ERROR_401, status=401, headers=invalid, path={"dashboardId": D1}))
    assert passes(checks.auth_challenge_semantics, exchange(checks.STATS, ERROR_401, status=401, headers=invalid, request_headers=bearer, path={"dashboardId": D1}))
    assert not passes(checks.auth_challenge_semantics, exchange(checks.STATS, ERROR_401, status=401, headers=no_credentials, request_headers=bearer, path={"dashboardId": D1}))
    assert not passes(checks.auth_challenge_semantics, exchange(checks.STATS, ERROR_401, status=401, path={"dashboardId": D1}))
    forbidden = {"status": 403, "error": "insufficient_scope", "message": "no"}
    scoped = {"WWW-Authenticate": 'Bearer realm="insights", error="insufficient_scope", scope="api"'}
    assert passes(checks.auth_challenge_semantics, exchange(checks.RECORD_VIEW, forbidden, status=403, headers=scoped, request_headers=bearer, path={"dashboardId": D1}))
    foreign = {"WWW-Authenticate": 'Bearer realm="insights", error="insufficient_scope", scope="admin"'}
    assert not passes(checks.auth_challenge_semantics, exchange(checks.RECORD_VIEW, forbidden, status=403, headers=foreign, request_headers=bearer, path={"dashboardId": D1}))
    assert not passes(checks.auth_challenge_semantics, exchange(checks.RECORD_VIEW, {**forbidden, "error": "forbidden"}, status=403, headers=scoped, request_headers=bearer, path={"dashboardId": D1}))
    # a role failure: its own code, and a challenge that claims no scope
    role = {"status": 403, "error": "insufficient_role", "message": "no"}
    plain = {"WWW-Authenticate": 'Bearer realm="insights", error_description="Requires one of the roles User"'}
    assert passes(checks.auth_challenge_semantics, exchange(checks.RECORD_VIEW, role, status=403, headers=plain, request_headers=bearer, path={"dashboardId": D1}))
    assert not passes(checks.auth_challenge_semantics, exchange(checks.RECORD_VIEW, role, status=403, headers=scoped, request_headers=bearer, path={"dashboardId": D1}))


# -- the model -------------------------------------------------------------------------------------------------


def _view(count, at=T3, dashboard=D1):
    return exchange(checks.RECORD_VIEW, {"data": {"_id": "f" * 24, "dashboardId": dashboard, "userId": USER, "viewedAt": at, "viewCount": count}, "message": "ok"}, path={"dashboardId": dashboard})


def _observe(model, case_response):
    case, response = case_response
    model.observe(response, case)


@pytest.mark.parametrize("exclusive, count, ok", [(True, 10, True), (True, 11, False), (True, 9, False), (False, 12, True), (False, 9, False)])
def test_model_counts_views(exclusive, count, ok):
    model = ServerModel(exclusive=exclusive, user_id=USER)
    _observe(model, exchange(checks.MOST_VIEWED, {"data": [summary(D1, 9, T1)], "message": "ok"}))
    if ok:
        _observe(model, _view(count))
    else:
        with pytest.raises(ContractViolation):
            _observe(model, _view(count))


def test_model_requires_the_viewed_dashboard_first():
    model = ServerModel(exclusive=True, user_id=USER)
    _observe(model, exchange(checks.MOST_VIEWED, {"data": [summary(D1, 9, T1), summary(D2, 3, T1)], "message": "ok"}))
    _observe(model, _view(4, at=T3, dashboard=D2))
    _observe(model, exchange(checks.RECENTLY_VIEWED, {"data": [summary(D2, 4, T3), summary(D1, 9, T1)], "message": "ok"}))
    with pytest.raises(ContractViolation):
        _observe(model, exchange(checks.RECENTLY_VIEWED, {"data": [summary(D1, 9, T1), summary(D2, 4, T3)], "message": "ok"}))


def test_model_skips_views_of_dashboards_that_may_not_exist():
    model = ServerModel(exclusive=True, user_id=USER)
    _observe(model, exchange(checks.MOST_VIEWED, {"data": [summary(D1, 9, T1)], "message": "ok"}))
    _observe(model, _view(10, at=T2, dashboard=D1))
    _observe(model, _view(1, at=T3, dashboard=D3))  # never listed: may be an unknown id
    _observe(model, exchange(checks.RECENTLY_VIEWED, {"data": [summary(D1, 10, T2)], "message": "ok"}))


def test_model_stats_must_count_the_view():
    model = ServerModel(exclusive=True, user_id=USER)
    _observe(model, exchange(checks.STATS, _stats({}, 0), path={"dashboardId": D1}))
    _observe(model, _view(1, at=T3))
    with pytest.raises(ContractViolation):
        _observe(model, exchange(checks.STATS, _stats({}, 0), path={"dashboardId": D1}))


def test_model_log_must_grow_by_the_view():
    model = ServerModel(exclusive=True, user_id=USER)
    older = entry("a" * 24, T1, action="share")
    _observe(model, exchange(checks.DASHBOARD_LOGS, page([older]), path={"dashboardId": D1}))
    _observe(model, _view(1, at=T3))
    with pytest.raises(ContractViolation):
        _observe(model, exchange(checks.DASHBOARD_LOGS, page([older]), path={"dashboardId": D1}))
    model = ServerModel(exclusive=True, user_id=USER)
    _observe(model, exchange(checks.DASHBOARD_LOGS, page([older]), path={"dashboardId": D1}))
    _observe(model, _view(1, at=T3))
    _observe(model, exchange(checks.DASHBOARD_LOGS, page([entry("f" * 24, T3), older]), path={"dashboardId": D1}))


def test_model_entries_read_the_same():
    model = ServerModel(exclusive=True, user_id=USER)
    first = entry("a" * 24, T1)
    _observe(model, exchange(checks.DASHBOARD_LOGS, page([first]), path={"dashboardId": D1}))
    changed = copy.deepcopy(first)
    changed["action"] = "share"
    with pytest.raises(ContractViolation):
        _observe(model, exchange(checks.AUDIT_LOG, {"data": changed, "message": "ok"}, path={"auditLogId": "a" * 24}))


# -- settings and expectations -----------------------------------------------------------------------------------


def test_local_urls():
    assert is_local_url("http://127.0.0.1:4010") and is_local_url("http://localhost:8080") and is_local_url("http://[::1]:80")
    assert is_local_url("http://127.9.0.1/")
    assert not is_local_url("https://staging.example.com") and not is_local_url("http://10.0.0.5:4010")


def test_tokens_are_picked_by_what_the_spec_requires():
    found = principals_from_tokens_file(TOKENS_FILE)
    assert set(found) == {"full", "readonly", "no_role", "no_scope", "expired"}
    write = spec.operation(checks.RECORD_VIEW)
    audit = spec.operation(checks.AUDIT_LOG)
    assert expected_statuses(write, found["full"]) == {200}
    assert expected_statuses(write, found["readonly"]) == {403}
    assert expected_statuses(audit, found["no_role"]) == {403}
    assert expected_statuses(spec.operation(checks.STATS), found["no_role"]) == {200}
    assert expected_statuses(audit, found["no_scope"]) == {403}
    assert expected_statuses(audit, found["expired"]) == {401}


def test_live_tokens_with_unknown_roles_widen_only_what_is_unknown():
    readonly = Principal("readonly", "t", scopes=frozenset({"api-readonly"}))
    assert expected_statuses(spec.operation(checks.RECORD_VIEW), readonly) == {403}  # the scope alone decides
    assert expected_statuses(spec.operation(checks.STATS), readonly) == {200, 403}  # depends on the unknown role
    no_role = Principal("no_role", "t", roles_not_held=spec.roles_of_tag("Audit logs"))
    assert expected_statuses(spec.operation(checks.AUDIT_LOG), no_role) == {403}


def test_writes_need_consent_on_shared_deployments():
    from contract_tests.settings import SuiteSettings

    def make(base_url, allow=False):
        return SuiteSettings(base_url=base_url, serve_mock=False, mock_variant=None, mock_seed=42,
                             app_factory="mock_server:create_app", allow_writes=allow)

    assert make(None).writes_allowed and make("http://127.0.0.1:4010").writes_allowed
    assert not make("https://staging.example.com").writes_allowed
    assert make("https://staging.example.com", allow=True).writes_allowed
    assert make(None).exclusive and not make("http://127.0.0.1:4010").exclusive


# -- ids in any case, the daily series -----------------------------------------------------------------------------


def test_ids_match_the_path_in_any_case():
    lettered = "3f2b8c1e-6a47-4d0b-9b1e-2c5d7a9e4f10"  # hex letters, so that its cases differ
    stats = {"data": {**_stats({}, 0)["data"], "dashboardId": lettered}, "message": "ok"}
    for spelling in (lettered.upper(), "3F2B8C1E-6A47-4d0b-9b1e-2c5d7a9e4f10"):
        assert passes(checks.ids_match_request, exchange(checks.STATS, stats, path={"dashboardId": spelling}))
    assert not passes(checks.ids_match_request, exchange(checks.STATS, stats, path={"dashboardId": D2.upper()}))


def test_a_view_counts_in_the_series_that_ends_today():
    from contract_tests.test_targeted_views import _check_series_counts_view

    before = _stats({29: 2}, 2, last="2026-11-25T08:00:00.000Z")["data"]
    after = _stats({29: 3}, 3, last="2026-11-25T09:00:00.000Z")["data"]
    view = {"viewedAt": "2026-11-25T09:00:00.000Z"}

    def judged(before, after, view, exclusive=True) -> bool:
        try:
            _check_series_counts_view(exclusive, before, after, view, None)
        except ContractViolation:
            return False
        return True

    assert judged(before, after, view)
    assert not judged(before, before, view)  # not counted in today's day nor the windows
    assert not judged(before, after, {"viewedAt": "2026-11-26T00:00:01.000Z"})  # the series does not end today
    assert not judged(before, _stats({29: 4}, 4)["data"], view)  # counted twice on an exclusive target
    assert judged(before, _stats({29: 4}, 4)["data"], view, exclusive=False)  # others may view meanwhile


# -- no data: skips that name their rules --------------------------------------------------------------------------


def _settings(base_url=None, allow_writes=False, dashboard_ids=()):
    from contract_tests.settings import SuiteSettings

    return SuiteSettings(base_url=base_url, serve_mock=False, mock_variant=None, mock_seed=42,
                         app_factory="mock_server:create_app", allow_writes=allow_writes, dashboard_ids=dashboard_ids)


def test_no_data_skips_name_the_rules_and_the_remedy():
    from contract_tests import seeding
    from contract_tests.verdict import Coverage

    shared = seeding.no_data(_settings("https://staging.example.com"), ("limit_is_a_prefix", "filters_complete"), "x")
    assert seeding.rules_of_skip(shared) == ["limit_is_a_prefix", "filters_complete"]
    assert "no data" in shared and "rerun with --allow-writes" in shared
    local = seeding.no_data(_settings("http://127.0.0.1:4010"), "limit_is_a_prefix", "x")
    assert "CONTRACT_DASHBOARD_IDS" in local and "--allow-writes" not in local
    assert seeding.rules_of_skip("no full token for x: set CONTRACT_TOKEN") == []
    coverage = Coverage()
    coverage.rule("filters_complete", True)
    coverage.skip(shared, "t1")
    lines = "\n".join(coverage.lines())
    assert "filters_complete: 1 checked, 0 failed, 1 skipped (no data: x; rerun with --allow-writes" in lines
    assert "limit_is_a_prefix: 0 checked, 0 failed, 1 skipped (no data" in lines


def test_seeding_views_known_dashboards_first():
    from contract_tests import seeding
    from contract_tests.client import Discovery

    empty = Discovery()
    assert seeding.thin(empty)
    assert seeding.dashboards_to_view(empty, _settings(dashboard_ids=(D1.upper(), D2))) == [D1, D2]
    fresh = seeding.dashboards_to_view(empty, _settings())
    assert len(fresh) == 1 and fresh[0] not in (D1, D2)  # no dashboard known: one new id (counted, logged)
    busy = Discovery(dashboards=[summary(D1, 9, T1), summary(D2, 3, T1)], busiest_dashboard=D1, busiest_dashboard_total=9)
    assert not seeding.thin(busy)


# -- the promise table of README.md --------------------------------------------------------------------------------

README = Path(__file__).with_name("README.md")
# Rules the table need not list: the suite's own plumbing, not promises of the spec.
PLUMBING_RULES = {"discovery", "target_usable", "coverage", "documented_success"}


def promise_table_rules(markdown: str) -> list[str]:
    """The rule names (in backticks) of the last column of the table between the promises markers."""
    block = markdown.split("<!-- promises:start -->", 1)[1].split("<!-- promises:end -->", 1)[0]
    rules = []
    for line in block.strip().splitlines()[2:]:  # after the header and its separator
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"a row of the promise table has {len(cells)} cells: {line}"
        found = re.findall(r"`([a-z][a-z0-9_]*)`", cells[2])
        assert found, f"a promise without a rule: {line}"
        rules += found
    return rules


def suite_rules() -> tuple[set[str], set[str]]:
    """(every name a rule may have: registered checks, built-in or ours, named rules and test functions;
    the rules of our own: our checks and the named rules)."""
    from schemathesis.checks import CHECKS

    registered = set(CHECKS.get_all_names())
    ours = {f.__name__ for f in CHECKS.get_by_names(sorted(registered)) if f.__module__.startswith("contract_tests")}
    tests = set()
    for path in Path(__file__).parent.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        tests |= set(re.findall(r"^def (test_[a-z0-9_]+)\(", text, flags=re.MULTILINE))
        if path.name == Path(__file__).name:
            continue  # its own crafted rule names are not rules of the suite
        ours |= set(re.findall(r'(?:violated|fail|ContractViolation)\(\s*"([a-z][a-z0-9_]*)"', text))
        ours |= set(re.findall(r'^[A-Z_]*RULE = "([a-z][a-z0-9_]*)"', text, flags=re.MULTILINE))
    return registered | ours | tests, ours


def unknown_and_unlisted(markdown: str) -> tuple[list[str], list[str]]:
    named = promise_table_rules(markdown)
    known, ours = suite_rules()
    return sorted(set(named) - known), sorted(ours - set(named) - PLUMBING_RULES)


def test_promise_table_names_real_rules():
    """The table cannot rot: each rule it names exists, and each rule of the suite maps a promise there."""
    unknown, unlisted = unknown_and_unlisted(README.read_text(encoding="utf-8"))
    assert not unknown, f"contract_tests/README.md names rules that do not exist: {unknown}"
    assert not unlisted, f"rules of the suite missing from the promise table of contract_tests/README.md: {unlisted}"


def test_promise_table_check_catches_a_rotten_table():
    text = README.read_text(encoding="utf-8")
    rotten = text.replace("`view_body_ignored`", "`view_body_ignored_renamed`")
    unknown, unlisted = unknown_and_unlisted(rotten)
    assert unknown == ["view_body_ignored_renamed"] and unlisted == ["view_body_ignored"]
