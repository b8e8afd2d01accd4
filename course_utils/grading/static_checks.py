"""Checks that read the submission's files without running anything: files, pins, Dockerfile, deploy.md.

Why separate from the HTTP checks: these never execute student code, so they always run, even when the
app does not start, and a student sees every file problem at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from course_utils.dockerfile_lint import lint_dockerfile
from course_utils.errors import DockerfileSyntaxError
from course_utils.grading.rubric import CheckResult, check_named
from course_utils.pins import parse_pin, requirement_lines

__all__ = [
    "DEPLOY_TOPICS",
    "REQUIRED_FILES",
    "DeployTopic",
    "check_deploy_doc",
    "check_dockerfile",
    "check_files",
    "check_requirements",
]

REQUIRED_FILES = ("src/app.py", "Dockerfile", ".dockerignore", "requirements.txt", "deploy.md")


@dataclass(frozen=True, slots=True)
class DeployTopic:
    """A topic deploy.md must cover: a section whose heading is about it, whose text shows how.

    `heading` is a regex a heading must match (word stems, so "Building", "Image" and "Packaging" count);
    each regex of `evidence` must match the section's prose or code (e.g. any command that builds an
    image: docker, podman or buildah, compose or `make docker`). Meaning, not one exact phrase.
    """

    name: str
    heading: str
    evidence: tuple[tuple[str, str], ...]


DEPLOY_TOPICS: tuple[DeployTopic, ...] = (
    DeployTopic(
        "build",
        r"build|image|packag|container",
        (
            (
                "a command that builds the image",
                r"\b(docker|podman|buildah|nerdctl)\b.*\bbuild\b|\bmake\s+docker\b",
            ),
        ),
    ),
    DeployTopic(
        "run",
        r"\brun|start|launch|deploy|serv",
        (
            (
                "a command that starts the container",
                r"\b(docker|podman|nerdctl)\s+(container\s+)?run\b|\bcompose\b.*\bup\b|\bkubectl\s+(apply|run)\b",
            ),
        ),
    ),
    DeployTopic(
        "health checks",
        r"health|readiness|liveness|probe",
        (
            ("liveness (/health)", r"/health\b|\blive(ness)?\b|\balive\b"),
            ("readiness (/ready)", r"/ready\b|\breadiness\b"),
        ),
    ),
    DeployTopic(
        "monitoring",
        r"monitor|metric|prometheus|observab|telemetry|grafana",
        (("where the metrics are (/metrics)", r"/metrics\b|\bscrap(e|es|ing)\b|predict_requests_total"),),
    ),
)


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


def _sections(text: str) -> list[tuple[str, str]]:
    """(heading, text) of every section, as a Markdown renderer sees them.

    A section's text runs to the next heading of the same or a higher level (subsections included), and
    holds prose, lists, tables and code, but not HTML comments (a commented-out hint is not documentation)
    nor paragraphs that start with TODO (the starter's placeholders). A lone `#` over other headings is
    the document's title: its section is only the lines before the next heading.
    """
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    headings: list[tuple[int, int, str]] = []  # (token index, level, text)
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            headings.append((index, int(token.tag[1]), tokens[index + 1].content))
    lone_title = len([h for h in headings if h[1] == 1]) == 1 and len(headings) > 1
    sections = []
    for position, (start, level, heading) in enumerate(headings):
        # a lone `#` over other headings is the document's title: only its own lines are about it
        stop = 6 if lone_title and level == 1 else level
        end = next((h[0] for h in headings[position + 1 :] if h[1] <= stop), len(tokens))
        parts = [
            token.content
            for token in tokens[start + 3 : end]
            if token.type in ("inline", "fence", "code_block")
            and not (token.type == "inline" and token.content.lstrip().upper().startswith("TODO"))
        ]
        sections.append((heading, "\n".join(parts)))
    return sections


def check_deploy_doc(root: Path) -> CheckResult:
    """deploy.md has, for each topic of `DEPLOY_TOPICS`, a section about it that shows how (by meaning)."""
    check = check_named("deploy_doc")
    text = _read(root / "deploy.md")
    if text is None:
        return check.failed("deploy.md is missing.")
    sections = _sections(text)
    missing = []
    for topic in DEPLOY_TOPICS:
        about = [(h, body) for h, body in sections if re.search(topic.heading, h, re.IGNORECASE)]
        if not about:
            missing.append(f"{topic.name}: no section whose heading is about it")
            continue
        lacking = min(
            (
                [what for what, pattern in topic.evidence if not re.search(pattern, body, re.IGNORECASE)]
                for _, body in about
            ),
            key=len,
        )
        if lacking:
            headings = ", ".join(repr(h) for h, _ in about[:3])
            missing.append(f"{topic.name}: the section {headings} does not show {', '.join(lacking)}")
    if missing:
        return check.failed("deploy.md does not cover: " + "; ".join(missing) + ".")
    return check.passed("deploy.md covers build, run, health checks and monitoring, each in its section.")
