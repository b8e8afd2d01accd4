"""Mutation tests of the notebooks' graded cells, through a real `nbgrader autograde`.

For every graded cell, tests/notebook_variants/nbNN_name.py holds at least two plausible wrong answers
(they must lose the cell's points) and at least two right answers written differently from the reference
(they must earn every point). Submission k of a notebook carries variant k of EVERY answer cell (the
reference where a cell has fewer variants), so one autograde run per notebook grades them all, and a
right answer scored full beside wrong answers to the other exercises shows that no cell's score depends
on another exercise's answer.

The runs use COURSE_FAST=1 and no Docker daemon (DOCKER_HOST points nowhere): every graded cell must work
without one, as notebook 03 promises.
"""

from __future__ import annotations

import copy
import importlib
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

from course_utils.config import PROJECT_ROOT
from tests.notebook_variants import CapstoneVariant, Variant, add_capstone
from tools import build_notebooks

SOLUTIONS = sorted((PROJECT_ROOT / "solutions").glob("*.ipynb"))
ASSIGNMENT = build_notebooks.ASSIGNMENT
#: Graded cells whose score is the number they output (partial credit): a wrong answer scores below max.
PARTIAL_CREDIT = {"capstone-grade"}
NO_DOCKER = "unix:///nonexistent/docker.sock"


@dataclass(frozen=True)
class Submission:
    """Variant k of every answer cell of one notebook, and what each graded cell must score."""

    student: str
    notebook: nbformat.NotebookNode
    capstone: CapstoneVariant | None
    #: {graded cell: (must earn full points, why)}
    expected: dict[str, tuple[bool, str]]


def _nbgrader_cells(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {
        c.metadata["nbgrader"]["grade_id"]: c
        for c in nb.cells
        if "grade_id" in c.metadata.get("nbgrader", {})
    }


def _graded(nb: nbformat.NotebookNode) -> dict[str, float]:
    """{grade_id: points} of the graded (tests) cells."""
    return {
        gid: c.metadata["nbgrader"]["points"]
        for gid, c in _nbgrader_cells(nb).items()
        if c.metadata["nbgrader"].get("grade")
    }


def _answers(nb: nbformat.NotebookNode) -> list[str]:
    """grade_ids of the answer (solution) cells, plus "capstone" for notebook 07's capstone folder."""
    ids = [gid for gid, c in _nbgrader_cells(nb).items() if c.metadata["nbgrader"].get("solution")]
    return ids + (["capstone"] if "capstone-grade" in _graded(nb) else [])


def _exercise(grade_id: str) -> str:
    """`ex2` of `ex2-psi-tests`, `capstone` of `capstone-grade`: the part a cell belongs to."""
    return grade_id.split("-")[0]


def _variants(path: Path) -> ModuleType:
    return importlib.import_module(f"tests.notebook_variants.nb{path.stem}")


def _loses(variant: Variant | CapstoneVariant, graded_id: str) -> bool:
    return not variant.right and (not variant.loses or graded_id in variant.loses)


def _reason(lost: list[Variant | CapstoneVariant], mine: list[Variant | CapstoneVariant]) -> str:
    """What the variant chosen for a graded cell's exercise is, for the table."""
    if lost:
        return f"wrong: {lost[0].why}"
    if not mine:
        return "right: the reference"
    kind = "right" if mine[0].right else "wrong elsewhere, keeps this cell"
    return f"{kind}: {mine[0].why}"


def _trim(nb: nbformat.NotebookNode, first_lines: tuple[str, ...], name: str) -> None:
    """Remove the ungraded code cells whose first line is in `first_lines` (the data module's TRIM).

    Slow notebooks list their slowest ungraded cells (training, benchmarks) there to bound CI time: no
    graded cell reads what they compute, which the right variants prove (they must still earn every point,
    so every test cell still runs without a NameError).
    """
    for line in first_lines:
        found = [c for c in nb.cells if c.cell_type == "code" and c.source.splitlines()[:1] == [line]]
        assert len(found) == 1, (
            f"{name}: TRIM names {line!r}, which starts {len(found)} code cells (1 expected)"
        )
        assert "nbgrader" not in found[0].metadata, (
            f"{name}: TRIM names nbgrader cell {line!r}: never trim those"
        )
        nb.cells.remove(found[0])


def plan(path: Path) -> list[Submission]:
    """The submissions of notebook `path`: number k carries variant k of every answer cell."""
    solution = nbformat.read(path, as_version=4)
    _trim(solution, getattr(_variants(path), "TRIM", ()), path.name)
    variants: dict[str, list[Variant | CapstoneVariant]] = _variants(path).VARIANTS
    graded = _graded(solution)
    submissions = []
    for k in range(max(len(v) for v in variants.values())):
        nb = copy.deepcopy(solution)
        cells = _nbgrader_cells(nb)
        chosen = {answer: options[k] for answer, options in variants.items() if k < len(options)}
        capstone = chosen.get("capstone")
        for answer, variant in chosen.items():
            if isinstance(variant, Variant):
                cells[answer].source = variant.source
        if isinstance(capstone, CapstoneVariant) and capstone.extra_cell:
            index = nb.cells.index(cells["capstone-grade"])
            nb.cells.insert(index, nbformat.v4.new_code_cell(capstone.extra_cell))
        expected = {}
        for graded_id in graded:
            mine = [v for a, v in chosen.items() if _exercise(a) == _exercise(graded_id)]
            lost = [v for v in mine if _loses(v, graded_id)]
            expected[graded_id] = (not lost, _reason(lost, mine))
        submissions.append(
            Submission(f"v{k}", nb, capstone if isinstance(capstone, CapstoneVariant) else None, expected)
        )
    return submissions


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_variants_cover_every_graded_cell(path: Path) -> None:
    """Each graded cell: two wrong answers that must lose it, two right ones for its exercise."""
    solution = nbformat.read(path, as_version=4)
    variants = _variants(path).VARIANTS
    answers, graded = _answers(solution), _graded(solution)
    assert set(variants) <= set(answers), (
        f"{path.name} has no answer cells {sorted(set(variants) - set(answers))}"
    )
    for answer, options in variants.items():
        for variant in options:
            stray = set(variant.loses) - {g for g in graded if _exercise(g) == _exercise(answer)}
            assert not stray, f"{answer}: {variant.why!r} names graded cells of another exercise: {stray}"
    problems = []
    for graded_id in graded:
        mine = [v for a, opts in variants.items() if _exercise(a) == _exercise(graded_id) for v in opts]
        n_wrong = sum(_loses(v, graded_id) for v in mine)
        n_right = sum(v.right for v in mine)
        if n_wrong < 2 or n_right < 2:
            problems.append(f"{graded_id}: {n_wrong} wrong and {n_right} right answers (at least 2 of each)")
    assert not problems, f"{path.name}: " + "; ".join(problems)


def _autograde(
    path: Path, submissions: list[Submission], root: Path
) -> dict[str, dict[str, tuple[float, float]]]:
    """Autograde every submission in one `nbgrader autograde`; {student: {grade_id: (score, max)}}."""
    from nbgrader.api import Gradebook

    src = root / "src"
    src.mkdir()
    shutil.copy(path, src / path.name)
    build_notebooks.generate_release(src, root / "course")
    course = root / "course"
    for sub in submissions:
        folder = course / "submitted" / sub.student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(sub.notebook, folder / path.name)
        if sub.capstone is not None:
            add_capstone(folder, sub.capstone)
    args = [str(build_notebooks.BIN / "nbgrader"), "autograde", ASSIGNMENT, "--force"]
    env = build_notebooks.venv_env(COURSE_FAST="1", DOCKER_HOST=NO_DOCKER)
    try:
        result = subprocess.run(
            args, cwd=course, env=env, capture_output=True, text=True, timeout=1500, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"nbgrader autograde of {len(submissions)} variants of {path.name} took over 1500 s: {exc}"
        )
    assert result.returncode == 0, (
        f"nbgrader autograde failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    scores: dict[str, dict[str, tuple[float, float]]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in submissions:
            notebook = gb.find_submission_notebook(path.stem, ASSIGNMENT, sub.student)
            scores[sub.student] = {g.name: (g.score, g.max_score) for g in notebook.grades}
    return scores


@pytest.mark.slow
@pytest.mark.timeout(1600)
@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_autograde_scores_every_variant(path: Path, tmp_path: Path) -> None:
    """Right answers earn every point of their cells, wrong ones lose them, whatever the other answers."""
    submissions = plan(path)
    t0 = time.perf_counter()
    scores = _autograde(path, submissions, tmp_path)
    seconds = time.perf_counter() - t0
    table, mismatches = [], []
    for sub in submissions:
        for graded_id, (full, why) in sub.expected.items():
            score, max_score = scores[sub.student][graded_id]
            ok = (
                score == max_score
                if full
                else (score < max_score if graded_id in PARTIAL_CREDIT else score == 0)
            )
            table.append(f"{sub.student} {graded_id:<34} {score:g}/{max_score:g} {why}")
            if not ok:
                mismatches.append(table[-1])
    print(f"\n{path.stem}: {len(submissions)} submissions autograded in {seconds:.0f} s\n" + "\n".join(table))
    assert not mismatches, (
        "scores that contradict the variants (student, cell, score, kind: why):\n" + "\n".join(mismatches)
    )
