"""File checks: required files, exact pins, Dockerfile lint, deploy.md sections."""

from __future__ import annotations

from pathlib import Path

import pytest
from submissions import DEPLOY_MD, DEPLOY_MD_OTHER_WORDS, DOCKERFILE, write_submission

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


def test_deploy_doc_in_other_words_and_tools_passes(sub: Path) -> None:
    (sub / "deploy.md").write_text(DEPLOY_MD_OTHER_WORDS)
    result = static_checks.check_deploy_doc(sub)
    assert result.status == "passed", result.output


@pytest.mark.parametrize(
    ("doc", "topic"),
    [
        # the command sits in a commented-out hint: a reader never sees it
        (DEPLOY_MD.replace("`docker build -t sentiment .`", "<!-- docker build -t sentiment . -->"), "build"),
        # a placeholder paragraph is not documentation
        (DEPLOY_MD.replace("`docker run -p", "TODO: `docker run -p"), "run"),
        # the endpoints are named, but in the wrong section
        (
            DEPLOY_MD.replace("Liveness on `/health`, readiness on `/ready`", "Ask the team.").replace(
                "## Monitoring\n", "## Monitoring\nLiveness on `/health`, readiness on `/ready`.\n"
            ),
            "health checks",
        ),
    ],
    ids=["commented_out", "todo_placeholder", "wrong_section"],
)
def test_deploy_doc_is_read_as_a_reader_would(sub: Path, doc: str, topic: str) -> None:
    (sub / "deploy.md").write_text(doc)
    result = static_checks.check_deploy_doc(sub)
    assert result.status == "failed" and f"{topic}:" in result.detail, result.output
