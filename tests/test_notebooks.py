"""The course notebooks: sources up to date, release equal to nbgrader's, solutions run, grading works.

- `solutions/*.ipynb` equal what `tools/build_notebooks.py` builds from their jupytext sources in
  `solutions/src/` (the build's own rules are tested in tests/test_build_notebooks.py);
- `notebooks/*.ipynb` equal a fresh `nbgrader generate_assignment` of the solutions (cell by cell), and no
  solution or hidden-test text leaks into them;
- every solution notebook runs under `pytest --nbval-lax` with COURSE_FAST=1;
- `nbgrader autograde` gives the solutions full marks and the untouched release 0 on every graded cell.

Every notebook run happens in a subprocess with a timeout, so a hanging cell fails the test instead of CI.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from course_utils.config import PROJECT_ROOT
from tests.notebook_variants import CapstoneVariant, add_capstone
from tools import build_notebooks  # the repository root is on sys.path (pytest's `pythonpath`)

SOLUTIONS = sorted((PROJECT_ROOT / "solutions").glob("*.ipynb"))
RELEASE = PROJECT_ROOT / "notebooks"
ASSIGNMENT = build_notebooks.ASSIGNMENT
SOLUTION_RE = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.DOTALL)
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
#: The capstone handed in with the solutions: a correct one of the student's own. The reference itself
#: would be refused (the grader's `reference_copy`), as any student handing it in is.
OWN_CAPSTONE = CapstoneVariant(True, "a correct capstone written differently from the reference", "mini_app")


def _run(args: list[str], *, cwd: Path, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run a command with the venv first on PATH and COURSE_FAST=1; fail with its output on timeout."""
    try:
        return subprocess.run(
            args,
            cwd=cwd,
            env=build_notebooks.venv_env(COURSE_FAST="1"),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        pytest.fail(
            f"{' '.join(args[:3])} ... did not finish within {timeout_s:.0f}s (a cell hangs?):\n{out}"
        )


def _sources(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def test_there_are_notebooks() -> None:
    names = [p.name for p in SOLUTIONS]
    assert names, "solutions/ holds no notebook: run `.venv/bin/python tools/build_notebooks.py`"
    assert names == [f"{p.stem}.ipynb" for p in build_notebooks.source_paths()], (
        f"solutions/ holds {names}, solutions/src/ other sources: run `.venv/bin/python "
        "tools/build_notebooks.py` (a notebook without a source: `.venv/bin/jupytext --sync` it first)"
    )


def test_solutions_are_built_from_their_sources() -> None:
    built = build_notebooks.source_notebooks()
    for path in SOLUTIONS:
        assert path.read_text(encoding="utf-8") == built[path.name], (
            f"{path.name} differs from solutions/src/{path.stem}.py: run "
            "`.venv/bin/python tools/build_notebooks.py` and commit"
        )


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`nbgrader generate_assignment` of the committed solutions in a temporary course root."""
    root = tmp_path_factory.mktemp("course")
    src = root / "src"
    src.mkdir()
    for path in SOLUTIONS:
        shutil.copy(path, src / path.name)
    return build_notebooks.generate_release(src, root / "course")


def test_release_equals_fresh_generate_assignment(fresh_release: Path) -> None:
    committed = sorted(p.name for p in RELEASE.glob("*.ipynb"))
    assert committed == [p.name for p in SOLUTIONS], f"notebooks/ holds {committed}: rebuild the release"
    for path in SOLUTIONS:
        fresh = nbformat.read(fresh_release / path.name, as_version=4)
        release = nbformat.read(RELEASE / path.name, as_version=4)
        assert _sources(release) == _sources(fresh), (
            f"notebooks/{path.name} is not what nbgrader generates from solutions/{path.name}: "
            "run `python tools/build_notebooks.py` and commit"
        )


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_release_leaks_no_solution_or_hidden_test(path: Path) -> None:
    text = (RELEASE / path.name).read_text(encoding="utf-8")
    for marker in MARKERS:
        assert marker not in text, f"notebooks/{path.name} contains {marker!r}"
    source = nbformat.read(path, as_version=4)
    release = nbformat.read(RELEASE / path.name, as_version=4)
    # Instructions may quote a line of the answer, and the notebook's own code may share one (outside the
    # regions): only lines that exist nowhere else in the source's code count as leaks.
    release_code = "\n".join(cell.source for cell in release.cells if cell.cell_type == "code")
    outside = "\n".join(SOLUTION_RE.sub("", c.source) for c in source.cells if c.cell_type == "code")
    for cell in source.cells:
        for region in SOLUTION_RE.findall(cell.source):
            body = [line.strip() for line in region.splitlines() if len(line.strip()) > 20]
            leaked = [line for line in body if line in release_code and line not in outside]
            assert not leaked, f"notebooks/{path.name} contains solution lines {leaked[:3]}"
    graded = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert graded and all("raise NotImplementedError()" in c.source for c in graded)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_solution_notebooks_run_under_nbval() -> None:
    args = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=300"]
    args += ["-p", "no:cacheprovider", "-o", "addopts=", "-q", *[str(p) for p in SOLUTIONS]]
    result = _run(args, cwd=PROJECT_ROOT, timeout_s=1100)
    assert result.returncode == 0, f"nbval failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"


@pytest.fixture(scope="module")
def autograded(fresh_release: Path) -> Iterator[dict[str, dict[str, tuple[float, float]]]]:
    """Autograde the solutions (student 'solution') and the untouched release (student 'untouched').

    Returns {student: {"notebook/grade_id": (score, max_score)}}.
    """
    from nbgrader.api import Gradebook

    root = fresh_release.parent.parent  # the course root generate_release used
    submissions = {"solution": PROJECT_ROOT / "solutions", "untouched": fresh_release}
    for student, folder in submissions.items():
        target = root / "submitted" / student / ASSIGNMENT
        target.mkdir(parents=True, exist_ok=True)
        for path in SOLUTIONS:
            shutil.copy(folder / path.name, target / path.name)
    # Notebook 07's capstone cell grades the `capstone/` handed in beside it: a correct one of our own.
    add_capstone(root / "submitted" / "solution" / ASSIGNMENT, OWN_CAPSTONE)
    nbgrader = str(build_notebooks.BIN / "nbgrader")
    result = _run([nbgrader, "autograde", ASSIGNMENT, "--force"], cwd=root, timeout_s=1100)
    assert result.returncode == 0, (
        f"nbgrader autograde failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    scores: dict[str, dict[str, tuple[float, float]]] = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for student in submissions:
            scores[student] = {}
            for path in SOLUTIONS:
                notebook = gb.find_submission_notebook(path.stem, ASSIGNMENT, student)
                for grade in notebook.grades:
                    scores[student][f"{path.stem}/{grade.name}"] = (grade.score, grade.max_score)
    yield scores


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_autograde_gives_the_solutions_full_marks(
    autograded: dict[str, dict[str, tuple[float, float]]],
) -> None:
    scores = autograded["solution"]
    assert scores, "no graded cells were found"
    lost = {name: s for name, s in scores.items() if s[0] != s[1]}
    assert not lost, f"the solutions lost points on {lost} (score, max)"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_autograde_gives_the_untouched_release_nothing(
    autograded: dict[str, dict[str, tuple[float, float]]],
) -> None:
    scores = autograded["untouched"]
    assert set(scores) == set(autograded["solution"]), "both submissions must have the same graded cells"
    earned = {name: s for name, s in scores.items() if s[0] != 0}
    assert not earned, f"the untouched release earned points on {earned}: a test passes without a solution"
