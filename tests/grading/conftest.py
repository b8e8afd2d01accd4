"""Fixtures of the grader's tests: a tiny real model folder, fast grading options, the mini submission."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the `submissions` helper module beside this file

from submissions import write_fake_model

from course_utils.grading import GradeOptions


@pytest.fixture(scope="session")
def fake_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_model(tmp_path_factory.mktemp("fake-model"))


@pytest.fixture(scope="session")
def fast_options(fake_model: Path) -> GradeOptions:
    """Short limits so hostile submissions cost seconds: a hang is noticed in startup_timeout_s.

    Predictions are checked on the public sample probes (on which the tiny model answers 10 positive, 10
    negative); the hidden probes are graded against the course model in test_calibration.py.
    """
    return GradeOptions(
        model_dir=fake_model,
        docker=False,
        startup_timeout_s=8.0,
        ready_timeout_s=8.0,
        request_timeout_s=2.0,
        http_budget_s=30.0,
        p95_requests=20,
        probes_file=None,
    )
