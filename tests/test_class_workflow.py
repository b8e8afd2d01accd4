"""The nbgrader class workflow, end to end, with three students who are three Unix users.

What an instructor runs in a term (docs/instructors.md), with nbgrader's own commands and a local exchange:

1. instructor: `nbgrader generate_assignment`, `nbgrader db student import` (a roster CSV) and
   `nbgrader db student add`, `nbgrader release_assignment`;
2. each student, as their own Unix user with their own HOME and nbgrader config: `nbgrader
   fetch_assignment`, work in the notebooks and a `capstone/` folder beside them, `nbgrader submit`.
   `course_student_full` fills in every answer (the source notebooks' solutions, markers removed) and
   hands in a correct capstone written unlike the reference (a wheat of tests/grading/submissions.py),
   `course_student_partial` solves exercises 1 and 3 of each notebook and hands in the starter capstone,
   `course_student_blank` submits the release untouched and no capstone;
3. instructor: `nbgrader collect`, `course-utils grade-all` on the collected capstones, `nbgrader
   autograde`, `nbgrader generate_feedback`, `nbgrader release_feedback`; each student `nbgrader
   fetch_feedback`; instructor `nbgrader export`.

The gradebook CSV must give each student the total derived from the notebooks' points metadata: every
point of a solved exercise, none of an unsolved one, and for notebook 07's capstone cell the capstone
grader's fraction (from `grade-all`'s report of the same folder) times the cell's points.

The assignment released here is a SUBSET of the week, NOTEBOOKS below, to keep CI time bounded: autograde
runs every notebook once per student. One run of the seven solution notebooks (COURSE_FAST=1, 2 cores
shared with other jobs) took about 450 s: 01 30 s, 02 17 s, 03 10 s, 04 18 s, 05 200 s (training), 06
142 s (several services), 07 31 s. Three students would add over 20 minutes to CI; 02, 03 and 07 take
about a minute per student and still cover the workflow: an API exercise, a Docker one (graded without a
daemon: DOCKER_HOST points nowhere, as in tests/test_notebook_variants.py) and the capstone cell. Every
notebook is autograded in full elsewhere (tests/test_notebooks.py, tests/test_notebook_variants.py).
Runs as root only (CI does): it creates and removes the three users.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import nbformat
import pytest
from nbformat.notebooknode import NotebookNode

from course_utils.config import PROJECT_ROOT
from tests.class_workflow import (
    ASSIGNMENT,
    CAPSTONE_CELL,
    NBGRADER,
    Phases,
    Student,
    chown_tree,
    course_id,
    expected_cell_scores,
    fill_in,
    graded_points,
    read_csv,
    run,
    student_env,
    unix_user,
)
from tests.grading.submissions import WHEATS, write_submission
from tools import build_notebooks

#: The notebooks released as the assignment (see the module docstring for why not all seven).
NOTEBOOKS = ["02_minimal_api.ipynb", "03_containerise.ipynb", "07_deliverables.ipynb"]
STUDENTS = (
    Student("course_student_full", "Ada", "Full", None, "wheat"),
    Student("course_student_partial", "Ben", "Partial", frozenset({"ex1", "ex3"}), "starter"),
    Student("course_student_blank", "Cleo", "Blank", frozenset(), "none"),
)
NO_DOCKER = "unix:///nonexistent/docker.sock"
#: docs/instructors.md's commands that grade the collected capstones (grade-all wants one folder per
#: student; copies, because a report is named after the folder it grades, and a link resolves to "capstone").
GRADE_CAPSTONES = """\
mkdir capstones
for d in submitted/*/deployment/capstone; do s=${d#submitted/}; cp -r "$d" "capstones/${s%%/*}"; done
course-utils grade-all capstones --no-docker --out graded-capstones
"""
SOLUTION_MARKERS = {"### BEGIN SOLUTION", "### END SOLUTION"}
RUNBOOK = PROJECT_ROOT / "docs" / "instructors.md"
#: The wheat handed in as the full student's capstone: a correct service with async handlers.
WHEAT = "async_endpoints"

Test = TypeVar("Test", bound=Callable[..., None])


def workflow(test: Test) -> Test:
    """Marks a test of the class run: slow, with time for the whole workflow (about 8 minutes on 2 cores)."""
    marked: Test = pytest.mark.slow(pytest.mark.timeout(1500)(test))
    return marked


@dataclass
class ClassRun:
    """What the workflow produced, read back after the students' accounts are gone."""

    course: Path
    sources: dict[str, NotebookNode]
    #: {student: {notebook: {grade_id: score}}} from nbgrader's gradebook.
    cells: dict[str, dict[str, dict[str, float]]]
    #: {student: row} of `nbgrader export`'s CSV.
    exported: dict[str, dict[str, str]]
    #: {student: score / max_score} of `course-utils grade-all` (0 for no capstone).
    capstone_fraction: dict[str, float]
    #: {student: feedback HTML names fetched into the student's home}.
    fetched_feedback: dict[str, list[str]]
    #: Output of `nbgrader collect` (its warnings name a submission owned by someone else).
    collect_log: str
    phases: Phases


def _instructor_env() -> dict[str, str]:
    return build_notebooks.venv_env(COURSE_FAST="1", DOCKER_HOST=NO_DOCKER)


def _nbgrader(course: Path, *args: str, timeout_s: float = 300) -> str:
    result = run([NBGRADER, *args], cwd=course, env=_instructor_env(), timeout_s=timeout_s)
    return result.stdout + result.stderr


def _set_up_course(course: Path, exchange: Path, roster: Path) -> None:
    """A course root configured like the repository's, plus the exchange; the assignment and students."""
    src = course.parent / "src"
    src.mkdir()
    for name in NOTEBOOKS:
        shutil.copy(build_notebooks.SOLUTIONS / name, src / name)
    build_notebooks.generate_release(src, course)  # copies nbgrader_config.py, runs generate_assignment
    with (course / "nbgrader_config.py").open("a", encoding="utf-8") as config:
        config.write(f"\n# The class workflow test's exchange folder.\nc.Exchange.root = {str(exchange)!r}\n")
    first, *rest = STUDENTS
    lines = [
        "id,first_name,last_name,email",
        *(f"{s.name},{s.first_name},{s.last_name},{s.email}" for s in rest),
    ]
    roster.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _nbgrader(course, "db", "student", "import", str(roster))
    _nbgrader(
        course,
        "db",
        "student",
        "add",
        first.name,
        f"--first-name={first.first_name}",
        f"--last-name={first.last_name}",
        f"--email={first.email}",
    )


def _student_config(home: Path, exchange: Path, course_id: str) -> None:
    """What each student puts in their own nbgrader_config.py: the course id and the exchange root."""
    (home / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = {course_id!r}\n"
        f"c.Exchange.root = {str(exchange)!r}\n",
        encoding="utf-8",
    )


def _do_the_work(student: Student, folder: Path, sources: dict[str, NotebookNode]) -> None:
    """Fill in the fetched notebooks as `student` would and put their capstone beside them."""
    for name, source in sources.items():
        release = nbformat.read(folder / name, as_version=4)
        nbformat.write(fill_in(release, source, student.solves), folder / name)
    if student.capstone == "wheat":
        write_submission(folder / "capstone", WHEATS[WHEAT])
    elif student.capstone == "starter":
        ignore = shutil.ignore_patterns("model", "__pycache__", ".*_cache", ".venv")
        shutil.copytree(PROJECT_ROOT / "capstone", folder / "capstone", ignore=ignore)


def _grade_capstones(course: Path, phases: Phases) -> dict[str, float]:
    """The runbook's capstone grading, verbatim: {student: score / max_score} (0 without a capstone)."""
    with phases.phase("instructor: course-utils grade-all (capstones)"):
        run(
            ["bash", "-euo", "pipefail", "-c", GRADE_CAPSTONES],
            cwd=course,
            env=_instructor_env(),
            timeout_s=600,
        )
    rows = read_csv(course / "graded-capstones" / "grades.csv", key="student")
    assert set(rows) == {s.name for s in STUDENTS if s.capstone != "none"}, f"grade-all graded {sorted(rows)}"
    fractions = {s.name: 0.0 for s in STUDENTS}
    for name, row in rows.items():
        assert not row["grader_error"], f"grader error for {name}: {row['grader_error']}"
        fractions[name] = min(1.0, float(row["score"]) / float(row["max_score"]))
    return fractions


def _run_class(public: Path, course: Path, phases: Phases) -> ClassRun:
    exchange = public / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)  # nbgrader needs a world-writable root; it sets tighter modes below it
    sources = {name: nbformat.read(build_notebooks.SOLUTIONS / name, as_version=4) for name in NOTEBOOKS}
    with phases.phase("instructor: generate_assignment, db student import/add"):
        _set_up_course(course, exchange, course.parent / "roster.csv")
    with phases.phase("instructor: release_assignment"):
        _nbgrader(course, "release_assignment", ASSIGNMENT)
    course_name = course_id(course / "nbgrader_config.py")
    fetched: dict[str, list[str]] = {}
    with ExitStack() as accounts:
        users: dict[str, pwd.struct_passwd] = {}
        for student in STUDENTS:
            users[student.name] = accounts.enter_context(
                unix_user(student.name, public / "home" / student.name)
            )
        for student in STUDENTS:
            account, home = users[student.name], Path(users[student.name].pw_dir)
            _student_config(home, exchange, course_name)
            chown_tree(home, account)
            with phases.phase("students: fetch_assignment, work, submit"):
                run(
                    [NBGRADER, "fetch_assignment", ASSIGNMENT],
                    cwd=home,
                    env=student_env(account),
                    timeout_s=120,
                    user=student.name,
                )
                _do_the_work(student, home / ASSIGNMENT, sources)
                chown_tree(home / ASSIGNMENT, account)
                run(
                    [NBGRADER, "submit", ASSIGNMENT],
                    cwd=home,
                    env=student_env(account),
                    timeout_s=120,
                    user=student.name,
                )
        with phases.phase("instructor: collect"):
            collect_log = _nbgrader(course, "collect", ASSIGNMENT)
        capstone_fraction = _grade_capstones(course, phases)
        with phases.phase("instructor: autograde"):
            _nbgrader(course, "autograde", ASSIGNMENT, timeout_s=1200)
        with phases.phase("instructor: generate_feedback, release_feedback"):
            _nbgrader(course, "generate_feedback", ASSIGNMENT)
            _nbgrader(course, "release_feedback", ASSIGNMENT)
        with phases.phase("students: fetch_feedback"):
            for student in STUDENTS:
                account, home = users[student.name], Path(users[student.name].pw_dir)
                run(
                    [NBGRADER, "fetch_feedback", ASSIGNMENT],
                    cwd=home,
                    env=student_env(account),
                    timeout_s=120,
                    user=student.name,
                )
                fetched[student.name] = sorted(
                    p.name for p in (home / ASSIGNMENT / "feedback").glob("*/*.html")
                )
    with phases.phase("instructor: export"):
        _nbgrader(course, "export", "--to", str(course / "grades.csv"))
    for model in course.glob(f"autograded/*/{ASSIGNMENT}/capstone/model"):
        shutil.rmtree(model)  # 200 MB each, from notebook 07's export exercise; the runbook says the same
    return ClassRun(
        course=course,
        sources=sources,
        cells=_cell_scores(course),
        exported=read_csv(course / "grades.csv", key="student_id"),
        capstone_fraction=capstone_fraction,
        fetched_feedback=fetched,
        collect_log=collect_log,
        phases=phases,
    )


def _cell_scores(course: Path) -> dict[str, dict[str, dict[str, float]]]:
    from nbgrader.api import Gradebook

    scores: dict[str, dict[str, dict[str, float]]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in STUDENTS:
            scores[student.name] = {}
            for name in NOTEBOOKS:
                notebook = gb.find_submission_notebook(Path(name).stem, ASSIGNMENT, student.name)
                scores[student.name][name] = {g.name: float(g.score) for g in notebook.grades}
    return scores


@pytest.fixture(scope="module")
def class_run(tmp_path_factory: pytest.TempPathFactory) -> ClassRun:
    if os.geteuid() != 0:
        pytest.fail(
            "the class workflow test creates three Unix users (useradd) and runs nbgrader as each of them, "
            "so it must run as root, as CI does (.ci/run): run it in CI or with sudo",
            pytrace=False,
        )
    # The exchange and the students' homes must be reachable by the students: pytest's own tmp folders
    # are private to root (0700), so they live in a folder of their own, readable by all.
    public = Path(tempfile.mkdtemp(prefix="class-workflow-"))
    public.chmod(0o755)
    (public / "home").mkdir()
    phases = Phases()
    try:
        result = _run_class(public, tmp_path_factory.mktemp("class") / "course", phases)
    finally:
        shutil.rmtree(public, ignore_errors=True)
    print("\n" + _gradebook_table(result) + "\n\nphases:\n" + phases.table())
    return result


def _gradebook_table(result: ClassRun) -> str:
    header = f"{'student':<24}" + "".join(f"{Path(n).stem[:16]:>18}" for n in NOTEBOOKS) + f"{'total':>10}"
    rows = [header]
    for student in STUDENTS:
        cells = result.cells[student.name]
        per_nb = "".join(f"{sum(cells[n].values()):>18g}" for n in NOTEBOOKS)
        rows.append(f"{student.name:<24}{per_nb}{float(result.exported[student.name]['score']):>10g}")
    max_score = float(result.exported[STUDENTS[0].name]["max_score"])
    return "\n".join([*rows, f"(max score {max_score:g})"])


def _expected(result: ClassRun, student: Student) -> dict[str, dict[str, float]]:
    return expected_cell_scores(result.sources, student, result.capstone_fraction[student.name])


@pytest.mark.parametrize("student", STUDENTS, ids=lambda s: s.name)
@workflow
def test_every_graded_cell_scores_what_the_work_deserves(class_run: ClassRun, student: Student) -> None:
    expected, got = _expected(class_run, student), class_run.cells[student.name]
    wrong = {
        f"{nb}/{cell}": (got[nb].get(cell), points)
        for nb, cells in expected.items()
        for cell, points in cells.items()
        if got[nb].get(cell) != pytest.approx(points)
    }
    assert not wrong, (
        f"{student.name}: cells scored differently from what was derived (got, expected): {wrong}"
    )


@pytest.mark.parametrize("student", STUDENTS, ids=lambda s: s.name)
@workflow
def test_exported_total_equals_the_derived_total(class_run: ClassRun, student: Student) -> None:
    expected = sum(points for cells in _expected(class_run, student).values() for points in cells.values())
    row = class_run.exported[student.name]
    assert row["assignment"] == ASSIGNMENT and row["timestamp"], f"no submission exported: {row}"
    assert float(row["score"]) == pytest.approx(expected), (
        f"{student.name}: exported {row}, expected {expected}"
    )
    max_score = sum(sum(graded_points(nb).values()) for nb in class_run.sources.values())
    assert float(row["max_score"]) == pytest.approx(max_score)


@workflow
def test_the_three_students_are_told_apart(class_run: ClassRun) -> None:
    """Full marks, some marks, none: the class spans the range, so a mix-up of students would show."""
    totals = [float(class_run.exported[s.name]["score"]) for s in STUDENTS]
    assert totals[0] == float(class_run.exported[STUDENTS[0].name]["max_score"])
    assert totals[0] > totals[1] > totals[2] == 0, totals
    assert class_run.capstone_fraction["course_student_full"] == 1.0, "the wheat capstone must score 100"
    assert "cheating attempt" not in class_run.collect_log, class_run.collect_log


@workflow
def test_capstone_cell_grades_each_students_own_capstone(class_run: ClassRun) -> None:
    """The wheat earns every point, the starter less, no capstone nothing: each cell graded its own."""
    notebook = "07_deliverables.ipynb"
    points = graded_points(class_run.sources[notebook])[CAPSTONE_CELL]
    scores = {s.name: class_run.cells[s.name][notebook][CAPSTONE_CELL] for s in STUDENTS}
    assert scores["course_student_full"] == points, scores
    assert scores["course_student_partial"] < points, f"the starter capstone earned full marks: {scores}"
    assert scores["course_student_blank"] == 0, scores


@pytest.mark.parametrize("student", STUDENTS, ids=lambda s: s.name)
@workflow
def test_feedback_exists_and_reaches_the_student(class_run: ClassRun, student: Student) -> None:
    feedback = class_run.course / "feedback" / student.name / ASSIGNMENT
    names = [f"{Path(n).stem}.html" for n in NOTEBOOKS]
    missing = [n for n in names if not (feedback / n).is_file()]
    assert not missing, f"generate_feedback wrote no {missing} for {student.name}"
    assert class_run.fetched_feedback[student.name] == sorted(names)


def test_the_runbook_shows_the_capstone_commands_this_test_runs() -> None:
    assert GRADE_CAPSTONES in RUNBOOK.read_text(encoding="utf-8"), (
        f"docs/instructors.md must show the capstone grading commands exactly as this test runs them:\n"
        f"{GRADE_CAPSTONES}"
    )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_students_work_in_the_release_and_fill_in_only_their_exercises(name: str) -> None:
    """The full student's answer cells are the solutions without markers; nothing else is touched."""
    source = nbformat.read(build_notebooks.SOLUTIONS / name, as_version=4)
    release = nbformat.read(build_notebooks.RELEASE / name, as_version=4)
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells if _is_answer(c)}
    assert [c.source for c in fill_in(release, source, frozenset()).cells] == [
        c.source for c in release.cells
    ]
    for solves in (None, frozenset({"ex1", "ex3"})):
        work = fill_in(release, source, solves)
        for before, after in zip(release.cells, work.cells, strict=True):
            grade_id = before.metadata.get("nbgrader", {}).get("grade_id", "")
            if _is_answer(before) and (solves is None or grade_id.split("-")[0] in solves):
                marker_free = [
                    line for line in solutions[grade_id].splitlines() if line.strip() not in SOLUTION_MARKERS
                ]
                assert after.source.splitlines() == marker_free, f"{name}: {grade_id} is not the solution"
            else:
                assert after.source == before.source, f"{name}: {grade_id or 'a cell'} changed"


def _is_answer(cell: NotebookNode) -> bool:
    return bool(cell.metadata.get("nbgrader", {}).get("solution"))
