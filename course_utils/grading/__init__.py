"""The capstone grader: a rubric of HTTP and file checks run against a sandboxed submission.

    from course_utils.grading import grade, grade_all, nbgrader_score
    report = grade("capstone")          # GradeReport: score, results, to_markdown(), to_gradescope()

See docs/grading.md for the rubric, the points policy and the command line.
"""

from __future__ import annotations

from course_utils.grading.batch import grade_all
from course_utils.grading.grader import GradeOptions, GraderSetupError, grade
from course_utils.grading.nbgrader_bridge import nbgrader_score
from course_utils.grading.probe_set import PUBLIC_SAMPLE, Probe, ProbeSet
from course_utils.grading.report import GradeReport, write_class_csv, write_reports
from course_utils.grading.rubric import RUBRIC, TOTAL_POINTS, Check, CheckResult
from course_utils.grading.sandbox import Limits

__all__ = [
    "PUBLIC_SAMPLE",
    "RUBRIC",
    "TOTAL_POINTS",
    "Check",
    "CheckResult",
    "GradeOptions",
    "GradeReport",
    "GraderSetupError",
    "Limits",
    "Probe",
    "ProbeSet",
    "grade",
    "grade_all",
    "nbgrader_score",
    "write_class_csv",
    "write_reports",
]
