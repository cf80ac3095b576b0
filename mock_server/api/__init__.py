"""The API's blueprints, routed from openapi.yaml.

Each resource module lists its handlers; a handler's function name is its operationId, and the path and
method come from the spec, so a route cannot drift from the contract. By the time a handler runs, the
request was authenticated, authorised and validated (app.py); the handler gets a `Call` with the typed
parameters and the principal, asks the store, and wraps the result in the `{data, message}` envelope (an
`Ok`). Both paths (Flask's view here, the WSGI fast path of mock_server.pipeline) call it through `answer`,
which reuses a GET's answer while the data is unchanged (mock_server.response_cache): so a GET handler may
depend on its parameters, the caller's user, today's date and the store, and on nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, g

from ..auth import Principal
from ..spec import Operation, Spec

Handler = Callable[["Call"], "Ok"]


def json_response(payload: Any, status: int = 200) -> Response:
    """A success body, serialised with orjson (error bodies are built in errors.py only)."""
    return Response(orjson.dumps(payload), status=status, mimetype="application/json")


@dataclass(slots=True)
class Ok:
    """A handler's success: the envelope, before serialisation."""

    payload: dict[str, Any]
    status: int = 200

    def body(self) -> bytes:
        return orjson.dumps(self.payload)


@dataclass(slots=True)  # made for every request: no frozen-dataclass __setattr__ detour
class Call:
    """What a handler may use: the operation, its validated parameters, the caller, and the app state."""

    op: Operation
    params: dict[str, Any]
    principal: Principal
    state: Any  # app.MockState (not imported: app imports this module)

    @property
    def store(self):
        return self.state.store

    def ok(self, data: Any, **extra: Any) -> Ok:
        return Ok({"data": data, "message": self.op.success_message, **extra})


def answer(handler: Handler, call: Call) -> tuple[int, bytes]:
    """The handler's status and body, or, for a GET, the same answer kept from an earlier call made on the
    same data (mock_server.response_cache)."""
    cache = call.state.response_cache
    if cache is None or call.op.method != "GET":
        return _run(handler, call)
    key = cache.key(call.op.operation_id, call.principal.user_id, call.state.clock.today(), call.params)
    return cache.get(key, lambda: _run(handler, call))


def _run(handler: Handler, call: Call) -> tuple[int, bytes]:
    result = handler(call)
    return result.status, result.body()


def _view(handler: Handler) -> Callable[..., Response]:
    def view(**_path_args: str) -> Response:  # path args arrive validated in g.params
        ctx = g._get_current_object()
        status, body = answer(handler, Call(op=ctx.operation, params=ctx.params, principal=ctx.principal,
                                            state=current_app.extensions["insights_mock"]))
        return Response(body, status=status, mimetype="application/json")
    view.__name__ = handler.__name__
    view.__doc__ = handler.__doc__
    return view


def _operation_of(handler: Handler, spec: Spec) -> Operation:
    op = spec.operations.get(handler.__name__)
    if op is None:
        raise LookupError(f"handler {handler.__name__} names no operationId of {spec.path}")
    return op


def _resources() -> tuple:
    """The resource modules: each has RESOURCE (its blueprint's name) and HANDLERS."""
    from . import audit_logs, dashboards

    return dashboards, audit_logs


def handlers(spec: Spec) -> dict[str, tuple[Operation, Handler]]:
    """operationId -> (operation, handler), for every resource module; what the fast path dispatches on."""
    found = {}
    for module in _resources():
        for handler in module.HANDLERS:
            found[handler.__name__] = (_operation_of(handler, spec), handler)
    return found


def build_blueprint(name: str, spec: Spec, handlers: Iterable[Handler]) -> tuple[Blueprint, dict[str, Operation]]:
    """A new blueprint (one per app) with a rule per handler; returns it and its endpoint -> operation map."""
    blueprint = Blueprint(name, __name__)
    endpoints: dict[str, Operation] = {}
    for handler in handlers:
        op = _operation_of(handler, spec)
        blueprint.add_url_rule(op.flask_rule, endpoint=op.operation_id, view_func=_view(handler),
                               methods=[op.method])
        endpoints[f"{name}.{op.operation_id}"] = op
    return blueprint, endpoints


def register_api(app: Flask, spec: Spec) -> dict[str, Operation]:
    """Register every resource blueprint; fail at start-up if an operation of the spec has no handler."""
    endpoints: dict[str, Operation] = {}
    for module in _resources():
        blueprint, found = build_blueprint(module.RESOURCE, spec, module.HANDLERS)
        app.register_blueprint(blueprint)
        endpoints.update(found)
    missing = set(spec.operations) - {op.operation_id for op in endpoints.values()}
    if missing:
        raise LookupError(f"operations without a handler: {', '.join(sorted(missing))}")
    return endpoints
