"""config.py: defaults -> MOCK_* environment -> test_config, one coercion per key, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mock_server.config import DEFAULT_CORS_ORIGINS, KEYS, ConfigError, explicit_keys, load_config
from mock_helpers import ROOT  # a checkout: its own files are the defaults (mock_server.resources)


def test_defaults():
    config = load_config(environ={})
    assert config["SEED"] == 42 and config["NOW"] is None and config["DB"] is None
    assert config["HOST"] == "127.0.0.1" and config["PORT"] == 4010 and config["WORKERS"] == 1
    assert config["VALIDATE_RESPONSES"] is True and config["ERROR_RATE"] == 0.0 and config["LATENCY"] is None
    assert config["MAX_CONTENT_LENGTH"] == 64 * 1024 and config["ADMIN_TOKEN"] is None
    assert config["TOKENS_FILE"] == str(ROOT / "fixtures" / "tokens.yaml")
    assert config["SPEC_FILE"] == str(ROOT / "openapi.yaml")
    assert "http://localhost:5173" in config["CORS_ORIGINS"] and "*" not in config["CORS_ORIGINS"]
    assert config["CORS_ORIGINS"] == DEFAULT_CORS_ORIGINS
    assert all(config[k] is None for k in ("USERS", "DASHBOARDS", "MAPPINGS", "VIEWS", "AUDIT_LOGS"))


def test_environment_overrides_defaults_and_test_config_overrides_environment():
    environ = {"MOCK_SEED": "7", "MOCK_ERROR_RATE": "0.25", "MOCK_VALIDATE_RESPONSES": "off",
               "MOCK_CORS_ORIGINS": "http://a.example, https://b.example/", "MOCK_VIEWS": "100",
               "MOCK_NOW": "2026-11-25T12:00:00Z", "SEED": "99"}
    config = load_config(environ=environ)
    assert config["SEED"] == 7 and config["ERROR_RATE"] == 0.25 and config["VALIDATE_RESPONSES"] is False
    assert config["CORS_ORIGINS"] == ("http://a.example", "https://b.example")
    assert config["VIEWS"] == 100
    assert config["NOW"] == datetime(2026, 11, 25, 12, tzinfo=UTC)
    config = load_config({"SEED": 8, "VALIDATE_RESPONSES": True}, environ=environ)
    assert config["SEED"] == 8 and config["VALIDATE_RESPONSES"] is True and config["ERROR_RATE"] == 0.25


def test_every_key_has_an_environment_variable():
    environ = {"MOCK_" + key: value for key, value in {
        "SEED": "1", "NOW": "2026-01-01", "DB": "/tmp/x.db", "USERS": "3", "DASHBOARDS": "4", "MAPPINGS": "5",
        "VIEWS": "6", "AUDIT_LOGS": "7", "LATENCY": "10-20", "ERROR_RATE": "0.5", "TOKENS_FILE": "/t.yaml",
        "SPEC_FILE": "/s.yaml", "VALIDATE_RESPONSES": "0", "CORS_ORIGINS": "*", "HOST": "0.0.0.0",
        "PORT": "8000", "WORKERS": "3", "ADMIN_TOKEN": "adm", "MAX_CONTENT_LENGTH": "10", "SCENARIO": "busy",
        "SCENARIOS_DIR": "/sc", "JOURNAL_SIZE": "5", "RELOAD": "yes",
        "RESPONSE_CACHE": "off", "LOG_FORMAT": "text", "QUIET": "1", "MAX_SESSIONS": "3",
        "SESSION_TTL": "30m", "SESSION_BUSY_S": "2", "FREEZE_CLOCK": "1"}.items()}
    assert {key[5:] for key in environ} == set(KEYS) - {"DATABASE_URL"}  # the other store than DB: below
    config = load_config(environ=environ)
    defaults = load_config(environ={})
    assert all(config[key] != defaults[key] for key in KEYS if key != "DATABASE_URL")
    url = "postgresql://mock@db.example:5432/insights"
    assert load_config(environ={"MOCK_DATABASE_URL": url})["DATABASE_URL"] == url != defaults["DATABASE_URL"]


def test_session_durations_take_units_and_refuse_nonsense():
    assert load_config(environ={"MOCK_SESSION_TTL": "90"})["SESSION_TTL"] == 90
    assert load_config(environ={"MOCK_SESSION_TTL": "30m"})["SESSION_TTL"] == 1800
    assert load_config(environ={"MOCK_SESSION_TTL": "1h"})["SESSION_TTL"] == 3600
    for bad in ("soon", "-5", "0", "1d"):
        with pytest.raises(ConfigError, match="SESSION_TTL must be a"):
            load_config(environ={"MOCK_SESSION_TTL": bad})


def test_the_log_format_is_json_or_text():
    assert load_config(environ={})["LOG_FORMAT"] == "json" and load_config(environ={})["QUIET"] is False
    assert load_config(environ={"MOCK_LOG_FORMAT": " TEXT "})["LOG_FORMAT"] == "text"
    with pytest.raises(ConfigError, match="LOG_FORMAT must be json or text"):
        load_config(environ={"MOCK_LOG_FORMAT": "xml"})


def test_a_database_url_and_a_db_file_exclude_each_other():
    url = "postgresql://mock:secret@db.example/insights"
    with pytest.raises(ConfigError, match="not both"):
        load_config({"DATABASE_URL": url}, environ={"MOCK_DB": "/tmp/x.db"})
    with pytest.raises(ConfigError, match="PostgreSQL URL") as refused:
        load_config({"DATABASE_URL": "mysql://mock:secret@db.example/insights"}, environ={})
    assert "secret" not in str(refused.value)
    assert load_config({"DATABASE_URL": " "}, environ={})["DATABASE_URL"] is None


def test_scenario_journal_and_reload_defaults():
    config = load_config(environ={})
    assert config["SCENARIO"] == "default" and config["JOURNAL_SIZE"] == 200 and config["RELOAD"] is False
    assert config["SCENARIOS_DIR"] == str(ROOT / "fixtures" / "scenarios")
    with pytest.raises(ConfigError, match="JOURNAL_SIZE must be between 0"):
        load_config({"JOURNAL_SIZE": -1}, environ={})


def test_explicit_keys_are_the_ones_given_with_a_value():
    # A scenario may set what was not given; an empty variable or a None override counts as not given.
    environ = {"MOCK_SEED": "7", "MOCK_LATENCY": " ", "SEED": "1"}
    assert explicit_keys({"VIEWS": 10, "USERS": None, "TESTING": True}, environ) == {"SEED", "VIEWS"}
    assert explicit_keys(None, {}) == set()


def test_other_keys_pass_through_for_flask():
    assert load_config({"TESTING": True}, environ={})["TESTING"] is True


def test_now_forms():
    assert load_config({"NOW": "2026-11-25"}, environ={})["NOW"] == datetime(2026, 11, 25, tzinfo=UTC)
    assert load_config({"NOW": "2026-11-25T14:00:00+02:00"}, environ={})["NOW"] == datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert load_config({"NOW": datetime(2026, 1, 1)}, environ={})["NOW"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert load_config({"NOW": ""}, environ={})["NOW"] is None


@pytest.mark.parametrize("key, value, words", [
    ("SEED", "x", "SEED must be an integer"),
    ("SEED", True, "SEED must be an integer"),
    ("PORT", "70000", "PORT must be between 0 and 65535"),
    ("WORKERS", 0, "WORKERS must be between 1"),
    ("ERROR_RATE", "1.5", "ERROR_RATE must be between 0 and 1"),
    ("ERROR_RATE", "often", "ERROR_RATE must be a number"),
    ("VALIDATE_RESPONSES", "maybe", "VALIDATE_RESPONSES must be true or false"),
    ("NOW", "yesterday", "NOW must be an ISO 8601 instant"),
    ("VIEWS", "-1", "VIEWS must be between 0"),
    ("CORS_ORIGINS", "localhost:3000", "is not an origin"),
    ("HOST", "", "HOST must not be empty"),
])
def test_bad_values_name_the_key(key, value, words):
    with pytest.raises(ConfigError, match=words):
        load_config({key: value}, environ={})


def test_bad_environment_values_are_refused_too():
    with pytest.raises(ConfigError, match="MAX_CONTENT_LENGTH"):
        load_config(environ={"MOCK_MAX_CONTENT_LENGTH": "big"})
