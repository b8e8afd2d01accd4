"""Every public module's __all__ names real objects, and the package re-exports what it lists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import course_utils

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(course_utils.__path__, "course_utils.")
    if not name.rsplit(".", 1)[-1].startswith("_")
)


def test_package_exports() -> None:
    for name in course_utils.__all__:
        assert hasattr(course_utils, name), name


@pytest.mark.parametrize("module_name", MODULES)
def test_module_all_is_accurate(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} has no __all__"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ lists missing names {missing}"
