"""The library imports with its runtime dependencies alone; extras (lab, pipeline, bench, dev) optional.

Every `course_utils` module is imported in a fresh interpreter in which the extras' packages cannot be
imported, as in a capstone's CI that installs only the library and the `pipeline` extra.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import course_utils

#: Import names of the packages that come only with an extra (see [project.optional-dependencies]).
EXTRA_ONLY_MODULES = (
    "jupyterlab", "jupyter_server", "nbgrader", "nbval", "jupytext", "mypy", "litserve", "locust",
    "pip_audit", "schemathesis", "hypothesis", "tritonclient", "uvloop", "httptools",
)  # fmt: skip

_PROBE = """
import importlib, importlib.abc, importlib.machinery, sys
BLOCKED = set(sys.argv[1].split(","))
class Missing(importlib.abc.Loader):
    def create_module(self, spec):
        raise ModuleNotFoundError(f"{spec.name} is only installed with an extra", name=spec.name)
    def exec_module(self, module):
        pass
class Blocker(importlib.abc.MetaPathFinder):
    # A spec without an origin whose loader fails: importing fails as if the package were not installed.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, Missing())
        return None
sys.meta_path.insert(0, Blocker())
for module in sys.argv[2:]:
    importlib.import_module(module)
print("imported", len(sys.argv) - 2)
"""


def _library_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(course_utils.__path__, prefix="course_utils."))


def test_every_library_module_imports_without_the_extras() -> None:
    modules = _library_modules()
    assert len(modules) > 15
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(EXTRA_ONLY_MODULES), *modules],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"a module needs an extra at import time:\n{result.stderr[-3000:]}"
    assert f"imported {len(modules)}" in result.stdout


def test_the_probe_does_block_an_extra() -> None:
    """The blocker really blocks: importing an extra's package under it fails."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, "nbformat", "nbformat"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0 and "only installed with an extra" in result.stderr
