"""Contract or assumption: which failures rest only on what openapi.yaml marks `x-assumption`.

The spec states what the vendor's page and FACTS.md say and marks the rest `x-assumption` (docs/ASSUMPTIONS.md).
Against a deployment (--base-url) a failure that rests only on such marks is a question for the vendor, not
drift: conftest turns a test whose every failure is assumed into an xfail ("assumed by the spec, not confirmed
by this deployment") unless --contract-strict (CONTRACT_STRICT=1); in-process and with --serve-mock every
failure stays a failure (the report still says which ones rest only on assumptions).

How a failure finds its assumption(s), first match wins:
1. the check says so itself: it raises `AssumedFailure` (or any exception with an `assumptions` attribute) --
   the opt-in for checks.py and the targeted tests, a one-line change for them later;
2. a schema violation (ST108) is assumed when the violated keyword lies under a node of the spec carrying
   `x-assumption` (the JSON path of the keyword, walked from the component schemathesis names); a missing
   header when the header's definition carries one;
3. RULES below: our mapping of the existing rules; a refiner may look at the answer to tell the stated part of
   a rule from the assumed part (most viewed "ordered by total view count" is stated, its tie-breaks are not).
Anything else is stated: an unknown rule fails the run, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from contract_tests import spec

KEY = "x-assumption"
_CATALOGUE = None


@dataclass(frozen=True)
class Assumption:
    number: int  # its row in docs/ASSUMPTIONS.md (scripts/assumptions.py renders this walk)
    where: str
    reason: str

    def label(self) -> str:
        return f"#{self.number} {self.where}: {self.reason}"


def catalogue(document: dict | None = None) -> list[Assumption]:
    if document is None:
        global _CATALOGUE
        if _CATALOGUE is None:
            _CATALOGUE = _walk_marks(spec.raw_spec())
        return _CATALOGUE
    return _walk_marks(document)


def _walk_marks(document: dict) -> list[Assumption]:
    """Every x-assumption, numbered in document order; scripts/assumptions.py renders this walk as
    docs/ASSUMPTIONS.md, so a report's "#N" is that file's row N."""
    found: list[Assumption] = []

    def walk(node, where: list[str]) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("operationId"), str):
                where = [node["operationId"]]
            for key, value in node.items():
                if key == KEY:
                    for reason in (value if isinstance(value, list) else [value]):
                        found.append(Assumption(len(found) + 1, ".".join(where) or "(root)", reason))
                elif key != "paths" or where:
                    walk(value, [*where, str(key)])
                else:
                    walk(value, [])
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, [*where, str(index)])

    walk(document, [])
    return found


def lookup(where: str, needle: str = "") -> Assumption:
    """The assumption at `where` whose reason contains `needle` (case-insensitive); KeyError when the spec moved."""
    for item in catalogue():
        if item.where == where and needle.lower() in item.reason.lower():
            return item
    raise KeyError(f"no x-assumption at {where} mentioning {needle!r}")


class AssumedFailure(AssertionError):
    """Raised by a check (or a targeted test) for a failure that rests only on x-assumption(s): `refs` are
    (where, needle) pairs as `lookup` takes them, e.g. ("getMostViewedDashboards", "tie-break")."""

    def __init__(self, message: str, *refs: tuple[str, str]) -> None:
        super().__init__(message)
        self.assumptions = tuple(refs)


@dataclass
class Finding:
    """One failure, judged: the rule, and the assumptions it rests on (none: what the source states)."""

    rule: str
    assumptions: tuple[Assumption, ...] = ()
    part: str = ""  # which part of the rule failed, when a rule has a stated and an assumed part
    seen: str = ""  # what the deployment answered, in a line

    @property
    def assumed(self) -> bool:
        return bool(self.assumptions)


Refs = tuple[tuple[str, str], ...]
Refiner = Callable[[object, object], "tuple[Refs, str] | None"]  # (case, response) -> (refs, part) or None: stated


def _op(case) -> str | None:
    found = spec.operation_for(case.method, case.operation.path) if case is not None else None
    return found.operation_id if found else None


def _items(response) -> list | None:
    try:
        data = response.json().get("data")
    except Exception:
        return None
    return data if isinstance(data, list) and all(isinstance(i, dict) for i in data) else None


def _no_duplicates(items) -> bool:
    ids = [str(i.get("dashboardId", i.get("_id", ""))).lower() for i in items]
    return len(ids) == len(set(ids))


def _sorted_desc(values) -> bool:
    return all(a is not None and b is not None and a >= b for a, b in zip(values, values[1:]))


def _most_viewed(case, response):
    """Stated: "ordered by total view count". Assumed: the tie-breaks. Assumed only if the counts are in order."""
    items = _items(response)
    if items is None or not _no_duplicates(items):
        return None
    counts = [i.get("viewCount") if isinstance(i.get("viewCount"), int) else None for i in items]
    if _sorted_desc(counts):
        return (("getMostViewedDashboards", "tie-break"),), "tie-break (viewCount itself is in order)"
    return None


def _recently_viewed(case, response):
    """Stated: "ordered by most recent view time". Assumed: the tie-break by dashboardId."""
    from contract_tests.checks import timestamp

    items = _items(response)
    if items is None or not _no_duplicates(items):
        return None
    times = [timestamp(i.get("lastViewedAt")) for i in items]
    if _sorted_desc(times):
        return (("getRecentlyViewedDashboards", "tie-break"),), "tie-break (lastViewedAt itself is in order)"
    return None


def _audit_order(case, response):
    """The whole order of a log page is ours (assumptions 9 and 11); an entry listed twice is not an order."""
    items = _items(response)
    if items is not None and not _no_duplicates(items):
        return None
    op = _op(case) or "getDashboardAuditLogs"
    return ((op, "order"),), "order"


def _fixed(*refs: tuple[str, str], part: str = "") -> Refiner:
    return lambda case, response: (refs, part)


# rule (schemathesis check or targeted rule) -> what it rests on. Absent: stated.
RULES: dict[str, Refiner] = {
    "most_viewed_order": _most_viewed,
    "recently_viewed_order": _recently_viewed,
    "audit_logs_order": _audit_order,
    "list_limit_honoured": _fixed(("components.parameters.Limit", "limit")),
    "limit_is_a_prefix": _fixed(("components.parameters.Limit", "limit")),
    "pagination_consistent": _fixed(("components.schemas.Pagination", "pagination object")),
    "page_past_the_end_is_empty": _fixed(("components.parameters.Page", "empty page past the end")),
    "error_body_conformance": _fixed(("components.schemas.Error", "body")),
    "auth_challenge_semantics": _fixed(("components.headers.WWW-Authenticate", "challenges"),
                                       ("components.responses.Forbidden", "two codes")),
    "role_is_not_scope": _fixed(("components.responses.Forbidden", "two codes")),
    "audit_entry_references": _fixed(("components.schemas.AuditLogEntry", "references")),
    "stats_consistent": _fixed(("components.schemas.DashboardStats", "every field")),
    "unknown_dashboard_has_zero_stats": _fixed(("getDashboardStats", "zero counts")),
    "unknown_target_has_empty_log": _fixed(("getDashboardAuditLogs", "empty page")),
    "lists_show_existing_dashboards": _fixed(("getRecentlyViewedDashboards", "only dashboards that exist")),
    "ids_accepted_in_any_case": _fixed(("components.schemas.Uuid", "upper case")),
    "limit_default_and_clamped": _fixed(("components.parameters.Limit", "clamping")),
}


# -- schema locations ---------------------------------------------------------------------------------------------


def marks_on_path(path: list, document: dict | None = None) -> list[Assumption]:
    """The x-assumption marks of every node from the document root along `path`: a keyword is assumed when it
    lies under a marked node. A $ref on the way is followed, and the referenced component is judged by its own
    marks (Timestamp, stated, stays stated inside the assumed AuditLogEntry)."""
    document = spec.raw_spec() if document is None else document
    by_where: dict[str, list[Assumption]] = {}
    for item in catalogue(None if document is spec.raw_spec() else document):
        by_where.setdefault(item.where, []).append(item)
    found: list[Assumption] = []
    node, location = document, []
    for segment in [*path, None]:
        before = location
        node, location = spec.follow_refs(document, node, location)  # a referenced node's marks count
        if location is not before:
            found = []  # a component is a statement of its own: only its marks and those below count
        if isinstance(node, dict) and KEY in node:
            found += by_where.get(".".join(location), [])
        if segment is None:
            break
        try:
            node = node[int(segment)] if isinstance(node, list) else node[segment]
        except (KeyError, IndexError, TypeError, ValueError):
            break
        location = [*location, str(segment)]
    return list(dict.fromkeys(found))


def schema_location(failure) -> list:
    """The violated keyword's place in openapi.yaml: schemathesis bundles the components it validates with
    (x-bundled/schema00000N) and keeps the map back to their $refs."""
    from schemathesis.openapi.checks import unbundle_path

    path = list(getattr(failure, "schema_path", None) or [])
    names = getattr(failure, "_name_to_uri", None) or {}
    return list(unbundle_path(path, names)) if names else path


def schema_failure_marks(failure) -> list[Assumption]:
    """ST108: the marks over the violated keyword."""
    path = schema_location(failure)
    if path and path[0] == "components":
        return marks_on_path(path)
    return []


def header_marks(failure, case) -> list[Assumption]:
    """A missing header: the marks of its definition in the operation's responses (e.g. WWW-Authenticate)."""
    document = spec.raw_spec()
    found: list[Assumption] = []
    for name in getattr(failure, "missing_headers", ()) or ():
        for header_name, definition in (document.get("components", {}).get("headers") or {}).items():
            if header_name.lower() == str(name).lower() and KEY in definition:
                found += marks_on_path(["components", "headers", header_name])
    return found


# -- judging one failure --------------------------------------------------------------------------------------------


def _resolve(refs) -> tuple[Assumption, ...]:
    out = []
    for ref in refs:
        try:
            out.append(lookup(*ref) if isinstance(ref, tuple) else lookup(str(ref)))
        except KeyError:
            return ()  # a reference the spec no longer has: stated, so the run fails and someone looks
    return tuple(out)


def judge(rule: str, error: BaseException | None, case=None, response=None) -> Finding:
    """What one failure rests on. `error`: the check's exception, a schemathesis Failure or a ContractViolation."""
    from schemathesis.core.failures import CustomFailure
    from schemathesis.openapi.checks import JsonSchemaError, MissingHeaders

    inner = error.exception if isinstance(error, CustomFailure) else error
    seen = _seen(response)
    own = getattr(inner, "assumptions", None)
    if own:
        return Finding(rule, _resolve(own), "as the check says", seen)
    if isinstance(error, JsonSchemaError):
        marks = schema_failure_marks(error)
        where = "/".join(map(str, schema_location(error)))
        return Finding(rule, tuple(marks), f"schema keyword {where}", seen)
    if isinstance(error, MissingHeaders):
        return Finding(rule, tuple(header_marks(error, case)), "missing header", seen)
    refiner = RULES.get(rule)
    verdict = refiner(case, response) if refiner is not None else None
    if verdict is not None:
        refs, part = verdict
        return Finding(rule, _resolve(refs), part, seen)
    return Finding(rule, (), "", seen)


def _seen(response) -> str:
    if response is None:
        return ""
    request = getattr(response, "request", None)
    what = f"{request.method} {request.url}" if request is not None else ""
    body = (getattr(response, "content", b"") or b"")[:300].decode("utf-8", "replace").replace("\n", " ")
    return f"{what} -> {response.status_code} {body}"


@dataclass
class Ledger:
    """Findings of the current test, by the identity of the failure object they judge (schemathesis raises
    the very objects its after_validate hook saw). Cleared per test by conftest."""

    by_failure: dict[int, tuple[object, Finding]] = field(default_factory=dict)

    def clear(self) -> None:
        self.by_failure.clear()

    def record(self, case, response, results) -> None:
        for result in results:
            if result.failure is not None:
                self.by_failure[id(result.failure)] = (result.failure, judge(result.name, result.failure, case, response))

    def findings_for(self, exc: BaseException | None) -> list[Finding] | None:
        """A Finding for every failure in the test's exception, or None when any part of it is not a judged
        failure (an error in the test itself, a crash): such a test is never excused."""
        from schemathesis.core.failures import Failure

        from contract_tests.reporting import ContractViolation

        findings: list[Finding] = []

        def walk(error) -> bool:
            if isinstance(error, BaseExceptionGroup):
                return all(walk(e) for e in error.exceptions) and bool(error.exceptions)
            if isinstance(error, Failure):
                known = self.by_failure.get(id(error))
                findings.append(known[1] if known else judge((error.checks or (type(error).__name__,))[0], error))
                return True
            if isinstance(error, ContractViolation):
                findings.append(judge(error.rule, error))
                return True
            if isinstance(error, AssumedFailure):
                findings.append(judge("assumption", error))
                return True
            if error is not None and error.__cause__ is not None:
                return walk(error.__cause__)
            return False

        return findings if exc is not None and walk(exc) and findings else None


LEDGER = Ledger()


# -- the report's section ---------------------------------------------------------------------------------------------

TITLE = "assumed by the spec, not confirmed by this deployment"


def excuse(findings: list[Finding]) -> str:
    """The xfail reason of a test whose every failure is assumed: what failed, and on which marks it rests."""
    parts = []
    for f in findings:
        marks = "; ".join(a.label() for a in f.assumptions)
        parts.append(f"{f.rule}{f' ({f.part})' if f.part else ''} rests on {marks}")
    return f"{TITLE} (--contract-strict fails it): " + " | ".join(dict.fromkeys(parts))


def entry(nodeid: str, findings: list[Finding], example: str) -> dict:
    return {"test": nodeid, "findings": findings, "example": example}


def grouped(entries: list[dict]) -> dict[str, list[tuple[dict, Finding]]]:
    """rule -> (entry, finding) pairs, for one example per rule."""
    out: dict[str, list[tuple[dict, Finding]]] = {}
    for item in entries:
        for f in item["findings"]:
            out.setdefault(f.rule, []).append((item, f))
    return out


def terminal_lines(entries: list[dict]) -> list[str]:
    if not entries:
        return []
    lines = [f"{TITLE} ({len(entries)} test(s) xfailed; --contract-strict / CONTRACT_STRICT=1 fails them):"]
    for rule, pairs in sorted(grouped(entries).items()):
        marks = sorted({a.number for _, f in pairs for a in f.assumptions})
        lines.append(f"  {rule}: rests on assumption(s) {', '.join(f'#{n}' for n in marks)}; e.g. {pairs[0][0]['test']}")
    return lines


def markdown_lines(entries: list[dict]) -> list[str]:
    if not entries:
        return []
    out = [f"## {TITLE[0].upper()}{TITLE[1:]}", "",
           "These failures rest only on constraints openapi.yaml marks `x-assumption` (docs/ASSUMPTIONS.md): a "
           "question for the vendor before they are a bug. They do not fail the run; `--contract-strict` makes them fail.", "",
           "| rule | part | assumption(s) | tests |", "|---|---|---|---|"]
    by_rule = grouped(entries)
    for rule, pairs in sorted(by_rule.items()):
        marks = "<br>".join(dict.fromkeys(a.label().replace("|", "\\|") for _, f in pairs for a in f.assumptions))
        parts = ", ".join(dict.fromkeys(f.part for _, f in pairs if f.part))
        out.append(f"| `{rule}` | {parts} | {marks} | {len({e['test'] for e, _ in pairs})} |")
    out.append("")
    for rule, pairs in sorted(by_rule.items()):
        item, finding = pairs[0]
        out += [f"### `{rule}` (assumed)", "", f"Example: `{item['test']}`", ""]
        if finding.seen:
            out += [f"Seen: `{finding.seen[:400]}`", ""]
        out += ["```", item["example"], "```", ""]
    return out


def html_section(entries: list[dict]) -> str:
    import html

    if not entries:
        return ""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(rule)}</td><td>{e('; '.join(dict.fromkeys(a.label() for _, f in pairs for a in f.assumptions)))}"
        f"</td><td>{e(pairs[0][0]['test'])}</td><td><pre>{e(pairs[0][1].seen[:400])}</pre></td></tr>"
        for rule, pairs in sorted(grouped(entries).items()))
    return (f"<h2>{e(TITLE[0].upper() + TITLE[1:])}</h2><p>Not failing the run (--contract-strict fails them).</p>"
            f"<table><tr><th>rule</th><th>assumption(s)</th><th>e.g.</th><th>seen</th></tr>{rows}</table>")
