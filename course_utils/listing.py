"""Source code as teaching material: show chosen definitions of a file, count the lines a team owns.

A notebook that compares two services shows their code and how much of it there is. `definitions` returns
the source of named top-level classes and functions (read with `ast`, so the file is never imported or
run); `code_lines` counts the lines of Python that are neither blank nor comments (docstrings count: they
are maintained like code).

Example:
    >>> import course_utils.listing as listing
    >>> from pathlib import Path
    >>> definitions(Path(listing.__file__), "code_lines").startswith("def code_lines(")
    True
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

__all__ = ["code_lines", "definitions"]


def definitions(path: Path, *names: str) -> str:
    """The source of the top-level classes and functions `names` in the file `path`, in file order.

    Raises ValueError naming any of `names` that the file does not define at its top level.
    """
    source = Path(path).read_text(encoding="utf-8")
    nodes = [
        node
        for node in ast.parse(source, filename=str(path)).body
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names
    ]
    missing = sorted(set(names) - {node.name for node in nodes})
    if missing or not names:
        raise ValueError(
            f"{path} defines no top-level class or function {missing or '(no name given)'}: pass names "
            "it defines at its top level (methods are shown with their class)."
        )
    lines = source.splitlines()
    # From the first decorator (ast's own segment would start at `class`/`def`) to the definition's end.
    return "\n\n\n".join(
        "\n".join(lines[min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1 : node.end_lineno])
        for node in nodes
    )


def code_lines(paths: Iterable[Path]) -> int:
    """Lines of Python in the files `paths` that are neither blank nor comments (docstrings count)."""
    return sum(
        1
        for path in paths
        for line in Path(path).read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
