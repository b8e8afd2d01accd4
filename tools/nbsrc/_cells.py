"""Cell builders for nbgrader source notebooks: markdown, code, graded answers and graded tests.

Every cell gets a stable id (the notebook's prefix and its position, or its nbgrader grade id), so a rebuild
that changes nothing writes byte-identical files.
"""

from __future__ import annotations

import textwrap

import nbformat
from nbformat.notebooknode import NotebookNode

SCHEMA_VERSION = 3
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _text(source: str) -> str:
    return textwrap.dedent(source).strip("\n")


def md(source: str) -> NotebookNode:
    """A markdown cell."""
    return nbformat.v4.new_markdown_cell(_text(source))


def code(source: str) -> NotebookNode:
    """An ordinary code cell (not graded, not locked)."""
    return nbformat.v4.new_code_cell(_text(source))


def answer(grade_id: str, source: str) -> NotebookNode:
    """An autograded-answer cell: its `### BEGIN SOLUTION` region becomes a stub in the release."""
    cell = code(source)
    if "### BEGIN SOLUTION" not in cell.source:
        raise ValueError(f"answer cell {grade_id!r} has no '### BEGIN SOLUTION' region")
    cell.metadata["nbgrader"] = {
        "grade": False,
        "grade_id": grade_id,
        "locked": False,
        "schema_version": SCHEMA_VERSION,
        "solution": True,
        "task": False,
    }
    cell.id = grade_id
    return cell


def tests(grade_id: str, source: str, *, points: int) -> NotebookNode:
    """An autograder-tests cell worth `points`; its hidden region is removed from the release."""
    cell = code(source)
    cell.metadata["nbgrader"] = {
        "grade": True,
        "grade_id": grade_id,
        "locked": True,
        "points": points,
        "schema_version": SCHEMA_VERSION,
        "solution": False,
        "task": False,
    }
    cell.id = grade_id
    return cell


def notebook(prefix: str, cells: list[NotebookNode]) -> NotebookNode:
    """A notebook of `cells` with stable ids and the python3 kernel."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    seen: set[str] = set()
    for index, cell in enumerate(cells):
        if "nbgrader" not in cell.metadata:
            cell.id = f"{prefix}-{index:02d}"
        if cell.id in seen:
            raise ValueError(f"duplicate cell id {cell.id!r} in notebook {prefix!r}")
        seen.add(cell.id)
    nb.cells = cells
    return nb


def points(nb: NotebookNode) -> int:
    """Total points of a notebook's graded cells."""
    return sum(int(c.metadata.get("nbgrader", {}).get("points", 0)) for c in nb.cells)
