"""`course-utils grade PATH` and `course-utils grade-all DIR --jobs N`: the grader's command line.

Exit codes: 0 every submission was graded (whatever its score); 1 the grader failed (no model folder, or
an internal error recorded in a report); 2 usage (bad arguments, a path that is not a folder).
`course_utils.cli` calls `add_grade_commands`; this module prints, the grading library never does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from course_utils.grading.batch import JOB_MEMORY_MB, JOBS_PER_CPU, default_jobs, grade_all
from course_utils.grading.grader import GradeOptions, grade
from course_utils.grading.gradescope import add_bundle_command
from course_utils.grading.isolation import DEFAULT_SLOTS
from course_utils.grading.report import GradeReport

__all__ = ["EXIT_GRADED", "EXIT_GRADER_ERROR", "EXIT_USAGE", "add_grade_commands"]

EXIT_GRADED, EXIT_GRADER_ERROR, EXIT_USAGE = 0, 1, 2


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", help="folder for results.json, feedback.md and the CSV (default: print only)"
    )
    parser.add_argument(
        "--allow-reference",
        action="store_true",
        help="grade a copy of the reference capstone instead of refusing it (the instructor's dry run)",
    )
    parser.add_argument("--model-dir", help="exported model the submission serves (default: MODEL_DIR)")
    docker = parser.add_mutually_exclusive_group()
    docker.add_argument(
        "--docker", dest="docker", action="store_true", default=None, help="run the bonus Docker check"
    )
    docker.add_argument(
        "--no-docker", dest="docker", action="store_false", help="skip the bonus Docker check"
    )
    parser.add_argument(
        "--base-image", help="BASE_IMAGE build arg for the Docker check (e.g. course-base:bookworm)"
    )
    isolation = parser.add_mutually_exclusive_group()
    isolation.add_argument(
        "--isolation",
        dest="isolation",
        action="store_true",
        default=None,
        help="require running submissions as a sandbox uid (default: when the grader is root and can)",
    )
    isolation.add_argument(
        "--no-isolation", dest="isolation", action="store_false", help="run submissions as the grader's user"
    )
    # Defaults live in GradeOptions; an option left out keeps its default there.
    defaults = GradeOptions()
    parser.add_argument(
        "--sandbox-uid",
        type=int,
        help=f"first uid of the sandbox range, one uid per concurrent job (default {defaults.sandbox_uid})",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        help=f"seconds for the app to answer (default {defaults.startup_timeout_s:g})",
    )
    probes = parser.add_mutually_exclusive_group()
    probes.add_argument(
        "--probes",
        help="hidden probe texts, one JSON object per line "
        f"(default: {defaults.probes_file or 'the public sample: no hidden file here'})",
    )
    probes.add_argument(
        "--public-probes",
        action="store_true",
        help="check predictions on the public sample probes (what a student's self-grading uses)",
    )
    parser.add_argument(
        "--p95-budget-ms",
        type=float,
        help=f"latency budget of the p95 check (default {defaults.p95_budget_ms:g})",
    )


def add_grade_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `grade`, `grade-all` and `gradescope-bundle` on the `course-utils` subcommand parser."""
    one = subparsers.add_parser("grade", help="grade one capstone submission folder")
    one.add_argument("path", help="the submission folder (src/app.py, Dockerfile, ...)")
    _add_options(one)
    one.set_defaults(run=_grade)
    many = subparsers.add_parser("grade-all", help="grade a class: one subfolder per student, in parallel")
    many.add_argument("path", help="folder holding one subfolder per student")
    many.add_argument(
        "--jobs",
        type=int,
        help=f"submissions graded at once (default {default_jobs()} here: {JOBS_PER_CPU} per CPU, at most "
        f"one per {JOB_MEMORY_MB} MB of available memory)",
    )
    _add_options(many)
    many.set_defaults(run=_grade_all)
    add_bundle_command(subparsers)


def _options(args: argparse.Namespace) -> GradeOptions:
    given = {
        "startup_timeout_s": args.startup_timeout,
        "p95_budget_ms": args.p95_budget_ms,
        "sandbox_uid": args.sandbox_uid,
        "probes_file": Path(args.probes) if args.probes else None,
    }
    options = replace(
        GradeOptions(),
        model_dir=Path(args.model_dir) if args.model_dir else None,
        docker=args.docker,
        docker_base_image=args.base_image,
        isolation=args.isolation,
        allow_reference=args.allow_reference,
        **{name: value for name, value in given.items() if value is not None},
    )
    return replace(options, probes_file=None) if args.public_probes else options


def _usage_problem(args: argparse.Namespace) -> str:
    if not Path(args.path).is_dir():
        return f"{args.path!r} is not a folder. Pass the submission folder (for grade-all: the class folder)."
    jobs = getattr(args, "jobs", None)
    if jobs is not None and jobs < 1:
        return f"--jobs {args.jobs} must be at least 1."
    if jobs is not None and jobs > DEFAULT_SLOTS:
        return f"--jobs {args.jobs} exceeds the {DEFAULT_SLOTS} sandbox uids (one per job)."
    if args.sandbox_uid is not None and args.sandbox_uid < 1000:
        return f"--sandbox-uid {args.sandbox_uid} must be at least 1000 (a uid no account uses)."
    return ""


def _line(report: GradeReport) -> str:
    lost = [r.check.name for r in report.results if r.score < r.max_score]
    flag = f"  GRADER ERROR: {report.grader_error}" if report.grader_error else ""
    return (
        f"{report.student:<24} {report.score:6g} / {report.max_score:g}  {report.execution_time_s:5.1f}s  "
        f"lost: {', '.join(lost) or '-'}{flag}"
    )


def _grade(args: argparse.Namespace) -> int:
    problem = _usage_problem(args)
    if problem:
        print(f"usage error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    report = grade(args.path, out=args.out, options=_options(args))
    print(report.to_markdown())
    if args.out:
        print(f"reports written to {args.out}/ (results.json, feedback.md, grade.csv)")
    return EXIT_GRADER_ERROR if report.grader_error else EXIT_GRADED


def _grade_all(args: argparse.Namespace) -> int:
    problem = _usage_problem(args)
    if problem:
        print(f"usage error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    reports = grade_all(
        args.path,
        jobs=args.jobs,
        out=args.out,
        options=_options(args),
        on_report=lambda r: print(_line(r), flush=True),
    )
    print(f"graded {len(reports)} submissions" + (f"; CSV: {args.out}/grades.csv" if args.out else ""))
    return EXIT_GRADER_ERROR if any(r.grader_error for r in reports) else EXIT_GRADED


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (`python -m course_utils.grading.cli grade PATH`) until course_utils.cli wires it."""
    from course_utils.errors import CourseUtilsError

    parser = argparse.ArgumentParser(prog="course-utils")
    add_grade_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except CourseUtilsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_GRADER_ERROR
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
