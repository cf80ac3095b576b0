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


def mask_header(name: str, value: str) -> str:
    if name.lower() not in _SENSITIVE:
        return value
    scheme, sep, _credential = value.partition(" ")
    return f"{scheme} {MASK}" if sep else MASK


def curl(method: str, url: str, headers: dict | None = None, body: bytes | str | None = None) -> str:
    parts = ["curl", "-X", method.upper()]
    for name, value in (headers or {}).items():
        if name.lower() in ("user-agent", "accept-encoding", "connection", "content-length", "x-schemathesis-testcaseid"):
            continue
        parts += ["-H", f"{name}: {mask_header(name, str(value))}"]
    if body:
        parts += ["-d", body.decode("utf-8", "replace") if isinstance(body, bytes) else body]
    parts.append(url)
    return " ".join(shlex.quote(p) for p in parts)


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
    if not condition:
        details = "\n\n".join(describe(r) for r in responses)
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


def _walk(exc: BaseException | None):
    while exc is not None:
        yield exc
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                yield from _walk(inner)
            return
        exc = exc.__cause__ or exc.__context__


class RunReport:
    """What failed, by rule, with the reproducer; printed as a terminal section and optionally as markdown."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.failures: list[dict] = []
        self.stats: dict[str, int] = {}

    def add_failure(self, item, call, report) -> None:
        exc = call.excinfo.value if call.excinfo is not None else None
        violations = [e.rule for e in _walk(exc) if isinstance(e, ContractViolation)]
        rules = list(dict.fromkeys(violations + failed_checks)) or failed_rules(exc) or [f"{report.when} error" if report.when != "call" else "assertion"]
        self.failures.append(
            {"test": report.nodeid, "when": report.when, "rules": rules, "details": report.longreprtext}
        )

    def finish(self, stats: dict[str, int]) -> None:
        self.stats = stats

    def by_rule(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for failure in self.failures:
            for rule in failure["rules"]:
                grouped.setdefault(rule, []).append(failure["test"])
        return grouped

    def terminal_lines(self) -> list[str]:
        if not self.failures:
            return []
        lines = [f"target: {self.settings.target_label}, seed {self.settings.seed}", "broken rules:"]
        for rule, tests in sorted(self.by_rule().items()):
            lines.append(f"  {rule}: {len(tests)} test(s), e.g. {tests[0]}")
        lines.append("each failure above carries the reproducing request as a curl command (token masked)")
        return lines

    def write_markdown(self, path):
        from pathlib import Path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        s = self.settings
        out = [
            "# Contract report",
            "",
            f"- target: {s.target_label}",
            f"- generation: {'deep' if s.deep else 'quick'}, {s.max_examples} examples per property test, "
            f"{s.stateful_scenarios} stateful scenarios, seed {s.seed}",
            "- result: " + ", ".join(f"{v} {k}" for k, v in self.stats.items() if v) or "- result: nothing ran",
            "",
        ]
        if not self.failures:
            out.append("No contract violation found.")
        else:
            out += ["## Broken rules", "", "| rule | failing tests |", "|---|---|"]
            for rule, tests in sorted(self.by_rule().items()):
                out.append(f"| `{rule}` | {len(tests)} |")
            out += ["", "## Failures", ""]
            for failure in self.failures:
                out += [
                    f"### {failure['test']}",
                    "",
                    "Rules: " + ", ".join(f"`{r}`" for r in failure["rules"]),
                    "",
                    "```",
                    failure["details"].strip(),
                    "```",
                    "",
                ]
        path.write_text("\n".join(out) + "\n", encoding="utf-8")
        return path
