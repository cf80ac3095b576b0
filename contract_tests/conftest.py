"""Options, the target, and the run report of the contract suite (see contract_tests/README.md)."""

from __future__ import annotations

import pytest
import requests

from contract_tests import checks, loader, reporting, settings as suite_settings, spec
from contract_tests.reporting import RunReport
from contract_tests.client import ApiClient, discover
from contract_tests.target import ServedMock, Target, mock_mapping_ids

_REPORT_KEY = pytest.StashKey[RunReport]()


def pytest_addoption(parser):
    suite_settings.add_options(parser)


def pytest_configure(config):
    config.addinivalue_line("markers", "meta: runs the suite itself in a subprocess (broken variants of the mock, "
                                       "broken targets); the child runs exclude them")
    try:
        active = suite_settings.from_pytest_config(config)
    except suite_settings.UsageError as exc:
        raise pytest.UsageError(f"contract_tests: {exc}") from None
    loader.activate(active)
    config.stash[_REPORT_KEY] = RunReport(active)


def pytest_sessionstart(session):
    """A live target is probed once, before collection: a refused, silent, failing or non-API target ends the
    run at once (exit status 2) with one line naming the problem, instead of a traceback in every test."""
    active = loader.active()
    if not active.base_url or session.config.option.collectonly:
        return
    probe = Target(active, base_url=active.base_url)
    try:
        problem = unusable(probe, active.request_timeout)
    finally:
        probe.close()
    if problem:
        pytest.exit(f"contract target {active.base_url} cannot be used: {problem}", returncode=2)


def pytest_report_header(config):
    active = loader.active()
    mode = "deep" if active.deep else "quick"
    return [
        f"contract target: {active.target_label}",
        f"contract generation: {mode}, {active.max_examples} examples per property test, "
        f"{active.stateful_scenarios} stateful scenarios, seed {active.seed} (replay with --contract-seed {active.seed})",
    ]


@pytest.fixture(scope="session")
def settings():
    return loader.active()


@pytest.fixture(scope="session")
def target(settings):
    """The system under test. In-process, it is the app the schemas were loaded with (loader.in_process_app)."""
    served = None
    if settings.base_url:
        tgt = Target(settings, base_url=settings.base_url)  # already probed at session start
    elif settings.serve_mock:
        served = ServedMock(seed=settings.mock_seed).start()
        tgt = Target(settings, base_url=served.base_url)
    else:
        tgt = Target(settings, app=loader.in_process_app())
    try:
        yield tgt
    finally:
        tgt.close()
        if served is not None:
            served.stop()


@pytest.fixture(scope="session")
def api(target, settings):
    """Hand-written requests with the read-write token (skips when none is configured)."""
    principal = require_principal(settings, "full")
    return ApiClient(target, principal.token)


@pytest.fixture(scope="session")
def discovered(api, settings):
    """Real ids of the target's data, found through the API before any test writes to it."""
    api.target.reset()
    if settings.mapping_ids:
        mapping_ids = list(settings.mapping_ids)
    elif settings.base_url is None:
        mapping_ids = mock_mapping_ids(settings, app=loader.in_process_app())
    else:
        mapping_ids = []
    return discover(api, mapping_ids)


@pytest.fixture
def fresh_state(target):
    """Server state regenerated from the seed before the test (exclusive targets); nothing on a shared one."""
    target.reset()
    return target


def unusable(tgt: Target, timeout: float) -> str | None:
    """Why a live target is not an API the suite can test, in one line, or None. One unauthenticated request
    to an operation without path parameters: any JSON answer below 500 will do (a 401 is the expected one).
    Failing here, once, beats the same connection traceback or HTML page in every test."""
    probe = next(op for op in spec.operations() if not op.path_params)
    where = f"{probe.method} {probe.path}"
    try:
        answer = tgt.raw(probe.method, probe.path)
    except requests.Timeout:
        return f"no answer to {where} within {timeout:g} s (timed out; --request-timeout sets the limit)"
    except requests.ConnectionError as exc:
        text = str(exc)
        if "refused" in text.lower():
            return f"connection refused: nothing listens there ({where})"
        return f"cannot connect for {where}: {type(exc).__name__}: {text[:300]}"
    except requests.RequestException as exc:
        return f"{where} failed: {type(exc).__name__}: {str(exc)[:300]}"
    content_type = checks.header(answer, "content-type") or "no content type"
    start = (answer.content or b"")[:120]
    if answer.status_code >= 500:
        return (f"{where} answered {answer.status_code} ({content_type}) before any test ran: the server is failing "
                f"(body starts {start!r})")
    if not content_type.lower().startswith("application/json") or checks.body(answer) is None:
        return (f"{where} answered {answer.status_code} with {content_type}, not JSON: this is not the API "
                f"(a proxy, a login page or a wrong --base-url? body starts {start!r})")
    return None


def require_principal(settings, kind: str):
    principal = settings.principal(kind)
    if principal is None:
        pytest.skip(settings.missing_token_reason(kind))
    return principal


def require_writes(settings) -> None:
    if not settings.writes_allowed:
        pytest.skip(
            f"{settings.target_label} is not local: the view POST writes to it; "
            "pass --allow-writes (CONTRACT_ALLOW_WRITES=1) to include it"
        )


def pytest_runtest_setup(item):
    reporting.failed_checks.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        item.config.stash[_REPORT_KEY].add_failure(item, call, report)
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    run_report = config.stash.get(_REPORT_KEY, None)
    if run_report is None:
        return
    stats = {key: len(terminalreporter.stats.get(key, [])) for key in ("passed", "failed", "error", "skipped")}
    run_report.finish(stats)
    lines = run_report.terminal_lines()
    if lines:
        terminalreporter.section("contract summary")
        for line in lines:
            terminalreporter.write_line(line)
    if run_report.settings.report_path is not None:
        path = run_report.write_markdown(run_report.settings.report_path)
        terminalreporter.write_line(f"contract report written to {path}")
