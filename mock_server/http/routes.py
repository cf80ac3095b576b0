"""Method and path to one operation of the spec and its handler: one table, built from openapi.yaml and
the handlers named by operationId (a spec operation without a handler fails at start-up).

werkzeug's router, as Flask used it: a GET route answers HEAD too; a path with no route is a 404; a
path whose route takes other methods is a 405 whose `Allow` lists them (OPTIONS included, which the
pipeline's cors step answers). Slashes are not merged: `//` is simply no route.
"""

from __future__ import annotations

from dataclasses import dataclass

from werkzeug.routing import Map, Rule

from ..api import Handler
from ..spec import Operation, Spec


@dataclass(frozen=True, slots=True)
class Route:
    op: Operation
    handler: Handler


class Router:
    def __init__(self, spec: Spec, handlers: dict[str, Handler]) -> None:
        missing = set(spec.operations) - set(handlers)
        if missing:
            raise LookupError(f"operations without a handler: {', '.join(sorted(missing))}")
        unknown = set(handlers) - set(spec.operations)
        if unknown:
            raise LookupError(f"handlers named after no operationId of {spec.path}: {', '.join(sorted(unknown))}")
        self.routes = {op_id: Route(op, handlers[op_id]) for op_id, op in spec.operations.items()}
        rules = [Rule(op.flask_rule, endpoint=op_id, methods=[op.method, "OPTIONS"])
                 for op_id, op in spec.operations.items()]
        self._adapter = Map(rules, merge_slashes=False).bind("mock")

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and its path arguments; raises werkzeug's NotFound or MethodNotAllowed."""
        op_id, args = self._adapter.match(path, method)
        return self.routes[op_id], args

    def allowed_methods(self, path: str) -> list[str]:
        return self._adapter.allowed_methods(path)
