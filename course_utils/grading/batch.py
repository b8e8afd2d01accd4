"""Grade a whole class in parallel: one subfolder per student, one report folder per student, one CSV.

Why threads: each grading job spends its time waiting on a subprocess and on HTTP, not on the grader's
CPU, so a thread pool of `jobs` workers runs `jobs` submissions at once. A job that fails in the grader
itself becomes a report with `grader_error` set; it never stops the batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from course_utils.grading.grader import GradeOptions, GraderSetupError, grade
from course_utils.grading.report import GradeReport, write_class_csv, write_reports
from course_utils.grading.rubric import RUBRIC

__all__ = ["grade_all", "student_folders"]


def student_folders(class_dir: Path) -> list[Path]:
    """The submission folders of `class_dir`: every non-hidden subfolder, sorted by name."""
    if not class_dir.is_dir():
        raise GraderSetupError(
            f"Class folder {str(class_dir)!r} is not a folder. Pass a folder of student folders."
        )
    return sorted(p for p in class_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def grade_all(
    class_dir: Path | str,
    *,
    jobs: int = 2,
    out: Path | str | None = None,
    options: GradeOptions | None = None,
    on_report: Callable[[GradeReport], None] | None = None,
) -> list[GradeReport]:
    """Grade every student folder of `class_dir` with `jobs` in parallel; write `out/grades.csv` if `out`.

    >>> reports = grade_all("submissions", jobs=2, out="graded")  # doctest: +SKIP
    """
    if jobs < 1:
        raise ValueError(f"jobs={jobs!r}: pass at least 1 (the number of submissions graded at once).")
    slots = (options or GradeOptions()).sandbox_slots
    if jobs > slots:
        raise ValueError(
            f"jobs={jobs!r} exceeds the {slots} sandbox uids (one per job): pass at most {slots}."
        )
    folders = student_folders(Path(class_dir))
    out_dir = Path(out) if out is not None else None

    def one(folder: Path) -> GradeReport:
        started = time.monotonic()
        try:
            # student=: the folder's own name, even for a link to submitted/<student>/<assignment>/capstone,
            # whose resolved name is "capstone" for everyone.
            report = grade(
                folder, out=out_dir / folder.name if out_dir else None, student=folder.name, options=options
            )
        except Exception as exc:  # one grader failure must not stop the class
            report = _error_report(folder, f"{type(exc).__name__}: {exc}", time.monotonic() - started)
            if out_dir is not None:
                write_reports(report, out_dir / folder.name)
        if on_report is not None:
            on_report(report)
        return report

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade") as pool:
        reports = list(pool.map(one, folders))
    if out_dir is not None:
        write_class_csv(reports, out_dir / "grades.csv")
    return reports


def _error_report(folder: Path, error: str, seconds: float) -> GradeReport:
    results = [
        check.not_run(f"The grader failed ({error}); not your fault.", blocked_by="grader_error")
        for check in RUBRIC
    ]
    return GradeReport(folder.name, folder, results, seconds, grader_error=error)
