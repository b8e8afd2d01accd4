"""The Dockerfile parser (read as Docker reads it) and every lint rule, with passing and failing files."""

from __future__ import annotations

from pathlib import Path

import pytest

from course_utils import dockerfile, dockerfile_lint
from course_utils.dockerfile import parse_dockerfile
from course_utils.dockerfile_lint import RULES, LintFinding, lint_dockerfile
from course_utils.errors import DockerfileSyntaxError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# --- parser -------------------------------------------------------------------------------------------------


def test_continuations_join_and_keep_the_first_line_number() -> None:
    df = parse_dockerfile(
        "FROM python:3.11-slim\n"
        "RUN apt-get update \\\n"
        "    # a comment inside the continuation is dropped\n"
        "\n"
        "    && apt-get install -y curl \\  \n"
        "    && rm -rf /var/lib/apt/lists/*\n"
        "EXPOSE 8000\n"
    )
    run, expose = df.final.instructions
    assert (run.keyword, run.line, expose.line) == ("RUN", 2, 7)
    assert (
        " ".join(run.value.split())
        == "apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*"
    )
    assert "comment" not in run.value


def test_escape_directive_changes_the_continuation_character() -> None:
    df = parse_dockerfile(
        "# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\n"
        "COPY . C:\\app\\\nRUN dir `\n  C:\\app\n"
    )
    assert df.escape == "`"
    copy, run = df.final.instructions
    assert copy.arguments == ". C:\\app\\" and copy.line == 3  # a backslash no longer continues the line
    assert run.value.split() == ["dir", "C:\\app"] and run.line == 4


def test_a_directive_after_a_comment_is_only_a_comment() -> None:
    df = parse_dockerfile("# hello\n# escape=`\nFROM alpine:3.20\nRUN echo a \\\n  b\n")
    assert df.escape == "\\" and df.final.instructions[0].value.split() == ["echo", "a", "b"]


def test_exec_form_and_shell_form() -> None:
    df = parse_dockerfile(
        'FROM alpine:3.20\nCMD ["uvicorn", "app:app"]\nENTRYPOINT uvicorn app:app\n'
        'CMD [not json]\nCMD ["a", 1]\n'
    )
    exec_cmd, shell_entry, broken, mixed = df.final.instructions
    assert exec_cmd.exec_form == ("uvicorn", "app:app")
    assert shell_entry.exec_form is None and shell_entry.arguments == "uvicorn app:app"
    assert broken.exec_form is None and mixed.exec_form is None  # Docker runs invalid JSON as shell form


def test_flags_are_split_from_the_arguments() -> None:
    df = parse_dockerfile(
        "FROM --platform=linux/amd64 python:3.11-slim\n"
        "COPY --from=build --chown=app:app /wheels /wheels\n"
        "HEALTHCHECK --interval=10s --timeout=3s CMD true\n"
    )
    copy, health = df.final.instructions
    assert df.final.image == "python:3.11-slim"
    assert copy.flags == {"from": "build", "chown": "app:app"} and copy.arguments == "/wheels /wheels"
    assert health.flags == {"interval": "10s", "timeout": "3s"} and health.arguments == "CMD true"


def test_multi_stage_names_parents_and_lineage() -> None:
    df = parse_dockerfile(
        "ARG PY=3.11\n"
        "ARG BASE=python:${PY}-slim\n"
        "FROM python:${PY} AS Build\n"
        "RUN pip wheel -w /wheels fastapi==0.115.0\n"
        "FROM ${BASE} AS runtime\n"
        "USER 1000\n"
        "from runtime\n"
        "copy --from=build /wheels /wheels\n"
    )
    build, runtime, final = df.stages
    assert (build.name, build.image, build.parent) == ("build", "python:3.11", None)
    assert (runtime.image, runtime.line) == ("python:3.11-slim", 5)
    assert final.parent == 1 and df.final is final and final.name is None
    assert [s.index for s in df.lineage(final)] == [1, 2] and df.base_image(final) == "python:3.11-slim"
    assert [i.keyword for i in df.inherited(final, "USER", "COPY")] == ["USER", "COPY"]
    assert dict(df.global_args) == {"PY": "3.11", "BASE": "python:3.11-slim"}


def test_heredoc_bodies_are_not_instructions() -> None:
    df = parse_dockerfile(
        "FROM python:3.11-slim\nRUN <<EOF\npip install -r requirements.txt\necho done\nEOF\nUSER app\n"
    )
    run, user = df.final.instructions
    assert run.heredocs == ("pip install -r requirements.txt\necho done",) and "pip install" in run.text
    assert (user.keyword, user.line) == ("USER", 6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM alpine:3.20\nRUNN echo\n", r"Dockerfile:2: unknown instruction 'RUNN'"),
        ("ENV A=1\nFROM alpine:3.20\n", r"Dockerfile:1: ENV before the first FROM"),
        ("# just a comment\n", r"no FROM instruction"),
        ("# escape=`\n# escape=\\\nFROM alpine:3.20\n", r"Dockerfile:2: .*appears twice"),
        ("FROM a b c d\n", r"Dockerfile:1: `FROM a b c d` is invalid"),
    ],
)
def test_what_docker_refuses_is_a_value_error_with_the_line(text: str, message: str) -> None:
    with pytest.raises(DockerfileSyntaxError, match=message):
        parse_dockerfile(text)


def test_expand_like_docker() -> None:
    variables = {"SET": "x", "EMPTY": ""}
    assert dockerfile.expand("${SET:-d}/${EMPTY:-d}/${EMPTY-d}/${UNSET-d}", variables) == "x/d//d"
    assert dockerfile.expand("${SET:+alt}/${EMPTY:+alt}/${EMPTY+alt}/$SET", variables) == "alt//alt/x"


# --- rules --------------------------------------------------------------------------------------------------

GOOD = """\
# syntax=docker/dockerfile:1
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY src/ ./src/
RUN useradd --create-home app
USER app
EXPOSE 8000
HEALTHCHECK --interval=10s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["uvicorn", "app:app", "--app-dir", "src", "--host", "0.0.0.0", "--port", "8000"]
"""

BAD = """\
FROM python:latest
COPY . .
COPY .env /app/.env
COPY data/train.csv /app/data/
RUN pip install -r requirements.txt
CMD uvicorn app:app --app-dir src
"""

GOOD_IGNORE = ".git\ndata/\nnotebooks/\n.env\n__pycache__/\n"

MULTI_STAGE = """\
FROM python:3.11 AS build
COPY requirements.txt .
RUN pip wheel --wheel-dir /wheels -r requirements.txt
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
COPY src/ /app/src/
USER 10001:10001
EXPOSE 8000
HEALTHCHECK CMD ["python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health')"]
CMD ["uvicorn", "app:app", "--app-dir", "/app/src"]
"""

ALL_RULES = [
    "base-slim-pinned",
    "deps-before-code",
    "dockerignore",
    "non-root-user",
    "pythonunbuffered",
    "healthcheck",
    "expose",
    "exec-form-cmd",
    "no-secrets-or-data",
]


def lint(tmp_path: Path, text: str, dockerignore: str | None = GOOD_IGNORE) -> dict[str, LintFinding]:
    (tmp_path / "Dockerfile").write_text(text)
    if dockerignore is not None:
        (tmp_path / ".dockerignore").write_text(dockerignore)
    return {f.rule: f for f in lint_dockerfile(tmp_path / "Dockerfile")}


def test_rule_table_is_complete_and_each_entry_reads_well() -> None:
    assert [rule.id for rule in RULES] == ALL_RULES
    for rule in RULES:
        assert rule.passed.endswith(".") and ". " not in rule.passed, rule.id
        assert not rule.why.endswith(".") and ". " not in rule.why, rule.id


def test_good_and_multi_stage_files_pass_every_rule(tmp_path: Path) -> None:
    for text in (GOOD, MULTI_STAGE):
        findings = lint(tmp_path, text)
        assert list(findings) == ALL_RULES
        assert [f.message for f in findings.values() if not f.ok] == []


def test_bad_file_fails_every_rule_with_lines_and_a_fix(tmp_path: Path) -> None:
    findings = lint(tmp_path, BAD, dockerignore=None)
    assert [rule for rule, f in findings.items() if not f.ok] == ALL_RULES
    assert "python:latest" in findings["base-slim-pinned"].message and findings["base-slim-pinned"].lines == (
        1,
    )
    assert (
        ".env" in findings["no-secrets-or-data"].message
        and "data/train.csv" in findings["no-secrets-or-data"].message
    )
    assert findings["no-secrets-or-data"].lines == (3, 4)
    assert "exec form" in findings["exec-form-cmd"].message and findings["exec-form-cmd"].lines == (6,)
    assert "`COPY . .` (line 2) comes before this install (line 5)" in findings["deps-before-code"].message
    for finding in findings.values():
        assert ": " in finding.message and ", because " in finding.message, finding


def test_the_reference_capstone_passes_and_the_starter_keeps_its_verdict() -> None:
    reference = lint_dockerfile(PROJECT_ROOT / "solutions" / "capstone" / "Dockerfile")
    assert [f.message for f in reference if not f.ok] == []
    starter = lint_dockerfile(PROJECT_ROOT / "capstone" / "Dockerfile")
    assert [f.rule for f in starter if not f.ok] == [
        "dockerignore",
        "non-root-user",
        "pythonunbuffered",
        "healthcheck",
    ]


def verdict(tmp_path: Path, rule: str, text: str, dockerignore: str | None = GOOD_IGNORE) -> bool:
    return lint(tmp_path, text, dockerignore)[rule].ok


@pytest.mark.parametrize(
    ("from_lines", "ok"),
    [
        ("FROM python:3.11-slim", True),
        ("FROM python:3.11.9-slim-bookworm AS runtime", True),
        ("ARG BASE_IMAGE=python:3.11-slim\nFROM $BASE_IMAGE", True),
        ("ARG BASE_IMAGE\nFROM ${BASE_IMAGE:-python:3.11-slim}", True),
        ("FROM python:3.11 AS build\nRUN pip wheel x\nFROM python:3.11-slim", True),
        ("FROM python:3.11-slim AS base\nFROM base", True),
        ("FROM python@sha256:" + "a" * 64, False),  # pinned but not known to be slim
        ("FROM python:3.11", False),
        ("FROM python", False),
        ("ARG BASE_IMAGE=python:latest\nFROM ${BASE_IMAGE}", False),
        ("FROM python:3.11-slim AS base\nFROM python:3.11", False),  # the final stage is what ships
    ],
)
def test_base_slim_pinned(tmp_path: Path, from_lines: str, ok: bool) -> None:
    text = GOOD.replace("ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}", from_lines)
    assert verdict(tmp_path, "base-slim-pinned", text) is ok


@pytest.mark.parametrize(
    ("edit", "ok"),
    [
        (("WORKDIR /app\n", "WORKDIR /app\nRUN pip install --upgrade pip setuptools\n"), True),
        (("COPY requirements.txt .\n", "COPY requirements.txt constraints.txt ./\n"), True),
        (("COPY src/ ./src/\n", "COPY . .\nRUN pip install --no-deps .\n"), True),  # the project after deps
        (
            (
                "COPY requirements.txt .\nRUN pip",
                "RUN --mount=type=bind,source=requirements.txt,target=r.txt pip",
            ),
            True,
        ),
        (("RUN pip install --no-cache-dir -r", "RUN python3 -m pip install --no-cache-dir -r"), True),
        (("COPY requirements.txt .\n", "COPY src/ ./src/\nCOPY requirements.txt .\n"), False),
        (("COPY requirements.txt .\n", "COPY . .\n"), False),
        (("RUN pip install --no-cache-dir -r requirements.txt\n", "RUN pip install --upgrade pip\n"), False),
        (
            (
                "COPY requirements.txt .\nRUN pip install --no-cache-dir -r requirements.txt\n"
                "COPY src/ ./src/\n",
                "COPY src/ ./src/\nRUN pip install fastapi==0.115.0 uvicorn==0.32.0\n",
            ),
            False,
        ),
    ],
)
def test_deps_before_code(tmp_path: Path, edit: tuple[str, str], ok: bool) -> None:
    assert edit[0] in GOOD
    assert verdict(tmp_path, "deps-before-code", GOOD.replace(*edit)) is ok


@pytest.mark.parametrize(
    ("ignore", "ok"),
    [
        (GOOD_IGNORE, True),
        ("**/data\n.git/\nnotebooks\n", True),
        ("/data/*\n.git\nnotebooks/**\n", True),
        ("*\n!src\n!requirements.txt\n", True),  # an allowlist excludes everything else
        (".git\n", False),
        ("*\n!src\n!data\n", False),  # the allowlist lets data back in
        (None, False),
    ],
)
def test_dockerignore(tmp_path: Path, ignore: str | None, ok: bool) -> None:
    assert verdict(tmp_path, "dockerignore", GOOD, ignore) is ok


@pytest.mark.parametrize(
    ("user_lines", "ok"),
    [
        ("RUN useradd --create-home app\nUSER app", True),
        ("RUN useradd app\nUSER app:app", True),
        ("RUN adduser -D -u 1000 svc\nUSER svc", True),
        ("USER 1000", True),
        ("USER 1000:1000", True),
        ("USER nobody", True),
        ("ARG UID=10001\nUSER ${UID}", True),
        ("USER root", False),
        ("USER 0:0", False),
        ("", False),
        ("USER appuser", False),  # never created: the container cannot start
        ("RUN useradd app\nUSER app\nUSER root", False),
    ],
)
def test_non_root_user(tmp_path: Path, user_lines: str, ok: bool) -> None:
    text = GOOD.replace("RUN useradd --create-home app\nUSER app", user_lines)
    assert verdict(tmp_path, "non-root-user", text) is ok


def test_non_root_user_judges_the_final_stage(tmp_path: Path) -> None:
    builder_root = "FROM python:3.11 AS build\nUSER root\nRUN pip wheel -w /w x==1\n" + MULTI_STAGE
    assert verdict(tmp_path, "non-root-user", builder_root)
    only_builder = MULTI_STAGE.replace("USER 10001:10001\n", "").replace(
        "AS build\n", "AS build\nUSER 1000\n"
    )
    assert not verdict(tmp_path, "non-root-user", only_builder)
    inherited = MULTI_STAGE.replace(
        "FROM python:3.11-slim\n", "FROM python:3.11-slim AS base\nUSER 1000\nFROM base\n"
    )
    assert verdict(tmp_path, "non-root-user", inherited.replace("USER 10001:10001\n", ""))


@pytest.mark.parametrize(
    ("env", "ok"),
    [
        ("ENV PYTHONUNBUFFERED=1", True),
        ("ENV PYTHONUNBUFFERED 1", True),
        ('ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED="1"', True),
        ("ENV PIP_NO_CACHE_DIR=1", False),
        ('ENV PYTHONUNBUFFERED=""', False),
    ],
)
def test_pythonunbuffered(tmp_path: Path, env: str, ok: bool) -> None:
    text = GOOD.replace("ENV PYTHONUNBUFFERED=1 \\\n    PIP_NO_CACHE_DIR=1", env)
    assert verdict(tmp_path, "pythonunbuffered", text) is ok


def test_pythonunbuffered_by_python_u_and_only_in_the_final_stage(tmp_path: Path) -> None:
    no_env = MULTI_STAGE.replace("ENV PYTHONUNBUFFERED=1\n", "")
    assert verdict(
        tmp_path,
        "pythonunbuffered",
        no_env.replace('CMD ["uvicorn"', 'CMD ["python3", "-u", "-m", "uvicorn"'),
    )
    assert not verdict(
        tmp_path, "pythonunbuffered", no_env.replace("AS build\n", "AS build\nENV PYTHONUNBUFFERED=1\n")
    )


HEALTH = "HEALTHCHECK --interval=10s CMD python -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')\""


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        (HEALTH, True),
        ("HEALTHCHECK CMD curl -fsS http://127.0.0.1:8000/health || exit 1", True),
        ('HEALTHCHECK CMD ["python3", "/app/healthcheck.py"]', True),
        ("HEALTHCHECK NONE", False),
        ("", False),
        ("HEALTHCHECK CMD true", False),
        ("HEALTHCHECK --interval=5s CMD exit 0", False),
        ('HEALTHCHECK CMD ["true"]', False),
        ("HEALTHCHECK CMD curl -f http://127.0.0.1:8000/health || true", False),
        ('HEALTHCHECK CMD ["sh", "-c", "curl -f http://127.0.0.1:8000/health; exit 0"]', False),
        ("HEALTHCHECK CMD echo ok", False),
        (HEALTH + "\nHEALTHCHECK NONE", False),  # the last one wins
    ],
)
def test_healthcheck(tmp_path: Path, line: str, ok: bool) -> None:
    assert verdict(tmp_path, "healthcheck", GOOD.replace(HEALTH, line)) is ok


def test_expose(tmp_path: Path) -> None:
    assert verdict(tmp_path, "expose", GOOD)
    assert not verdict(tmp_path, "expose", GOOD.replace("EXPOSE 8000\n", ""))
    exposed_in_builder_only = MULTI_STAGE.replace("EXPOSE 8000\n", "").replace(
        "AS build\n", "AS build\nEXPOSE 8000\n"
    )
    assert not verdict(tmp_path, "expose", exposed_in_builder_only)


CMD = 'CMD ["uvicorn", "app:app", "--app-dir", "src", "--host", "0.0.0.0", "--port", "8000"]'


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        (CMD, True),
        ("CMD exec uvicorn app:app --app-dir src", True),
        ('CMD ["sh", "-c", "exec uvicorn app:app --port \\"$PORT\\""]', True),
        ('ENTRYPOINT ["uvicorn"]\nCMD ["app:app", "--app-dir", "src"]', True),
        ("CMD uvicorn app:app --app-dir src", False),
        ('CMD ["sh", "-c", "uvicorn app:app --port $PORT"]', False),
        ('ENTRYPOINT uvicorn app:app\nCMD ["--app-dir", "src"]', False),
        ("", False),
    ],
)
def test_exec_form_cmd(tmp_path: Path, line: str, ok: bool) -> None:
    assert verdict(tmp_path, "exec-form-cmd", GOOD.replace(CMD, line)) is ok


@pytest.mark.parametrize(
    ("copy", "ignore", "ok"),
    [
        ("COPY src/ ./src/", GOOD_IGNORE, True),
        ("COPY --chown=app:app model/ /app/model/\nCOPY src/ ./src/", GOOD_IGNORE, True),
        ("COPY . .", GOOD_IGNORE, True),  # .dockerignore keeps .env and data out
        ("COPY . .", ".git\nnotebooks\n", False),
        ("COPY src/ ./src/\nCOPY id_rsa /root/.ssh/", GOOD_IGNORE, False),
        ("COPY src/ ./src/\nCOPY certs/server.pem /app/", GOOD_IGNORE, False),
        ("COPY src/ ./src/\nCOPY secrets.json /app/", GOOD_IGNORE, False),
        ("COPY src/ ./src/\nADD reviews.csv /app/", GOOD_IGNORE, False),
        ('COPY src/ ./src/\nCOPY [".env.prod", "/app/"]', GOOD_IGNORE, False),
    ],
)
def test_no_secrets_or_data(tmp_path: Path, copy: str, ignore: str, ok: bool) -> None:
    assert verdict(tmp_path, "no-secrets-or-data", GOOD.replace("COPY src/ ./src/", copy), ignore) is ok


def test_a_secret_in_a_builder_stage_counts(tmp_path: Path) -> None:
    text = MULTI_STAGE.replace("COPY requirements.txt .\n", "COPY requirements.txt .env ./\n")
    finding = lint(tmp_path, text)["no-secrets-or-data"]
    assert not finding.ok and finding.lines == (2,)


def test_docstring_examples_run() -> None:
    import doctest

    for module in (dockerfile, dockerfile_lint):
        assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0
