"""api/ and http/routes.py: handlers named after operationIds, one route table, no gap allowed."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from mock_helpers import SPEC_PATH
from mock_server.api import audit_logs, dashboards, handlers
from mock_server.http.routes import Router
from mock_server.spec import load_spec

SPEC = load_spec(SPEC_PATH)
PREFIX = "/api/v2/insights/kpis/audit-logs"


def test_each_resource_lists_handlers_named_after_operations():
    names = [h.__name__ for h in dashboards.HANDLERS + audit_logs.HANDLERS]
    assert sorted(names) == sorted(SPEC.operations) == sorted(handlers())


def test_a_handler_that_names_no_operation_is_refused():
    def getEverything(call):  # noqa: N802
        return None

    with pytest.raises(LookupError, match="named after no operationId.*getEverything"):
        Router(SPEC, {**handlers(), "getEverything": getEverything})


def test_an_operation_without_a_handler_is_refused(monkeypatch):
    monkeypatch.setattr(audit_logs, "HANDLERS", audit_logs.HANDLERS[:-1])
    with pytest.raises(LookupError, match="operations without a handler: getAuditLog"):
        Router(SPEC, handlers())


def test_the_router_finds_each_operation_and_its_path_arguments():
    router = Router(SPEC, handlers())
    route, args = router.match("GET", PREFIX + "/dashboard/abc/stats")
    assert route.op.operation_id == "getDashboardStats" and args == {"dashboardId": "abc"}
    assert router.match("GET", PREFIX + "/dashboard/most-viewed")[0].op.operation_id == "getMostViewedDashboards"
    assert router.match("HEAD", PREFIX + "/dashboard/most-viewed")[0].op.operation_id == "getMostViewedDashboards"
    assert router.match("GET", PREFIX + "/507f1f77bcf86cd799439011")[0].op.operation_id == "getAuditLog"
    with pytest.raises(NotFound):
        router.match("GET", PREFIX + "/dashboard/a/b/c")
    with pytest.raises(NotFound):
        router.match("GET", PREFIX + "//dashboard/most-viewed")
    with pytest.raises(MethodNotAllowed) as refused:
        router.match("PUT", PREFIX + "/dashboard/abc/view")
    assert set(refused.value.valid_methods) == {"POST", "OPTIONS"}
