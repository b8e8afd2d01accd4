"""Partial credit in an nbgrader autograded cell: `nbgrader_score(path, points=...)` as the cell's value.

nbgrader reads a grade cell's last expression: a number between 0 and the cell's points is taken as the
score, but ANY output on stderr zeroes the cell. So this function grades quietly (no progress bars, no
warnings printed) and returns a plain float, never more than `points`. A copy of the reference capstone
scores 0 here as everywhere (`GradeOptions.reference_dir`, on by default in the instructor's repository).

    # autograded cell worth 10 points
    from course_utils.grading import nbgrader_score
    nbgrader_score("../capstone", points=10)
"""

from __future__ import annotations

import warnings
from pathlib import Path

from course_utils.grading.grader import GradeOptions, grade

__all__ = ["nbgrader_score"]


def nbgrader_score(path: Path | str, *, points: float = 1.0, options: GradeOptions | None = None) -> float:
    """The capstone grade of `path` scaled to `points` (the grade cell's points), rounded to 2 decimals."""
    if points <= 0:
        raise ValueError(f"points={points!r}: pass the grade cell's points (a positive number).")
    options = options or GradeOptions(docker=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a warning on stderr would zero the cell in nbgrader
        report = grade(path, options=options)
    return round(min(points, report.fraction * points), 2)
