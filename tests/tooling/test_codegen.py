"""Codegen proof: clients generated from openapi.yaml, with no warnings, work against the mock.

(a) openapi-python-client generates a Python client into a tmp dir; the test imports it and calls every
    operation of a mock served on a free port, checking the typed, parsed responses against the mock's data.
(b) openapi-typescript (pinned in codegen/package-lock.json, installed with `npm ci` into a tmp dir) generates
    TypeScript types; `tsc --noEmit --strict` checks codegen/usage.ts and a file naming every operation,
    schema and path of the spec against them, and must reject a reference to a missing operation.
Nothing is generated or installed inside the repository.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from uuid import UUID

import pytest
from werkzeug.serving import make_server

from conftest import make_app
from mock_helpers import ROOT, SPEC, SPEC_PATH, TOKENS, operations

PACKAGE = "insights_audit_logs_api_client"  # from the spec's info.title, as openapi-python-client names it
TOKEN = "mock-admin-token"
CODEGEN = ROOT / "codegen"

pytestmark = pytest.mark.slow


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- (a) Python: openapi-python-client -----------------------------------------------------------------

@pytest.fixture(scope="module")
def python_client(tmp_path_factory) -> Iterator[ModuleType]:
    out = tmp_path_factory.mktemp("codegen") / "client"
    bin_dir = Path(sys.executable).parent
    generator = bin_dir / "openapi-python-client"
    if not generator.exists():
        pytest.fail(f"{generator} is missing: pip install -e '.[test]'")
    # Its post-generation hooks run ruff, a dependency of the generator living beside it; off PATH it warns.
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(generator), "generate", "--path", str(SPEC_PATH), "--output-path", str(out)],
                            capture_output=True, text=True, env=env, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Anything beyond the one progress line is a warning (it prints them and still exits 0).
    assert result.stdout.strip().splitlines() == [f"Generating {out}"], output
    assert result.stderr.strip() == "", output
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def served_app() -> Iterator[tuple[str, object]]:
    """The mock (TESTING: a response off the spec raises in the server) on a free loopback port."""
    app = make_app()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="codegen-mock", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app.extensions["insights_mock"]
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        app.extensions["insights_mock"].close()


def test_generated_python_client_has_every_operation(python_client):
    for op_id, _, _ in operations():
        found = list((Path(python_client.__file__).parent / "api").glob(f"*/{_snake(op_id)}.py"))
        assert len(found) == 1, f"no generated module for {op_id}"


def test_generated_python_client_calls_every_operation(python_client, served_app):
    base, state = served_app
    pkg = python_client.__name__
    models = importlib.import_module(f"{pkg}.models")
    client = importlib.import_module(pkg).AuthenticatedClient(
        base_url=base, token=TOKEN, raise_on_unexpected_status=True)
    api = {op_id: importlib.import_module(f"{pkg}.api.{path.parent.name}.{path.stem}")
           for op_id, _, _ in operations()
           for path in (Path(python_client.__file__).parent / "api").glob(f"*/{_snake(op_id)}.py")}
    me = next(entry["user"]["id"] for entry in TOKENS if entry["token"] == TOKEN)
    called = []

    def call(op_id: str, *args, **kwargs):
        response = api[op_id].sync_detailed(*args, client=client, **kwargs)
        assert response.status_code == 200, (op_id, response.content[:500])
        assert response.parsed is not None and not isinstance(response.parsed, models.Error), op_id
        called.append(op_id)
        return response.parsed

    with client:
        most = call("getMostViewedDashboards", limit=5)
        assert isinstance(most, models.DashboardListResponse)
        assert most.message == "Successfully retrieved most viewed dashboards"
        assert 1 <= len(most.data) <= 5 and all(isinstance(d, models.DashboardSummary) for d in most.data)
        assert [d.view_count for d in most.data] == sorted((d.view_count for d in most.data), reverse=True)
        top = most.data[0]
        assert isinstance(top.dashboard_id, UUID) and isinstance(top.owner, models.UserRef)

        stats = call("getDashboardStats", top.dashboard_id).data
        assert isinstance(stats, models.DashboardStats)
        assert stats.dashboard_id == top.dashboard_id and stats.total_views == top.view_count
        assert stats.daily_views and isinstance(stats.daily_views[0], models.DailyViews)

        view = call("recordDashboardView", top.dashboard_id).data
        assert isinstance(view, models.ViewEvent)
        assert (view.dashboard_id, view.user_id, view.view_count) == (top.dashboard_id, me, top.view_count + 1)
        assert view.viewed_at.tzinfo is not None

        assert call("getDashboardStats", top.dashboard_id).data.total_views == top.view_count + 1
        recent = call("getRecentlyViewedDashboards", limit=3)
        assert recent.data[0].dashboard_id == top.dashboard_id and recent.data[0].last_viewed_at == view.viewed_at

        logs = call("getDashboardAuditLogs", top.dashboard_id, page_size=5)
        assert isinstance(logs, models.AuditLogPageResponse) and isinstance(logs.pagination, models.Pagination)
        newest = logs.data[0]
        assert isinstance(newest, models.AuditLogEntry)
        assert (newest.action, newest.user_id, newest.target_id) == (models.AuditAction.VIEW, me,
                                                                     str(top.dashboard_id))
        entry = call("getAuditLog", newest.field_id).data
        assert isinstance(entry, models.AuditLogEntry)
        assert (entry.field_id, entry.created_at, entry.action) == (newest.field_id, newest.created_at,
                                                                    newest.action)

        # A mapping with entries, from the data the mock was loaded with (the API lists no mappings).
        dataset = state.default.make_dataset()
        per_mapping = {}
        for row in dataset.audit_logs:
            if row["type"] == "tool_mapping":
                per_mapping.setdefault(row["target_id"], []).append(row)
        mapping_id, rows = max(per_mapping.items(), key=lambda item: len(item[1]))
        page = call("getMappingAuditLogs", UUID(mapping_id), page_size=5)
        assert page.pagination.total_items == len(rows) and len(page.data) == min(5, len(rows))
        assert all(e.type_ == models.AuditEntityType.TOOL_MAPPING for e in page.data)
        assert all(isinstance(e.tool_mapping, models.ToolMappingRef) and e.tool_mapping.mapping_id == UUID(mapping_id)
                   for e in page.data)
        # A datetime filter as the client serialises it (isoformat, +00:00) is understood by the mock.
        since = page.data[-1].created_at
        filtered = call("getMappingAuditLogs", UUID(mapping_id), page_size=5, from_=since)
        assert filtered.pagination.total_items == sum(_instant(r["createdAt"]) >= since for r in rows)

    assert sorted(set(called)) == sorted(op_id for op_id, _, _ in operations())


# --- (b) TypeScript: openapi-typescript + tsc ---------------------------------------------------------

@pytest.fixture(scope="module")
def typescript(tmp_path_factory) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed (CI has it): the TypeScript codegen check needs node and npm")
    work = tmp_path_factory.mktemp("ts")
    for name in ("package.json", "package-lock.json", "usage.ts", "client.ts"):
        shutil.copy(CODEGEN / name, work / name)
    env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false",
           "npm_config_audit": "false"}
    result = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=work,
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return work


def _tsc(work: Path, *files: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(work / "node_modules" / ".bin" / "tsc"), "--noEmit", "--strict", "--target", "ES2022",
                           "--module", "ES2022", "--moduleResolution", "Bundler", "--lib", "ES2022,DOM",
                           *files], cwd=work, capture_output=True, text=True, timeout=300)


def _coverage_ts() -> str:
    """A file that names every operation, component schema and path+method of the spec as a type."""
    ops = [f'operations["{op_id}"]' for op_id, _, _ in operations()]
    schemas = [f'components["schemas"]["{name}"]' for name in SPEC["components"]["schemas"]]
    routes = [f'paths["{path}"]["{method.lower()}"]' for _, method, path in operations()]
    return ('import type { components, operations, paths } from "./schema";\n'
            + "".join(f"export type Op{i} = {ref};\n" for i, ref in enumerate(ops))
            + "".join(f"export type Schema{i} = {ref};\n" for i, ref in enumerate(schemas))
            + "".join(f"export type Route{i} = {ref};\n" for i, ref in enumerate(routes)))


def test_typescript_types_generate_without_warnings_and_type_check(typescript):
    generator = typescript / "node_modules" / ".bin" / "openapi-typescript"
    result = subprocess.run([str(generator), str(SPEC_PATH), "-o", "schema.d.ts"], cwd=typescript,
                            capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    lines = [line for line in output.splitlines() if line.strip()]
    # Its banner and the one "spec -> file" line; a warning or lint finding would be another line.
    assert len(lines) == 2 and lines[0].startswith("✨ openapi-typescript ") and "→" in lines[1], output
    assert not re.search(r"warn", output, re.I), output
    (typescript / "coverage.ts").write_text(_coverage_ts(), encoding="utf-8")

    checked = _tsc(typescript, "usage.ts", "coverage.ts")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # The check can fail: a missing operation and a misspelled field are type errors.
    (typescript / "broken.ts").write_text(
        'import type { components, operations } from "./schema";\n'
        'export type Missing = operations["noSuchOperation"];\n'
        'export const misspelt: components["schemas"]["Pagination"]["page_size"] = 1;\n', encoding="utf-8")
    broken = _tsc(typescript, "broken.ts")
    assert broken.returncode != 0
    assert "noSuchOperation" in broken.stdout and "page_size" in broken.stdout, broken.stdout


def test_openapi_fetch_client_from_the_mocks_url_type_checks_and_calls_the_mock(typescript, served_app):
    """codegen/client.ts: types generated from the served mock's /openapi.yaml (as FRONTEND.md says), the
    openapi-fetch client type-checked strictly, then compiled and run with node against that mock, in a session
    of its own (the default session is untouched)."""
    base, state = served_app
    work = typescript / "fetch"
    work.mkdir()
    for name in ("client.ts",):
        shutil.copy(typescript / name, work / name)
    generator = typescript / "node_modules" / ".bin" / "openapi-typescript"
    made = subprocess.run([str(generator), f"{base}/openapi.yaml", "-o", str(work / "schema.d.ts")], cwd=typescript,
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    tsc = [str(typescript / "node_modules" / ".bin" / "tsc"), "--strict", "--target", "ES2022", "--module", "ES2022",
           "--moduleResolution", "Bundler", "--lib", "ES2022,DOM", "--skipLibCheck"]
    checked = subprocess.run([*tsc, "--outDir", str(typescript / "out"), str(work / "client.ts")], cwd=typescript,
                             capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The check can fail: a path the spec does not have is a type error.
    (work / "wrong.ts").write_text(
        'import createClient from "openapi-fetch";\nimport type { paths } from "./schema";\n'
        'export const r = createClient<paths>({ baseUrl: "" }).GET("/api/v2/insights/kpis/audit-logs/nope", {});\n',
        encoding="utf-8")
    wrong = subprocess.run([*tsc, "--noEmit", str(work / "wrong.ts")], cwd=typescript, capture_output=True, text=True,
                           timeout=300)
    assert wrong.returncode != 0 and "/nope" in wrong.stdout, wrong.stdout
    dashboard = state.default.make_dataset().dashboards
    default_before = state.default.store.most_viewed(1)
    run = subprocess.run([shutil.which("node") or "node", str(typescript / "out" / "client.js"), base, TOKEN, "codegen"],
                         cwd=typescript, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    top, stats, recent = json.loads(run.stdout)
    before, after = (int(n) for n in re.match(r"stats: (\d+) -> (\d+) after view [0-9a-f]{24}$", stats).groups())
    assert after == before + 1 and top.startswith("top: ") and recent.startswith("recent: ")
    assert recent.split(": ")[1] in {d["dashboardId"] for d in dashboard}
    assert state.default.store.most_viewed(1) == default_before  # the client's view went to its session
