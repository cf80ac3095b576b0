"""reload.py: edits of the tokens file, the spec and the scenario files apply without a restart; a broken edit
keeps the previous state and is reported."""

from __future__ import annotations

import shutil
import time

import pytest
import yaml
from werkzeug.test import Client

from mock_helpers import ADMIN, NOW, ROOT, SMALL, SPEC_PATH, TOKENS_PATH, bearer, url
from mock_server.reload import ReloadingApp

MOST_VIEWED = url("/dashboard/most-viewed")


@pytest.fixture
def files(tmp_path):
    shutil.copy(TOKENS_PATH, tmp_path / "tokens.yaml")
    shutil.copy(SPEC_PATH, tmp_path / "openapi.yaml")
    shutil.copytree(ROOT / "fixtures" / "scenarios", tmp_path / "scenarios")
    return tmp_path


@pytest.fixture
def make(files):
    made: list[ReloadingApp] = []

    def factory(**overrides) -> tuple[ReloadingApp, Client]:
        config = {"TESTING": True, "NOW": NOW, **SMALL, "TOKENS_FILE": str(files / "tokens.yaml"),
                  "SPEC_FILE": str(files / "openapi.yaml"), "SCENARIOS_DIR": str(files / "scenarios"),
                  **overrides}
        reloader = ReloadingApp(config, watch=False, log=lambda text: logged.append(text))
        made.append(reloader)
        return reloader, Client(reloader)

    logged: list[str] = []
    factory.logged = logged  # type: ignore[attr-defined]
    yield factory
    for reloader in made:
        reloader.stop()
        reloader.state.default.store.close()


def edit(path, change) -> None:
    """Rewrite a file with `change` applied; bump the mtime so the change is seen even within one tick."""
    before = path.stat().st_mtime_ns
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    if path.stat().st_mtime_ns == before:
        import os
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def add_token(text: str) -> str:
    document = yaml.safe_load(text)
    document["tokens"].append({"token": "mock-new-token", "user": {"id": "65b000000000000000000001",
                               "email": "new.person@acme.example", "name": "New Person"},
                               "role": "Administrator", "scopes": ["api"]})
    return yaml.safe_dump(document, sort_keys=False)


def test_nothing_changed_nothing_rebuilt(make):
    reloader, _ = make()
    app = reloader.app
    assert reloader.check() is False and reloader.app is app


def test_sessions_and_their_views_survive_a_reload(make, files):
    reloader, client = make()
    dashboard = reloader.state.default.make_dataset().dashboards[0]["dashboardId"]
    stats = url(f"/dashboard/{dashboard}/stats")
    session = {**ADMIN, "X-Mock-Session": "kept"}
    before = client.get(stats, headers=ADMIN).json["data"]["totalViews"]
    client.post(url(f"/dashboard/{dashboard}/view"), headers=session)
    edit(files / "tokens.yaml", add_token)
    assert reloader.check() is True
    assert client.get(stats, headers=session).json["data"]["totalViews"] == before + 1
    assert client.get(stats, headers=ADMIN).json["data"]["totalViews"] == before
    assert client.get(MOST_VIEWED, headers={**bearer("mock-new-token"), "X-Mock-Session": "kept"}).status_code == 200
    assert client.get("/__admin/requests", headers={"X-Mock-Session": "kept"}).json["count"] == 3


def test_a_new_token_works_after_an_edit_and_recorded_views_are_kept(make, files):
    reloader, client = make()
    dashboard = reloader.state.default.make_dataset().dashboards[0]["dashboardId"]
    before = client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]["totalViews"]
    client.post(url(f"/dashboard/{dashboard}/view"), headers=ADMIN)
    assert client.get(MOST_VIEWED, headers=bearer("mock-new-token")).status_code == 401
    edit(files / "tokens.yaml", add_token)
    assert reloader.check() is True
    assert client.get(MOST_VIEWED, headers=bearer("mock-new-token")).status_code == 200
    assert client.get(url(f"/dashboard/{dashboard}/stats"), headers=ADMIN).json["data"]["totalViews"] == before + 1
    health = client.get("/__admin/health").json
    reload = health["reload"]
    assert reload["enabled"] is True and reload["reloads"] == 1 and reload["error"] is None
    assert any("reloaded after a change of" in line and "tokens.yaml" in line for line in make.logged)


def test_a_changed_spec_parameter_and_example_show(make, files):
    reloader, client = make()
    assert client.get(MOST_VIEWED + "?limit=80", headers=ADMIN).status_code == 200
    forced = client.get(MOST_VIEWED + "?__code=500", headers=ADMIN).json
    assert forced["message"] != "Edited example message"

    def change(text: str) -> str:
        document = yaml.safe_load(text)
        document["components"]["parameters"]["Limit"]["schema"]["maximum"] = 50
        op = document["paths"]["/api/v2/insights/kpis/audit-logs/dashboard/most-viewed"]["get"]
        response = op["responses"]["500"]
        if "$ref" in response:  # a shared response: edit the component it points to
            name = response["$ref"].rsplit("/", 1)[1]
            response = document["components"]["responses"][name]
        content = response["content"]["application/json"]
        examples = content.get("examples")
        if examples:
            for example in examples.values():
                example.setdefault("value", {})["message"] = "Edited example message"
        else:
            content["example"]["message"] = "Edited example message"
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)

    edit(files / "openapi.yaml", change)
    assert reloader.check() is True
    refused = client.get(MOST_VIEWED + "?limit=80", headers=ADMIN)
    assert refused.status_code == 400 and refused.json["details"][0]["name"] == "limit"
    assert client.get(MOST_VIEWED + "?__code=500", headers=ADMIN).json["message"] == "Edited example message"
    assert client.get("/openapi.yaml").get_data(as_text=True).count("Edited example message") >= 1


@pytest.mark.parametrize("target, breakage, words", [
    ("tokens.yaml", lambda text: text + "\n  - token: [unclosed\n", "tokens.yaml is not valid YAML"),
    ("openapi.yaml", lambda text: text.replace("openapi: 3.1.0", "openapi: [3"), "openapi.yaml"),
    ("scenarios/default.yaml", lambda text: text + "\nsizes: {views: lots}\n", "sizes.views: 'lots' is not of type"),
])
def test_a_broken_edit_keeps_the_old_state_and_is_reported(make, files, target, breakage, words):
    reloader, client = make()
    edit(files / "tokens.yaml", add_token)
    assert reloader.check() is True
    app = reloader.app
    edit(files / target, breakage)
    assert reloader.check() is False and reloader.app is app
    assert client.get(MOST_VIEWED, headers=bearer("mock-new-token")).status_code == 200  # still serving
    health = client.get("/__admin/health").json["reload"]
    assert words in health["error"] and health["errorAt"] is not None and health["reloads"] == 1
    assert any("reload failed, still serving the previous state" in line for line in make.logged)
    # The fix is picked up and clears the error.
    shutil.copy({"tokens.yaml": TOKENS_PATH, "openapi.yaml": SPEC_PATH,
                 "scenarios/default.yaml": ROOT / "fixtures" / "scenarios" / "default.yaml"}[target], files / target)
    edit(files / target, lambda text: text + "\n")
    assert reloader.check() is True
    assert client.get("/__admin/health").json["reload"]["error"] is None


def test_an_edit_of_the_current_scenario_regenerates_its_data(make, files):
    reloader, client = make(SCENARIO="pinned")
    top = client.get(MOST_VIEWED + "?limit=1", headers=ADMIN).json["data"][0]
    assert top["name"] == "Pinned – Release Readiness" and top["viewCount"] == 5000
    edit(files / "scenarios" / "pinned.yaml",
         lambda text: text.replace("Pinned – Release Readiness", "Renamed Live").replace("views: 5000", "views: 4321"))
    assert reloader.check() is True
    top = client.get(MOST_VIEWED + "?limit=1", headers=ADMIN).json["data"][0]
    assert (top["name"], top["viewCount"]) == ("Renamed Live", 4321)


def test_a_switched_scenario_survives_a_reload_of_the_tokens(make, files):
    reloader, client = make()
    client.post("/__admin/scenario", json={"name": "empty"})
    client.get("/__admin/requests")  # admin calls are not journaled; this one below is
    client.get(MOST_VIEWED, headers=ADMIN)
    edit(files / "tokens.yaml", add_token)
    assert reloader.check() is True
    assert client.get("/__admin/scenario").json["name"] == "empty"
    assert client.get("/__admin/health").json["counts"]["views"] == 0
    assert len(client.get("/__admin/requests").json["entries"]) == 1  # the journal is kept too


def test_the_watcher_thread_picks_up_an_edit(files):
    config = {"TESTING": True, "NOW": NOW, **SMALL, "TOKENS_FILE": str(files / "tokens.yaml"),
              "SPEC_FILE": str(files / "openapi.yaml"), "SCENARIOS_DIR": str(files / "scenarios")}
    reloader = ReloadingApp(config, interval_s=0.05, log=lambda text: None)
    try:
        client = Client(reloader)
        edit(files / "tokens.yaml", add_token)
        deadline = time.monotonic() + 20
        while client.get(MOST_VIEWED, headers=bearer("mock-new-token")).status_code != 200:
            assert time.monotonic() < deadline, "the watcher did not reload in 20 s"
            time.sleep(0.05)
    finally:
        reloader.stop()
        reloader.state.default.store.close()


def test_without_reload_health_says_so(client):
    assert client.get("/__admin/health").json["reload"] == {"enabled": False}
