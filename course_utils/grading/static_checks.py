"""Checks that read the submission's files without running anything: files, pins, Dockerfile, deploy.md.

Why separate from the HTTP checks: these never execute student code, so they always run, even when the
app does not start, and a student sees every file problem at once.
"""

from __future__ import annotations

import re
from pathlib import Path

from course_utils.dockerfile_lint import lint_dockerfile
from course_utils.errors import DockerfileSyntaxError
from course_utils.grading.rubric import CheckResult, check_named
from course_utils.pins import parse_pin, requirement_lines

__all__ = [
    "DEPLOY_TOPICS",
    "REQUIRED_FILES",
    "check_deploy_doc",
    "check_dockerfile",
    "check_files",
    "check_requirements",
]

REQUIRED_FILES = ("src/app.py", "Dockerfile", ".dockerignore", "requirements.txt", "deploy.md")

#: topic -> (words one of which a heading must contain, phrases the document must contain)
DEPLOY_TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "build": (("build",), ("docker build",)),
    "run": (("run",), ("docker run",)),
    "health checks": (("health", "readiness", "liveness", "probe"), ("/health", "/ready")),
    "monitoring": (("monitor", "metric", "prometheus", "observab"), ("/metrics",)),
}


def _read(path: Path, limit: int = 1_000_000) -> str | None:
    """The file's text (first `limit` bytes), or None when it is missing or not a regular file."""
    try:
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            return handle.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return None


def check_files(root: Path) -> CheckResult:
    """Every file of the capstone contract exists."""
    check = check_named("files_present")
    missing = [name for name in REQUIRED_FILES if not (root / name).is_file()]
    if missing:
        return check.failed(f"Missing: {', '.join(missing)} (looked in {root.name}/).")
    return check.passed(f"All {len(REQUIRED_FILES)} required files are present.")


def check_requirements(root: Path) -> CheckResult:
    """Every requirement line is `name==version` (extras and environment markers allowed)."""
    check = check_named("requirements_pinned")
    text = _read(root / "requirements.txt")
    if text is None:
        return check.failed("requirements.txt is missing.")
    lines = requirement_lines(text)
    loose = [line for line in lines if parse_pin(line) is None]
    if not lines:
        return check.failed("requirements.txt lists no packages.")
    if loose:
        shown = ", ".join(repr(line) for line in loose[:5])
        return check.failed(f"{len(loose)} of {len(lines)} lines are not exact pins: {shown}.")
    return check.passed(f"All {len(lines)} requirements are pinned with ==.")


def check_dockerfile(root: Path) -> CheckResult:
    """Every rule of `course_utils.dockerfile_lint.RULES` passes (and Docker can parse the file)."""
    check = check_named("dockerfile_lint")
    if _read(root / "Dockerfile") is None:
        return check.failed("Dockerfile is missing.")
    try:
        findings = lint_dockerfile(root / "Dockerfile")
    except (OSError, UnicodeDecodeError, DockerfileSyntaxError) as exc:
        return check.failed(f"The Dockerfile could not be read ({type(exc).__name__}: {exc}).")
    failed = [f for f in findings if not f.ok]
    if not (root / ".dockerignore").is_file():
        # One problem, one deduction: a missing .dockerignore already costs `files_present`.
        failed = [f for f in failed if f.rule != "dockerignore"]
    if failed:
        lines = "\n".join(f"- {f.rule}: {f.message}" for f in failed)
        return check.failed(f"{len(failed)} of {len(findings)} lint rules fail:\n{lines}")
    return check.passed(f"All {len(findings)} lint rules pass.")


def _headings(text: str) -> list[str]:
    return [
        line.lstrip("#").strip().lower() for line in text.splitlines() if re.match(r"^\s{0,3}#{1,6}\s", line)
    ]


def check_deploy_doc(root: Path) -> CheckResult:
    """deploy.md has a heading and the key command or endpoint for each topic in `DEPLOY_TOPICS`."""
    check = check_named("deploy_doc")
    text = _read(root / "deploy.md")
    if text is None:
        return check.failed("deploy.md is missing.")
    lower = text.lower()
    headings = _headings(text)
    missing = []
    for topic, (heading_words, phrases) in DEPLOY_TOPICS.items():
        has_heading = any(word in heading for heading in headings for word in heading_words)
        absent = [phrase for phrase in phrases if phrase not in lower]
        if not has_heading or absent:
            need = f"a heading with {' / '.join(heading_words)!s}" if not has_heading else ""
            need += (" and " if need and absent else "") + (f"the text {', '.join(absent)}" if absent else "")
            missing.append(f"{topic} ({need})")
    if missing:
        return check.failed("deploy.md does not cover: " + "; ".join(missing) + ".")
    return check.passed("deploy.md covers build, run, health checks and monitoring.")
