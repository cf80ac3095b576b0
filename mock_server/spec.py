"""openapi.yaml, read once: the operations, their parameters, responses, examples and required access.

Everything the HTTP layer needs from the contract is derived here at start-up (routes, validators,
success messages, 400 messages, x-required-scopes/roles, documented codes), so there is no second copy
of the contract in code. The document is plain OpenAPI 3.1: its schemas are JSON Schema 2020-12, so
after inlining the local `$ref`s each one compiles into an ordinary validator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

# libyaml's loader parses the spec about ten times faster, which is most of the start-up time.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_ANNOTATIONS = frozenset({"description", "summary", "title", "example", "examples", "deprecated"})
_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SpecError(ValueError):
    """The spec file cannot drive the server (missing, unreadable or lacking what we rely on)."""


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # "path" or "query" (the spec declares no header or cookie parameters)
    required: bool
    schema: dict  # $refs inlined
    default: Any = None
    # x-out-of-range: clamp - on an operation that documents no 400, a value the schema refuses is not an
    # error: a number out of range is clamped to it, anything else is ignored (the default applies).
    clamp: bool = False

    @property
    def type(self) -> str | None:
        return self.schema.get("type")


@dataclass(frozen=True)
class ResponseSpec:
    status: int
    description: str
    schema: dict | None  # application/json schema, $refs inlined
    example: Any  # `example`, or the first of the named `examples`: what a forced code answers
    headers: dict[str, dict]  # name -> {"required": bool, "schema": dict}
    examples: tuple = ()  # every example value, `example` first


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str  # upper case
    path: str  # as written in the spec, e.g. /api/.../{dashboardId}/stats
    parameters: tuple[Parameter, ...]
    responses: dict[int, ResponseSpec]
    required_scopes: frozenset[str]
    required_roles: frozenset[str]
    required_scopes_ordered: tuple[str, ...]  # for messages, in the spec's order
    required_roles_ordered: tuple[str, ...]
    tags: tuple[str, ...] = ()
    path_error_messages: dict[str, str] = field(default_factory=dict)  # param -> 400 message

    @property
    def flask_rule(self) -> str:
        return _PATH_PARAM.sub(r"<\1>", self.path)

    @cached_property  # read on every request (faults, the envelope); the spec does not change
    def documented_codes(self) -> tuple[int, ...]:
        return tuple(sorted(self.responses))

    @cached_property
    def success_message(self) -> str:
        return self.responses[200].example["message"]


@dataclass(frozen=True)
class Spec:
    path: Path
    raw: bytes  # served byte for byte at /openapi.yaml
    document: dict
    operations: dict[str, Operation]  # by operationId, in the spec's order
    error_schema: dict
    query_error_message: str

    def operation(self, operation_id: str) -> Operation:
        return self.operations[operation_id]


def load_spec(path: str | Path) -> Spec:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read the spec file {path}: {exc.strerror}") from exc
    try:
        document = yaml.load(raw, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        raise SpecError(f"{path} is not an OpenAPI document (no paths)")

    resolver = _Resolver(document)
    operations: dict[str, Operation] = {}
    for api_path, item in document["paths"].items():
        item = resolver.resolve(item)
        shared = item.get("parameters", [])
        for method in HTTP_METHODS:
            if method not in item:
                continue
            op = item[method]
            op_id = op.get("operationId")
            if not op_id:
                raise SpecError(f"{method.upper()} {api_path} has no operationId")
            operations[op_id] = _operation(resolver, document, api_path, method, op, shared)

    components = document.get("components", {})
    try:
        error_schema = resolver.resolve(components["schemas"]["Error"])
    except KeyError as exc:
        raise SpecError("the spec has no components.schemas.Error") from exc
    # The message of a bad query parameter: the documented 400 example whose details name a query parameter.
    query_message = next(
        (example["message"] for op in operations.values() if 400 in op.responses
         for example in op.responses[400].examples if isinstance(example, dict) and "message" in example
         and any(d.get("location") == "query" for d in example.get("details") or [])),
        "Bad Request - Invalid query parameter")
    return Spec(path=path, raw=raw, document=document, operations=operations,
                error_schema=error_schema, query_error_message=query_message)


def _operation(resolver: _Resolver, document: dict, api_path: str, method: str, op: dict,
               shared: list) -> Operation:
    op_id = op["operationId"]
    by_key: dict[tuple[str, str], dict] = {}
    for raw_param in [*shared, *op.get("parameters", [])]:
        param = resolver.resolve(raw_param)
        by_key[(param["name"], param["in"])] = param  # operation-level wins, as OpenAPI says
    parameters = []
    for (name, location), param in by_key.items():
        if location not in ("path", "query"):
            raise SpecError(f"{op_id}: parameters in {location} are not supported")
        schema = param.get("schema", {})
        parameters.append(Parameter(name=name, location=location,
                                    required=bool(param.get("required", location == "path")),
                                    schema=schema, default=schema.get("default"),
                                    clamp=param.get("x-out-of-range") == "clamp"))

    responses: dict[int, ResponseSpec] = {}
    for code, raw_response in op.get("responses", {}).items():
        if not str(code).isdigit():
            raise SpecError(f"{op_id}: response {code!r} is not a concrete status code")
        response = resolver.resolve(raw_response)
        media = response.get("content", {}).get("application/json", {})
        headers = {
            name: {"required": bool(h.get("required", False)), "schema": h.get("schema", {})}
            for name, h in ((n, resolver.resolve(h)) for n, h in response.get("headers", {}).items())
        }
        examples = ([media["example"]] if "example" in media else []) + [
            named.get("value") for named in (media.get("examples") or {}).values() if isinstance(named, dict)]
        responses[int(code)] = ResponseSpec(
            status=int(code), description=response.get("description", ""),
            schema=media.get("schema"), example=examples[0] if examples else None, headers=headers,
            examples=tuple(examples))
    if 200 not in responses or not isinstance(responses[200].example, dict) \
            or "message" not in responses[200].example:
        raise SpecError(f"{op_id}: the 200 response needs an example with a message")

    # The 400 example of an operation with an id in its path names the parameter and carries the message
    # ("Bad Request - Invalid dashboard ID format"); reading it here keeps the wording in the spec alone.
    path_messages: dict[str, str] = {}
    bad = responses.get(400)
    for example in bad.examples if bad else ():
        if not isinstance(example, dict):
            continue
        for detail in example.get("details", []) or []:
            if detail.get("location") == "path" and detail.get("name"):
                path_messages.setdefault(detail["name"], example["message"])

    scopes = tuple(op.get("x-required-scopes", ()))
    roles = tuple(op.get("x-required-roles", ()))
    if not scopes or not roles:
        raise SpecError(f"{op_id}: x-required-scopes and x-required-roles are required")
    return Operation(
        operation_id=op_id, method=method.upper(), path=api_path, parameters=tuple(parameters),
        responses=responses, required_scopes=frozenset(scopes), required_roles=frozenset(roles),
        required_scopes_ordered=scopes, required_roles_ordered=roles, tags=tuple(op.get("tags", ())),
        path_error_messages=path_messages)


class _Resolver:
    """Inlines local `$ref`s ("#/components/..."). The spec has no recursive schemas; a cycle is an error."""

    def __init__(self, document: dict) -> None:
        self._document = document

    def resolve(self, node: Any, _seen: tuple[str, ...] = ()) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref in _seen:
                    raise SpecError(f"recursive $ref {ref} is not supported")
                target = self.resolve(self._pointer(ref), (*_seen, ref))
                siblings = {k: v for k, v in node.items() if k != "$ref"}
                if not siblings:
                    return target
                siblings = {k: self.resolve(v, _seen) for k, v in siblings.items()}
                # OpenAPI 3.1 allows keywords beside $ref. Annotations can simply be merged; anything that
                # constrains must apply together with the target, which is what allOf says.
                if set(siblings) <= _ANNOTATIONS:
                    return {**target, **siblings}
                return {"allOf": [target], **siblings}
            return {k: self.resolve(v, _seen) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v, _seen) for v in node]
        return node

    def _pointer(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise SpecError(f"only local $refs are supported, not {ref}")
        node: Any = self._document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            try:
                node = node[part]
            except (KeyError, TypeError) as exc:
                raise SpecError(f"$ref {ref} does not resolve") from exc
        return node
