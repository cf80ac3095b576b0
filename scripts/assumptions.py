"""The list of what openapi.yaml assumes: every `x-assumption` of the spec, where it sits and why.

The spec marks each constraint that neither the source document (docs/source/insights-audit-logs-api.txt, the
vendor's reference page) nor docs/source/FACTS.md states with `x-assumption: <one-line reason>` (or a list of such lines,
where one node holds several). This script renders them as docs/ASSUMPTIONS.md; tests/tooling/test_assumptions.py
prints the list with its count on every run and fails when the file is stale:

    python3 scripts/assumptions.py            # rewrite docs/ASSUMPTIONS.md
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from the checkout: the suite's package beside it

from contract_tests.assumptions import catalogue  # noqa: E402
SPEC_PATH = ROOT / "openapi.yaml"
DOC_PATH = ROOT / "docs" / "ASSUMPTIONS.md"


def collect(document) -> list[tuple[str, str]]:
    """(where, reason) of every assumption, in document order. `where` reads like the spec: an operation by
    its operationId (getDashboardAuditLogs), a component by its path (components.schemas.Pagination), then
    the keys below it (responses.403). The walk is the contract suite's, which numbers the same marks in its
    reports: one walk, so the numbers of docs/ASSUMPTIONS.md and of a report cannot part."""
    return [(found.where, found.reason) for found in catalogue(document)]


def render(found: list[tuple[str, str]]) -> str:
    lines = [
        "# What openapi.yaml assumes",
        "",
        "Generated from `openapi.yaml` by `python3 scripts/assumptions.py`; `tests/tooling/test_assumptions.py`",
        "prints this list on every run and fails when this file is stale. Each entry is a constraint that neither",
        "the vendor's reference page (the source document) nor FACTS.md states: staging may answer otherwise, and",
        "a difference there is a question for the vendor before it is a bug.",
        "",
        f"**{len(found)} assumptions.**",
        "",
        "| # | where in openapi.yaml | why it is an assumption |",
        "|---|---|---|",
    ]
    for number, (where, reason) in enumerate(found, 1):
        escaped = reason.replace("|", "\\|")  # a table cell
        lines.append(f"| {number} | `{where}` | {escaped} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    document = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    text = render(collect(document))
    DOC_PATH.write_text(text, encoding="utf-8")
    print(f"{DOC_PATH.relative_to(ROOT)}: {len(collect(document))} assumptions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
