"""The bonus Docker check: explicit 'skipped' when turned off, a real build and run when a daemon answers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from submissions import DOCKERFILE, write_submission

from course_utils.grading.docker_check import check_docker


def test_turned_off_is_skipped_and_says_so(tmp_path: Path, fake_model: Path) -> None:
    result = check_docker(tmp_path, enabled=False, model_dir=fake_model, base_image=None, timeout_s=5)
    assert result.status == "skipped" and result.score == 0 and result.max_score == 0
    assert "Ungraded" in result.detail


@pytest.fixture
def daemon() -> None:
    from course_utils.docker_tools import docker_status

    status = docker_status()
    if not status.ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have a Docker daemon: {status.detail}")
        pytest.skip(f"no Docker daemon: {status.detail}")


@pytest.mark.docker
def test_a_failing_build_loses_the_bonus_with_the_build_output(
    daemon: None, tmp_path: Path, fake_model: Path
) -> None:
    broken = DOCKERFILE.replace(
        "ENV PYTHONUNBUFFERED=1\n", "ENV PYTHONUNBUFFERED=1\nRUN echo broken-step && exit 3\n"
    )
    sub = write_submission(tmp_path / "s", Dockerfile=broken)
    base = os.environ.get("COURSE_BASE_IMAGE", "course-base:bookworm")
    result = check_docker(sub, enabled=True, model_dir=fake_model, base_image=base, timeout_s=30)
    assert result.status == "failed", result.output
    assert "docker build failed" in result.detail
    assert result.score == 0 and result.max_score == 0


@pytest.mark.docker
@pytest.mark.slow
def test_reference_image_builds_and_earns_the_bonus(daemon: None, tmp_path: Path) -> None:
    import shutil

    from course_utils.config import PROJECT_ROOT, get_settings

    model_dir = get_settings().model_dir
    reference = PROJECT_ROOT / "solutions" / "capstone"
    if not (model_dir / "model_card.json").is_file() or not (reference / "Dockerfile").is_file():
        pytest.skip("needs the exported model (make model) and the reference capstone")
    sub = tmp_path / "reference"
    shutil.copytree(reference, sub, ignore=shutil.ignore_patterns(".*_cache", "__pycache__", "model"))
    base = os.environ.get("COURSE_BASE_IMAGE", "course-base:bookworm")
    result = check_docker(sub, enabled=True, model_dir=model_dir, base_image=base, timeout_s=60)
    if result.status == "skipped" and "busy" in result.detail:
        pytest.skip(result.detail)
    assert result.status == "passed", result.output
    assert result.score == 5 and result.max_score == 0
