"""File checks: required files, exact pins, Dockerfile lint, deploy.md sections."""

from __future__ import annotations

from pathlib import Path

import pytest
from submissions import DEPLOY_MD, DOCKERFILE, write_submission

from course_utils.grading import static_checks


@pytest.fixture
def sub(tmp_path: Path) -> Path:
    return write_submission(tmp_path / "s")


def test_complete_submission_passes_every_file_check(sub: Path) -> None:
    for check in (
        static_checks.check_files,
        static_checks.check_requirements,
        static_checks.check_dockerfile,
        static_checks.check_deploy_doc,
    ):
        assert check(sub).status == "passed", check(sub).output


def test_missing_files_are_named(sub: Path) -> None:
    (sub / "deploy.md").unlink()
    (sub / ".dockerignore").unlink()
    result = static_checks.check_files(sub)
    assert result.status == "failed"
    assert ".dockerignore" in result.detail and "deploy.md" in result.detail


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("fastapi==0.165.0\n# comment\n\nuvicorn[standard]==0.54.0  # server\n", True),
        ("numpy==2.4.6; python_version >= '3.11'\n", True),
        ("fastapi>=0.100\n", False),
        ("fastapi\n", False),
        ("-r other.txt\n", False),
        ("fastapi==0.*\n", False),
        ("# nothing\n", False),
    ],
)
def test_requirements_must_be_exact_pins(sub: Path, text: str, ok: bool) -> None:
    (sub / "requirements.txt").write_text(text)
    assert (static_checks.check_requirements(sub).status == "passed") is ok


def test_dockerfile_findings_are_listed(sub: Path) -> None:
    (sub / "Dockerfile").write_text(
        DOCKERFILE.replace("USER app\n", "").replace("HEALTHCHECK", "# HEALTHCHECK")
    )
    result = static_checks.check_dockerfile(sub)
    assert result.status == "failed"
    assert "non-root-user" in result.detail and "healthcheck" in result.detail


def test_deploy_doc_names_the_missing_topic(sub: Path) -> None:
    (sub / "deploy.md").write_text(DEPLOY_MD.replace("## Monitoring", "## Other"))
    result = static_checks.check_deploy_doc(sub)
    assert result.status == "failed"
    assert "monitoring" in result.detail and "build" not in result.detail.split("cover:")[1]


def test_unreadable_or_binary_files_do_not_crash(sub: Path) -> None:
    (sub / "deploy.md").write_bytes(b"\xff\xfe\x00binary")
    (sub / "requirements.txt").unlink()
    (sub / "requirements.txt").mkdir()
    assert static_checks.check_deploy_doc(sub).status == "failed"
    assert static_checks.check_requirements(sub).status == "failed"
