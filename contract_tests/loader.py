"""The schemathesis schemas the tests use, configured from the suite settings.

Test modules build their schemas at import time (schemathesis parametrizes at collection), so the settings
they read are the ones conftest.pytest_configure activated for this run. The schemathesis configuration is
explicit here rather than discovered from a schemathesis.toml, so the same command gives the same requests
wherever it runs.
"""

from __future__ import annotations

import schemathesis
from schemathesis import GenerationMode

from contract_tests import assumptions, checks, reporting, spec
from contract_tests.calibration import CALIBRATION
from contract_tests.har import RECORDER
from contract_tests.settings import SuiteSettings
from contract_tests.verdict import COVERAGE

# RFC 9110 section 9.2.1, and QUERY (safe by its draft): what may be sent where writes are not allowed.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "QUERY"})
_active: SuiteSettings | None = None
_app = None


def activate(settings: SuiteSettings) -> None:
    """Called once by conftest.pytest_configure, before any test module is imported."""
    global _active
    _active = settings


def active() -> SuiteSettings:
    if _active is None:
        raise RuntimeError("contract_tests settings are not active: run the suite through pytest (conftest.py)")
    return _active


def in_process_app():
    """The WSGI app of an in-process run, built once. schemathesis copies `schema.app` into the clones it makes
    when a test is parametrized (at import), so the app must exist before the test modules load their schemas."""
    global _app
    settings = active()
    if not settings.in_process:
        return None
    if _app is None:
        from contract_tests.target import build_app

        _app = build_app(settings)
    return _app


def load(settings: SuiteSettings, modes: list[GenerationMode]) -> schemathesis.BaseSchema:
    config = schemathesis.Config(seed=settings.seed)
    schema = schemathesis.openapi.from_path(spec.SPEC_PATH, config=config)
    schema.app = in_process_app()
    schema.config.generation.update(
        modes=modes,
        max_examples=settings.max_examples,
        # Stale examples replayed from a .hypothesis directory made runs flaky; every run starts from the seed.
        database="none",
    )
    schema.config.update(request_timeout=settings.request_timeout)
    if not settings.writes_allowed:
        # The coverage phase also sends methods the spec does not list (expecting 405). Against a deployment
        # the suite may not write to, a PUT/POST/DELETE/PATCH there could change data; keep the safe ones.
        coverage = schema.config.phases.coverage
        coverage.unexpected_methods = {m for m in coverage.unexpected_methods if m.upper() in SAFE_METHODS}
    principal = settings.principal("full")
    if principal is not None:
        _install_auth(schema, principal)
    _filter_generated_requests(schema, positive=GenerationMode.POSITIVE in modes)

    @schema.hook
    def after_validate(context, case, response, results):
        reporting.record_check_results(results)
        assumptions.LEDGER.record(case, response, results)
        if COVERAGE.recording:  # not the judges' unit tests: their answers are crafted
            CALIBRATION.observe(case, response)
            RECORDER.record(case, response, results)
        COVERAGE.observe(case, response, results, principal.token if principal is not None else None)

    return schema


def _install_auth(schema, principal) -> None:
    # No caching by schemathesis (refresh_interval=None): the principal gives the current token, and an OAuth2
    # one is refreshed by contract_tests.oauth before it expires.
    @schema.auth(refresh_interval=None)
    class SuiteToken:
        """The read-write token; declared as auth so `ignored_auth` probes the API without it."""

        def get(self, case, context):
            return principal.token

        def set(self, case, data, context):
            case.headers = case.headers or {}
            case.headers["Authorization"] = f"Bearer {data}"


def _filter_generated_requests(schema, positive: bool) -> None:
    """Keep out of generated data what JSON Schema cannot say:
    - `?__code=` and `Prefer: code=` make the mock answer a chosen status; generated data must not use them;
    - positive data honours the documented cross-parameter rule "`from` must not be after `to`" (its breach
      is tested on purpose by test_targeted.py and judged by checks.audit_filters_honoured)."""

    @schema.hook
    def filter_query(context, query):
        if not isinstance(query, dict):
            return True
        if any(str(k).lower() == checks.FORCING_QUERY for k in query):
            return False
        if positive:
            start, end = checks.parse_day(query.get("start_date")), checks.parse_day(query.get("end_date"))
            if start is not None and end is not None and start > end:
                return False
        return True

    @schema.hook
    def filter_headers(context, headers):
        return not (isinstance(headers, dict) and any(str(k).lower() == checks.FORCING_HEADER for k in headers))
