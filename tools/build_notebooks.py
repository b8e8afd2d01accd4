"""Build the course notebooks from their jupytext sources: nbgrader sources, then the student release.

    python tools/build_notebooks.py            # solutions/src/*.py -> solutions/*.ipynb -> notebooks/*.ipynb
    python tools/build_notebooks.py --check    # exit 1 if any committed notebook is out of date

Each notebook is written once, as a jupytext percent file `solutions/src/NN_name.py` (`# %%` cells, nbgrader
metadata on the cell line), paired through `jupytext.toml` with `solutions/NN_name.ipynb`, so it can be
edited as text or in JupyterLab (docs/authoring.md). The build reads every source, gives each cell a stable
id, checks the points of the headings against the graded cells, writes `solutions/NN_name.ipynb`, then runs
a real `nbgrader generate_assignment` on those notebooks in a temporary course root (nbgrader_config.py
copied there): what students get is exactly what nbgrader makes of the sources, solution regions stubbed and
hidden tests removed. Only the `.ipynb` files are copied there, because nbgrader would ship every other file
of the assignment folder, the `.py` sources with their solutions included.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import jupytext
import nbformat
from nbformat.notebooknode import NotebookNode

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "deployment"
SOLUTIONS = ROOT / "solutions"
SOURCES = SOLUTIONS / "src"
RELEASE = ROOT / "notebooks"
#: The virtualenv's bin folder: nbgrader runs `alembic` from PATH, so it must come first there.
BIN = Path(sys.executable).parent

#: `### Exercise 2 (3 points): ...` or `### Capstone (4 points)`: a graded part and its points.
HEADING_RE = re.compile(r"^###\s+(?P<title>.+?)\s+\((?P<points>\d+) points?\)", re.MULTILINE)
#: `**Graded.** 3 exercises, 7 points`: the notebook's totals, in its introduction.
TOTALS_RE = re.compile(r"\*\*Graded\.\*\*\s+(?P<exercises>\d+) exercises?, (?P<points>\d+) points?")
#: jupytext splits cells on a `# %%` line even when it is indented (inside a function or a string).
INDENTED_MARKER_RE = re.compile(r"^[ \t]+#\s*%%", re.MULTILINE)


class NotebookSourceError(Exception):
    """A notebook source breaks a rule of the build; the message names the file, the rule and the fix."""


def venv_env(**extra: str) -> dict[str, str]:
    """os.environ with the virtualenv's bin folder first on PATH, plus `extra`."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def source_paths(sources: Path = SOURCES) -> list[Path]:
    """The notebook sources, in notebook order (their names start with the notebook's number)."""
    return sorted(sources.glob("*.py"))


def cell_ids(cells: list[NotebookNode]) -> list[str]:
    """Stable ids: a graded cell's nbgrader `grade_id`, else a hash of the cell's type and source.

    A hash rather than a position, so inserting or moving a cell leaves every other id alone. Cells with
    the same type and source get `-2`, `-3`, ... in order of appearance.
    """
    ids: list[str] = []
    seen: Counter[str] = Counter()
    for cell in cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id:
            ids.append(grade_id)
            continue
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        seen[digest] += 1
        ids.append(digest if seen[digest] == 1 else f"{digest}-{seen[digest]}")
    return ids


def _heading_key(title: str) -> str:
    """The grade_id prefix of a heading's graded cells: 'Exercise 2' -> 'ex2', 'Capstone' -> 'capstone'."""
    exercise = re.fullmatch(r"Exercise\s+(\d+)", title)
    return f"ex{exercise[1]}" if exercise else re.sub(r"\W+", "-", title.lower()).strip("-")


def points_problems(name: str, nb: NotebookNode) -> list[str]:
    """Where the points in the headings disagree with the points in the graded cells' metadata.

    Points are declared once, in the nbgrader metadata of the graded cells; the text repeats them for
    students. A graded cell belongs to the heading whose key starts its grade_id (`ex2-...` belongs to
    `### Exercise 2 (N points)`, `capstone-...` to `### Capstone (N points)`).
    """
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    headings: dict[str, tuple[str, int]] = {}
    problems: list[str] = []
    for match in HEADING_RE.finditer(text):
        key = _heading_key(match["title"])
        if key in headings:
            problems.append(f"{name}: two headings for {match['title']!r}: give each graded part one heading")
        headings[key] = (match["title"], int(match["points"]))
    graded: dict[str, list[tuple[str, int]]] = {key: [] for key in headings}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not (meta.get("grade") or meta.get("task")):
            continue
        grade_id, points = meta.get("grade_id", "?"), meta.get("points")
        if not isinstance(points, int | float):
            problems.append(f'{name}: graded cell {grade_id!r} has no "points" in its nbgrader metadata')
            continue
        key = grade_id.split("-", 1)[0]
        if key not in graded:
            problems.append(
                f"{name}: graded cell {grade_id!r} ({points:g} points) belongs to no heading: add a heading "
                f"'### ... ({points:g} points)' whose key is {key!r} (e.g. 'Exercise 2' for 'ex2-...'), "
                "or rename the cell's grade_id"
            )
            continue
        graded[key].append((grade_id, points))
    for key, (title, heading_points) in headings.items():
        cells = graded[key]
        declared = sum(points for _, points in cells)
        if declared != heading_points:
            ids = ", ".join(grade_id for grade_id, _ in cells) or "none"
            problems.append(
                f"{name}: {title} says {heading_points} points in its heading, but its graded cells ({ids}) "
                f'declare {declared:g} points in their metadata: change the heading or the cells\' "points"'
            )
    total = sum(points for cells in graded.values() for _, points in cells)
    exercises = sum(1 for title, _ in headings.values() if title.startswith("Exercise "))
    for match in TOTALS_RE.finditer(text):
        if int(match["points"]) != total:
            problems.append(
                f"{name}: the introduction says {match['points']} points, but the graded cells declare "
                f"{total:g} points in their metadata: change '{match[0]}' or the cells' \"points\""
            )
        if int(match["exercises"]) != exercises:
            problems.append(
                f"{name}: the introduction says {match['exercises']} exercises, but the notebook has "
                f"{exercises} '### Exercise N (P points)' headings: change '{match[0]}' or the headings"
            )
    return problems


def read_source(path: Path) -> NotebookNode:
    """The nbgrader source notebook of one jupytext source, with stable ids; raise on a broken rule."""
    name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    text = path.read_text(encoding="utf-8")
    indented = INDENTED_MARKER_RE.search(text)
    if indented:
        line = text.count("\n", 0, indented.start()) + 1
        raise NotebookSourceError(
            f"{name}:{line}: an indented '# %%' line starts a new cell in jupytext and cuts the code "
            "around it in two: reword that line so it does not start with '# %%'"
        )
    nb = jupytext.reads(text, fmt="py:percent")
    if nb.metadata.get("jupytext", {}).get("cell_metadata_filter") != "all":
        raise NotebookSourceError(
            f"{name}: the YAML header lacks 'cell_metadata_filter: all' under 'jupytext:', so jupytext "
            "would drop nbgrader metadata added later in Jupyter: add it (see docs/authoring.md)"
        )
    if "kernelspec" not in nb.metadata:
        raise NotebookSourceError(f"{name}: the YAML header has no kernelspec: copy it from another source")
    problems = points_problems(name, nb)
    if problems:
        raise NotebookSourceError("\n".join(problems))
    # Keep the header's settings in the notebook, so that a .py written back from it (by Jupyter, or by
    # `jupytext --sync`, which reads the newer file) gets the same header; jupytext adds its own record
    # of the text format (`text_representation`) when it writes one.
    nb.metadata.jupytext.pop("text_representation", None)
    nb.metadata.setdefault("language_info", {"name": nb.metadata.kernelspec["language"]})
    for cell, cell_id in zip(nb.cells, cell_ids(nb.cells), strict=True):
        cell.id = cell_id
    duplicates = [cell_id for cell_id, n in Counter(c.id for c in nb.cells).items() if n > 1]
    if duplicates:
        raise NotebookSourceError(f"{name}: grade_ids {duplicates} name more than one cell: make them unique")
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        raise NotebookSourceError(f"{name}: not a valid notebook: {exc.message}") from exc
    return nb


def source_notebooks(sources: Path = SOURCES) -> dict[str, str]:
    """{file name: notebook JSON} of every nbgrader source notebook; raise with every problem found."""
    out: dict[str, str] = {}
    problems: list[str] = []
    for path in source_paths(sources):
        try:
            out[f"{path.stem}.ipynb"] = nbformat.writes(read_source(path)) + "\n"
        except NotebookSourceError as exc:
            problems.append(str(exc))
    if problems:
        raise NotebookSourceError("\n".join(problems))
    if not out:
        raise NotebookSourceError(f"no notebook sources (*.py) in {sources}: is this the course repository?")
    return out


def generate_release(sources: Path, course_root: Path) -> Path:
    """Run `nbgrader generate_assignment` on `sources/*.ipynb` in `course_root`; return the release folder."""
    course_root.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", course_root / "nbgrader_config.py")
    source_dir = course_root / "solutions" / ASSIGNMENT
    source_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(sources.glob("*.ipynb")):
        shutil.copy(path, source_dir / path.name)
    result = subprocess.run(
        [str(BIN / "nbgrader"), "generate_assignment", ASSIGNMENT, "--force"],
        cwd=course_root,
        env=venv_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"nbgrader generate_assignment failed:\n{result.stdout}\n{result.stderr}")
    return course_root / "notebooks" / ASSIGNMENT


def release_notebooks(sources: dict[str, str]) -> dict[str, str]:
    """{file name: notebook JSON} of the release nbgrader makes of `sources`."""
    with tempfile.TemporaryDirectory(prefix="nb-release-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name, text in sources.items():
            (src / name).write_text(text, encoding="utf-8")
        release = generate_release(src, Path(tmp) / "course")
        return {p.name: p.read_text(encoding="utf-8") for p in sorted(release.glob("*.ipynb"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if anything is stale")
    args = parser.parse_args(argv)
    unpaired = [p for p in sorted(SOLUTIONS.glob("*.ipynb")) if not (SOURCES / f"{p.stem}.py").exists()]
    if unpaired:
        names = ", ".join(str(p.relative_to(ROOT)) for p in unpaired)
        print(
            f"{names}: no source in {SOURCES.relative_to(ROOT)}/. Write one with `.venv/bin/jupytext --sync "
            f"{unpaired[0].relative_to(ROOT)}` (jupytext.toml pairs the two), or delete the notebook",
            file=sys.stderr,
        )
        return 1
    try:
        sources = source_notebooks(SOURCES)
    except NotebookSourceError as exc:
        print(exc, file=sys.stderr)
        return 1
    releases = release_notebooks(sources)
    wanted = {SOLUTIONS / n: t for n, t in sources.items()} | {RELEASE / n: t for n, t in releases.items()}
    stale = [p for p, t in wanted.items() if not p.exists() or p.read_text(encoding="utf-8") != t]
    orphans = [p for p in sorted(RELEASE.glob("*.ipynb")) if p not in wanted]
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}")
        for path in orphans:
            print(f"not built from any source: {path.relative_to(ROOT)}")
        if stale or orphans:
            print("run `.venv/bin/python tools/build_notebooks.py` and commit the result")
        return 1 if stale or orphans else 0
    RELEASE.mkdir(exist_ok=True)
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    for path in orphans:
        path.unlink()
        print(f"removed {path.relative_to(ROOT)} (not built from any source)")
    for name, text in sources.items():
        nb = nbformat.reads(text, as_version=4)
        points = sum(c.metadata.get("nbgrader", {}).get("points", 0) for c in nb.cells)
        print(f"{name}: {len(nb.cells)} cells, {points:g} points")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
