"""Configuration in three layers: defaults -> MOCK_* environment variables -> the test_config dict
(which is also how the CLI passes its flags, so a flag wins over the environment).

Values from any layer may be strings (as environment variables are) or already typed; each key has one
coercion, so "0.05" and 0.05 mean the same. Bad values raise ConfigError naming the key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from .resources import data_root

# The repository's openapi.yaml and fixtures/ in a checkout, the copies bundled in the package once installed
# from a wheel (mock_server.resources).
DATA_ROOT = data_root()
ENV_PREFIX = "MOCK_"

# Local dev servers of the usual frontend tool chains (CRA/Next, Vite, Angular, Vue CLI/webpack).
DEFAULT_CORS_ORIGINS = tuple(
    f"http://{host}:{port}" for port in (3000, 5173, 4200, 8080) for host in ("localhost", "127.0.0.1")
)


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key and the value."""


def _int(minimum: int | None = None, maximum: int | None = None) -> Callable[[str, Any], int]:
    def coerce(key: str, value: Any) -> int:
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be an integer, not {value!r}")
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise ConfigError(f"{key} must be an integer, not {value!r}") from None
        if minimum is not None and number < minimum or maximum is not None and number > maximum:
            raise ConfigError(f"{key} must be between {minimum} and {maximum}, not {number}")
        return number
    return coerce


def _optional_size(key: str, value: Any) -> int | None:
    if value is None or str(value).strip() == "":
        return None
    return _int(0, 10_000_000)(key, value)


def _rate(key: str, value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number between 0 and 1, not {value!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"{key} must be between 0 and 1, not {rate}")
    return rate


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be true or false, not {value!r}")


def _optional_str(key: str, value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _str(key: str, value: Any) -> str:
    text = _optional_str(key, value)
    if text is None:
        raise ConfigError(f"{key} must not be empty")
    return text


def _origins(key: str, value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value or ())
    origins = tuple(str(o).strip().rstrip("/") for o in items if str(o).strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(f"{key}: {origin!r} is not an origin like http://localhost:3000 (or *)")
    return origins


def _log_format(key: str, value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ("json", "text"):
        raise ConfigError(f"{key} must be json or text, not {value!r}")
    return text


def _database_url(key: str, value: Any) -> str | None:
    text = _optional_str(key, value)
    if text is not None and not text.startswith(("postgresql://", "postgres://")):
        # the value is not repeated: it may hold a password
        raise ConfigError(f"{key} must be a PostgreSQL URL like postgresql://user@host:5432/dbname")
    return text


def _duration(key: str, value: Any) -> float:
    """Seconds: a number, or a number with s, m or h (90, 90s, 30m, 1h)."""
    text = str(value).strip().lower()
    factor = {"s": 1, "m": 60, "h": 3600}.get(text[-1:], None) if text else None
    number = text[:-1] if factor is not None else text
    try:
        seconds = float(number) * (factor or 1)
    except ValueError:
        raise ConfigError(f"{key} must be a duration like 90, 90s, 30m or 1h, not {value!r}") from None
    if not 0 < seconds < 10 ** 9:
        raise ConfigError(f"{key} must be a positive duration, not {value!r}")
    return seconds


def _now(key: str, value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"{key} must be an ISO 8601 instant like 2026-11-25T12:00:00Z, not {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# key -> (coercion, default). Paths default to the files under DATA_ROOT.
KEYS: dict[str, tuple[Callable[[str, Any], Any], Any]] = {
    "SEED": (_int(), 42),
    "NOW": (_now, None),
    "DB": (_optional_str, None),  # a SQLite file
    "DATABASE_URL": (_database_url, None),  # a PostgreSQL database (mock_server.store.postgres); not with DB
    "USERS": (_optional_size, None),  # None: the data generator's default size
    "DASHBOARDS": (_optional_size, None),
    "MAPPINGS": (_optional_size, None),
    "VIEWS": (_optional_size, None),
    "AUDIT_LOGS": (_optional_size, None),
    "LATENCY": (_optional_str, None),
    "ERROR_RATE": (_rate, 0.0),
    "TOKENS_FILE": (_str, str(DATA_ROOT / "fixtures" / "tokens.yaml")),
    "SPEC_FILE": (_str, str(DATA_ROOT / "openapi.yaml")),
    "VALIDATE_RESPONSES": (_bool, True),
    "CORS_ORIGINS": (_origins, DEFAULT_CORS_ORIGINS),
    "HOST": (_str, "127.0.0.1"),
    "PORT": (_int(0, 65535), 4010),
    "WORKERS": (_int(1, 64), 1),
    "ADMIN_TOKEN": (_optional_str, None),
    "MAX_CONTENT_LENGTH": (_int(1, 1 << 30), 64 * 1024),
    "SCENARIO": (_str, "default"),
    "SCENARIOS_DIR": (_str, str(DATA_ROOT / "fixtures" / "scenarios")),
    "JOURNAL_SIZE": (_int(0, 100_000), 200),  # 0: no journal
    "RELOAD": (_bool, False),
    "RESPONSE_CACHE": (_bool, True),  # mock_server.api.cache: GET answers reused while the data is unchanged
    "LOG_FORMAT": (_log_format, "json"),  # the access log (mock_server.access_log): one JSON or text line
    "QUIET": (_bool, False),  # no access log at all; start-up lines and errors still print
    "MAX_SESSIONS": (_int(0, 10_000), 64),  # live sessions besides the default one (mock_server.sessions); 0: none
    "SESSION_TTL": (_duration, 3600.0),  # seconds a session may stay unused before it is dropped
    "SESSION_BUSY_S": (_duration, 5.0),  # a session used this recently is never evicted for a new one
    "FREEZE_CLOCK": (_bool, False),  # the clock stays at the anchor (NOW): "5 minutes ago" renders the same
}
SIZE_KEYS = ("USERS", "DASHBOARDS", "MAPPINGS", "VIEWS", "AUDIT_LOGS")


def explicit_keys(test_config: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> set[str]:
    """The keys given by the environment or test_config (not left at their default), with a value: a
    scenario may set what is not explicit (mock_server.data.runtime)."""
    environ = os.environ if environ is None else environ
    given = {key for key in KEYS if str(environ.get(ENV_PREFIX + key, "")).strip()}
    given |= {key for key, value in (test_config or {}).items() if key in KEYS and value is not None}
    return given


def load_config(test_config: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The merged, coerced configuration. Keys of test_config that are not ours (TESTING, ...) pass
    through untouched for Flask."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {key: default for key, (_, default) in KEYS.items()}
    for key in KEYS:
        if ENV_PREFIX + key in environ:
            raw[key] = environ[ENV_PREFIX + key]
    extra: dict[str, Any] = {}
    for key, value in (test_config or {}).items():
        if key in KEYS:
            raw[key] = value
        else:
            extra[key] = value
    config = {key: KEYS[key][0](key, value) for key, value in raw.items()}
    if config["DB"] is not None and config["DATABASE_URL"] is not None:
        raise ConfigError("DB and DATABASE_URL are two stores: give a SQLite file (--db, MOCK_DB) or a PostgreSQL "
                          "URL (--database-url, MOCK_DATABASE_URL), not both")
    config.update(extra)
    return config
