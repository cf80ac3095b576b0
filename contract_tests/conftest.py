"""Options, the target, and the run report of the contract suite (see contract_tests/README.md)."""

from __future__ import annotations

import pytest
import requests

from contract_tests import assumptions, loader, reporting, seeding, settings as suite_settings
from contract_tests.client import ApiClient, discover
from contract_tests.probe import ProbeResult, probe
from contract_tests.reporting import RunReport, unique_path
from contract_tests.target import ServedMock, Target, mock_mapping_ids
from contract_tests.calibration import CALIBRATION
from contract_tests.har import RECORDER
from contract_tests.verdict import COVERAGE

_REPORT_KEY = pytest.StashKey[RunReport]()
_PROBE_KEY = pytest.StashKey[ProbeResult]()
VERDICT_MODULE = "test_verdict.py"
USABLE_TEST = "test_target_is_usable"


def pytest_addoption(parser):
    suite_settings.add_options(parser)


@pytest.hookimpl(tryfirst=True)  # before pytest's junitxml plugin reads --junitxml
def pytest_configure(config):
    config.addinivalue_line("markers", "meta: runs the suite itself in a subprocess (broken variants of the mock, "
                                       "broken targets); the child runs exclude them")
    # Also declared here, not only in pyproject.toml: the installed suite (insights-contract) has no pyproject.
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "self_test: a unit test of the suite's own judges; never sent to a target, "
                                       "so not run (nor counted) against --base-url or --serve-mock")
    try:
        active = suite_settings.from_pytest_config(config)
    except suite_settings.UsageError as exc:
        raise pytest.UsageError(f"contract_tests: {exc}") from None
    loader.activate(active)
    reporting.TOKEN_VARIABLES.clear()
    for kind, principal in active.principals.items():
        if isinstance(principal.secret, str):  # an OAuth2 token changes; its curl keeps [Filtered]
            reporting.TOKEN_VARIABLES[principal.secret] = suite_settings.TOKEN_SOURCES[kind][1]
    report_path = active.report_path
    if active.report_dir is not None:
        report_path = report_path or active.report_dir / "contract.md"
        if not config.option.xmlpath and not hasattr(config, "workerinput"):
            config.option.xmlpath = str(active.report_dir / "junit.xml")
    if config.option.xmlpath:
        # One JUnit file per run, never overwritten: both tox commands given one --junitxml keep their results.
        config.option.xmlpath = str(unique_path(config.option.xmlpath))
    config.stash[_REPORT_KEY] = run_report = RunReport(active, report_path)
    # Calibration describes a deployment (the in-process mock is the spec's own); HAR/NDJSON any run with reports.
    CALIBRATION.__init__()
    CALIBRATION.enabled = not active.in_process
    RECORDER.__init__()
    RECORDER.enabled = active.report_dir is not None or report_path is not None
    run_report.extra_writers += [CALIBRATION.write, RECORDER.write]
    config.pluginmanager.register(_Selection(), "contract-selection")
    COVERAGE.reset()


def pytest_sessionstart(session):
    """A live target is probed once, before collection, with retries (probe.py). An unusable one turns the run
    into the one failing test case test_target_is_usable that says why; JUnit and reports are still written."""
    active = loader.active()
    if not active.base_url or session.config.option.collectonly:
        return
    tgt = Target(active, base_url=active.base_url)
    try:
        session.config.stash[_PROBE_KEY] = probe(tgt, active.request_timeout)
    finally:
        tgt.close()


def probe_result(config) -> ProbeResult | None:
    return config.stash.get(_PROBE_KEY, None)


_VERDICT_KEY = pytest.StashKey[list]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    """Note the verdict tests before -k/-m deselect anything: against a target they are the run's verdict."""
    config.stash[_VERDICT_KEY] = [i for i in items if i.path.name == VERDICT_MODULE and i.path.parent.name == "contract_tests"]


class _Selection:
    """After every other selection (-k, -m): the verdict tests first and last, and nothing but the usable-target
    test when the probe gave up on the target."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        _finish_selection(config, items)


def _finish_selection(config, items) -> None:
    active = loader.active()
    verdict = config.stash.get(_VERDICT_KEY, [])
    if not verdict:
        return  # test_verdict.py was not collected (a run of single files): no verdict to give
    dropped = []
    keep = []
    for item in items:
        if item in verdict:
            continue
        # Unit tests of the judges and meta-tests never touch a live target: they must not count as its passes.
        if not active.in_process and (item.get_closest_marker("self_test") or item.get_closest_marker("meta")):
            dropped.append(item)
        else:
            keep.append(item)
    usable = [i for i in verdict if i.name == USABLE_TEST]
    gate = [i for i in verdict if i.name != USABLE_TEST]
    result = probe_result(config)
    if result is not None and not result.usable:
        dropped += keep
        keep, gate = [], []
    elif active.in_process and not set(verdict) & set(items):
        usable, gate = [], []  # a developer's in-process -k/-m run without the verdict tests: theirs to choose
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = usable + keep + gate


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
    return ApiClient(target, principal)


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
    found = discover(api, mapping_ids)
    if settings.writes_allowed and seeding.thin(found):
        viewed = seeding.make_data(api, found, settings)  # an empty tenant: the suite makes its data
        found = discover(api, mapping_ids, tuple(viewed)) if viewed else found
    return found


@pytest.fixture
def fresh_state(target):
    """Server state regenerated from the seed before the test (exclusive targets); nothing on a shared one."""
    target.reset()
    return target


def require_principal(settings, kind: str):
    principal = settings.principal(kind)
    if principal is None:
        pytest.skip(settings.missing_token_reason(kind))
    return principal


def require_writes(settings, rules: tuple[str, ...] = ()) -> None:
    """Skip where the suite may not write; `rules` (what the test checks) lead the reason, so the verdict
    attributes the skip to them (seeding.NO_DATA_REASON)."""
    if not settings.writes_allowed:
        lead = f"{', '.join(rules)}: no writes: " if rules else ""
        pytest.skip(
            f"{lead}{settings.target_label} is not local: the view POST writes to it; "
            "pass --allow-writes (CONTRACT_ALLOW_WRITES=1) to include it"
        )


def pytest_runtest_setup(item):
    reporting.failed_checks.clear()
    assumptions.LEDGER.clear()
    RECORDER.current_test = item.nodeid
    # The judges' unit tests feed crafted answers to the checks: those are not checks of the target.
    COVERAGE.recording = item.get_closest_marker("self_test") is None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    assumed = None
    if report.failed and report.when == "call":
        findings = assumptions.LEDGER.findings_for(call.excinfo.value if call.excinfo is not None else None)
        assumed = findings if findings and all(f.assumed for f in findings) else None
    if assumed and loader.active().excuses_assumptions:
        # Not a silent pass: an xfail, shown in the terminal, JUnit (skipped, pytest.xfail) and the reports.
        item.config.stash[_REPORT_KEY].add_assumed(item, call, report, assumed)
        report.outcome, report.wasxfail = "skipped", assumptions.excuse(assumed)
        return report
    if report.failed:
        run_report = item.config.stash[_REPORT_KEY]
        run_report.add_failure(item, call, report)
        if assumed:  # strict: still a failure, but the reader learns it rests only on assumptions
            run_report.failures[-1]["assumed"] = assumptions.excuse(assumed)
    elif report.skipped and item.get_closest_marker("self_test") is None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        COVERAGE.skip(reason.removeprefix("Skipped: "), report.nodeid)
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    run_report = config.stash.get(_REPORT_KEY, None)
    if run_report is None:
        return
    stats = {key: len(terminalreporter.stats.get(key, [])) for key in ("passed", "failed", "error", "skipped")}
    run_report.finish(stats)
    if not config.stash.get(_VERDICT_KEY, None) and not run_report.failures:
        return  # nothing of the contract suite was collected (e.g. `pytest tests` alone)
    terminalreporter.section("contract summary")
    for line in run_report.terminal_lines():
        terminalreporter.write_line(line)
    for path in run_report.write_all():
        terminalreporter.write_line(f"contract report written to {path}")
