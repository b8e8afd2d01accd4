"""Reports: the Gradescope results.json shape, the Markdown feedback, the CSV, atomic writes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from course_utils.grading import RUBRIC, GradeReport, write_class_csv, write_reports
from course_utils.grading.report import write_atomic


def _report(student: str = "alice", failing: str = "predict_probes") -> GradeReport:
    results = [
        c.skipped("no daemon")
        if c.bonus
        else (c.failed("3/20 probe texts right") if c.name == failing else c.passed("ok"))
        for c in RUBRIC
    ]
    return GradeReport(student, Path("/x") / student, results, 3.25, notes=["Bonus Docker check: no daemon"])


def test_gradescope_shape() -> None:
    data = _report().to_gradescope()
    assert data["score"] == 85
    assert data["execution_time"] == 3.25
    assert len(data["tests"]) == len(RUBRIC)
    for test in data["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
    failing = next(t for t in data["tests"] if t["number"] == "predict_probes")
    assert failing["score"] == 0 and failing["max_score"] == 15
    assert "Fix:" in failing["output"]
    json.dumps(data)  # serialisable


def test_markdown_lists_what_to_fix_and_the_skipped_bonus() -> None:
    text = _report().to_markdown()
    assert "**Score: 85 / 100**" in text
    assert "## What to fix" in text and "3/20 probe texts right" in text
    assert "SKIPPED" in text and "no daemon" in text


def test_files_are_written_atomically(tmp_path: Path) -> None:
    paths = write_reports(_report(), tmp_path / "alice")
    assert json.loads(paths["json"].read_text())["score"] == 85
    assert paths["markdown"].read_text().startswith("# Capstone feedback: alice")
    assert sorted(p.name for p in (tmp_path / "alice").iterdir()) == [
        "feedback.md",
        "grade.csv",
        "results.json",
    ]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = write_atomic(tmp_path / "results.json", "old")

    with pytest.raises(TypeError):
        write_atomic(target, object())  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_class_csv_has_one_row_per_student_sorted(tmp_path: Path) -> None:
    path = write_class_csv([_report("bob"), _report("alice", failing="health")], tmp_path / "grades.csv")
    rows = list(csv.DictReader(path.open()))
    assert [r["student"] for r in rows] == ["alice", "bob"]
    assert rows[0]["health"] == "0" and rows[0]["score"] == "95"
    assert rows[1]["docker_run"] == "skipped"


def test_grader_errors_are_flagged_as_not_the_students_fault() -> None:
    report = _report()
    report.grader_error = "OSError: disk full"
    assert "not your fault" in report.to_gradescope()["output"]
    assert "Grader error" in report.to_markdown()
