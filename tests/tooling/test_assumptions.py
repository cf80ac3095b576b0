"""openapi.yaml says what is known and marks what is assumed (scripts/assumptions.py, docs/ASSUMPTIONS.md).

The list of assumptions is printed on every run (its count shows in the test output), and the generated
docs/ASSUMPTIONS.md, which the README links, must be the current one. The source's words must appear verbatim,
response objects must stay open and response vocabularies must accept values the spec does not know.
"""

from __future__ import annotations

import importlib.util
import re

import pytest

from mock_helpers import ROOT, SPEC, component_validator

_spec = importlib.util.spec_from_file_location("assumptions", ROOT / "scripts" / "assumptions.py")
assumptions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(assumptions)

# The vendor's page and FACTS.md live in the repository (docs/source/), so this check runs on every clone; the
# originals beside the checkout, where the team keeps them, must still be the same text.
SOURCE = ROOT / "docs" / "source" / "insights-audit-logs-api.txt"
ORIGINALS = ROOT.parent / "shared" / "seed"
FOUND = assumptions.collect(SPEC)


def test_the_assumptions_are_listed_with_their_count(capsys):
    with capsys.disabled():  # shown in every run, captured or not
        print(f"\nopenapi.yaml: {len(FOUND)} assumptions (docs/ASSUMPTIONS.md)")
        for number, (where, reason) in enumerate(FOUND, 1):
            print(f"  {number:>2}. {where}: {reason}")
    assert FOUND
    for where, reason in FOUND:
        assert isinstance(reason, str) and reason.strip() and "\n" not in reason.strip(), where  # one line each


def test_docs_assumptions_md_is_current():
    current = assumptions.render(FOUND)
    assert assumptions.DOC_PATH.read_text(encoding="utf-8") == current, \
        "docs/ASSUMPTIONS.md is stale: run python3 scripts/assumptions.py"
    assert "docs/ASSUMPTIONS.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def _walk(node, path=()):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, index))


def test_no_object_is_closed():
    """The spec's rule: unknown fields may be added to envelopes and entities."""
    closed = [path for path, node in _walk(SPEC) if node.get("additionalProperties") is False]
    assert closed == []


@pytest.mark.parametrize("name", ["ObjectId", "Timestamp"])
def test_what_facts_states_carries_no_assumption(name):
    assert "x-assumption" not in SPEC["components"]["schemas"][name]


def test_every_invented_object_is_marked():
    """An object schema with required fields states FACTS.md's envelope (data, message) or is marked."""
    schemas = SPEC["components"]["schemas"]
    for name, schema in schemas.items():
        if schema.get("type") == "object" and schema.get("required") and set(schema["required"]) - {"data", "message", "pagination"}:
            assert "x-assumption" in schema, name


def test_a_vendor_entry_with_new_vocabulary_and_extra_fields_passes():
    entry = {"_id": "507f1f77bcf86cd799439011", "user_id": "64b7f0c2a1e3d4c5b6a79801", "user_email": "system",
             "type": "insights_dashboard", "action": "duplicate", "target_id": "x", "account": "Acme_Prod",
             "tool_mapping": {"mappingId": "8d3e2f10-4b5c-4a6d-9e7f-0a1b2c3d4e5f", "tool": "gitlab-ci", "name": "n"},
             "createdAt": "2026-11-20T09:15:02.123Z", "updatedAt": "2026-11-20T09:15:02.123Z", "__v": 0, "extra": 1}
    component_validator("AuditLogEntry").validate(entry)
    page = {"data": [], "message": "ok", "success": True,
            "pagination": {"page": 1, "page_size": 50, "total_items": 0, "total_pages": 0, "has_next": False, "x": 1}}
    component_validator("DashboardAuditLogPageResponse").validate(page)
    component_validator("MostViewedResponse").validate({"data": [], "message": "ok", "success": True})
    component_validator("Error").validate({"status": 401, "error": "invalid_token", "message": "m", "statusCode": 401})
    assert list(component_validator("AuditLogEntry").iter_errors({**entry, "type": ""}))  # still a non-empty string


def test_request_filters_keep_their_enums():
    params = SPEC["components"]["parameters"]
    for name, schema in (("Type", "AuditEntityType"), ("Action", "AuditAction")):
        assert params[name]["schema"] == {"$ref": f"#/components/schemas/{schema}"}
        assert SPEC["components"]["schemas"][schema]["enum"]


def test_the_repositorys_source_documents_are_the_originals():
    copies = {path.name: path.read_text(encoding="utf-8") for path in SOURCE.parent.iterdir()}
    assert set(copies) == {"insights-audit-logs-api.txt", "FACTS.md"}
    assert all(text.strip() for text in copies.values())
    if ORIGINALS.is_dir():  # a clone elsewhere has only the copies, which the other tests read
        for name, text in copies.items():
            assert (ORIGINALS / name).read_text(encoding="utf-8") == text, f"docs/source/{name} differs from {ORIGINALS / name}"


def _source_lines() -> list[str]:
    # The page's text runs some lines together ("...dashboardsAuthentication required"): split them again.
    text = re.sub(r"(?<=[a-z0-9])(?=(Authentication required|Bad Request|Successfully|Dashboard view event|"
                  r"Unique identifier|Insufficient|Internal|Not Found))", "\n", SOURCE.read_text(encoding="utf-8"))
    return [line.strip() for line in text.splitlines() if line.strip()]


def _spec_strings() -> set[str]:
    found = set()
    for _, node in _walk(SPEC):
        for key in ("description", "summary"):
            if isinstance(node.get(key), str):
                found.add(node[key].strip())
                found.update(line.strip() for line in node[key].splitlines())
        example = node.get("example")
        if isinstance(example, dict) and isinstance(example.get("message"), str):
            found.add(example["message"])
    return found


def test_the_sources_words_are_in_the_spec_verbatim():
    """Every sentence of the source document (descriptions, success messages, the `data` descriptions, the
    error sentences) is a description or a success message of the spec, word for word."""
    strings = _spec_strings()
    ids = {"123e4567-e89b-12d3-a456-426614174000", "507f1f77bcf86cd799439011"}
    lines = _source_lines()
    title, page_footer = lines[0], "Last updated"
    assert SPEC["info"]["title"].startswith(title)  # the page's title names the API
    missing = [line for line in lines[1:] if line not in ids and line != page_footer and line not in strings]
    assert missing == []
    # the source's own ids are the parameter examples (the mapping's too, beside the pinned mapping)
    params = SPEC["components"]["parameters"]
    assert params["DashboardId"]["example"] == "123e4567-e89b-12d3-a456-426614174000"
    assert params["AuditLogId"]["example"] == "507f1f77bcf86cd799439011"
    assert "123e4567-e89b-12d3-a456-426614174000" in [e["value"] for e in params["MappingId"]["examples"].values()]
