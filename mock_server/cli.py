"""`insights-mock serve`: every flag mirrors a MOCK_* environment variable, and a given flag wins.

    insights-mock serve                              werkzeug, threaded, in-memory data, 127.0.0.1:4010
    insights-mock serve --workers 4 --db mock.db     gunicorn with 4 worker processes sharing one SQLite file
    insights-mock serve --database-url postgresql://mock@db/insights   replicas on several machines, one database
    insights-mock serve --latency 50-300 --error-rate 0.05 --seed 7 --now 2026-11-25T12:00:00Z
    insights-mock serve --scenario empty --reload     a new tenant; edits of fixtures/openapi.yaml apply live
    insights-mock scenarios                          check every scenario file and list them
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import access_log
from .auth import TokenFileError, TokenRegistry, may_call
from .config import ConfigError, load_config
from .data.scenarios import load as load_scenario
from .faults import parse_latency
from .spec import SpecError, load_spec
from .store import StoreError
from .store.postgres_sql import redact_url
from .timestamps import data_anchor, iso

# flag -> config key (the env var is MOCK_<key>)
_FLAGS: list[tuple[str, str, dict[str, Any], str]] = [
    ("--host", "HOST", {}, "address to bind (default 127.0.0.1; anything else locks /__admin)"),
    ("--port", "PORT", {"type": int}, "port (default 4010)"),
    ("--seed", "SEED", {"type": int}, "seed of the generated data and of the fault RNG (default 42)"),
    ("--now", "NOW", {}, "anchor instant of the data, ISO 8601 (default: start of today, UTC)"),
    ("--db", "DB", {}, "SQLite file shared by workers (default: in memory)"),
    ("--database-url", "DATABASE_URL", {}, "PostgreSQL database shared by replicas and their workers, "
                                           "postgresql://user[:password]@host[:port]/dbname (instead of --db; "
                                           "needs the `postgres` extra)"),
    ("--users", "USERS", {"type": int}, "generated users"),
    ("--dashboards", "DASHBOARDS", {"type": int}, "generated dashboards"),
    ("--mappings", "MAPPINGS", {"type": int}, "generated tool mappings"),
    ("--views", "VIEWS", {"type": int}, "generated view events"),
    ("--audit-logs", "AUDIT_LOGS", {"type": int}, "generated audit log entries"),
    ("--latency", "LATENCY", {}, "added latency per API request in ms: 100 or 50-300"),
    ("--error-rate", "ERROR_RATE", {"type": float}, "share of API requests answered with the documented 500"),
    ("--workers", "WORKERS", {"type": int}, "1: werkzeug (threaded); N>1: gunicorn with N processes"),
    ("--cors-origins", "CORS_ORIGINS", {}, "comma-separated browser origins allowed (default: local dev ports)"),
    ("--tokens-file", "TOKENS_FILE", {}, "tokens fixture (default fixtures/tokens.yaml)"),
    ("--spec-file", "SPEC_FILE", {}, "OpenAPI document (default openapi.yaml)"),
    ("--max-content-length", "MAX_CONTENT_LENGTH", {"type": int}, "largest request body in bytes (413 above)"),
    ("--scenario", "SCENARIO", {}, "scenario to start in: default, empty, busy, degraded, pinned or your own "
                                   "(a NAME.yaml of --scenarios-dir)"),
    ("--scenarios-dir", "SCENARIOS_DIR", {}, "directory of scenario files (default fixtures/scenarios)"),
    ("--journal-size", "JOURNAL_SIZE", {"type": int}, "requests kept for GET /__admin/requests (default 200; 0: off)"),
    ("--max-sessions", "MAX_SESSIONS", {"type": int}, "live sessions (X-Mock-Session or the mock_session cookie) "
                                                    "besides the default one (default 64; 0: none)"),
    ("--session-ttl", "SESSION_TTL", {}, "how long an unused session lives: 90s, 30m, 1h (default 1h)"),
    ("--session-busy", "SESSION_BUSY_S", {}, "a session used this recently is never dropped to make room for a "
                                            "new one (default 5s)"),
    ("--log-format", "LOG_FORMAT", {"choices": ("json", "text")}, "the access log on stderr: one JSON line per "
                                                                 "request (default), or one readable text line"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="insights-mock",
                                     description="Spec-first mock of the Insights Audit Logs API.")
    parser.add_argument("--version", action="version", version=version_text(),
                        help="the package's version and that of the spec it serves by default")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the mock",
                                description="Serve the mock. Every option also reads MOCK_<NAME> from the "
                                            "environment (e.g. MOCK_ERROR_RATE); an option given here wins.")
    for flag, key, kwargs, text in _FLAGS:
        serve.add_argument(flag, dest=key, default=None, help=f"{text} [env MOCK_{key}]", **kwargs)
    serve.add_argument("--validate-responses", dest="VALIDATE_RESPONSES", default=None,
                       action=argparse.BooleanOptionalAction,
                       help="validate every response against the spec (default on; off for benchmarks) "
                            "[env MOCK_VALIDATE_RESPONSES]")
    serve.add_argument("--reload", dest="RELOAD", default=None, action=argparse.BooleanOptionalAction,
                       help="apply edits of the tokens file, the spec and the scenario files without a restart "
                            "(one worker only) [env MOCK_RELOAD]")
    serve.add_argument("--response-cache", dest="RESPONSE_CACHE", default=None,
                       action=argparse.BooleanOptionalAction,
                       help="reuse a GET answer while no write changed the data, after auth and validation as "
                            "always (default on; off to measure the store itself) [env MOCK_RESPONSE_CACHE]")
    serve.add_argument("--freeze-clock", dest="FREEZE_CLOCK", default=None, action=argparse.BooleanOptionalAction,
                       help="the clock stays at --now (or the start of today): relative times such as "
                            "'5 minutes ago' render the same in every run [env MOCK_FREEZE_CLOCK]")
    serve.add_argument("--quiet", dest="QUIET", default=None, action=argparse.BooleanOptionalAction,
                       help="no access log (start-up lines and errors still print) [env MOCK_QUIET]")
    # No --admin-token flag: a secret on the command line is visible to every user of `ps`.
    check = commands.add_parser("scenarios", help="list and check the scenario files",
                                description="Check every scenario file (schema and pins) and list them; exit 1 "
                                            "if any is invalid. Reads MOCK_SCENARIOS_DIR and MOCK_TOKENS_FILE.")
    check.add_argument("--scenarios-dir", dest="SCENARIOS_DIR", default=None, help="directory of scenario files")
    check.add_argument("--tokens-file", dest="TOKENS_FILE", default=None, help="tokens fixture (the users pins "
                                                                                 "may refer to)")
    return parser


def version_text() -> str:
    """"insights-mock 0.1.0 (spec 2.0.0: Insights Audit Logs API)": the default spec's info, as served."""
    from importlib import metadata

    try:
        package = metadata.version("insights-mock")
    except metadata.PackageNotFoundError:  # run from a checkout without an install
        package = "unknown"
    try:
        info = load_spec(load_config({})["SPEC_FILE"]).document.get("info", {})
        spec = f"spec {info.get('version', '?')}: {info.get('title', '?')}"
    except (ConfigError, SpecError) as exc:
        spec = f"spec unreadable: {exc}"
    return f"insights-mock {package} ({spec})"


def check_scenarios(config: dict[str, Any]) -> int:
    """Each scenario's schema and pins, checked against the token users without generating the bulk data."""
    from .data.generate import Sizes
    from .data.pins import build_dataset
    from .data.scenarios import ScenarioError, Settings, available

    tokens = TokenRegistry.from_file(config["TOKENS_FILE"])
    anchor = data_anchor(config["NOW"])
    bare = Settings(seed=0, sizes=Sizes(users=0, dashboards=0, mappings=0, views=0, audit_logs=0),
                    latency=None, error_rate=0.0)
    names = available(config["SCENARIOS_DIR"])
    if not names:
        print(f"insights-mock: no scenario files (NAME.yaml) in {config['SCENARIOS_DIR']}", file=sys.stderr)
        return 1
    failed = 0
    for name in names:
        try:
            scenario = load_scenario(config["SCENARIOS_DIR"], name)
            build_dataset(scenario, bare, anchor=anchor, users=tokens.users, account=tokens.account)
        except ScenarioError as exc:
            failed += 1
            print(f"  {name:<16} INVALID\n    " + str(exc).replace("\n", "\n    "))
            continue
        print(f"  {name:<16} ok       {scenario.description}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {key: value for key, value in vars(args).items() if key.isupper() and value is not None}
    if args.command == "scenarios":
        try:
            return check_scenarios(load_config(overrides))
        except (ConfigError, TokenFileError) as exc:
            print(f"insights-mock: {exc}", file=sys.stderr)
            return 2
    try:
        config = load_config(overrides)
        parse_latency(config["LATENCY"])
        spec = load_spec(config["SPEC_FILE"])
        tokens = TokenRegistry.from_file(config["TOKENS_FILE"])
        load_scenario(config["SCENARIOS_DIR"], config["SCENARIO"])
    except (ConfigError, SpecError, TokenFileError) as exc:
        print(f"insights-mock: {exc}", file=sys.stderr)
        return 2
    if config["RELOAD"] and config["WORKERS"] > 1:
        print("insights-mock: --reload works with one worker only: each gunicorn worker would rebuild on its "
              "own. Drop --workers for a development server with --reload, or --reload for a load test.",
              file=sys.stderr)
        return 2

    temp_db = None
    if config["WORKERS"] > 1 and config["DB"] is None and config["DATABASE_URL"] is None:
        fd, temp_db = tempfile.mkstemp(prefix="insights-mock-", suffix=".db")
        os.close(fd)
        overrides["DB"] = config["DB"] = temp_db
        print(f"--workers {config['WORKERS']} needs a shared --db file; using {temp_db} (deleted at exit)",
              file=sys.stderr)
    journal_dir = None
    if config["WORKERS"] > 1 and config["JOURNAL_SIZE"] > 0:
        # Each worker appends its requests to its own file here; GET /__admin/requests merges them.
        journal_dir = tempfile.mkdtemp(prefix="insights-mock-journal-")
        overrides["JOURNAL_DIR"] = journal_dir

    access_log.configure(flush_interval=access_log.FLUSH_INTERVAL_S, log_format=config["LOG_FORMAT"],
                         quiet=config["QUIET"])

    def announce(port: int) -> None:
        """Once the port answers and the data is loaded: the banner with the port bound, and the line
        that scripts wait for."""
        print(banner(config, spec, tokens, port) + f"\nlistening on {_url(config['HOST'], port)}", flush=True)

    master = os.getpid()
    try:
        from .serving import run_gunicorn, run_werkzeug

        if config["WORKERS"] > 1:
            run_gunicorn(overrides, config["HOST"], config["PORT"], config["WORKERS"], announce)
        else:
            run_werkzeug(overrides, config["HOST"], config["PORT"], announce)
    except KeyboardInterrupt:
        pass
    except (ConfigError, StoreError) as exc:  # e.g. sizes the generator refuses, a --db file not ours
        print(f"insights-mock: {exc}", file=sys.stderr)
        return 2
    finally:
        # gunicorn workers unwind through here too after the fork: only the master cleans up.
        if temp_db is not None and os.getpid() == master:
            # SQLite's companions and the store's write count
            for suffix in ("", "-wal", "-shm", "-changes"):
                Path(temp_db + suffix).unlink(missing_ok=True)
        if journal_dir is not None and os.getpid() == master:
            shutil.rmtree(journal_dir, ignore_errors=True)
    return 0


def _data_place(config: dict[str, Any]) -> str:
    if config["DATABASE_URL"]:
        return "in " + redact_url(config["DATABASE_URL"])
    return "in " + config["DB"] if config["DB"] else "in memory"


def _url(host: str, port: int) -> str:
    host = host.strip("[]")
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _operator_access(config: dict[str, Any]) -> str:
    """Who may call /__admin/*: off loopback without a token it is locked, and the banner must not advertise
    URLs that will only answer 401 without saying so."""
    from .operator.admin import is_loopback

    if config["ADMIN_TOKEN"] is not None:
        return "  operator API: needs Authorization: Bearer $MOCK_ADMIN_TOKEN (health is open)"
    if not is_loopback(config["HOST"]):
        return (f"  operator API: LOCKED (401) on {config['HOST']}: set MOCK_ADMIN_TOKEN to unlock it "
                "(health is open)")
    return ""


def banner(config: dict[str, Any], spec, tokens: TokenRegistry, port: int | None = None) -> str:
    """The start-up banner; `port`: the one bound (--port 0 binds a free one), by default the configured."""
    url = _url(config["HOST"], config["PORT"] if port is None else port)
    workers = config["WORKERS"]
    lines = [
        f"insights-mock serving {url}  ({workers} {'worker' if workers == 1 else 'gunicorn workers'}, "
        f"seed {config['SEED']}, data {_data_place(config)})",
        f"  docs:   {url}/docs   (browse and try every operation; the tokens are explained there)",
        f"  scenario: {config['SCENARIO']}   switch: POST {url}/__admin/scenario {{\"name\": \"empty\"}}"
        f"{'   reload: on' if config['RELOAD'] else ''}",
        f"  spec:   {url}/openapi.yaml   health: {url}/__admin/health   reset: POST {url}/__admin/reset",
        f"  journal: {url}/__admin/requests" if config["JOURNAL_SIZE"] else "",
        _operator_access(config),
        (f"  sessions: header X-Mock-Session: NAME (or cookie mock_session) gives a test its own data; "
         f"up to {config['MAX_SESSIONS']}, list: {url}/__admin/sessions") if config["MAX_SESSIONS"] else "",
        f"  clock: frozen at {iso(config['NOW'])}" if config["FREEZE_CLOCK"] and config["NOW"] else
        ("  clock: frozen at the start of today (UTC)" if config["FREEZE_CLOCK"] else ""),
        "  tokens (Authorization: Bearer <token>):",
    ]
    ops = list(spec.operations.values())
    for token, principal in tokens.entries():
        allowed = [op for op in ops if may_call(principal, op)]
        if principal.expires is not None and principal.expires <= (config["NOW"] or datetime.now(UTC)):
            what = f"expired {iso(principal.expires)}: 401 everywhere"
        elif len(allowed) == len(ops):
            what = "every operation"
        elif not allowed:
            what = "no operation (403)"
        else:
            what = ", ".join(op.operation_id for op in allowed)
        lines.append(f"    {token:<30} {principal.role:<21} {' '.join(sorted(principal.scopes)):<15} {what}")
    lines.append(f"  try:   curl -H 'Authorization: Bearer {tokens.tokens[0]}' "
                 f"{url}{spec.operations['getMostViewedDashboards'].path}" if tokens.tokens and
                 "getMostViewedDashboards" in spec.operations else "")
    lines += _example_ids(spec, url)
    return "\n".join(line for line in lines if line)


def _example_ids(spec, url: str) -> list[str]:
    """The spec's example ids, which the default and pinned scenarios hold with the examples' data: the API
    lists no mappings, so this is where a frontend developer finds one (and an audit entry) to try."""
    examples = {}
    for op in spec.operations.values():
        for name, param in _raw_path_parameters(spec, op).items():
            examples.setdefault((op.operation_id, name), param)
    lines = []
    for op_id, name, what in (("getMappingAuditLogs", "mappingId", "a mapping"),
                              ("getAuditLog", "auditLogId", "an audit entry"),
                              ("getDashboardStats", "dashboardId", "a dashboard")):
        value = examples.get((op_id, name))
        if value and op_id in spec.operations:
            path = spec.operations[op_id].path.replace("{" + name + "}", value)
            lines.append(f"  {what + ':':<16} {url}{path}")
    return ["  the spec's examples (default and pinned scenarios):", *lines] if lines else []


def _raw_path_parameters(spec, op) -> dict[str, str]:
    """name -> the first example value of each path parameter of `op`, as openapi.yaml gives it."""
    found = {}
    document = spec.document
    raw_op = document["paths"][op.path][op.method.lower()]
    for param in raw_op.get("parameters", []):
        ref = param.get("$ref", "")
        if ref.startswith("#/components/parameters/"):
            param = document["components"]["parameters"][ref.rsplit("/", 1)[1]]
        if param.get("in") != "path":
            continue
        if "example" in param:
            found[param["name"]] = str(param["example"])
        elif param.get("examples"):
            found[param["name"]] = str(next(iter(param["examples"].values())).get("value"))
    return found


if __name__ == "__main__":
    raise SystemExit(main())
