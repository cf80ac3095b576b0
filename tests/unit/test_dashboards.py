"""api/dashboards.py: the four dashboard-view operations, over HTTP, against the real store."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_app
from mock_helpers import ADMIN, NOW, READONLY, SPEC, TOKENS, UNKNOWN_UUID, WRITERS, bearer, url

MESSAGES = {  # the spec's 200 examples are the source of the success sentences
    op["operationId"]: op["responses"]["200"]["content"]["application/json"]["example"]["message"]
    for item in SPEC["paths"].values() for op in item.values() if isinstance(op, dict)
}


def user_of(token: str) -> dict:
    return next(t["user"] for t in TOKENS if t["token"] == token)


def expected_recently_viewed(generated, user_id: str) -> list[tuple[str, str]]:
    """(dashboardId, the user's last view) from the raw dataset, in the documented order."""
    known = {d["dashboardId"] for d in generated.dashboards}
    last: dict[str, str] = {}
    for view in generated.views:
        if view["userId"] == user_id and view["dashboardId"] in known:
            last[view["dashboardId"]] = max(last.get(view["dashboardId"], ""), view["viewedAt"])
    by_id = sorted(last.items())  # dashboardId ascending breaks ties...
    return sorted(by_id, key=lambda item: item[1], reverse=True)  # ...because the sort is stable


@pytest.mark.parametrize("token", ["mock-admin-token", "mock-poweruser-token", "mock-user-readonly-token"])
def test_recently_viewed_is_the_token_users_own_history(client, generated, token):
    response = client.get(url("/dashboard/recently-viewed?limit=5"), headers=bearer(token))
    assert response.status_code == 200
    body = response.json
    assert body["message"] == MESSAGES["getRecentlyViewedDashboards"]
    expected = expected_recently_viewed(generated, user_of(token)["id"])[:5]
    assert expected, "the data generator gives every token user a history"
    assert [(d["dashboardId"], d["lastViewedAt"]) for d in body["data"]] == expected
    totals = Counter(v["dashboardId"] for v in generated.views)
    assert [d["viewCount"] for d in body["data"]] == [totals[d["dashboardId"]] for d in body["data"]]


def test_recently_viewed_differs_between_users(client):
    admin = client.get(url("/dashboard/recently-viewed?limit=100"), headers=ADMIN).json["data"]
    other = client.get(url("/dashboard/recently-viewed?limit=100"), headers=bearer("mock-poweruser-token")).json["data"]
    assert [d["lastViewedAt"] for d in admin] != [d["lastViewedAt"] for d in other]


def test_list_limit_defaults_to_10_and_is_honoured(client):
    assert len(client.get(url("/dashboard/most-viewed"), headers=ADMIN).json["data"]) == 10
    assert len(client.get(url("/dashboard/most-viewed?limit=3"), headers=ADMIN).json["data"]) == 3
    assert len(client.get(url("/dashboard/recently-viewed?limit=1"), headers=ADMIN).json["data"]) == 1


def test_most_viewed_orders_by_total_count_and_matches_stats(client, generated):
    body = client.get(url("/dashboard/most-viewed?limit=100"), headers=ADMIN).json
    assert body["message"] == MESSAGES["getMostViewedDashboards"]
    known = {d["dashboardId"] for d in generated.dashboards}
    totals = Counter(v["dashboardId"] for v in generated.views if v["dashboardId"] in known)
    assert {d["dashboardId"]: d["viewCount"] for d in body["data"]} == dict(totals)
    keys = [(-d["viewCount"], _neg_time(d["lastViewedAt"]), d["dashboardId"]) for d in body["data"]]
    assert keys == sorted(keys)
    for item in body["data"][:3]:
        stats = client.get(url(f"/dashboard/{item['dashboardId']}/stats"), headers=ADMIN).json["data"]
        assert stats["totalViews"] == item["viewCount"]
        assert stats["lastViewedAt"] == item["lastViewedAt"]


def _neg_time(stamp: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in stamp)


def test_stats_of_a_known_dashboard(client, generated):
    dashboard = generated.dashboards[0]["dashboardId"]
    views = [v for v in generated.views if v["dashboardId"] == dashboard]
    body = client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json
    assert body["message"] == MESSAGES["getDashboardStats"]
    stats = body["data"]
    assert stats["dashboardId"] == dashboard
    assert stats["totalViews"] == len(views)
    assert stats["uniqueViewers"] == len({v["userId"] for v in views})
    if views:
        assert stats["firstViewedAt"] == min(v["viewedAt"] for v in views)
        assert stats["lastViewedAt"] == max(v["viewedAt"] for v in views)
    days = [d["date"] for d in stats["dailyViews"]]
    assert days[-1] == NOW[:10] and len(days) == 30
    assert sum(d["views"] for d in stats["dailyViews"]) == stats["viewsLast30Days"]


def test_stats_of_an_unknown_dashboard_are_zero(client):
    stats = client.get(url(f"/dashboard/{UNKNOWN_UUID}/stats"), headers=ADMIN).json["data"]
    assert (stats["totalViews"], stats["uniqueViewers"], stats["viewsLast7Days"], stats["viewsLast30Days"]) == (0, 0, 0, 0)
    assert stats["firstViewedAt"] is None and stats["lastViewedAt"] is None
    today = date.fromisoformat(NOW[:10])
    assert [d["date"] for d in stats["dailyViews"]] == [str(today - timedelta(days=29 - i)) for i in range(30)]
    assert all(d["views"] == 0 for d in stats["dailyViews"])


def test_upper_case_ids_name_the_same_dashboard(client, generated):
    dashboard = generated.dashboards[0]["dashboardId"]
    lower = client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]
    upper = client.get(url(f"/dashboard/{dashboard.upper()}/stats"), headers=ADMIN).json["data"]
    assert upper == lower


def test_recording_a_view_counts_at_once_everywhere(client, generated):
    top = client.get(url("/dashboard/most-viewed?limit=1"), headers=ADMIN).json["data"][0]
    dashboard = top["dashboardId"]
    response = client.post(url(f"/dashboard/{dashboard}/view"), headers=bearer("mock-poweruser-token"))
    assert response.status_code == 200
    body = response.json
    assert body["message"] == MESSAGES["recordDashboardView"]
    event = body["data"]
    assert event["dashboardId"] == dashboard
    assert event["userId"] == user_of("mock-poweruser-token")["id"]
    assert event["viewCount"] == top["viewCount"] + 1
    assert event["viewedAt"].startswith(NOW[:10])  # the app clock starts at NOW

    stats = client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]
    assert stats["totalViews"] == event["viewCount"]
    assert stats["lastViewedAt"] == event["viewedAt"]
    assert stats["dailyViews"][-1]["views"] >= 1
    most = client.get(url("/dashboard/most-viewed?limit=1"), headers=ADMIN).json["data"][0]
    assert (most["dashboardId"], most["viewCount"], most["lastViewedAt"]) == (dashboard, event["viewCount"], event["viewedAt"])
    recent = client.get(url("/dashboard/recently-viewed?limit=1"), headers=bearer("mock-poweruser-token")).json["data"][0]
    assert (recent["dashboardId"], recent["lastViewedAt"]) == (dashboard, event["viewedAt"])
    logs = client.get(url(f"/dashboard/{dashboard}/logs?pageSize=1"), headers=ADMIN).json["data"][0]
    assert (logs["action"], logs["user_id"], logs["createdAt"]) == ("view", event["userId"], event["viewedAt"])


def test_a_view_of_an_unknown_dashboard_counts_but_is_not_listed(client):
    response = client.post(url(f"/dashboard/{UNKNOWN_UUID}/view"), headers=ADMIN)
    assert response.status_code == 200
    assert response.json["data"]["viewCount"] == 1
    stats = client.get(url(f"/dashboard/{UNKNOWN_UUID}/stats"), headers=ADMIN).json["data"]
    assert stats["totalViews"] == 1
    for path in ("/dashboard/most-viewed?limit=100", "/dashboard/recently-viewed?limit=100"):
        listed = {d["dashboardId"] for d in client.get(url(path), headers=ADMIN).json["data"]}
        assert UNKNOWN_UUID not in listed


def test_a_request_body_on_record_view_is_ignored(client, generated):
    dashboard = generated.dashboards[1]["dashboardId"]
    response = client.post(url(f"/dashboard/{dashboard}/view"), headers=ADMIN, json={"viewCount": 99999})
    assert response.status_code == 200
    assert response.json["data"]["viewCount"] != 99999


def test_read_only_token_reads_but_cannot_record(client, generated):
    dashboard = generated.dashboards[0]["dashboardId"]
    assert client.get(url(f"/dashboard/{dashboard}/stats"), headers=READONLY).status_code == 200
    before = client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]["totalViews"]
    assert client.post(url(f"/dashboard/{dashboard}/view"), headers=READONLY).status_code == 403
    assert client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]["totalViews"] == before


# --- cross-endpoint invariants under random sequences of views ------------------------------------------

@pytest.fixture(scope="module")
def shared_app():
    app = make_app()
    yield app
    app.extensions["insights_mock"].default.store.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(posts=st.lists(st.tuples(st.sampled_from(WRITERS), st.integers(0, 12)), min_size=1, max_size=12))
def test_random_views_keep_every_endpoint_consistent(shared_app, posts):
    client = shared_app.test_client()
    assert client.post("/__admin/reset").status_code == 200
    dashboards = [d["dashboardId"] for d in shared_app.extensions["insights_mock"].default.make_dataset().dashboards]
    targets = dashboards + [UNKNOWN_UUID]  # index 12 is a well-formed id of no dashboard

    def figures(dashboard: str) -> tuple[int, int]:
        stats = client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]
        views = client.get(url(f"/dashboard/{dashboard}/logs?action=view&pageSize=1"), headers=ADMIN)
        return stats["totalViews"], views.json["pagination"]["totalItems"]

    touched = sorted({targets[i] for _, i in posts})
    before = {d: figures(d) for d in touched}
    posted = Counter()
    for token, index in posts:
        dashboard = targets[index]
        event = client.post(url(f"/dashboard/{dashboard}/view"), headers=bearer(token)).json["data"]
        posted[dashboard] += 1
        assert event["viewCount"] == before[dashboard][0] + posted[dashboard]
        if dashboard != UNKNOWN_UUID:
            recent = client.get(url("/dashboard/recently-viewed?limit=100"), headers=bearer(token)).json["data"]
            newest = recent[0]["lastViewedAt"]
            assert all(d["lastViewedAt"] <= newest for d in recent)
            mine = next(d for d in recent if d["dashboardId"] == dashboard)
            assert mine["lastViewedAt"] == event["viewedAt"] == newest  # it leads (ties: by id, per the spec)

    most = {d["dashboardId"]: d["viewCount"]
            for d in client.get(url("/dashboard/most-viewed?limit=100"), headers=ADMIN).json["data"]}
    for dashboard in touched:
        total, view_entries = figures(dashboard)
        assert total == before[dashboard][0] + posted[dashboard]
        assert view_entries == before[dashboard][1] + posted[dashboard]
        if dashboard != UNKNOWN_UUID:
            assert most[dashboard] == total
