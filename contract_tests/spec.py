"""What the suite reads from openapi.yaml besides what schemathesis does: who may call what, and the Error schema.

Expectations are derived from the spec (`x-required-scopes`, `x-required-roles`, the `Error` component), never
from a second hand-written table, so a change to the contract changes what the suite expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import jsonschema
import yaml

from mock_server.resources import data_root

# The checkout's openapi.yaml when run from one, else the copy installed with the wheel (mock_server/_bundled/).
SPEC_PATH = data_root() / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str  # upper case
    path: str  # templated, e.g. /api/.../{dashboardId}/stats
    required_scopes: frozenset[str]  # any one suffices
    required_roles: frozenset[str]  # any one suffices
    tags: tuple[str, ...]
    path_params: tuple[str, ...]
    statuses: frozenset[str]

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def writes(self) -> bool:
        """Whether calling the operation changes server state (only the view POST in this API)."""
        return self.method not in ("GET", "HEAD", "OPTIONS")


@cache
def raw_spec() -> dict:
    with SPEC_PATH.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@cache
def operations() -> tuple[Operation, ...]:
    spec = raw_spec()
    found = []
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = [_deref(p) for p in item.get("parameters", []) + op.get("parameters", [])]
            found.append(
                Operation(
                    operation_id=op["operationId"],
                    method=method.upper(),
                    path=path,
                    required_scopes=frozenset(op.get("x-required-scopes", [])),
                    required_roles=frozenset(op.get("x-required-roles", [])),
                    tags=tuple(op.get("tags", [])),
                    path_params=tuple(p["name"] for p in params if p["in"] == "path"),
                    statuses=frozenset(str(code) for code in op.get("responses", {})),
                )
            )
    return tuple(found)


def operation(operation_id: str) -> Operation:
    for op in operations():
        if op.operation_id == operation_id:
            return op
    raise KeyError(operation_id)


def operation_for(method: str, path_template: str) -> Operation | None:
    for op in operations():
        if op.method == method.upper() and op.path == path_template:
            return op
    return None


def all_scopes() -> frozenset[str]:
    return frozenset().union(*(op.required_scopes for op in operations()))


def roles_of_tag(tag: str) -> frozenset[str]:
    """Roles admitted by every operation of a tag (e.g. who may read audit entries)."""
    sets = [op.required_roles for op in operations() if tag in op.tags]
    return frozenset.intersection(*sets) if sets else frozenset()


def example_of_parameter(name: str):
    for param in raw_spec()["components"]["parameters"].values():
        if param["name"] == name:
            if "example" in param:
                return param["example"]
            named = list((param.get("examples") or {}).values())  # the first named example
            return named[0].get("value") if named else None
    return None


def follow_refs(document: dict, node, location: list[str]):
    """Follow local $refs from `node`, found at `location` in `document`: (the node reached, its location). The
    location becomes the referenced node's, so a reader can tell which part of openapi.yaml it is judging."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        location = [p.replace("~1", "/").replace("~0", "~") for p in node["$ref"][2:].split("/")]
        node = document
        for part in location:
            node = node[part]
    return node, location


def _deref(node: dict) -> dict:
    ref = node.get("$ref")
    if ref is None:
        return node
    target = raw_spec()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


@cache
def _component_validator(name: str) -> jsonschema.protocols.Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": raw_spec()["components"]}
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def component_errors(name: str, instance) -> list[str]:
    """Violations of a component schema by `instance`, as readable lines (empty when it conforms)."""
    errors = sorted(_component_validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]
