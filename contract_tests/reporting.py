"""Failure messages a person can act on: the request as curl (token masked), the response, the broken rule.

schemathesis formats its own failures (FailureGroup, with a curl reproducer). The targeted tests use
`describe()`/`expect()` here so their assertion messages carry the same three things.
"""

from __future__ import annotations

import json
import shlex

MASK = "[Filtered]"
BODY_LIMIT = 1500
_SENSITIVE = ("authorization", "cookie", "proxy-authorization", "x-api-key")
# Known tokens -> the variable that holds them (conftest fills it from the settings): a reproducer then reads
# `-H "Authorization: Bearer $CONTRACT_TOKEN"`, runnable as is, and the token itself is never printed.
TOKEN_VARIABLES: dict[str, str] = {}


def mask_header(name: str, value: str) -> str:
    if name.lower() not in _SENSITIVE:
        return value
    scheme, sep, _credential = value.partition(" ")
    return f"{scheme} {MASK}" if sep else MASK


def double_quoted(text: str) -> str:
    """A shell word in double quotes, so that `$CONTRACT_...` in it expands and nothing else does."""
    return '"' + "".join("\\" + c if c in '\\$`"' else c for c in text) + '"'


def curl(method: str, url: str, headers: dict | None = None, body: bytes | str | None = None) -> str:
    parts = ["curl", "-X", shlex.quote(method.upper())]
    for name, value in (headers or {}).items():
        if name.lower() in ("user-agent", "accept-encoding", "connection", "content-length", "x-schemathesis-testcaseid"):
            continue
        scheme, _, credential = str(value).partition(" ")
        if name.lower() == "authorization" and credential in TOKEN_VARIABLES:
            parts += ["-H", f'"{name}: {scheme} ${TOKEN_VARIABLES[credential]}"']
        else:
            parts += ["-H", shlex.quote(f"{name}: {mask_header(name, str(value))}")]
    if body:
        parts += ["-d", shlex.quote(body.decode("utf-8", "replace") if isinstance(body, bytes) else body)]
    parts.append(runnable_url(url))
    return " ".join(parts)


IN_PROCESS_ROOT = "http://localhost"  # what an in-process request's URL starts with (no server listens there)


def runnable_url(url: str) -> str:
    """In-process URLs name no server: they become $CONTRACT_BASE_URL (a served mock's, e.g.)."""
    if url.startswith(IN_PROCESS_ROOT + "/"):
        return '"$CONTRACT_BASE_URL"' + double_quoted(url[len(IN_PROCESS_ROOT):])
    return shlex.quote(url)


def _body_text(content: bytes | None) -> str:
    if not content:
        return "<empty>"
    try:
        text = json.dumps(json.loads(content), indent=2, ensure_ascii=False)
    except ValueError:
        text = content.decode("utf-8", "replace")
    if len(text) > BODY_LIMIT:
        text = text[:BODY_LIMIT] + f"\n... ({len(text) - BODY_LIMIT} more characters)"
    return text


def describe(response) -> str:
    """Request (as curl, token masked), status, headers and body of a schemathesis Response."""
    request = response.request
    headers = dict(request.headers) if request is not None else {}
    lines = [
        "Reproduce with:",
        "    " + curl(request.method, request.url, headers, request.body),
        "",
        f"Response: {response.status_code}",
    ]
    for name, values in sorted(response.headers.items()):
        if name.lower() in ("content-type", "www-authenticate", "allow", "location"):
            for value in values if isinstance(values, list) else [values]:
                lines.append(f"    {name}: {value}")
    lines.append("    " + _body_text(response.content).replace("\n", "\n    "))
    return "\n".join(lines)


def expect(condition: bool, message: str, *responses) -> None:
    """Assert with the exchanges that prove the failure attached."""
    __tracebackhide__ = True
    if not condition:
        details = "\n\n".join(describe(r) for r in responses)
        raise AssertionError(f"{message}\n\n{details}" if details else message)


class ContractViolation(AssertionError):
    """A targeted test's failure, naming the rule of the contract it broke (shown in the run report)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def violated(rule: str, condition: bool, message: str, *responses) -> None:
    """Like `expect`, for a named rule: the report lists failures by rule (or schemathesis check) name."""
    __tracebackhide__ = True
    COVERAGE.rule(rule, bool(condition), _operation_of(responses))
    if not condition:
        details = "\n\n".join(describe(r) for r in responses if r is not None)
        raise ContractViolation(rule, f"{message}\n\n{details}" if details else message)


# Names of the checks that failed during the current test, recorded by loader's after_validate hook: the
# failure classes alone are ambiguous (one class serves several built-in checks). Cleared per test by conftest.
failed_checks: list[str] = []


def record_check_results(results) -> None:
    for result in results:
        if result.failure is not None and result.name not in failed_checks:
            failed_checks.append(result.name)


def failed_rules(exc: BaseException | None) -> list[str]:
    """Names of the checks or rules an exception reports: schemathesis checks, custom checks, targeted rules."""
    from schemathesis.core.failures import CustomFailure, Failure

    names: list[str] = []

    def walk(error: BaseException | None) -> None:
        if error is None:
            return
        if isinstance(error, ContractViolation):
            names.append(error.rule)
        elif isinstance(error, CustomFailure):
            title = error.title
            names.append(title.split("`")[1] if title.count("`") >= 2 else title)
        elif isinstance(error, Failure):
            names.extend(error.checks or (type(error).__name__,))
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        elif not names and error.__cause__ is not None:
            walk(error.__cause__)

    walk(exc)
    return list(dict.fromkeys(names))


def _operation_of(responses) -> str | None:
    from contract_tests.report_files import operation_of_url

    for response in responses:
        request = getattr(response, "request", None)
        if request is not None:
            return operation_of_url(request.method, request.url)
    return None


from contract_tests.report_files import RunReport, unique_path  # noqa: E402,F401 - re-exported for conftest
from contract_tests.verdict import COVERAGE  # noqa: E402


