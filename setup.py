"""The one build step pyproject.toml cannot declare: ship openapi.yaml and fixtures/ inside the package.

They stay at the repository root, where the tests, the contract suite and the README read them; a wheel
copies them, at build time, to mock_server/_bundled/ in the same layout, where mock_server.resources finds
them once installed. Listing them as build_py's sources also puts them in the sdist, so a wheel built from
the sdist has them too. An editable install copies nothing: it reads the checkout's files, so edits apply.
"""

from __future__ import annotations

import os
from glob import glob

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLE_DIR = os.path.join("mock_server", "_bundled")  # mock_server.resources.BUNDLE_DIR
CONTRACT_FILES = ("openapi.yaml", "operator-openapi.yaml", "fixtures/**/*.yaml")  # relative to the project root (the build's cwd)


def _contract_sources() -> list[str]:
    sources = sorted({path for pattern in CONTRACT_FILES for path in glob(pattern, recursive=True)})
    if {"openapi.yaml", "operator-openapi.yaml", os.path.join("fixtures", "tokens.yaml")} - set(sources):
        raise SystemExit("insights-mock build: openapi.yaml, operator-openapi.yaml and fixtures/tokens.yaml must be "
                         "in the project root")
    return sources


class build_py_with_contract(build_py):  # noqa: N801 - setuptools' command naming
    def _bundle_mapping(self) -> dict[str, str]:
        """Each copy in the build tree -> its source at the project root."""
        return {os.path.join(self.build_lib, BUNDLE_DIR, source): source for source in _contract_sources()}

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for target, source in self._bundle_mapping().items():
            self.mkpath(os.path.dirname(target))
            self.copy_file(source, target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:  # already from get_output_mapping
            return outputs
        return outputs + list(self._bundle_mapping())

    def get_output_mapping(self) -> dict[str, str]:
        return {**super().get_output_mapping(), **self._bundle_mapping()}

    def get_source_files(self) -> list[str]:
        return super().get_source_files() + _contract_sources()


setup(cmdclass={"build_py": build_py_with_contract})
