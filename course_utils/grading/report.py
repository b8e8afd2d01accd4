"""Grade reports: Gradescope `results.json`, Markdown feedback for the student, a CSV row per student.

Every file is written atomically (a temporary file in the same folder, then `os.replace`), so a crash or a
killed batch never leaves a half-written report that a later upload would take for a grade.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_utils.grading.rubric import RUBRIC, TOTAL_POINTS, CheckResult

__all__ = ["CSV_FIELDS", "GradeReport", "write_atomic", "write_class_csv", "write_reports"]

_STATUS_MARK = {
    "passed": "PASS",
    "failed": "FAIL",
    "not_run": "NOT RUN",
    "skipped": "SKIPPED",
    "refused": "REFUSED",
}
CSV_FIELDS = [
    "student",
    "score",
    "max_score",
    "percent",
    *(c.name for c in RUBRIC),
    "grader_error",
    "refused",
    "seconds",
]


@dataclass
class GradeReport:
    """Everything the grader found for one submission.

    `refusal`: why the submission was not graded at all (it is the reference capstone handed in,
    `grading.reference_copy`); then every result is `refused` with 0 points, and the reports lead with it.
    """

    student: str
    submission: Path
    results: list[CheckResult]
    execution_time_s: float
    notes: list[str] = field(default_factory=list)
    grader_error: str | None = None
    refusal: str | None = None

    @classmethod
    def grader_failed(cls, student: str, submission: Path, error: str, seconds: float) -> GradeReport:
        """A complete report in which nothing ran because the grader failed: every rubric line, 0 points."""
        results = [check.grader_failed() for check in RUBRIC]
        return cls(student, submission, results, seconds, grader_error=error)

    @property
    def score(self) -> float:
        """Points earned, bonus included (Gradescope shows a bonus as a score above the maximum)."""
        return round(sum(r.score for r in self.results), 2)

    @property
    def max_score(self) -> float:
        """Points available without bonus: always the rubric's total, whatever could run on this machine."""
        return TOTAL_POINTS

    @property
    def fraction(self) -> float:
        """score / max_score, capped at 1 (bonus cannot lift a grade above full marks)."""
        return min(1.0, self.score / self.max_score)

    def result(self, name: str) -> CheckResult:
        """The result of the check called `name`."""
        for result in self.results:
            if result.check.name == name:
                return result
        raise KeyError(f"No result for check {name!r} in the report of {self.student!r}.")

    def to_gradescope(self) -> dict[str, Any]:
        """The Gradescope autograder `results.json` shape."""
        output = "\n".join(self.notes)
        if self.refusal:
            output = f"{self.refusal}\n{output}"
        if self.grader_error:
            output = f"GRADER ERROR (not your fault; tell the course staff): {self.grader_error}\n{output}"
        return {
            "score": self.score,
            "execution_time": round(self.execution_time_s, 2),
            "output": output.strip(),
            "visibility": "visible",
            "tests": [
                {
                    "name": r.check.title,
                    "number": r.check.name,
                    "score": r.score,
                    "max_score": r.max_score,
                    "status": "passed" if r.status == "passed" else "failed",
                    "output": f"[{_STATUS_MARK[r.status]}] {r.output}",
                    "visibility": "visible",
                }
                for r in self.results
            ],
        }

    def to_markdown(self) -> str:
        """Feedback for the student: the total, a table, then what to fix for every lost point."""
        lines = [
            f"# Capstone feedback: {self.student}",
            "",
            f"**Score: {self.score:g} / {self.max_score:g}** (graded in {self.execution_time_s:.1f} s)",
            "",
        ]
        if self.grader_error:
            lines += [
                f"> **Grader error** (not your fault; the staff will re-grade): {self.grader_error}",
                "",
            ]
        if self.refusal:
            lines += ["## Not graded", "", "```text", self.refusal, "```", ""]
        lines += [f"> {note}" for note in self.notes] + ([""] if self.notes else [])
        lines += ["| check | result | points |", "|---|---|---|"]
        for r in self.results:
            points = f"{r.score:g} / {r.max_score:g}"
            if r.check.bonus:
                points = f"+{r.score:g} bonus (of {r.check.points:g})"
            lines.append(f"| {r.check.title} | {_STATUS_MARK[r.status]} | {points} |")
        to_fix = [r for r in self.results if r.status in ("failed", "not_run")]
        if to_fix:
            lines += ["", "## What to fix", ""]
            for r in to_fix:
                lines += [f"### {r.check.title}", "", "```text", r.output, "```", ""]
        passed = [r for r in self.results if r.status in ("passed", "skipped")]
        if passed:
            lines += ["", "## What the grader saw", ""]
            lines += [f"- **{r.check.title}**: {r.detail}" for r in passed]
        return "\n".join(lines).rstrip() + "\n"

    def csv_row(self) -> dict[str, Any]:
        """One row for the class CSV: totals and the points of every check."""
        row: dict[str, Any] = {
            "student": self.student,
            "score": f"{self.score:g}",
            "max_score": f"{self.max_score:g}",
            "percent": f"{100 * self.score / self.max_score:.1f}",
            "grader_error": self.grader_error or "",
            "refused": "yes" if self.refusal else "",
            "seconds": f"{self.execution_time_s:.1f}",
        }
        for r in self.results:
            row[r.check.name] = f"{r.score:g}" if r.status != "skipped" else "skipped"
        return row


def write_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` via a temporary file in the same folder and `os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_reports(report: GradeReport, out_dir: Path) -> dict[str, Path]:
    """results.json, feedback.md and grade.csv (one row) for one submission in `out_dir`."""
    return {
        "json": write_atomic(out_dir / "results.json", json.dumps(report.to_gradescope(), indent=2) + "\n"),
        "markdown": write_atomic(out_dir / "feedback.md", report.to_markdown()),
        "csv": write_class_csv([report], out_dir / "grade.csv"),
    }


def write_class_csv(reports: Sequence[GradeReport], path: Path) -> Path:
    """One row per student, sorted by name."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for report in sorted(reports, key=lambda r: r.student):
        writer.writerow(report.csv_row())
    return write_atomic(path, buffer.getvalue())
