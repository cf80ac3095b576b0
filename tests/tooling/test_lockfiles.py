"""requirements/: the pip-compile locks CI installs from agree with pyproject.toml's ranges and with each other.

A dependency added to pyproject.toml without regenerating the locks (the commands are in their headers) fails
here, not in a fresh `python3 dev.py serve` that imports a package the lock never installed.
"""

from __future__ import annotations

import configparser
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mock_helpers import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins(name: str) -> dict[str, str]:
    pinned = {}
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            package, _, version = line.partition("==")
            assert version, f"requirements/{name}: {line!r} is not pinned with =="
            pinned[canonicalize_name(package)] = version
    return pinned


def unmet(requirements: list[str], pinned: dict[str, str]) -> list[str]:
    wrong = []
    for text in requirements:
        req = Requirement(text)
        version = pinned.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            wrong.append(f"{text} (locked: {version})")
        wrong += [f"{req.name}[{extra}]: {req.name}-{extra} missing" for extra in req.extras
                  if canonicalize_name(f"{req.name}-{extra}") not in pinned]
    return wrong


def test_the_runtime_lock_meets_the_dependencies_and_holds_nothing_else():
    runtime = pins("runtime.txt")
    assert unmet(PROJECT["dependencies"], runtime) == []
    for tool in ("pytest", "tox", "playwright", "schemathesis", "openapi-core", "psycopg"):
        assert tool not in runtime, f"{tool} is a test tool: requirements/runtime.txt is what serving needs"


def test_the_test_lock_meets_the_test_and_postgres_extras_and_tox():
    test = pins("test.txt")
    extras = PROJECT["optional-dependencies"]
    tools = [line for line in (ROOT / "requirements" / "tools.in").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert unmet(PROJECT["dependencies"] + extras["test"] + extras["postgres"] + tools, test) == []


def test_serving_runs_the_versions_the_tests_ran():
    test = pins("test.txt")
    assert {name: version for name, version in pins("runtime.txt").items() if test.get(name) != version} == {}


def test_tox_installs_from_the_test_lock():
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    assert tox["testenv"]["deps"].split() == ["-r", "requirements/test.txt"]
    assert tox["testenv"]["constrain_package_deps"] == "true" and tox["testenv"]["package"] == "editable"


def test_dev_py_installs_the_lock_of_each_command_and_rebuilds_when_one_changes(tmp_path, monkeypatch):
    """dev.py's stamp, without installing anything: serve gets the runtime lock, test the test lock (on top of a
    serve-only .venv), and a changed lock or pyproject.toml makes a fresh .venv."""
    import importlib.util
    import shutil

    spec = importlib.util.spec_from_file_location("dev_under_test", ROOT / "dev.py")
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    (tmp_path / "requirements").mkdir()
    for name in ("pyproject.toml", "requirements/runtime.txt", "requirements/test.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    venv_dir = tmp_path / ".venv"
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setattr(dev, "VENV", venv_dir)
    monkeypatch.setattr(dev, "STAMP", venv_dir / ".insights-mock-install")
    monkeypatch.setattr(dev, "BIN", venv_dir / "bin")
    done: list[tuple[str, ...]] = []

    class Builder:
        def __init__(self, with_pip, clear):
            self.clear = clear

        def create(self, path):
            if self.clear:
                shutil.rmtree(path)
            (path / "bin").mkdir(parents=True)
            (path / "bin" / "python").touch()
            done.append(("create", "clear" if self.clear else "new"))

    monkeypatch.setattr(dev.venv, "EnvBuilder", Builder)
    monkeypatch.setattr(dev, "_pip", lambda *args: done.append(args))

    def run(command):
        done.clear()
        dev.ensure_venv(command)
        return done[:]

    assert run("serve") == [("create", "new"), ("-r", "requirements/runtime.txt"), ("--no-deps", "-e", ".")]
    assert run("serve") == []
    assert run("test") == [("-r", "requirements/test.txt")]  # on top of the serve-only .venv
    assert run("test") == [] and run("serve") == []  # a test install serves too
    with (tmp_path / "requirements" / "test.txt").open("a") as lock:
        lock.write("# changed\n")
    assert run("test") == [("create", "clear"), ("-r", "requirements/test.txt"), ("--no-deps", "-e", ".")]
    with (tmp_path / "pyproject.toml").open("a") as project:
        project.write("\n")
    assert run("serve") == [("create", "clear"), ("-r", "requirements/runtime.txt"), ("--no-deps", "-e", ".")]


def test_the_container_lock_is_the_runtime_plus_the_postgres_extra_at_the_tested_versions():
    """requirements/container.txt is what the Dockerfile installs (--no-deps: the lock is all of it)."""
    container, runtime, test = pins("container.txt"), pins("runtime.txt"), pins("test.txt")
    assert unmet(PROJECT["dependencies"] + PROJECT["optional-dependencies"]["postgres"], container) == []
    assert {name: v for name, v in runtime.items() if container.get(name) != v} == {}  # all the runtime, same pins
    assert {name: v for name, v in container.items() if test.get(name) != v} == {}  # what the tests ran
    for tool in ("pytest", "tox", "playwright", "schemathesis", "openapi-core"):
        assert tool not in container, f"{tool} is a test tool: the image serves, it does not test"
