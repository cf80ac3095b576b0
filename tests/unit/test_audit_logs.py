"""api/audit_logs.py: entries of a dashboard, of a mapping, one by id; paging and filters."""

from __future__ import annotations

from collections import Counter

import pytest

from mock_helpers import ADMIN, AUDITOR, UNKNOWN_OBJECT_ID, UNKNOWN_UUID, url


def busiest(generated, target_type: str) -> str:
    counts = Counter(e["target_id"] for e in generated.audit_logs if e["type"] == target_type)
    return counts.most_common(1)[0][0]


def entries_of(generated, target_type: str, target_id: str) -> list[dict]:
    found = [e for e in generated.audit_logs if e["type"] == target_type and e["target_id"] == target_id]
    return sorted(found, key=lambda e: (e["createdAt"], e["_id"]), reverse=True)


@pytest.mark.parametrize("kind, target_type", [("dashboard", "dashboard"), ("mapping", "tool_mapping")])
def test_pages_concatenate_to_the_whole_newest_first_list(client, generated, kind, target_type):
    target = busiest(generated, target_type)
    expected = entries_of(generated, target_type, target)
    assert len(expected) > 3
    size = 3
    seen: list[dict] = []
    page = 1
    while True:
        body = client.get(url(f"/{kind}/{target}/logs?page={page}&pageSize={size}"), headers=AUDITOR).json
        meta = body["pagination"]
        assert meta == {"page": page, "pageSize": size, "totalItems": len(expected),
                        "totalPages": -(-len(expected) // size), "hasNext": page * size < len(expected)}
        seen += body["data"]
        if not meta["hasNext"]:
            break
        page += 1
    assert [e["_id"] for e in seen] == [e["_id"] for e in expected]
    assert seen == expected


def test_messages_and_defaults(client, generated):
    target = busiest(generated, "dashboard")
    body = client.get(url(f"/dashboard/{target}/logs"), headers=ADMIN).json
    assert body["message"] == "Successfully retrieved dashboard audit logs"
    assert body["pagination"]["page"] == 1 and body["pagination"]["pageSize"] == 50
    mapping = busiest(generated, "tool_mapping")
    assert client.get(url(f"/mapping/{mapping}/logs"), headers=ADMIN).json["message"] == \
        "Successfully retrieved mapping audit logs"


def test_a_page_past_the_last_is_empty(client, generated):
    target = busiest(generated, "dashboard")
    body = client.get(url(f"/dashboard/{target}/logs?page=1000000"), headers=ADMIN).json
    assert body["data"] == []
    assert body["pagination"]["hasNext"] is False
    assert body["pagination"]["totalItems"] == len(entries_of(generated, "dashboard", target))


@pytest.mark.parametrize("kind", ["dashboard", "mapping"])
def test_unknown_targets_have_an_empty_page(client, kind):
    body = client.get(url(f"/{kind}/{UNKNOWN_UUID}/logs"), headers=ADMIN).json
    assert body["data"] == []
    assert body["pagination"] == {"page": 1, "pageSize": 50, "totalItems": 0, "totalPages": 0, "hasNext": False}


def test_filter_by_action_and_user(client, generated):
    target = busiest(generated, "dashboard")
    entries = entries_of(generated, "dashboard", target)
    action = Counter(e["action"] for e in entries).most_common(1)[0][0]
    user = Counter(e["user_id"] for e in entries).most_common(1)[0][0]
    body = client.get(url(f"/dashboard/{target}/logs?action={action}&pageSize=1000"), headers=ADMIN).json
    assert [e["_id"] for e in body["data"]] == [e["_id"] for e in entries if e["action"] == action]
    body = client.get(url(f"/dashboard/{target}/logs?userId={user.upper()}&pageSize=1000"), headers=ADMIN).json
    assert [e["_id"] for e in body["data"]] == [e["_id"] for e in entries if e["user_id"] == user]
    both = client.get(url(f"/dashboard/{target}/logs?userId={user}&action={action}&pageSize=1000"), headers=ADMIN).json
    assert [e["_id"] for e in both["data"]] == [e["_id"] for e in entries
                                               if e["user_id"] == user and e["action"] == action]


def test_from_and_to_are_inclusive(client, generated):
    target = busiest(generated, "dashboard")
    entries = entries_of(generated, "dashboard", target)
    middle = entries[len(entries) // 2]["createdAt"]
    body = client.get(url(f"/dashboard/{target}/logs?from={middle}&to={middle}&pageSize=1000"), headers=ADMIN).json
    assert body["data"] and all(e["createdAt"] == middle for e in body["data"])
    newer = client.get(url(f"/dashboard/{target}/logs?from={middle}&pageSize=1000"), headers=ADMIN).json
    assert [e["_id"] for e in newer["data"]] == [e["_id"] for e in entries if e["createdAt"] >= middle]
    older = client.get(url(f"/dashboard/{target}/logs?to={middle}&pageSize=1000"), headers=ADMIN).json
    assert [e["_id"] for e in older["data"]] == [e["_id"] for e in entries if e["createdAt"] <= middle]


def test_from_and_to_accept_offsets(client, generated):
    target = busiest(generated, "dashboard")
    entries = entries_of(generated, "dashboard", target)
    stamp = next(e["createdAt"] for e in entries if e["createdAt"][11:13] < "23")  # 2026-10-01T10:00:00.000Z
    shifted = f"{stamp[:11]}{int(stamp[11:13]) + 1:02d}{stamp[13:23]}%2B01:00"  # the same instant at +01:00
    body = client.get(url(f"/dashboard/{target}/logs?from={shifted}&to={shifted}&pageSize=1000"), headers=ADMIN).json
    assert body["data"] and all(e["createdAt"] == stamp for e in body["data"])


def test_from_after_to_is_a_400(client, generated):
    target = busiest(generated, "dashboard")
    response = client.get(url(f"/dashboard/{target}/logs?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z"),
                          headers=ADMIN)
    assert response.status_code == 400
    assert response.json["details"] == [{"location": "query", "name": "from",
                                         "message": "'from' must not be after 'to'"}]


def test_one_entry_by_id(client, generated):
    entry = entries_of(generated, "dashboard", busiest(generated, "dashboard"))[0]
    body = client.get(url(f"/{entry['_id']}"), headers=AUDITOR).json
    assert body == {"data": entry, "message": "Successfully retrieved audit log"}
    assert client.get(url(f"/{entry['_id'].upper()}"), headers=AUDITOR).json["data"] == entry


def test_an_unknown_entry_is_a_404_in_the_spec_words(client):
    response = client.get(url(f"/{UNKNOWN_OBJECT_ID}"), headers=AUDITOR)
    assert response.status_code == 404
    body = response.json
    assert (body["status"], body["error"], body["message"]) == (404, "not_found", "Not Found - Audit log entry not found")


def test_a_recorded_view_is_an_entry_of_the_dashboard_and_by_id(client, generated):
    dashboard = generated.dashboards[0]["dashboardId"]
    event = client.post(url(f"/dashboard/{dashboard}/view"), headers=ADMIN).json["data"]
    page = client.get(url(f"/dashboard/{dashboard}/logs?action=view&pageSize=1"), headers=AUDITOR).json["data"]
    entry = page[0]
    assert (entry["type"], entry["target_id"], entry["user_id"], entry["createdAt"]) == \
        ("dashboard", dashboard, event["userId"], event["viewedAt"])
    assert entry["dashboard"]["dashboardId"] == dashboard
    assert client.get(url(f"/{entry['_id']}"), headers=AUDITOR).json["data"] == entry
