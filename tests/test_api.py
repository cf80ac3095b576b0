"""api/__init__.py: blueprints routed from the spec, and refusing to start with a gap."""

from __future__ import annotations

import pytest
from flask import Flask

from mock_helpers import SPEC_PATH
from mock_server.api import audit_logs, build_blueprint, dashboards, register_api
from mock_server.spec import load_spec

SPEC = load_spec(SPEC_PATH)


def test_each_resource_lists_handlers_named_after_operations():
    names = [h.__name__ for h in dashboards.HANDLERS + audit_logs.HANDLERS]
    assert sorted(names) == sorted(SPEC.operations)


def test_a_handler_that_names_no_operation_is_refused():
    def getEverything(call):  # noqa: N802
        return None

    with pytest.raises(LookupError, match="getEverything names no operationId"):
        build_blueprint("x", SPEC, [getEverything])


def test_an_operation_without_a_handler_is_refused(monkeypatch):
    monkeypatch.setattr(audit_logs, "HANDLERS", audit_logs.HANDLERS[:-1])
    with pytest.raises(LookupError, match="operations without a handler: getAuditLog"):
        register_api(Flask("x"), SPEC)


def test_blueprints_are_made_per_app():
    first, second = Flask("a"), Flask("b")
    assert register_api(first, SPEC).keys() == register_api(second, SPEC).keys()
    assert first.blueprints["dashboards"] is not second.blueprints["dashboards"]
