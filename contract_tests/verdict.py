"""What the run actually checked, as part of its verdict: a run that skipped its way to green is not a pass.

`COVERAGE` is filled during the run: every judged answer (property, stateful and targeted requests go through
loader's after_validate hook) and every named rule a targeted test evaluates (reporting.violated). The
terminal summary and every report start with its headline, "operations exercised with a valid token: n/7",
and test_verdict.py::test_coverage_is_complete fails the run below 7/7 or when a test was skipped for lack
of a token, unless --allow-partial.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from contract_tests import spec
from contract_tests.seeding import rules_of_skip

# settings.SuiteSettings.missing_token_reason: "no full token for <target>: set CONTRACT_TOKEN (or --token)"
MISSING_TOKEN = re.compile(r"^no [\w-]+ token for ")


@dataclass
class Coverage:
    # operation id -> answers below 300 to requests carrying the read-write token
    exercised: Counter = field(default_factory=Counter)
    checked: Counter = field(default_factory=Counter)  # rule -> times evaluated
    failed: Counter = field(default_factory=Counter)  # rule -> times it failed
    operations_of_rule: dict = field(default_factory=lambda: defaultdict(set))  # rule -> operation labels
    skipped: dict = field(default_factory=lambda: defaultdict(list))  # skip reason -> test ids
    # rule -> why it was not checked, from skip reasons that name their rules (seeding.no_data, require_writes)
    skipped_rules: dict = field(default_factory=lambda: defaultdict(list))
    recording: bool = True  # off during the suite's unit tests of its own judges (conftest)

    def reset(self) -> None:
        self.__init__()

    def observe(self, case, response, results, token: str | None) -> None:
        """One judged answer: which checks ran on it and failed, and whether it exercised its operation."""
        if not self.recording:
            return
        label = f"{case.operation.method.upper()} {case.operation.path}"
        for result in results:
            self.rule(result.name, result.failure is None, label)
        request = getattr(response, "request", None)
        sent = (request.headers.get("Authorization") if request is not None else None) or ""
        operation_id = case.operation.definition.raw.get("operationId") if hasattr(case.operation, "definition") else None
        if token and sent == f"Bearer {token}" and response.status_code < 300 and operation_id:
            self.exercised[operation_id] += 1

    def rule(self, name: str, passed: bool, operation: str | None = None) -> None:
        if not self.recording:
            return
        self.checked[name] += 1
        if not passed:
            self.failed[name] += 1
        if operation:
            self.operations_of_rule[name].add(operation)

    def skip(self, reason: str, test_id: str) -> None:
        self.skipped[reason].append(test_id)
        for rule in rules_of_skip(reason):
            self.skipped_rules[rule].append(reason.split(": ", 1)[1])

    # --- the verdict -------------------------------------------------------------------------------------

    @property
    def total_operations(self) -> int:
        return len(spec.operations())

    @property
    def missing_operations(self) -> list[str]:
        return [op.label for op in spec.operations() if self.exercised[op.operation_id] == 0]

    def headline(self) -> str:
        done = self.total_operations - len(self.missing_operations)
        return f"operations exercised with a valid token: {done}/{self.total_operations}"

    def token_skips(self) -> dict[str, list[str]]:
        return {reason: tests for reason, tests in self.skipped.items() if MISSING_TOKEN.match(reason)}

    def gaps(self) -> list[str]:
        """Why this run is partial, one line each; empty when it is complete."""
        lines = []
        if self.missing_operations:
            lines.append("not exercised with a valid token (no judged answer below 300): " + ", ".join(self.missing_operations))
        for reason, tests in sorted(self.token_skips().items()):
            lines.append(f"{len(tests)} test(s) skipped: {reason}")
        return lines

    def lines(self) -> list[str]:
        """The coverage block of the terminal summary and the reports."""
        out = [self.headline()]
        out += [f"  {line}" for line in self.gaps()]
        out.append("rules: checked / failed (operations) / skipped (why)")
        for name in sorted(set(self.checked) | set(self.skipped_rules)):
            ops = len(self.operations_of_rule.get(name, ()))
            where = f" on {ops} operation(s)" if ops else ""
            why = self.skipped_rules.get(name)
            skipped = f", {len(why)} skipped ({'; '.join(dict.fromkeys(why))})" if why else ""
            out.append(f"  {name}: {self.checked[name]} checked, {self.failed[name]} failed{where}{skipped}")
        if self.skipped:
            out.append("skipped tests, by reason (the rules they check were not checked there):")
            for reason, tests in sorted(self.skipped.items(), key=lambda kv: -len(kv[1])):
                out.append(f"  {len(tests)}: {reason}")
        return out


COVERAGE = Coverage()
