"""Requests and responses checked against openapi.yaml with validators compiled once at start-up.

Requests: every path and query parameter an operation declares is coerced from its string form and
validated: first by jsonschema-rs (compiled, about a microsecond), and when it refuses a value, by
python-jsonschema, whose verdict counts and whose messages read like the spec's examples ("0 is less than
the minimum of 1", "'xyz' does not match '^[0-9a-fA-F]{24}$'"). Both use the same format checkers, and
what jsonschema-rs accepts python-jsonschema accepts too (its regexes only differ in refusing a trailing
newline before `$`), so the fast check never lets through a value the full one would refuse. Unknown
query parameters are ignored, as OpenAPI allows.

Responses: bodies are validated with jsonschema-rs (about 45 times faster than python-jsonschema on a
100-item page), plus the status being documented, the media type and required headers. This runs in
dev/test mode; `VALIDATE_RESPONSES=false` turns it off for benchmarks.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import jsonschema
import jsonschema_rs
import orjson

from .errors import BadRequest
from .spec import Operation, Parameter, Spec

_MAX_REPR = 120

FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_INTEGER = re.compile(r"-?[0-9]{1,4000}")  # Python refuses longer int literals


@FORMAT_CHECKER.checks("uuid")
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or _UUID.fullmatch(value) is not None


@FORMAT_CHECKER.checks("date-time")
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or parse_date_time(value) is not None


@FORMAT_CHECKER.checks("date")
def _is_date(value: object) -> bool:
    if not isinstance(value, str) or _DATE.fullmatch(value) is None:
        return not isinstance(value, str)
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


@FORMAT_CHECKER.checks("email")
def _is_email(value: object) -> bool:
    return not isinstance(value, str) or _EMAIL.fullmatch(value) is not None


_FAST_FORMATS = {"uuid": _is_uuid, "date-time": _is_date_time, "date": _is_date, "email": _is_email}
_INT64 = 1 << 63


def parse_date_time(value: str) -> datetime | None:
    """An RFC 3339 date-time as an aware UTC datetime, or None. A leap second (:60) reads as :59.999999,
    since Python's datetime cannot hold it but RFC 3339 allows it."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        return None
    text = value
    leap = match.group(6) == "60"
    if leap:
        text = value[:17] + "59" + value[19:]
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None
    if leap:
        parsed = parsed.replace(microsecond=999999)
    return parsed.astimezone(UTC)


def _short(message: str) -> str:
    return message if len(message) <= 300 else message[:297] + "..."


class _CompiledParameter:
    def __init__(self, param: Parameter) -> None:
        self.param = param
        self.validator = jsonschema.Draft202012Validator(param.schema, format_checker=FORMAT_CHECKER)
        self.fast = jsonschema_rs.validator_for(param.schema, validate_formats=True, formats=_FAST_FORMATS)
        self.type = param.type
        pattern = param.schema.get("pattern", "")
        # Hex ids (UUIDs, ObjectIds) are case-insensitive; the store keeps them lower-case.
        self.lower = param.schema.get("format") == "uuid" or "0-9a-fA-F" in pattern
        self.date_time = param.schema.get("format") == "date-time"
        self.date = param.schema.get("format") == "date"

    def coerce(self, raw: str) -> Any:
        if self.type == "integer" and _INTEGER.fullmatch(raw):
            return int(raw)
        if self.type == "number":
            try:
                return float(raw)
            except ValueError:
                return raw
        if self.type == "boolean" and raw in ("true", "false"):
            return raw == "true"
        return raw

    def error(self, value: Any) -> str | None:
        if type(value) is not int or -_INT64 <= value < _INT64:  # jsonschema-rs holds 64-bit integers
            if self.fast.is_valid(value):
                return None
        for error in self.validator.iter_errors(value):  # the first, in the schema's keyword order
            shown = repr(value)
            if len(shown) > _MAX_REPR:  # keep the words of the message, not 4000 digits of the value
                return _short(error.message.replace(shown, shown[:_MAX_REPR // 2] + "..."))
            return _short(error.message)
        return None

    def clamped(self, raw_values: list[str]) -> Any:
        """The value of an `x-out-of-range: clamp` parameter, which is never an error (its operation documents
        no 400): a number out of range is brought into it, anything else (not a number, given twice) is
        ignored and the default applies."""
        if len(raw_values) == 1:
            value = self.coerce(raw_values[0])
            if self.error(value) is None:
                return self.convert(value)
            if type(value) is int:
                low, high = self.param.schema.get("minimum"), self.param.schema.get("maximum")
                if low is not None and value < low:
                    return low
                if high is not None and value > high:
                    return high
        return self.param.default

    def convert(self, value: Any) -> Any:
        if self.lower and isinstance(value, str):
            return value.lower()
        if self.date_time and isinstance(value, str):
            return parse_date_time(value)
        if self.date and isinstance(value, str):
            return date.fromisoformat(value)  # valid: the format check passed
        return value


class RequestValidator:
    """Validates and converts one operation's parameters; raises BadRequest with one detail per problem."""

    def __init__(self, op: Operation, spec: Spec) -> None:
        self.op = op
        self._query_message = spec.query_error_message
        self._params = [_CompiledParameter(p) for p in op.parameters]

    def parse(self, path_args: dict[str, str], query) -> dict[str, Any]:
        """`query` is a werkzeug MultiDict (or any mapping with getlist)."""
        values: dict[str, Any] = {}
        details: list[dict] = []
        message: str | None = None
        for compiled in self._params:
            p = compiled.param
            if p.location == "path":
                raw_values = [path_args[p.name]] if p.name in path_args else []
            else:
                raw_values = query.getlist(p.name)
            if not raw_values:
                if p.required:
                    details.append({"location": p.location, "name": p.name,
                                    "message": f"'{p.name}' is a required property"})
                elif p.default is not None:
                    values[p.name] = p.default
                continue
            if p.clamp:
                values[p.name] = compiled.clamped(raw_values)
                continue
            if len(raw_values) > 1:
                details.append({"location": p.location, "name": p.name,
                                "message": f"'{p.name}' is given {len(raw_values)} times; give it once"})
                continue
            value = compiled.coerce(raw_values[0])
            problem = compiled.error(value)
            if problem is not None:
                details.append({"location": p.location, "name": p.name, "message": problem})
                if p.location == "path" and message is None:
                    message = self.op.path_error_messages.get(p.name)
                continue
            values[p.name] = compiled.convert(value)

        # The one rule the schemas cannot state, from the start_date/end_date parameter descriptions.
        start, end = values.get("start_date"), values.get("end_date")
        if isinstance(start, date) and isinstance(end, date) and start > end:
            details.append({"location": "query", "name": "start_date",
                            "message": "'start_date' must not be after 'end_date'"})
        if details:
            raise BadRequest(message or self._query_message, details=details)
        return values


class ResponseValidator:
    """Checks a finished response of an operation against what the spec documents for it."""

    def __init__(self, spec: Spec) -> None:
        self._bodies: dict[tuple[str, int], Any] = {}
        self._headers: dict[tuple[str, int], list[tuple[str, bool, Any]]] = {}
        for op in spec.operations.values():
            for status, response in op.responses.items():
                key = (op.operation_id, status)
                if response.schema is not None:
                    self._bodies[key] = jsonschema_rs.validator_for(response.schema, validate_formats=True)
                self._headers[key] = [
                    (name, h["required"], jsonschema_rs.validator_for(h["schema"], validate_formats=True))
                    for name, h in response.headers.items()
                ]
        self._error = jsonschema_rs.validator_for(spec.error_schema, validate_formats=True)

    def problems(self, op: Operation | None, status: int, content_type: str | None,
                 headers, body: bytes, document: Any = None) -> list[str]:
        """What is wrong with the response (empty when it conforms). Without an operation (routing errors,
        413) an error body must still be the spec's Error. `document`: the body before it was serialised,
        when the caller has it (then it is not parsed again)."""
        if op is None:
            if status >= 400:
                return self._body_problems(self._error, content_type, body, document)
            return []
        key = (op.operation_id, status)
        if status not in op.responses:
            return [f"{op.operation_id} does not document status {status} "
                    f"(documented: {', '.join(map(str, op.documented_codes))})"]
        found: list[str] = []
        for name, required, validator in self._headers.get(key, []):
            value = headers.get(name)
            if value is None:
                if required:
                    found.append(f"header {name} is required")
            elif not validator.is_valid(value):
                found.append(f"header {name}: {_first_error(validator, value)}")
        validator = self._bodies.get(key)
        if validator is not None:
            found += self._body_problems(validator, content_type, body, document)
        return found

    @staticmethod
    def _body_problems(validator, content_type: str | None, body: bytes, document: Any = None) -> list[str]:
        if (content_type or "").split(";")[0].strip() != "application/json":
            return [f"content type {content_type!r} is not application/json"]
        if document is None:
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                return [f"body is not JSON: {exc}"]
        if validator.is_valid(document):
            return []
        return [f"body: {_first_error(validator, document)}"]


def _first_error(validator, instance) -> str:
    for error in validator.iter_errors(instance):
        path = "/".join(str(p) for p in error.instance_path)
        return _short(f"at /{path}: {error.message}")
    return "invalid"
