"""docs/coverage.md: every section of the course text maps to notebook cells, and those cells exist.

The map is a table, one row per (course text section, notebook, section heading). A row names a cell by
its heading as written in the notebook, without its number ("`torch.export`: a graph without Python" for
"## 6. `torch.export`: a graph without Python"), so renumbering sections keeps the map valid while renaming
or deleting a section fails here, in both the nbgrader source and the student release.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from course_utils.config import PROJECT_ROOT

COVERAGE = PROJECT_ROOT / "docs" / "coverage.md"
SOURCES = PROJECT_ROOT / "solutions"
RELEASE = PROJECT_ROOT / "notebooks"

#: A markdown heading line: `## 6. Title`, `### Exercise 2 (3 points): title`, `### Title`.
HEADING_RE = re.compile(r"^#{1,4}\s+(?:\d+\.\s+)?(?P<title>.+?)\s*$")
#: A row of the map: `| section | `NN_name` | heading |` (the header and the rule row do not match).
ROW_RE = re.compile(
    r"^\|\s*(?P<section>[^|]+?)\s*\|\s*`(?P<notebook>\d\d_\w+)`\s*\|\s*(?P<heading>.+?)\s*\|\s*$"
)


def coverage_rows(text: str) -> list[tuple[str, str, str]]:
    """(course text section, notebook stem, heading) for every row of the map's table."""
    return [(m["section"], m["notebook"], m["heading"]) for m in map(ROW_RE.match, text.splitlines()) if m]


def headings(notebook: Path) -> set[str]:
    """The headings of a notebook's markdown cells, numbers stripped: what a row may name."""
    found = set()
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown":
            found |= {m["title"] for m in map(HEADING_RE.match, cell.source.splitlines()) if m}
    return found


def missing_cells(rows: list[tuple[str, str, str]], folder: Path) -> list[str]:
    """One line per row whose notebook or heading is not in `folder`: what to fix in the map or notebook."""
    problems, cache = [], {}
    for section, stem, heading in rows:
        path = folder / f"{stem}.ipynb"
        if not path.exists():
            problems.append(f"{section}: {path.name} does not exist in {folder.name}/")
            continue
        if path not in cache:
            cache[path] = headings(path)
        if heading not in cache[path]:
            problems.append(f"{section}: no heading {heading!r} in {folder.name}/{path.name}")
    return problems


ROWS = coverage_rows(COVERAGE.read_text(encoding="utf-8"))


def test_the_map_has_rows_for_every_notebook() -> None:
    mapped = {stem for _, stem, _ in ROWS}
    notebooks = {path.stem for path in RELEASE.glob("*.ipynb")}
    assert notebooks <= mapped, f"notebooks that no course text section maps to: {sorted(notebooks - mapped)}"
    assert len({section for section, _, _ in ROWS}) >= 20, "the map lost sections of the course text"


@pytest.mark.parametrize("folder", [SOURCES, RELEASE], ids=["solutions", "release"])
def test_every_mapped_cell_exists(folder: Path) -> None:
    assert not missing_cells(ROWS, folder), "\n".join(missing_cells(ROWS, folder))


def test_a_mapped_cell_that_disappears_is_reported(tmp_path: Path) -> None:
    """Delete one mapped heading cell from a copy of its notebook: the check names the section and cell."""
    section, stem, heading = next(row for row in ROWS if row[1].startswith("05"))
    notebook = nbformat.read(RELEASE / f"{stem}.ipynb", as_version=4)
    notebook.cells = [c for c in notebook.cells if not (c.cell_type == "markdown" and heading in c.source)]
    nbformat.write(notebook, tmp_path / f"{stem}.ipynb")

    assert missing_cells([(section, stem, heading)], tmp_path) == [
        f"{section}: no heading {heading!r} in {tmp_path.name}/{stem}.ipynb"
    ]
    assert missing_cells([(section, "09_gone", heading)], tmp_path) == [
        f"{section}: 09_gone.ipynb does not exist in {tmp_path.name}/"
    ]


def test_rows_are_read_from_the_table_only() -> None:
    table = ["| section | notebook | cells |", "|---|---|---|", "| Batching | `06_scale` | Batching |"]
    text = "\n".join([*table, "prose | `07_deliverables` not a row"])
    assert coverage_rows(text) == [("Batching", "06_scale", "Batching")]
