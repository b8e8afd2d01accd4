"""`course-utils grade` / `grade-all`: exit codes 0 (graded), 1 (grader error), 2 (usage), and the files."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest
from submissions import REFERENCE, copy_capstone, write_submission

from course_utils.grading import GradeOptions, nbgrader_score
from course_utils.grading.cli import EXIT_GRADED, EXIT_GRADER_ERROR, EXIT_USAGE, add_grade_commands, main

FAST = ["--no-docker", "--startup-timeout", "8"]


def test_grade_one_writes_reports_and_exits_0(
    tmp_path: Path, fake_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sub = write_submission(tmp_path / "alice")
    code = main(["grade", str(sub), "--out", str(tmp_path / "out"), "--model-dir", str(fake_model), *FAST])
    assert code == EXIT_GRADED
    assert json.loads((tmp_path / "out" / "results.json").read_text())["score"] == 100
    assert "Score: 100 / 100" in capsys.readouterr().out


def test_grade_all_writes_the_class_csv(tmp_path: Path, fake_model: Path) -> None:
    write_submission(tmp_path / "class" / "alice")
    # bob is a link to what nbgrader collected: named by the link, not by the folder it resolves to
    collected = tmp_path / "submitted" / "bob" / "deployment" / "capstone"
    write_submission(collected, **{"requirements.txt": "fastapi\n"})
    (tmp_path / "class" / "bob").symlink_to(collected, target_is_directory=True)
    args = ["grade-all", str(tmp_path / "class"), "--jobs", "2", "--out", str(tmp_path / "out")]
    assert main([*args, "--model-dir", str(fake_model), *FAST]) == EXIT_GRADED
    rows = {r["student"]: r for r in csv.DictReader((tmp_path / "out" / "grades.csv").open())}
    assert rows["alice"]["score"] == "100" and rows["bob"]["score"] == "95"


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grade", str(tmp_path / "missing")]) == EXIT_USAGE
    assert "is not a folder" in capsys.readouterr().err
    assert main(["grade-all", str(tmp_path), "--jobs", "0"]) == EXIT_USAGE
    assert main(["grade-all", str(tmp_path), "--jobs", "40"]) == EXIT_USAGE
    assert "sandbox uids" in capsys.readouterr().err
    assert main(["grade", str(tmp_path), "--sandbox-uid", "0"]) == EXIT_USAGE
    with pytest.raises(SystemExit) as exc:
        main(["grade"])
    assert exc.value.code == 2


def test_a_missing_model_is_a_grader_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sub = write_submission(tmp_path / "alice")
    assert main(["grade", str(sub), "--model-dir", str(tmp_path / "nowhere"), *FAST]) == EXIT_GRADER_ERROR
    assert "make model" in capsys.readouterr().err


def test_commands_register_on_a_host_parser() -> None:
    parser = argparse.ArgumentParser()
    add_grade_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["grade-all", "x", "--jobs", "3", "--docker"])
    assert (args.jobs, args.docker) == (3, True)


def test_nbgrader_score_scales_to_the_cells_points(tmp_path: Path, fast_options: GradeOptions) -> None:
    sub = write_submission(tmp_path / "alice", **{"requirements.txt": "fastapi\n"})
    assert nbgrader_score(sub, points=10, options=fast_options) == 9.5
    with pytest.raises(ValueError, match="points"):
        nbgrader_score(sub, points=0)


@pytest.mark.slow
def test_the_instructors_dry_run_grades_the_reference_100(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`course-utils grade solutions/capstone`: the reference folder itself is never refused; a copy is."""
    assert main(["grade", str(REFERENCE), "--out", str(tmp_path / "out"), *FAST]) == EXIT_GRADED
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["score"] == 100, capsys.readouterr().out
    copy = copy_capstone(REFERENCE, tmp_path / "copy")
    assert main(["grade", str(copy), "--out", str(tmp_path / "copy-out"), *FAST]) == EXIT_GRADED
    assert "Not graded: this submission matches the reference capstone" in capsys.readouterr().out
    assert json.loads((tmp_path / "copy-out" / "results.json").read_text())["score"] == 0
