"""Exact pins (`name==version`), read the way pip reads a requirements file.

The doctor, the capstone grader, the pin-agreement tests and notebook 07 ask the same two questions of a
requirement line: is it an exact pin, and of which package? `packaging` (the library pip itself uses)
answers both: PEP 508 lines with extras and environment markers, PEP 503 names. So the course has one pin
rule, and no regular expression that can drift from pip's reading.

>>> parse_pin("Prometheus_Client[extra] == 0.26.0 ; python_version >= '3.11'")
Pin(name='prometheus-client', version='0.26.0')
>>> parse_pin("requests>=2.0") is None
True
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

__all__ = ["Pin", "normalise", "parse_pin", "read_pins", "requirement_lines", "requirement_name"]

#: Operators that pin one exact version (`===` is PEP 440's arbitrary equality).
_EXACT = ("==", "===")


@dataclass(frozen=True, slots=True)
class Pin:
    """One exact pin: the PEP 503 name and the version."""

    name: str
    version: str


def normalise(name: str) -> str:
    """PEP 503: `Prometheus_Client`, `prometheus-client` and `prometheus.client` are one package.

    >>> normalise("Prometheus_Client")
    'prometheus-client'
    """
    return str(canonicalize_name(name))


def requirement_lines(text: str) -> list[str]:
    """The requirement lines of a requirements file: no blank lines, comment lines or trailing ` #` comments.

    >>> requirement_lines("# serving\\n\\nfastapi==0.165.0  # the API\\n")
    ['fastapi==0.165.0']
    """
    lines = [line.split(" #")[0].split("\t#")[0].strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _requirement(line: str) -> Requirement | None:
    try:
        return Requirement(line)
    except InvalidRequirement:
        return None


def requirement_name(line: str) -> str | None:
    """The PEP 503 name of any requirement line (pinned or not); None if pip could not read it.

    >>> requirement_name("Uvicorn[standard]>=0.30")
    'uvicorn'
    """
    requirement = _requirement(line)
    return normalise(requirement.name) if requirement else None


def parse_pin(line: str) -> Pin | None:
    """The exact pin on `line`, or None: a range, a wildcard, a URL or an unreadable line is not a pin."""
    requirement = _requirement(line)
    if requirement is None or requirement.url:
        return None
    specifiers = list(requirement.specifier)
    if len(specifiers) != 1 or specifiers[0].operator not in _EXACT or "*" in specifiers[0].version:
        return None
    return Pin(normalise(requirement.name), specifiers[0].version)


def read_pins(text: str) -> dict[str, str]:
    """{PEP 503 name: version} of the exact pins of a requirements file; other lines are left out."""
    pins = (parse_pin(line) for line in requirement_lines(text))
    return {pin.name: pin.version for pin in pins if pin}
