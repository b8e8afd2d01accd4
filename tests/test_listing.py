"""definitions and code_lines on small files written by the tests."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from course_utils import listing
from course_utils.listing import code_lines, definitions

SOURCE = '''"""A module."""

import functools

CONSTANT = 1


@functools.total_ordering
class Decorated:
    """A decorated class."""

    def method(self) -> int:
        return 1


def plain(x):
    # a comment
    return x


async def later():
    return None
'''


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "module.py"
    path.write_text(SOURCE, encoding="utf-8")
    return path


def test_definitions_returns_named_definitions_in_file_order_with_decorators(module: Path) -> None:
    shown = definitions(module, "later", "Decorated")
    assert shown.startswith("@functools.total_ordering\nclass Decorated:")
    assert shown.index("class Decorated") < shown.index("async def later")
    assert "def method(self)" in shown  # a class comes with its methods
    assert "def plain" not in shown and "CONSTANT" not in shown
    assert shown.endswith("    return None")


def test_definitions_keeps_comments_inside_a_function(module: Path) -> None:
    assert definitions(module, "plain") == "def plain(x):\n    # a comment\n    return x"


@pytest.mark.parametrize("names", [("missing",), ("method",), ("CONSTANT",), ()])
def test_definitions_refuses_what_is_not_a_top_level_definition(module: Path, names: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="defines no top-level class or function"):
        definitions(module, *names)


def test_code_lines_skips_blank_lines_and_comments_but_counts_docstrings(tmp_path: Path) -> None:
    one = tmp_path / "one.py"
    one.write_text(
        '"""Doc."""\n\n# comment\n   # indented comment\nx = 1  # trailing comment\n\n', encoding="utf-8"
    )
    two = tmp_path / "two.py"
    two.write_text("def f():\n    return 2\n", encoding="utf-8")
    assert code_lines([one]) == 2
    assert code_lines([one, two]) == 4
    assert code_lines([]) == 0


def test_doctests() -> None:
    assert doctest.testmod(listing).failed == 0
