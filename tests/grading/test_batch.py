"""`grade_all`'s default number of jobs: from the usable CPUs and the available memory, within the slots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from course_utils.grading import GradeOptions, grade_all
from course_utils.grading.batch import JOB_MEMORY_MB, JOBS_PER_CPU, default_jobs, usable_cpus
from course_utils.grading.isolation import DEFAULT_SLOTS


def test_jobs_follow_the_cpus_when_memory_is_plentiful() -> None:
    assert default_jobs(cpus=2, available_mb=64_000) == 2 * JOBS_PER_CPU
    assert default_jobs(cpus=1, available_mb=64_000) == JOBS_PER_CPU


def test_memory_bounds_the_jobs() -> None:
    assert default_jobs(cpus=8, available_mb=3 * JOB_MEMORY_MB + 1) == 3
    assert default_jobs(cpus=8, available_mb=JOB_MEMORY_MB / 2) == 1, "never fewer than one job"


def test_the_sandbox_slots_bound_the_jobs() -> None:
    assert default_jobs(cpus=64, available_mb=10**7) == DEFAULT_SLOTS
    assert default_jobs(cpus=64, available_mb=10**7, slots=3) == 3


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this OS")
def test_usable_cpus_is_the_affinity_mask() -> None:
    assert usable_cpus() == len(os.sched_getaffinity(0))


def test_grade_all_takes_the_default_within_the_options_slots(tmp_path: Path) -> None:
    one_slot = GradeOptions(sandbox_slots=1)
    assert grade_all(tmp_path, options=one_slot) == []  # jobs=None: default_jobs within 1 slot, no error
    with pytest.raises(ValueError, match="exceeds the 1 sandbox uids"):
        grade_all(tmp_path, jobs=2, options=one_slot)
