"""Where the mock's default files are: openapi.yaml, fixtures/tokens.yaml and fixtures/scenarios/.

They live once, at the root of the repository. A source checkout (an editable install, or tests run from the
tree) reads them there, so an edit of openapi.yaml or a fixture applies at once (--reload). A wheel has no
repository around it: setup.py's build step copies the same files, in the same layout, into the package as
mock_server/_bundled/, and that copy is found through importlib.resources.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

BUNDLE_DIR = "_bundled"  # setup.py's build_py writes the copies here; keep the two names in step


def _is_checkout(root: Path) -> bool:
    # pyproject.toml too, so a site-packages that happens to hold an openapi.yaml is never taken for a checkout
    return all((root / name).is_file() for name in ("pyproject.toml", "openapi.yaml", "fixtures/tokens.yaml"))


def data_root(package_dir: Path | None = None) -> Path:
    """The directory holding openapi.yaml and fixtures/: the checkout around the package when there is one,
    else the copy inside the installed package. When neither holds the files (a broken install), the bundle's
    path is still returned, so the error that follows names the file that is missing."""
    if package_dir is None:
        # A real directory for any unpacked install (pip always unpacks wheels); the paths become config values.
        package_dir = Path(str(files(__package__)))
    checkout = package_dir.parent
    if _is_checkout(checkout):
        return checkout
    return package_dir / BUNDLE_DIR
