"""The reference capstone handed in is refused; disguised copies too; independent work never is.

The refusal itself is cheap (no app starts), so these tests grade with the tiny fake model. That a correct
service written differently still scores 100, and that the reference itself does with `allow_reference`,
is graded with the course model in test_calibration.py (and `course-utils grade solutions/capstone` in
test_grade_cli.py).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from submissions import (
    MINI_APP,
    REFERENCE,
    STARTER,
    WHEATS,
    copy_capstone,
    reformatted_reference,
    write_submission,
)

from course_utils.fingerprint import fingerprints
from course_utils.grading import RUBRIC, GradeOptions, grade, nbgrader_score
from course_utils.grading import grader as grader_module
from course_utils.grading.reference_copy import (
    REFUSE_SHARE,
    answer_fingerprints,
    default_reference_dir,
    match_reference,
    starter_beside,
)

#: Independent work shares a handful of lines with the reference (measured: about 0.5%); far below this.
INDEPENDENT_MAX_SHARE = 0.02


def test_the_instructors_repository_checks_against_its_reference() -> None:
    assert default_reference_dir() == REFERENCE
    assert GradeOptions().reference_dir == REFERENCE and GradeOptions().allow_reference is False


def test_answer_lines_leave_out_the_starter_and_the_pins() -> None:
    answers = answer_fingerprints(REFERENCE)
    assert len(answers) > 1000, "the reference's src/, Dockerfile and deploy.md hold well over 1000 lines"
    assert starter_beside(REFERENCE) == STARTER, "the layout: capstone/ beside solutions/capstone"
    starter = match_reference(STARTER, REFERENCE)
    assert starter.share < 0.005, f"the starter's own lines are given, not answers: {starter}"
    without = match_reference(STARTER, REFERENCE, starter=Path("/nonexistent"))
    assert without.total > len(answers) and without.share < 0.01, "no starter found: nothing subtracted"
    pins = fingerprints((REFERENCE / "requirements.txt").read_text().splitlines())
    assert pins and not answers & pins, "identical pins are not a copy"


def test_a_copy_and_a_disguised_copy_match_most_lines(tmp_path: Path) -> None:
    copy = match_reference(copy_capstone(REFERENCE, tmp_path / "copy"), REFERENCE)
    assert copy.refused and copy.share == 1.0
    disguised = match_reference(reformatted_reference(tmp_path / "disguised"), REFERENCE)
    assert disguised.refused and disguised.share < 1.0, disguised.share  # the disguise changed lines


def test_the_reference_moved_into_one_module_still_matches(tmp_path: Path) -> None:
    sources = "\n".join(p.read_text() for p in sorted((REFERENCE / "src").rglob("*.py")))
    folder = copy_capstone(STARTER, tmp_path / "one-file")
    (folder / "src" / "app.py").write_text(sources)
    for name in ("Dockerfile", "deploy.md"):
        (folder / name).write_text((REFERENCE / name).read_text())
    assert match_reference(folder, REFERENCE).refused


def test_the_reference_hidden_where_caches_live_or_behind_padding_still_matches(tmp_path: Path) -> None:
    """`.py` files are read wherever the app could import them from, and before any padding files."""
    folder = copy_capstone(STARTER, tmp_path / "hidden")
    hidden = folder / "src" / "model"  # model/ is skipped for data, not for code
    hidden.mkdir(parents=True)
    for path in sorted((REFERENCE / "src").glob("*.py")):
        (hidden / path.name).write_text(path.read_text())
    for name in ("Dockerfile", "deploy.md"):
        (folder / name).write_text((REFERENCE / name).read_text())
    padding = folder / "aaa"
    padding.mkdir()
    for number in range(2_100):  # more than the reader's file bound, sorted before src/
        (padding / f"{number:04}.txt").write_text("padding\n")
    assert match_reference(folder, REFERENCE).refused


@pytest.mark.parametrize("name", ["starter", "mini_app", *sorted(WHEATS)])
def test_independent_work_is_not_refused(tmp_path: Path, name: str) -> None:
    if name == "starter":
        folder = copy_capstone(STARTER, tmp_path / name)
    else:
        folder = write_submission(tmp_path / name, MINI_APP if name == "mini_app" else WHEATS[name])
    match = match_reference(folder, REFERENCE)
    assert not match.refused and match.share <= INDEPENDENT_MAX_SHARE < REFUSE_SHARE, match


@pytest.fixture
def no_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the grader starts anything: a refused submission must not run."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the grader started the app of a refused submission")

    monkeypatch.setattr(grader_module, "workspace", refuse)
    monkeypatch.setattr(grader_module, "SandboxedApp", refuse)


def test_a_refused_submission_gets_a_complete_report_and_never_runs(
    tmp_path: Path, fast_options: GradeOptions, no_app: None
) -> None:
    folder = reformatted_reference(tmp_path / "bob")
    options = replace(fast_options, reference_dir=REFERENCE)
    report = grade(folder, out=tmp_path / "out", options=options)
    assert report.score == 0 and report.grader_error is None
    assert [r.check.name for r in report.results] == [c.name for c in RUBRIC]
    assert {r.status for r in report.results} == {"refused"}
    match = match_reference(folder, REFERENCE)
    assert report.refusal is not None
    assert f"matches the reference capstone in {match.matched} of its {match.total} answer lines" in (
        report.refusal
    )
    assert "src/app.py:" in report.refusal and "Hand in your own capstone" in report.refusal
    markdown = report.to_markdown()
    assert "## Not graded" in markdown and "Fix:" not in markdown, "no fix line for checks that never ran"
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results) == set(report.to_gradescope()) >= {"score", "tests", "output", "execution_time"}
    assert results["score"] == 0 and len(results["tests"]) == len(RUBRIC)
    assert results["output"].startswith("Not graded: this submission matches the reference capstone")
    assert all(t["score"] == 0 and t["status"] == "failed" for t in results["tests"])
    assert "yes" in (tmp_path / "out" / "grade.csv").read_text().splitlines()[1].split(",")
    assert nbgrader_score(folder, points=4, options=options) == 0


def test_the_check_is_off_without_a_reference_or_when_allowed(
    tmp_path: Path, fast_options: GradeOptions
) -> None:
    """The student kit has no reference (None); `allow_reference` and the reference folder itself pass.

    The copy here holds the mini app (fast to start) beside the reference's sources under another name,
    so it matches the reference and is graded only when the check is off.
    """
    folder = write_submission(tmp_path / "carol")
    for path in sorted((REFERENCE / "src").rglob("*.py")):
        (folder / "notes" / path.name).parent.mkdir(exist_ok=True)
        (folder / "notes" / path.name).write_text(path.read_text())
    (folder / "deploy.md").write_text((REFERENCE / "deploy.md").read_text())
    (folder / "Dockerfile").write_text((REFERENCE / "Dockerfile").read_text())
    assert match_reference(folder, REFERENCE).refused
    checked = replace(fast_options, reference_dir=REFERENCE)
    assert grade(folder, options=checked).refusal is not None
    for options in (
        replace(checked, allow_reference=True),
        replace(checked, reference_dir=None),
        replace(checked, reference_dir=folder),  # grading the reference folder itself
    ):
        report = grade(folder, options=options)
        assert report.refusal is None and report.result("app_starts").status == "passed", report.to_markdown()


def test_a_symlink_to_the_reference_is_a_copy_not_the_reference_itself(
    tmp_path: Path, fast_options: GradeOptions, no_app: None
) -> None:
    (tmp_path / "capstone").symlink_to(REFERENCE, target_is_directory=True)
    report = grade(tmp_path / "capstone", options=replace(fast_options, reference_dir=REFERENCE))
    assert report.refusal is not None and report.score == 0


def test_a_crash_of_the_check_is_a_grader_error_not_a_zero(
    tmp_path: Path, fast_options: GradeOptions, monkeypatch: pytest.MonkeyPatch, no_app: None
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(grader_module, "match_reference", broken)
    options = replace(fast_options, reference_dir=REFERENCE)
    report = grade(write_submission(tmp_path / "dave"), options=options)
    assert report.grader_error is not None and "disk gone" in report.grader_error
    assert report.refusal is None and {r.status for r in report.results} == {"not_run"}
