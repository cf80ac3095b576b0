"""cli.py: flags mirror MOCK_* variables (a flag wins), the banner, the temp --db of gunicorn, a real start."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests

from mock_helpers import TOKENS, TOKENS_PATH, free_port, start, stop, url
from mock_server import access_log, cli
from mock_server.config import KEYS, load_config


@pytest.fixture
def served(monkeypatch):
    """Replace both servers with recorders: main() runs fully, nothing listens."""
    calls: list[tuple] = []
    import mock_server.serving as serving

    def werkzeug(overrides, host, port, announce):
        calls.append(("werkzeug", dict(overrides), host, port))
        announce(port)  # as if bound

    def gunicorn(overrides, host, port, workers, announce):
        assert Path(overrides["DB"]).exists()
        calls.append(("gunicorn", dict(overrides), host, port, workers))
        announce(port)

    monkeypatch.setattr(serving, "run_werkzeug", werkzeug)
    monkeypatch.setattr(serving, "run_gunicorn", gunicorn)
    for key in KEYS:
        monkeypatch.delenv("MOCK_" + key, raising=False)
    return calls


def test_every_config_key_but_the_admin_token_has_a_flag():
    serve = cli.build_parser()._subparsers._group_actions[0].choices["serve"]  # noqa: SLF001
    dests = {action.dest for action in serve._actions}  # noqa: SLF001
    assert set(KEYS) - dests == {"ADMIN_TOKEN"}  # a secret on the command line would show in `ps`
    assert set(KEYS) - {"ADMIN_TOKEN"} <= dests


def test_flags_become_overrides_and_win_over_the_environment(served, monkeypatch, capsys):
    monkeypatch.setenv("MOCK_SEED", "5")
    monkeypatch.setenv("MOCK_ERROR_RATE", "0.5")
    assert cli.main(["serve", "--seed", "9", "--port", "4999", "--latency", "10-20", "--no-validate-responses",
                     "--cors-origins", "http://a.example", "--views", "100", "--audit-logs", "50",
                     "--now", "2026-11-25T12:00:00Z"]) == 0
    kind, overrides, host, port = served[0]
    assert (kind, host, port) == ("werkzeug", "127.0.0.1", 4999)
    assert overrides == {"SEED": 9, "PORT": 4999, "LATENCY": "10-20", "VALIDATE_RESPONSES": False,
                         "CORS_ORIGINS": "http://a.example", "VIEWS": 100, "AUDIT_LOGS": 50,
                         "NOW": "2026-11-25T12:00:00Z"}
    config = load_config(overrides)  # what create_app will see: the flag's seed, the environment's rate
    assert config["SEED"] == 9 and config["ERROR_RATE"] == 0.5
    out = capsys.readouterr().out
    assert "http://127.0.0.1:4999" in out and "seed 9" in out


def test_the_banner_lists_every_token_and_what_it_may_do(served, capsys):
    cli.main(["serve"])
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip().startswith("mock-")}
    assert set(lines) == {t["token"] for t in TOKENS}
    assert lines["mock-admin-token"].endswith("every operation")
    assert lines["mock-noscope-token"].endswith("no operation (403)")
    assert "401 everywhere" in lines["mock-expired-token"]
    assert "recordDashboardView" not in lines["mock-user-readonly-token"]
    assert "getAuditLog" in lines["mock-auditor-token"] and "getDashboardStats" not in lines["mock-auditor-token"]
    assert "/openapi.yaml" in out and "/__admin/health" in out
    assert "http://127.0.0.1:4010/docs" in out


def test_workers_without_a_db_get_a_temporary_file_removed_at_exit(served, capsys):
    assert cli.main(["serve", "--workers", "3"]) == 0
    kind, overrides, host, port, workers = served[0]
    assert (kind, workers) == ("gunicorn", 3)
    assert "deleted at exit" in capsys.readouterr().err
    assert not Path(overrides["DB"]).exists()


def test_the_temporary_database_leaves_no_companion_file(served, monkeypatch):
    import mock_server.serving as serving
    from mock_server.store import open_store

    stores = []

    def gunicorn(overrides, host, port, workers, announce):  # a store left open, as a worker's: its companions exist
        stores.append(open_store(overrides["DB"]))
        stores[-1].is_empty()

    monkeypatch.setattr(serving, "run_gunicorn", gunicorn)
    try:
        assert cli.main(["serve", "--workers", "2"]) == 0
        db = Path(stores[0].db_path)
        assert [p.name for p in db.parent.glob(db.name + "*")] == []
    finally:
        for store in stores:
            store.close()


def test_workers_with_a_db_keep_it(served, tmp_path):
    db = tmp_path / "mock.db"
    db.write_bytes(b"")
    cli.main(["serve", "--workers", "2", "--db", str(db)])
    assert served[0][1]["DB"] == str(db) and db.exists()


@pytest.mark.parametrize("argv, words", [
    (["serve", "--error-rate", "2"], "ERROR_RATE must be between 0 and 1"),
    (["serve", "--latency", "slow"], "latency must be milliseconds"),
    (["serve", "--spec-file", "/nonexistent.yaml"], "cannot read the spec file"),
    (["serve", "--tokens-file", "/nonexistent.yaml"], "cannot read the tokens file"),
    (["serve", "--now", "soon"], "NOW must be an ISO 8601 instant"),
])
def test_bad_settings_exit_2_with_a_message(served, capsys, argv, words):
    assert cli.main(argv) == 2
    assert words in capsys.readouterr().err
    assert served == []


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main([])
    assert caught.value.code == 2


# --- a real server ----------------------------------------------------------------------------------------------

def test_serve_with_werkzeug_for_real():
    process, base = start(["--seed", "5", "--views", "300", "--audit-logs", "200"], env={"MOCK_SEED": "99"})
    try:
        health = requests.get(base + "/__admin/health", timeout=5).json()
        assert health["seed"] == 5  # the flag won over MOCK_SEED
        response = requests.get(base + url("/dashboard/most-viewed?limit=1"), timeout=5,
                                headers={"Authorization": "Bearer mock-admin-token"})
        assert response.status_code == 200
        assert response.headers["Server"] == "insights-mock"  # no werkzeug or Python version
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert requests.get(base + url("/dashboard/most-viewed"), timeout=5).status_code == 401
    finally:
        out, err = stop(process)
    assert "mock-admin-token" in out  # the banner shows the tokens to try
    log = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [entry["status"] for entry in log if entry["operationId"]] == [200, 401]
    assert "mock-admin-token" not in err


@pytest.mark.parametrize("args, env", [(["--log-format", "text"], {}), ([], {"MOCK_LOG_FORMAT": "text"})])
def test_serve_with_the_text_log_format_for_real(args, env):
    process, base = start(["--views", "300", "--audit-logs", "200", *args], env=env)
    try:
        assert requests.get(base + url("/dashboard/most-viewed?limit=1"), timeout=5,
                            headers={"Authorization": "Bearer mock-admin-token", "X-Request-Id": "rq-42"}
                            ).status_code == 200
    finally:
        out, err = stop(process)
    lines = [line for line in err.splitlines() if " getMostViewedDashboards " in line]
    assert len(lines) == 1 and not err.lstrip().startswith("{")
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} GET " + re.escape(url("/dashboard/most-viewed")) +
                        r" 200 \d+\.\dms getMostViewedDashboards user=\S+ rid=rq-42", lines[0]), lines[0]
    assert "insights-mock serving" in out


@pytest.mark.parametrize("args, env", [(["--quiet"], {}), ([], {"MOCK_QUIET": "1"}),
                                       (["--quiet", "--workers", "2"], {})])
def test_quiet_serves_without_access_lines_for_real(args, env):
    process, base = start(["--views", "300", "--audit-logs", "200", *args], env=env)
    try:
        for _ in range(3):
            assert requests.get(base + url("/dashboard/most-viewed?limit=1"), timeout=5,
                                headers={"Authorization": "Bearer mock-admin-token"}).status_code == 200
        time.sleep(2 * access_log.FLUSH_INTERVAL_S)  # past the interval a gathered line would wait
    finally:
        out, err = stop(process)
    assert "insights-mock serving" in out  # the start-up lines still print
    assert "most-viewed" not in err and "/__admin/health" not in err and '"status"' not in err, err


def test_a_database_file_that_is_not_ours_exits_2(tmp_path, capsys, monkeypatch):
    for key in KEYS:
        monkeypatch.delenv("MOCK_" + key, raising=False)
    bad = tmp_path / "notes.db"
    bad.write_text("not a database at all, just some notes " * 100)
    assert cli.main(["serve", "--db", str(bad), "--port", str(free_port())]) == 2  # fails before binding
    assert "cannot be used" in capsys.readouterr().err


# --- scenarios, journal, reload -------------------------------------------------------------------------------

def test_scenario_journal_and_reload_flags(served, capsys):
    assert cli.main(["serve", "--scenario", "empty", "--journal-size", "10", "--reload",
                     "--scenarios-dir", str(Path(cli.__file__).parent.parent / "fixtures" / "scenarios")]) == 0
    overrides = served[0][1]
    assert overrides["SCENARIO"] == "empty" and overrides["JOURNAL_SIZE"] == 10 and overrides["RELOAD"] is True
    out = capsys.readouterr().out
    assert "scenario: empty" in out and "reload: on" in out and "/__admin/requests" in out


def test_an_unknown_scenario_exits_2_listing_the_available_ones(served, capsys):
    assert cli.main(["serve", "--scenario", "crowded"]) == 2
    err = capsys.readouterr().err
    assert "unknown scenario 'crowded'" in err and "busy, default, degraded, empty, pinned" in err
    assert served == []


def test_reload_with_workers_is_refused_with_a_reason(served, capsys):
    assert cli.main(["serve", "--reload", "--workers", "2"]) == 2
    assert "--reload works with one worker only" in capsys.readouterr().err
    assert served == []


def test_workers_get_a_journal_directory_removed_at_exit(served):
    assert cli.main(["serve", "--workers", "2"]) == 0
    directory = served[0][1]["JOURNAL_DIR"]
    assert directory and not Path(directory).exists()
    served.clear()
    cli.main(["serve", "--workers", "2", "--journal-size", "0"])
    assert "JOURNAL_DIR" not in served[0][1]


def test_gunicorn_workers_follow_a_scenario_switch_and_share_one_journal():
    process, base = start(["--workers", "2", "--views", "300", "--audit-logs", "200"])
    admin = {"Authorization": "Bearer mock-admin-token"}
    try:
        switched = requests.post(base + "/__admin/scenario", json={"name": "degraded"}, timeout=30)
        assert switched.status_code == 200 and switched.json()["scenario"] == "degraded"
        time.sleep(0.3)  # past the workers' sync interval (0.1 s)
        seen = set()
        for _ in range(40):  # both workers answer some of these (gunicorn gives no guarantee of balance)
            health = requests.get(base + "/__admin/health", timeout=5).json()
            seen.add((health["scenario"], health["errorRate"], health["latency"]))
        assert seen == {("degraded", 0.2, "200-1500")}
        requests.delete(base + "/__admin/requests", timeout=5)
        statuses = [requests.get(base + url("/dashboard/most-viewed?limit=1"), headers=admin,
                                 timeout=10).status_code for _ in range(30)]
        assert set(statuses) <= {200, 500} and 500 in statuses
        entries = requests.get(base + "/__admin/requests?limit=100", timeout=5).json()["entries"]
        assert [e["status"] for e in entries] == statuses[::-1]  # every worker's requests, newest first
        assert "mock-admin-token" not in json.dumps(entries)
    finally:
        out, err = stop(process)
    assert "Traceback" not in err


def test_serve_with_reload_for_real(tmp_path):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(Path(TOKENS_PATH).read_text())
    process, base = start(["--reload", "--tokens-file", str(tokens), "--views", "300", "--audit-logs", "200"])
    new = {"Authorization": "Bearer mock-brand-new-token"}
    try:
        assert requests.get(base + url("/dashboard/most-viewed"), headers=new, timeout=5).status_code == 401
        tokens.write_text(tokens.read_text() + "  - token: mock-brand-new-token\n"
                          "    user: {id: 65b000000000000000000002, email: b.new@acme.example, name: B New}\n"
                          "    role: User\n    scopes: [api]\n")
        deadline = time.monotonic() + 20
        while requests.get(base + url("/dashboard/most-viewed"), headers=new, timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "no reload within 20 s"
            time.sleep(0.1)
        assert requests.get(base + "/__admin/health", timeout=5).json()["reload"]["reloads"] == 1
    finally:
        out, err = stop(process)
    assert "reloaded after a change of" in err and "mock-brand-new-token" not in err


def test_scenarios_command_checks_every_file(tmp_path, capsys, monkeypatch):
    for key in KEYS:
        monkeypatch.delenv("MOCK_" + key, raising=False)
    assert cli.main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in ("busy", "default", "degraded", "empty", "pinned"))
    (tmp_path / "good.yaml").write_text("description: fine\n")
    (tmp_path / "bad.yaml").write_text(
        "pins: {dashboards: [{id: 11111111-1111-4111-8111-111111111111, name: A, owner: ghost@acme.example}]}\n")
    assert cli.main(["scenarios", "--scenarios-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "good             ok       fine" in out and "bad              INVALID" in out
    assert f"{tmp_path / 'bad.yaml'}: pins.dashboards[0].owner: 'ghost@acme.example' is neither" in out


def test_an_invalid_scenario_file_at_start_exits_2_naming_it(served, capsys, tmp_path):
    (tmp_path / "broken.yaml").write_text("errorRate: often\n")
    assert cli.main(["serve", "--scenarios-dir", str(tmp_path), "--scenario", "broken"]) == 2
    assert f"{tmp_path / 'broken.yaml'}: errorRate: 'often' is not of type 'number'" in capsys.readouterr().err
    assert served == []


def test_version_names_the_package_and_the_spec(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert re.fullmatch(r"insights-mock \d+\.\d+\.\d+\S* \(spec 2\.0\.0: Insights Audit Logs API\)\n",
                        capsys.readouterr().out)
