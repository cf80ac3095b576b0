"""The run report a person reads: grouped by rule, then operation, one example each, no tracebacks.

The terminal summary, contract.md and contract.html start with the coverage verdict (verdict.py), then the
broken rules. Each example is the failure's own message (what was expected, the request as a runnable curl
with `$CONTRACT_TOKEN`, the response), not pytest's traceback. contract.html adds an operation x rule
matrix (failed / passed / not checked), self-contained, so it opens offline from a CI artifact.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import urlsplit

from contract_tests import assumptions, spec
from contract_tests.verdict import COVERAGE

_CURL_TOKEN = re.compile(r"'Authorization: Bearer \[Filtered\]'")
_LOCAL_URL = re.compile(r"'http://localhost(/[^']*)'")
_NOISE = re.compile(r"^(\s*\+ Exception Group Traceback.*|\s*\|?\s*File \".*|.*Traceback \(most recent call last\):.*)$", re.M)
EXAMPLE_LIMIT = 4000


def unique_path(path) -> Path:
    """`path`, or the first free `name-2.ext`, `name-3.ext`, ...: a report of an earlier run is never replaced."""
    path = Path(path)
    n = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def operation_of_url(method: str, url: str) -> str | None:
    """The spec operation ("GET /api/...") a concrete request URL belongs to, or None."""
    parts = urlsplit(url).path.split("/")
    for op in spec.operations():
        template = op.path.split("/")
        if op.method == method.upper() and len(template) == len(parts) and all(
                t == p or (t.startswith("{") and t.endswith("}") and p) for t, p in zip(template, parts)):
            return op.label
    return None


def operation_of_failure(nodeid: str, text: str) -> str:
    """From the test id (`test_positive_data[GET /api/...]`), else from the first reproducer in the message."""
    bracket = re.search(r"\[((?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /[^\]]*)\]", nodeid)
    if bracket and spec.operation_for(*bracket.group(1).split(" ", 1)):
        return bracket.group(1)
    found = re.search(r"curl -X '?(\w+)'?.*?(?:'|\")?((?:https?://[^\s'\"]+)|(?:\$CONTRACT_BASE_URL\"?\"?[^\s\"]*))", text)
    if found:
        url = found.group(2).replace('$CONTRACT_BASE_URL""', "http://x").replace("$CONTRACT_BASE_URL", "http://x")
        label = operation_of_url(found.group(1), url.strip('"'))
        if label:
            return label
    return "(no single operation)"


def readable(text: str) -> str:
    """A failure's message for a person: runnable curl lines, no traceback lines, bounded."""
    text = _CURL_TOKEN.sub('"Authorization: Bearer $CONTRACT_TOKEN"', text)
    text = _LOCAL_URL.sub(lambda m: '"$CONTRACT_BASE_URL"\'' + m.group(1) + "'", text)
    text = text.replace(" --insecure", "")
    text = _NOISE.sub("", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text if len(text) <= EXAMPLE_LIMIT else text[:EXAMPLE_LIMIT] + "\n... (cut; the JUnit file has it all)"


def _walk(exc):
    while exc is not None:
        yield exc
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                yield from _walk(inner)
            return
        exc = exc.__cause__ or exc.__context__


class RunReport:
    """What failed, by rule then operation, with one example each; the terminal section and the report files."""

    def __init__(self, settings, report_path: Path | None = None) -> None:
        self.settings = settings
        self.report_path = report_path
        self.failures: list[dict] = []
        self.assumed: list[dict] = []  # tests xfailed: every failure rests on an x-assumption (assumptions.py)
        self.stats: dict[str, int] = {}
        self.extra_writers: list = []  # callables(report_dir) -> [paths]: calibration, HAR

    def add_failure(self, item, call, report) -> None:
        from contract_tests import reporting

        exc = call.excinfo.value if call.excinfo is not None else None
        violations = [e.rule for e in _walk(exc) if isinstance(e, reporting.ContractViolation)]
        rules = (list(dict.fromkeys(violations + reporting.failed_checks)) or reporting.failed_rules(exc)
                 or [f"{report.when} error" if report.when != "call" else "assertion"])
        # The exception's own message: schemathesis' formatted failures or the rule's explanation, once each.
        message = str(exc) if exc is not None and str(exc).strip() else report.longreprtext
        text = readable(message)
        self.failures.append({"test": report.nodeid, "when": report.when, "rules": rules, "example": text,
                              "operation": operation_of_failure(report.nodeid, text)})

    def add_assumed(self, item, call, report, findings) -> None:
        exc = call.excinfo.value if call.excinfo is not None else None
        text = readable(str(exc) if exc is not None and str(exc).strip() else report.longreprtext)
        self.assumed.append(assumptions.entry(report.nodeid, findings, text))

    def finish(self, stats: dict[str, int]) -> None:
        self.stats = stats

    def grouped(self) -> dict[str, dict[str, list[dict]]]:
        """rule -> operation -> failures."""
        out: dict[str, dict[str, list[dict]]] = {}
        for failure in self.failures:
            for rule in failure["rules"]:
                out.setdefault(rule, {}).setdefault(failure["operation"], []).append(failure)
        return out

    def header_lines(self) -> list[str]:
        s = self.settings
        result = ", ".join(f"{v} {k}" for k, v in self.stats.items() if v) or "nothing ran"
        return [
            f"target: {s.target_label}",
            f"generation: {'deep' if s.deep else 'quick'}, {s.max_examples} examples per property test, "
            f"{s.stateful_scenarios} stateful scenarios, seed {s.seed} (replay with --contract-seed {s.seed})",
            f"result: {result}",
        ]

    def terminal_lines(self) -> list[str]:
        lines = COVERAGE.lines() + self.header_lines()
        if self.failures:
            lines.append("broken rules (rule: operations, e.g. a failing test):")
            for rule, ops in sorted(self.grouped().items()):
                first = next(iter(ops.values()))[0]
                lines.append(f"  {rule}: {', '.join(sorted(ops))}; e.g. {first['test']}")
        return lines + assumptions.terminal_lines(self.assumed)

    def write_all(self) -> list[Path]:
        written = []
        if self.report_path is not None:
            written.append(self.write_markdown(self.report_path))
            written.append(self.write_html(Path(self.report_path).with_suffix(".html")))
        directory = self.settings.report_dir or (Path(self.report_path).parent if self.report_path else None)
        for writer in self.extra_writers if directory is not None else ():
            written += writer(Path(directory))
        return written

    def write_markdown(self, path) -> Path:
        path = unique_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        out = ["# Contract report", "", f"**{COVERAGE.headline()}**", ""]
        out += [f"- {line.strip()}" for line in COVERAGE.gaps()]
        out += ["", *[f"- {line}" for line in self.header_lines()], ""]
        if not self.failures:
            out += ["No contract violation found." if not COVERAGE.gaps() else
                    "No contract violation found in what was checked; see the coverage above.", ""]
        else:
            out += ["## Broken rules", "", "| rule | operations | failing tests |", "|---|---|---|"]
            for rule, ops in sorted(self.grouped().items()):
                tests = {f["test"] for fs in ops.values() for f in fs}
                out.append(f"| `{rule}` | {len(ops)} | {len(tests)} |")
            out += ["", "## Failures by rule, then operation (one example each)", ""]
            for rule, ops in sorted(self.grouped().items()):
                out += [f"### `{rule}`", ""]
                for op, failures in sorted(ops.items()):
                    more = f" (and {len(failures) - 1} more failing test(s))" if len(failures) > 1 else ""
                    note = [f"Rests only on x-assumption(s): {failures[0]['assumed']}", ""] if failures[0].get("assumed") else []
                    out += [f"#### {op}", "", f"Example: `{failures[0]['test']}`{more}", "", *note, "```",
                            failures[0]["example"], "```", ""]
        out += assumptions.markdown_lines(self.assumed)
        out += ["## Coverage", "", "```", *COVERAGE.lines(), "```", ""]
        path.write_text("\n".join(out) + "\n", encoding="utf-8")
        return path

    def write_html(self, path) -> Path:
        path = unique_path(path)
        grouped = self.grouped()
        rules = sorted(set(COVERAGE.checked) | set(grouped))
        ops = [op.label for op in spec.operations()]
        cell = {"failed": ("#f4b6b6", "failed"), "passed": ("#b9e4b9", "passed"), "none": ("#e4e4e4", "not checked")}

        def state(rule, op):
            if op in grouped.get(rule, {}):
                return "failed"
            return "passed" if op in COVERAGE.operations_of_rule.get(rule, ()) else "none"

        e = html.escape
        rows = "".join(
            f"<tr><th>{e(op)}</th>" + "".join(
                f'<td style="background:{cell[state(r, op)][0]}">{cell[state(r, op)][1]}</td>' for r in rules) + "</tr>"
            for op in ops)
        examples = "".join(
            f"<h3>{e(rule)} &mdash; {e(op)}</h3><p>{e(fs[0]['test'])}</p><pre>{e(fs[0]['example'])}</pre>"
            for rule, by_op in sorted(grouped.items()) for op, fs in sorted(by_op.items()))
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Contract report</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;"
            "padding:4px;font-size:12px}th{text-align:left}pre{background:#f6f6f6;padding:1em;overflow:auto}"
            "</style></head><body><h1>Contract report</h1>"
            f"<p><b>{e(COVERAGE.headline())}</b></p><ul>"
            + "".join(f"<li>{e(x.strip())}</li>" for x in COVERAGE.gaps() + self.header_lines())
            + "</ul><h2>Operation x rule</h2><table><tr><th>operation</th>"
            + "".join(f"<th>{e(r)}</th>" for r in rules) + f"</tr>{rows}</table>"
            + (f"<h2>Failures (one example per rule and operation)</h2>{examples}" if examples else
               "<p>No contract violation found in what was checked.</p>")
            + assumptions.html_section(self.assumed)
            + "</body></html>")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
        return path
