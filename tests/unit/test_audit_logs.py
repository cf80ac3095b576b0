"""api/audit_logs.py: entries of a dashboard, of a mapping, one by id; paging and filters."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest

from mock_helpers import ADMIN, AUDITOR, NOW, UNKNOWN_OBJECT_ID, UNKNOWN_UUID, url
from mock_server.api.audit_logs import day_bounds
from mock_server.timestamps import iso_ms, to_ms


def busiest(generated, target_type: str) -> str:
    counts = Counter(e["target_id"] for e in generated.audit_logs if e["type"] == target_type)
    return counts.most_common(1)[0][0]


def entries_of(generated, target_type: str, target_id: str) -> list[dict]:
    found = [e for e in generated.audit_logs if e["type"] == target_type and e["target_id"] == target_id]
    return sorted(found, key=lambda e: (e["createdAt"], e["_id"]), reverse=True)


ALL = "start_date=1970-01-01"  # the whole history, instead of the default 7 days
TODAY = date.fromisoformat(NOW[:10])  # the app's clock starts at NOW


def in_days(entries: list[dict], first: date | None, last: date | None) -> list[dict]:
    return [e for e in entries if (first is None or e["createdAt"][:10] >= first.isoformat())
            and (last is None or e["createdAt"][:10] <= last.isoformat())]


def ids(entries: list[dict]) -> list[str]:
    return [e["_id"] for e in entries]


@pytest.mark.parametrize("kind, target_type", [("dashboard", "dashboard"), ("mapping", "tool_mapping")])
def test_pages_concatenate_to_the_whole_newest_first_list(client, generated, kind, target_type):
    target = busiest(generated, target_type)
    expected = entries_of(generated, target_type, target)
    assert len(expected) > 3
    size = 3
    seen: list[dict] = []
    page = 1
    while True:
        body = client.get(url(f"/{kind}/{target}/logs?{ALL}&page={page}&page_size={size}"), headers=AUDITOR).json
        meta = body["pagination"]
        assert meta == {"page": page, "page_size": size, "total_items": len(expected),
                        "total_pages": -(-len(expected) // size), "has_next": page * size < len(expected)}
        seen += body["data"]
        if not meta["has_next"]:
            break
        page += 1
    assert ids(seen) == ids(expected)
    assert seen == expected


def test_messages_and_defaults(client, generated):
    target = busiest(generated, "dashboard")
    body = client.get(url(f"/dashboard/{target}/logs"), headers=ADMIN).json
    assert body["message"] == "Successfully retrieved dashboard audit logs"
    assert body["pagination"]["page"] == 1 and body["pagination"]["page_size"] == 50
    mapping = busiest(generated, "tool_mapping")
    assert client.get(url(f"/mapping/{mapping}/logs"), headers=ADMIN).json["message"] == \
        "Successfully retrieved mapping audit logs"


@pytest.mark.parametrize("kind, target_type", [("dashboard", "dashboard"), ("mapping", "tool_mapping")])
def test_without_a_date_filter_the_list_holds_the_last_7_days(client, generated, kind, target_type):
    target = busiest(generated, target_type)
    entries = entries_of(generated, target_type, target)
    week = in_days(entries, TODAY - timedelta(days=6), TODAY)
    assert week and len(week) < len(entries)  # the default window cuts, and there is something in it
    body = client.get(url(f"/{kind}/{target}/logs?page_size=1000"), headers=ADMIN).json
    assert ids(body["data"]) == ids(week)
    assert body["pagination"]["total_items"] == len(week)
    explicit = client.get(url(f"/{kind}/{target}/logs?page_size=1000&start_date={TODAY - timedelta(days=6)}"
                              f"&end_date={TODAY}"), headers=ADMIN).json
    assert explicit == body


def test_the_last_7_days_have_pages_to_turn(client, generated):
    target = busiest(generated, "dashboard")
    first = client.get(url(f"/dashboard/{target}/logs?page_size=10"), headers=ADMIN).json
    assert first["pagination"]["has_next"] is True and len(first["data"]) == 10


def test_start_and_end_date_are_inclusive_utc_days(client, generated):
    target = busiest(generated, "dashboard")
    entries = entries_of(generated, "dashboard", target)
    day = date.fromisoformat(entries[len(entries) // 2]["createdAt"][:10])
    one = client.get(url(f"/dashboard/{target}/logs?start_date={day}&end_date={day}&page_size=1000"), headers=ADMIN).json
    assert one["data"] and ids(one["data"]) == ids(in_days(entries, day, day))
    newer = client.get(url(f"/dashboard/{target}/logs?start_date={day}&page_size=1000"), headers=ADMIN).json
    assert ids(newer["data"]) == ids(in_days(entries, day, None))
    older = client.get(url(f"/dashboard/{target}/logs?end_date={day}&page_size=1000"), headers=ADMIN).json
    assert ids(older["data"]) == ids(in_days(entries, None, day))
    assert len(newer["data"]) + len(older["data"]) == len(entries) + len(one["data"])


def test_a_day_runs_from_its_first_to_its_last_millisecond():
    lo, hi = day_bounds(date(2026, 11, 3), date(2026, 11, 4), TODAY)
    assert (iso_ms(to_ms(lo)), iso_ms(to_ms(hi))) == ("2026-11-03T00:00:00.000Z", "2026-11-04T23:59:59.999Z")
    assert day_bounds(None, None, date(2026, 11, 25)) == day_bounds(date(2026, 11, 19), date(2026, 11, 25), TODAY)
    assert day_bounds(date(2026, 11, 3), None, TODAY)[1] is None
    assert day_bounds(None, date(2026, 11, 3), TODAY)[0] is None
    assert day_bounds(date.min, date.max, TODAY)[1].year == 9999  # no overflow at the ends of the calendar


@pytest.mark.parametrize("query, name", [
    ("start_date=2026-11-02&end_date=2026-11-01", "start_date"),
    ("start_date=2026-11-01T00:00:00Z", "start_date"),  # a day, not an instant
    ("end_date=2026-02-30", "end_date"),
    ("end_date=20261101", "end_date"),
    ("page_size=0", "page_size"),
    ("page_size=1001", "page_size"),
    ("page=0", "page"),
    ("user_id=not-an-id", "user_id"),
    ("type=spaceship", "type"),
    ("action=teleport", "action"),
])
def test_bad_paging_and_filter_values_are_a_400_naming_the_parameter(client, generated, query, name):
    target = busiest(generated, "dashboard")
    response = client.get(url(f"/dashboard/{target}/logs?{query}"), headers=ADMIN)
    assert response.status_code == 400
    assert response.json["message"] == "Bad Request - Invalid query parameter"
    assert [d["name"] for d in response.json["details"]] == [name]


def test_start_after_end_says_so(client, generated):
    response = client.get(url(f"/dashboard/{busiest(generated, 'dashboard')}/logs"
                              "?start_date=2026-11-02&end_date=2026-11-01"), headers=ADMIN)
    assert response.json["details"] == [{"location": "query", "name": "start_date",
                                         "message": "'start_date' must not be after 'end_date'"}]


def test_page_size_goes_up_to_1000(client, generated):
    target = busiest(generated, "dashboard")
    body = client.get(url(f"/dashboard/{target}/logs?{ALL}&page_size=1000"), headers=ADMIN).json
    assert body["pagination"]["page_size"] == 1000
    assert len(body["data"]) == min(1000, len(entries_of(generated, "dashboard", target)))


def test_the_old_parameter_names_are_not_read(client, generated):
    target = busiest(generated, "dashboard")
    body = client.get(url(f"/dashboard/{target}/logs?pageSize=2&from=2026-11-24T00:00:00Z&userId=x"),
                      headers=ADMIN).json  # unknown query parameters are ignored, as everywhere
    assert body == client.get(url(f"/dashboard/{target}/logs"), headers=ADMIN).json


def test_a_page_past_the_last_is_empty(client, generated):
    target = busiest(generated, "dashboard")
    body = client.get(url(f"/dashboard/{target}/logs?{ALL}&page=1000000"), headers=ADMIN).json
    assert body["data"] == []
    assert body["pagination"]["has_next"] is False
    assert body["pagination"]["total_items"] == len(entries_of(generated, "dashboard", target))


@pytest.mark.parametrize("kind", ["dashboard", "mapping"])
def test_unknown_targets_have_an_empty_page(client, kind):
    body = client.get(url(f"/{kind}/{UNKNOWN_UUID}/logs"), headers=ADMIN).json
    assert body["data"] == []
    assert body["pagination"] == {"page": 1, "page_size": 50, "total_items": 0, "total_pages": 0, "has_next": False}


def test_filter_by_action_and_user(client, generated):
    target = busiest(generated, "dashboard")
    entries = entries_of(generated, "dashboard", target)
    action = Counter(e["action"] for e in entries).most_common(1)[0][0]
    user = Counter(e["user_id"] for e in entries).most_common(1)[0][0]
    base = f"/dashboard/{target}/logs?{ALL}&page_size=1000"
    body = client.get(url(f"{base}&action={action}"), headers=ADMIN).json
    assert ids(body["data"]) == ids(e for e in entries if e["action"] == action)
    body = client.get(url(f"{base}&user_id={user.upper()}"), headers=ADMIN).json
    assert ids(body["data"]) == ids(e for e in entries if e["user_id"] == user)
    both = client.get(url(f"{base}&user_id={user}&action={action}"), headers=ADMIN).json
    assert ids(both["data"]) == ids(e for e in entries if e["user_id"] == user and e["action"] == action)


@pytest.mark.parametrize("kind, target_type", [("dashboard", "dashboard"), ("mapping", "tool_mapping")])
def test_filter_by_type(client, generated, kind, target_type):
    target = busiest(generated, target_type)
    base = f"/{kind}/{target}/logs?{ALL}&page_size=1000"
    everything = client.get(url(base), headers=ADMIN).json
    assert client.get(url(f"{base}&type={target_type}"), headers=ADMIN).json == everything
    other = "pipeline"
    assert client.get(url(f"{base}&type={other}"), headers=ADMIN).json["data"] == []


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
    page = client.get(url(f"/dashboard/{dashboard}/logs?action=view&page_size=1"), headers=AUDITOR).json["data"]
    entry = page[0]
    assert (entry["type"], entry["target_id"], entry["user_id"], entry["createdAt"]) == \
        ("dashboard", dashboard, event["userId"], event["viewedAt"])
    assert entry["dashboard"]["dashboardId"] == dashboard
    assert client.get(url(f"/{entry['_id']}"), headers=AUDITOR).json["data"] == entry
