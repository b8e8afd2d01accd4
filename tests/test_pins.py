"""The three places that pin dependencies must agree, exactly (the reproducibility checklist, practised)."""

from __future__ import annotations

import re
import tomllib

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


def _pyproject() -> dict[str, str]:
    data = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return _parse(data["project"]["dependencies"])


def _environment_yml() -> dict[str, str]:
    text = (PROJECT_ROOT / "environment.yml").read_text(encoding="utf-8")
    return _parse(re.findall(r"^\s{6}- (\S+)$", text, flags=re.MULTILINE))


def _requirements() -> dict[str, str]:
    return _parse((PROJECT_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines())


def test_every_direct_dependency_is_pinned_exactly() -> None:
    pins = _pyproject()
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
