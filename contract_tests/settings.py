"""Suite settings: command-line options, their CONTRACT_* environment variables, and the tokens to use.

Every option has an environment variable so CI and QA can configure the suite without editing commands;
an option given on the command line wins over its variable. `SuiteSettings` is built once per pytest run
(conftest.pytest_configure) and is read-only afterwards.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from contract_tests import spec

from mock_server.resources import data_root

REPO_ROOT = Path(__file__).resolve().parent.parent
# The checkout's fixtures/ when run from one, else the copy installed with the wheel (mock_server/_bundled/).
TOKENS_FILE = data_root() / "fixtures" / "tokens.yaml"

# Example counts: quick enough for CI on two cores, deep for the nightly run.
QUICK = {"max_examples": 25, "stateful_scenarios": 15, "stateful_steps": 8}
DEEP = {"max_examples": 300, "stateful_scenarios": 150, "stateful_steps": 25}
DEFAULT_SEED = 20261125
DEFAULT_MOCK_SEED = 42
DEFAULT_TIMEOUT = 10.0
# Against a shared (non-local) deployment the suite stays polite unless told otherwise.
DEFAULT_REMOTE_RPS = 10.0

# (option, env var, kind, help). Kinds: str, int, float, flag.
OPTIONS = [
    ("--base-url", "CONTRACT_BASE_URL", "str", "run over HTTP against this deployment (e.g. https://staging.example/)"),
    ("--serve-mock", "CONTRACT_SERVE_MOCK", "flag", "start the real mock on 127.0.0.1 as a subprocess and test it over HTTP"),
    ("--mock-variant", "CONTRACT_MOCK_VARIANT", "str", "in-process only: test a deliberately broken variant of the mock (see broken_variants.py)"),
    ("--mock-seed", "CONTRACT_MOCK_SEED", "int", f"data seed of the mock started in-process or by --serve-mock (default {DEFAULT_MOCK_SEED})"),
    ("--app-factory", "CONTRACT_APP_FACTORY", "str", "in-process only: 'module:function' building the WSGI app (default mock_server:create_app)"),
    ("--token", "CONTRACT_TOKEN", "str", "read-write token whose role may call every operation (live targets)"),
    ("--readonly-token", "CONTRACT_READONLY_TOKEN", "str", "token with scope api-readonly only (live targets)"),
    ("--no-role-token", "CONTRACT_NO_ROLE_TOKEN", "str", "token with a valid scope and a role without audit-entry access (live)"),
    ("--no-scope-token", "CONTRACT_NO_SCOPE_TOKEN", "str", "valid token without any insights scope (live targets)"),
    ("--expired-token", "CONTRACT_EXPIRED_TOKEN", "str", "an expired token (live targets)"),
    ("--readonly-role", "CONTRACT_READONLY_ROLE", "str", "site role of the read-only token, if known (sharpens the auth matrix)"),
    ("--no-role-role", "CONTRACT_NO_ROLE_ROLE", "str", "site role of the no-role token, if known (sharpens the auth matrix)"),
    ("--mapping-ids", "CONTRACT_MAPPING_IDS", "str", "comma-separated tool-mapping ids with audit entries (no operation lists mappings)"),
    ("--dashboard-ids", "CONTRACT_DASHBOARD_IDS", "str", "comma-separated ids of existing dashboards the suite may view to make data on an empty tenant (no operation lists dashboards)"),
    ("--deep", "CONTRACT_DEEP", "flag", "many more examples and stateful scenarios (nightly)"),
    ("--max-examples", "CONTRACT_MAX_EXAMPLES", "int", "override the examples per property test"),
    ("--stateful-scenarios", "CONTRACT_STATEFUL_SCENARIOS", "int", "override the number of stateful scenarios"),
    ("--contract-seed", "CONTRACT_SEED", "int", f"seed of data generation (default {DEFAULT_SEED}); the same seed replays the same requests"),
    ("--allow-writes", "CONTRACT_ALLOW_WRITES", "flag", "allow the view POST against a non-local deployment"),
    ("--request-timeout", "CONTRACT_REQUEST_TIMEOUT", "float", f"seconds per HTTP request (default {DEFAULT_TIMEOUT:g})"),
    ("--max-rps", "CONTRACT_MAX_RPS", "float", f"requests per second over HTTP (default {DEFAULT_REMOTE_RPS:g} for non-local URLs, unlimited locally; 0 = unlimited)"),
    ("--contract-report", "CONTRACT_REPORT", "str", "write a markdown summary of the run (failures with curl reproducers) to this path"),
    ("--report-dir", "CONTRACT_REPORT_DIR", "str", "write contract.md, contract.html and junit.xml here (an existing file is never overwritten: a numbered name is used)"),
    # Not --strict: pytest owns that name (its strict mode); pytest's --strict also makes the suite strict.
    ("--contract-strict", "CONTRACT_STRICT", "flag", "against --base-url, also fail the run on failures that rest only on the spec's x-assumption marks (in-process and --serve-mock are always strict; pytest's own --strict implies it)"),
    ("--allow-partial", "CONTRACT_ALLOW_PARTIAL", "flag", "do not fail the run when fewer than all operations were exercised with a valid token, or a test was skipped for lack of a token"),
    ("--header", "CONTRACT_HEADERS", "list", "extra header 'Name: value' on every request to the target (repeatable; the env var takes one per line), e.g. a gateway key or a tenant"),
    ("--oauth-token-url", "CONTRACT_OAUTH_TOKEN_URL", "str", "fetch the read-write token from this OAuth2 token endpoint (client credentials grant), refreshed before it expires"),
    ("--oauth-client-id", "CONTRACT_OAUTH_CLIENT_ID", "str", "OAuth2 client id (with --oauth-token-url)"),
    ("--oauth-client-secret", "CONTRACT_OAUTH_CLIENT_SECRET", "str", "OAuth2 client secret (with --oauth-token-url; prefer the env var)"),
    ("--oauth-scope", "CONTRACT_OAUTH_SCOPE", "str", "OAuth2 scope(s) to ask for, space-separated (optional)"),
]


def add_options(parser) -> None:
    group = parser.getgroup("contract", "contract suite (contract_tests/README.md)")
    for name, env, kind, help_text in OPTIONS:
        dest = "contract_" + name.lstrip("-").replace("-", "_")
        help_text = f"{help_text} [env {env}]"
        if kind == "flag":
            group.addoption(name, action="store_true", default=None, dest=dest, help=help_text)
        elif kind == "list":
            group.addoption(name, action="append", default=None, dest=dest, metavar="VALUE", help=help_text)
        else:
            metavar = {"int": "N", "float": "X"}.get(kind, "VALUE")
            group.addoption(name, action="store", default=None, dest=dest, metavar=metavar, help=help_text)


def _raw(config, name: str, env: str):
    value = config.getoption("contract_" + name.lstrip("-").replace("-", "_"))
    if value is None:
        value = os.environ.get(env) or None
    return value


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def is_local_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Principal:
    """A token and what the suite knows about it. None means "not known": the matrix then accepts either answer."""

    kind: str  # full, readonly, no_role, no_scope, expired
    # The token, or a callable giving the current one (an OAuth2 token refreshed before it expires). Never
    # printed: pytest shows fixture values in failure tracebacks.
    secret: object = field(repr=False)
    scopes: frozenset[str] | None = None
    role: str | None = None
    # Roles the token is known not to hold (a no-role token lacks the audit-entry roles by definition).
    roles_not_held: frozenset[str] = frozenset()
    expired: bool = False
    user_id: str | None = None  # the token's user, when known (from the mock's tokens file)

    @property
    def token(self) -> str:
        return self.secret() if callable(self.secret) else self.secret


# Where each live token comes from, for skip reasons.
TOKEN_SOURCES = {
    "full": ("--token", "CONTRACT_TOKEN"),
    "readonly": ("--readonly-token", "CONTRACT_READONLY_TOKEN"),
    "no_role": ("--no-role-token", "CONTRACT_NO_ROLE_TOKEN"),
    "no_scope": ("--no-scope-token", "CONTRACT_NO_SCOPE_TOKEN"),
    "expired": ("--expired-token", "CONTRACT_EXPIRED_TOKEN"),
}


@dataclass(frozen=True)
class SuiteSettings:
    base_url: str | None
    serve_mock: bool
    mock_variant: str | None
    mock_seed: int
    app_factory: str
    principals: dict[str, Principal] = field(default_factory=dict)
    deep: bool = False
    max_examples: int = QUICK["max_examples"]
    stateful_scenarios: int = QUICK["stateful_scenarios"]
    stateful_steps: int = QUICK["stateful_steps"]
    seed: int = DEFAULT_SEED
    allow_writes: bool = False
    request_timeout: float = DEFAULT_TIMEOUT
    max_rps: float = 0.0
    report_path: Path | None = None
    mapping_ids: tuple[str, ...] = ()
    dashboard_ids: tuple[str, ...] = ()  # existing dashboards to view when the tenant has no data (seeding.py)
    report_dir: Path | None = None
    allow_partial: bool = False
    headers: tuple[tuple[str, str], ...] = ()  # extra headers on every HTTP request to the target
    strict: bool = False  # --strict: assumed failures fail a --base-url run too

    @property
    def excuses_assumptions(self) -> bool:
        """A deployment may differ from what the spec only assumes (x-assumption); the mock, ours, may not."""
        return self.base_url is not None and not self.strict

    @property
    def in_process(self) -> bool:
        return self.base_url is None and not self.serve_mock

    @property
    def exclusive(self) -> bool:
        """Nobody else talks to the target: counts can be compared exactly and state reset per scenario."""
        return self.base_url is None

    @property
    def local(self) -> bool:
        return self.base_url is None or is_local_url(self.base_url)

    @property
    def writes_allowed(self) -> bool:
        return self.local or self.allow_writes

    @property
    def target_label(self) -> str:
        if self.serve_mock:
            return "the mock served on 127.0.0.1 (--serve-mock)"
        if self.base_url:
            return self.base_url
        variant = f", variant {self.mock_variant!r}" if self.mock_variant else ""
        return f"the mock in-process ({self.app_factory}{variant})"

    def principal(self, kind: str) -> Principal | None:
        return self.principals.get(kind)

    def missing_token_reason(self, kind: str) -> str:
        option, env = TOKEN_SOURCES[kind]
        return f"no {kind.replace('_', '-')} token for {self.target_label}: set {env} (or {option})"


class UsageError(Exception):
    """A bad combination of options; reported by pytest as a usage error."""


def from_pytest_config(config) -> SuiteSettings:
    base_url = _raw(config, "--base-url", "CONTRACT_BASE_URL")
    serve_mock = _flag(_raw(config, "--serve-mock", "CONTRACT_SERVE_MOCK") or False)
    variant = _raw(config, "--mock-variant", "CONTRACT_MOCK_VARIANT")
    if base_url and serve_mock:
        raise UsageError("--base-url and --serve-mock are exclusive: one target per run")
    if variant and (base_url or serve_mock):
        raise UsageError("--mock-variant builds a broken mock in-process; it cannot be combined with --base-url/--serve-mock")
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"--base-url must be an http(s) URL, got {base_url!r}")
    deep = _flag(_raw(config, "--deep", "CONTRACT_DEEP") or False)
    counts = DEEP if deep else QUICK
    max_examples = _int(_raw(config, "--max-examples", "CONTRACT_MAX_EXAMPLES"), counts["max_examples"], "--max-examples")
    scenarios = _int(
        _raw(config, "--stateful-scenarios", "CONTRACT_STATEFUL_SCENARIOS"), counts["stateful_scenarios"], "--stateful-scenarios"
    )
    timeout = _float(_raw(config, "--request-timeout", "CONTRACT_REQUEST_TIMEOUT"), DEFAULT_TIMEOUT, "--request-timeout")
    local = base_url is None or is_local_url(base_url)
    max_rps = _float(_raw(config, "--max-rps", "CONTRACT_MAX_RPS"), 0.0 if local else DEFAULT_REMOTE_RPS, "--max-rps")
    report = _raw(config, "--contract-report", "CONTRACT_REPORT")
    report_dir = _raw(config, "--report-dir", "CONTRACT_REPORT_DIR")
    headers = parse_headers(config.getoption("contract_header") or [], os.environ.get("CONTRACT_HEADERS", ""))
    if base_url:
        principals = _live_principals(config, timeout)
    else:
        principals = principals_from_tokens_file(TOKENS_FILE)
    return SuiteSettings(
        base_url=base_url.rstrip("/") if base_url else None,
        serve_mock=serve_mock,
        mock_variant=variant,
        mock_seed=_int(_raw(config, "--mock-seed", "CONTRACT_MOCK_SEED"), DEFAULT_MOCK_SEED, "--mock-seed"),
        app_factory=_raw(config, "--app-factory", "CONTRACT_APP_FACTORY") or "mock_server:create_app",
        principals=principals,
        deep=deep,
        max_examples=max_examples,
        stateful_scenarios=scenarios,
        stateful_steps=counts["stateful_steps"],
        seed=_int(_raw(config, "--contract-seed", "CONTRACT_SEED"), DEFAULT_SEED, "--contract-seed"),
        allow_writes=_flag(_raw(config, "--allow-writes", "CONTRACT_ALLOW_WRITES") or False),
        request_timeout=timeout,
        max_rps=max_rps,
        report_path=Path(report) if report else None,
        mapping_ids=tuple(m.strip() for m in (_raw(config, "--mapping-ids", "CONTRACT_MAPPING_IDS") or "").split(",") if m.strip()),
        dashboard_ids=tuple(d.strip() for d in (_raw(config, "--dashboard-ids", "CONTRACT_DASHBOARD_IDS") or "").split(",") if d.strip()),
        report_dir=Path(report_dir) if report_dir else None,
        allow_partial=_flag(_raw(config, "--allow-partial", "CONTRACT_ALLOW_PARTIAL") or False),
        headers=headers,
        strict=_flag(_raw(config, "--contract-strict", "CONTRACT_STRICT") or False) or bool(config.getoption("strict", False)),
    )


# Headers the suite sets itself: an extra one of these names would change what a test means.
RESERVED_HEADERS = frozenset({"authorization", "content-type", "content-length", "host"})


def parse_headers(options: list[str], env_value: str) -> tuple[tuple[str, str], ...]:
    """`--header 'Name: value'` (repeatable) and CONTRACT_HEADERS (one per line); the command line comes last,
    so it wins for a name given in both."""
    lines = [line for line in env_value.splitlines() if line.strip()] + list(options)
    found: dict[str, tuple[str, str]] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name or any(c.isspace() for c in name):
            raise UsageError(f"--header/CONTRACT_HEADERS must look like 'Name: value', got {line!r}")
        if name.lower() in RESERVED_HEADERS:
            raise UsageError(f"--header {name}: the suite sets {name} itself (tokens: --token or --oauth-token-url)")
        found[name.lower()] = (name, value)
    return tuple(found.values())


def _int(value, default: int, name: str) -> int:
    if value is None:
        return default
    try:
        result = int(value)
    except ValueError:
        raise UsageError(f"{name} must be an integer, got {value!r}") from None
    if result < 0:
        raise UsageError(f"{name} must not be negative, got {value!r}")
    return result


def _float(value, default: float, name: str) -> float:
    if value is None:
        return default
    try:
        result = float(value)
    except ValueError:
        raise UsageError(f"{name} must be a number, got {value!r}") from None
    if result < 0:
        raise UsageError(f"{name} must not be negative, got {value!r}")
    return result


def _oauth(config, timeout: float):
    """The read-write token's source when an OAuth2 token endpoint is given, else None."""
    url = _raw(config, "--oauth-token-url", "CONTRACT_OAUTH_TOKEN_URL")
    values = {name: _raw(config, f"--oauth-{name.replace('_', '-')}", f"CONTRACT_OAUTH_{name.upper()}")
              for name in ("client_id", "client_secret", "scope")}
    if not url:
        if values["client_id"] or values["client_secret"]:
            raise UsageError("an OAuth2 client id/secret needs CONTRACT_OAUTH_TOKEN_URL (--oauth-token-url)")
        return None
    if not values["client_id"] or not values["client_secret"]:
        raise UsageError("--oauth-token-url needs CONTRACT_OAUTH_CLIENT_ID and CONTRACT_OAUTH_CLIENT_SECRET")
    if _raw(config, "--token", "CONTRACT_TOKEN"):
        raise UsageError("give the read-write token either as CONTRACT_TOKEN or through CONTRACT_OAUTH_TOKEN_URL, not both")
    from contract_tests.oauth import ClientCredentials

    return ClientCredentials(url, values["client_id"], values["client_secret"], values["scope"], timeout=timeout)


def _live_principals(config, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Principal]:
    found: dict[str, Principal] = {}
    audit_roles = spec.roles_of_tag("Audit logs")
    oauth = _oauth(config, timeout)
    for kind, (option, env) in TOKEN_SOURCES.items():
        token = oauth if kind == "full" and oauth is not None else _raw(config, option, env)
        if not token:
            continue
        if kind == "full":
            # By definition: read-write, and a role every operation admits.
            found[kind] = Principal(kind, token, scopes=spec.all_scopes(), role=None)
        elif kind == "readonly":
            role = _raw(config, "--readonly-role", "CONTRACT_READONLY_ROLE")
            found[kind] = Principal(kind, token, scopes=frozenset({"api-readonly"}), role=role)
        elif kind == "no_role":
            role = _raw(config, "--no-role-role", "CONTRACT_NO_ROLE_ROLE")
            found[kind] = Principal(kind, token, scopes=None, role=role, roles_not_held=audit_roles)
        elif kind == "no_scope":
            found[kind] = Principal(kind, token, scopes=frozenset(), role=None)
        else:
            found[kind] = Principal(kind, token, expired=True)
    return found


def principals_from_tokens_file(path: Path, now: datetime | None = None) -> dict[str, Principal]:
    """Pick one token of each kind from the mock's tokens file, by what the spec says each kind must be.

    The choice follows the spec's x-required-* rather than token names, so a renamed or reordered tokens file
    still gives the suite the right identities.
    """
    now = now or datetime.now(UTC)
    with path.open(encoding="utf-8") as fh:
        entries = yaml.safe_load(fh)["tokens"]
    ops = spec.operations()
    found: dict[str, Principal] = {}

    def admits(entry, op, *, scope: bool = True, role: bool = True) -> bool:
        ok_scope = bool(set(entry.get("scopes", [])) & op.required_scopes)
        ok_role = entry.get("role") in op.required_roles
        return (ok_scope or not scope) and (ok_role or not role)

    def expired(entry) -> bool:
        expires = entry.get("expires")
        return bool(expires) and datetime.fromisoformat(str(expires).replace("Z", "+00:00")) <= now

    kinds = {
        "full": lambda e: not expired(e) and all(admits(e, op) for op in ops),
        # Reads pass, and some operation is refused for the scope alone (the write).
        "readonly": lambda e: not expired(e)
        and any(admits(e, op) for op in ops)
        and any(admits(e, op, scope=False) and not admits(e, op) for op in ops),
        # Every scope check passes, and some operation is refused for the role alone.
        "no_role": lambda e: not expired(e)
        and all(admits(e, op, role=False) for op in ops)
        and any(not admits(e, op) for op in ops),
        "no_scope": lambda e: not expired(e) and not any(admits(e, op, role=False) for op in ops),
        "expired": expired,
    }
    for kind, matches in kinds.items():
        entry = next((e for e in entries if matches(e)), None)
        if entry is not None:
            found[kind] = Principal(
                kind,
                entry["token"],
                scopes=frozenset(entry.get("scopes", [])),
                role=entry.get("role"),
                expired=kind == "expired",
                user_id=(entry.get("user") or {}).get("id"),
            )
    return found
