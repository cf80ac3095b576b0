"""resources.py: the default files are the checkout's own in a source tree, the package's bundle otherwise."""

from __future__ import annotations

from pathlib import Path

import mock_server
from mock_server.config import DATA_ROOT, load_config
from mock_server.resources import BUNDLE_DIR, data_root
from mock_helpers import ROOT


def _checkout(root: Path, *, pyproject: bool = True) -> Path:
    (root / "fixtures").mkdir(parents=True)
    (root / "openapi.yaml").write_text("openapi: 3.1.0\n")
    (root / "fixtures" / "tokens.yaml").write_text("tokens: []\n")
    if pyproject:
        (root / "pyproject.toml").write_text("[project]\n")
    package = root / "mock_server"
    package.mkdir()
    return package


def test_this_checkout_serves_its_own_files_so_edits_apply_live():
    assert data_root() == ROOT and DATA_ROOT == ROOT
    config = load_config(environ={})
    assert config["SPEC_FILE"] == str(ROOT / "openapi.yaml")
    assert config["TOKENS_FILE"] == str(ROOT / "fixtures" / "tokens.yaml")
    assert config["SCENARIOS_DIR"] == str(ROOT / "fixtures" / "scenarios")


def test_the_checkout_never_holds_a_bundle_that_could_go_stale():
    # An editable install copies nothing (setup.py skips the copy in editable mode); only wheels bundle.
    assert not (Path(mock_server.__file__).parent / BUNDLE_DIR).exists()


def test_a_package_inside_a_checkout_resolves_to_the_checkout(tmp_path):
    package = _checkout(tmp_path / "repo")
    assert data_root(package) == tmp_path / "repo"


def test_an_installed_package_resolves_to_its_bundle(tmp_path):
    site_packages = tmp_path / "site-packages"
    package = site_packages / "mock_server"
    (package / BUNDLE_DIR / "fixtures").mkdir(parents=True)
    assert data_root(package) == package / BUNDLE_DIR


def test_a_directory_with_stray_files_but_no_pyproject_is_not_a_checkout(tmp_path):
    package = _checkout(tmp_path / "site-packages", pyproject=False)
    assert data_root(package) == package / BUNDLE_DIR
