"""Method and path to one operation of the spec and its handler: one table, built from openapi.yaml and
the handlers named by operationId (a spec operation without a handler fails at start-up).

It routes as Flask's werkzeug router did for these paths: a template segment ({dashboardId}) is one
non-empty path segment; a GET route answers HEAD too; a path with no route is a 404; a path whose route
takes other methods is a 405 whose `Allow` lists them (OPTIONS included, which the pipeline's cors step
answers). A literal path wins over a template (`dashboard/most-viewed` is no `{dashboardId}`). Plain
dictionaries and one regular expression per template: routing is a step of every request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from werkzeug.exceptions import MethodNotAllowed, NotFound

from ..api import Handler
from ..spec import Operation, Spec

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Route:
    op: Operation
    handler: Handler


def _pattern(template: str) -> re.Pattern:
    parts = _PARAM.split(template)  # literal, name, literal, name, ..., literal
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
    return re.compile(regex + r"\Z")


class Router:
    def __init__(self, spec: Spec, handlers: dict[str, Handler]) -> None:
        missing = set(spec.operations) - set(handlers)
        if missing:
            raise LookupError(f"operations without a handler: {', '.join(sorted(missing))}")
        unknown = set(handlers) - set(spec.operations)
        if unknown:
            raise LookupError(f"handlers named after no operationId of {spec.path}: {', '.join(sorted(unknown))}")
        self.routes = {op_id: Route(op, handlers[op_id]) for op_id, op in spec.operations.items()}
        # path (or template) -> method -> route
        self._literal: dict[str, dict[str, Route]] = {}
        templated: dict[str, dict[str, Route]] = {}
        for route in self.routes.values():
            table = templated if "{" in route.op.path else self._literal
            methods = table.setdefault(route.op.path, {})
            methods[route.op.method] = route
            if route.op.method == "GET":
                methods.setdefault("HEAD", route)
        self._templated = [(_pattern(path), methods) for path, methods in templated.items()]

    def _methods(self, path: str) -> tuple[dict[str, Route], dict[str, str]] | None:
        methods = self._literal.get(path)
        if methods is not None:
            return methods, {}
        for pattern, methods in self._templated:
            found = pattern.match(path)
            if found is not None:
                return methods, found.groupdict()
        return None

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        """The route and its path arguments (for OPTIONS: no route, the path exists); raises werkzeug's
        NotFound or MethodNotAllowed, which the renderer answers."""
        found = self._methods(path)
        if found is None:
            raise NotFound()
        methods, args = found
        route = methods.get(method)
        if route is not None:
            return route, args
        if method == "OPTIONS":
            return None, args
        raise MethodNotAllowed(valid_methods=self._allowed(methods))

    def allowed_methods(self, path: str) -> list[str]:
        found = self._methods(path)
        return self._allowed(found[0]) if found is not None else []

    @staticmethod
    def _allowed(methods: dict[str, Route]) -> list[str]:
        return sorted({*methods, "OPTIONS"})
