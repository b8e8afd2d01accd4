"""Grade a whole class in parallel: one subfolder per student, one report folder per student, one CSV.

Why threads: each grading job spends its time waiting on a subprocess and on HTTP, not on the grader's
CPU, so a thread pool of `jobs` workers runs `jobs` submissions at once, in one warm process (the model's
expected answers are computed once per class). A job that fails in the grader itself becomes a report
with `grader_error` set; it never stops the batch.

How many jobs by default (`default_jobs`): `JOBS_PER_CPU` per usable CPU, at most one per
`JOB_MEMORY_MB` of available memory, and never more than the sandbox uids. Each job runs one service with
the model loaded, which also waits most of the time (startup, readiness polls, the no-model window).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from course_utils.grading.grader import GradeOptions, GraderSetupError, grade
from course_utils.grading.isolation import DEFAULT_SLOTS
from course_utils.grading.report import GradeReport, write_class_csv, write_reports

__all__ = ["JOBS_PER_CPU", "JOB_MEMORY_MB", "default_jobs", "grade_all", "student_folders", "usable_cpus"]

#: Submissions graded at once per usable CPU. A job's service is idle most of its time, so one per CPU
#: leaves cores idle; more than two per CPU (measured on 2 cores) gained nothing and risks the latency
#: check of a slow submission (docs/grading.md, "How many jobs").
JOBS_PER_CPU = 2
#: Memory one job may need: a service with the model loaded (the reference ~210 MB RSS; one serving the
#: PyTorch model ~700 MB) and its share of the grader.
JOB_MEMORY_MB = 1024


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. `taskset`), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_jobs(
    *, cpus: int | None = None, available_mb: float | None = None, slots: int = DEFAULT_SLOTS
) -> int:
    """`JOBS_PER_CPU` per usable CPU, at most one per `JOB_MEMORY_MB` available, within `slots`; >= 1.

    >>> default_jobs(cpus=2, available_mb=16_000)
    4
    >>> default_jobs(cpus=8, available_mb=3_000)
    2
    """
    cpus = usable_cpus() if cpus is None else cpus
    if available_mb is None:
        available_mb = psutil.virtual_memory().available / 2**20
    by_memory = int(available_mb // JOB_MEMORY_MB)
    return max(1, min(JOBS_PER_CPU * cpus, by_memory, slots))


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
    jobs: int | None = None,
    out: Path | str | None = None,
    options: GradeOptions | None = None,
    on_report: Callable[[GradeReport], None] | None = None,
) -> list[GradeReport]:
    """Grade every student folder of `class_dir` with `jobs` in parallel; write `out/grades.csv` if `out`.

    `jobs=None` takes `default_jobs()` (within the options' sandbox slots).

    >>> reports = grade_all("submissions", jobs=2, out="graded")  # doctest: +SKIP
    """
    slots = (options or GradeOptions()).sandbox_slots
    if jobs is None:
        jobs = default_jobs(slots=slots)
    if jobs < 1:
        raise ValueError(f"jobs={jobs!r}: pass at least 1 (the number of submissions graded at once).")
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
            error, seconds = f"{type(exc).__name__}: {exc}", time.monotonic() - started
            report = GradeReport.grader_failed(folder.name, folder, error, seconds)
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
