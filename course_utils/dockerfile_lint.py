"""The course's Dockerfile rules: a table of small checks over the parsed Dockerfile, no daemon needed.

Each `Rule` has an id, why it matters, the fix, and a check that returns the problems it found (with line
numbers). Rules about the running container (USER, HEALTHCHECK, CMD, ENV, EXPOSE) judge the final stage
and the stages it is built `FROM`, because only those shape the image; a builder stage may run as root.
Rules judge behaviour, not spelling: `USER 1000` is as good as `USER app`, `exec uvicorn` in a shell form
is PID 1 too, a `.dockerignore` allowlist (`*` then `!src`) excludes data as well as a `data` line does.

>>> [rule.id for rule in RULES][:3]
['base-slim-pinned', 'deps-before-code', 'dockerignore']
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from course_utils.dockerfile import Dockerfile, Instruction, Stage, expand, read_dockerfile

__all__ = ["RULES", "LintFinding", "Problem", "Rule", "lint_dockerfile"]


@dataclass(frozen=True)
class LintFinding:
    """One rule's verdict on a Dockerfile: rule id, whether it passed, a one-sentence message, its lines."""

    rule: str
    ok: bool
    message: str
    lines: tuple[int, ...] = ()


@dataclass(frozen=True)
class Problem:
    """What a rule found and where (`line` 1-based, None when the problem is something missing)."""

    text: str
    line: int | None = None


@dataclass(frozen=True)
class Rule:
    """A check: `passed` is the message when `check` finds no problem, else the problems, `fix` and `why`."""

    id: str
    why: str
    fix: str
    passed: str
    check: Callable[[Dockerfile], list[Problem]]


def lint_dockerfile(path: Path | str) -> list[LintFinding]:
    """One `LintFinding` per rule in `RULES`, in order; DockerfileSyntaxError if Docker could not parse it.

    >>> findings = lint_dockerfile("capstone/Dockerfile")  # doctest: +SKIP
    >>> [f.rule for f in findings if not f.ok]  # doctest: +SKIP
    ['dockerignore', 'non-root-user', 'pythonunbuffered', 'healthcheck']
    """
    dockerfile = read_dockerfile(path)
    findings = []
    for rule in RULES:
        problems = rule.check(dockerfile)
        if not problems:
            findings.append(LintFinding(rule.id, True, rule.passed))
            continue
        found = "; ".join(p.text + (f" (line {p.line})" if p.line else "") for p in problems)
        lines = tuple(sorted({p.line for p in problems if p.line}))
        findings.append(LintFinding(rule.id, False, f"{found}: {rule.fix}, because {rule.why}.", lines))
    return findings


# --- shell commands -----------------------------------------------------------------------------------------

_SHELLS = {"sh", "bash", "dash", "ash", "zsh"}
_SEPARATORS = re.compile(r"&&|\|\||;|\||\n")


def _split(text: str) -> list[str]:
    """Words with shell quoting removed (plain whitespace split when the quotes do not balance)."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _words(command: str) -> list[str]:
    """A simple command's words, without leading `VAR=value` assignments."""
    words = _split(command)
    while words and re.fullmatch(r"\w+=.*", words[0]):
        words.pop(0)
    return words


def _program(word: str) -> str:
    return PurePosixPath(word).name


def _shell_script(argv: tuple[str, ...]) -> str | None:
    """The script of `["sh", "-c", SCRIPT]`, or None when `argv` runs a program directly."""
    if argv and _program(argv[0]) in _SHELLS and "-c" in argv[1:-1]:
        return argv[argv.index("-c") + 1]
    return None


def _commands(inst: Instruction) -> list[list[str]]:
    """Every simple command an instruction runs (split at `&&`, `||`, `;`, `|`, newlines), as words."""
    argv = inst.exec_form
    script = inst.text if argv is None else _shell_script(argv)
    if script is None:
        return [list(argv or ())]
    return [words for part in _SEPARATORS.split(script) if (words := _words(part))]


# --- base-slim-pinned ---------------------------------------------------------------------------------------


def _check_base(df: Dockerfile) -> list[Problem]:
    image = df.base_image(df.final)
    name = image.rsplit("/", 1)[-1]
    tag = name.partition(":")[2] if ":" in name else ""
    if image == "scratch":
        return []
    pinned = "@sha256:" in image or (bool(tag) and tag != "latest" and any(c.isdigit() for c in tag))
    slim = any(word in image for word in ("slim", "alpine", "distroless", "course-base"))
    if pinned and slim:
        return []
    what = "not pinned to a version" if not pinned else "not known to be slim"
    return [Problem(f"the final image starts FROM {image!r}, {what}", df.lineage(df.final)[0].line)]


# --- deps-before-code ---------------------------------------------------------------------------------------

_MANIFEST_RE = re.compile(
    r"(requirements[\w.-]*\.(txt|in)|constraints[\w.-]*\.txt|pyproject\.toml|poetry\.lock|uv\.lock|"
    r"Pipfile(\.lock)?)$"
)
_PIP_OPTIONS_WITH_VALUE = {
    "-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-t", "--target",
    "--prefix", "--root", "--platform", "--python-version", "--implementation", "--abi", "--src",
    "--cache-dir", "-w", "--wheel-dir", "-d", "--dest", "--trusted-host", "--upgrade-strategy",
    "--no-binary", "--only-binary", "-C", "--config-settings", "--progress-bar", "--report", "--log",
    "--python",
}  # fmt: skip


def _sources(inst: Instruction) -> list[str]:
    """The build-context paths a COPY/ADD reads (none for `--from=stage`, URLs or heredocs)."""
    if "from" in inst.flags:
        return []
    words = list(inst.exec_form or _split(inst.arguments))[:-1]
    return [w for w in words if not re.match(r"(https?|git)(://|@)|<<", w)]


def _copies_code(inst: Instruction) -> bool:
    """A context COPY/ADD of anything but dependency manifests: editing it invalidates later layers."""
    return any(not _MANIFEST_RE.search(source.rstrip("/")) for source in _sources(inst))


def _installs_dependencies(words: list[str]) -> bool:
    """pip/uv/poetry/pipenv installing project dependencies, not just pip itself or the project (`.`)."""
    for index, word in enumerate(words):
        program, rest = _program(word), words[index + 1 :]
        if re.fullmatch(r"pip[\d.]*", program):
            return _pip_installs_dependencies(rest)
        if program == "uv" and rest[:1] == ["pip"]:
            return _pip_installs_dependencies(rest[1:])
        if (program, rest[:1]) in (("uv", ["sync"]), ("poetry", ["install"]), ("pipenv", ["install"])):
            return True
    return False


def _pip_installs_dependencies(args: list[str]) -> bool:
    command, targets, requirements, index = None, [], False, 0
    while index < len(args):
        arg = args[index]
        if arg in ("-r", "--requirement") or re.match(r"-r.|--requirement=", arg):
            requirements = True
        elif arg in ("-e", "--editable") and index + 1 < len(args):
            targets.append(args[index + 1])
            index += 1
        elif arg.startswith("-"):
            index += arg in _PIP_OPTIONS_WITH_VALUE
        elif command is None:
            command = arg
        else:
            targets.append(arg)
        index += 1
    if command not in ("install", "wheel", "download", "sync"):
        return False
    tooling = {"pip", "setuptools", "wheel"}
    project = re.compile(r"\.(/)?(\[.*\])?")
    dependencies = [
        t
        for t in targets
        if re.split(r"[<>=!~\[;@ ]", t)[0].lower() not in tooling and not project.fullmatch(t)
    ]
    return requirements or bool(dependencies)


def _check_deps_before_code(df: Dockerfile) -> list[Problem]:
    problems, installs = [], 0
    for stage in df.stages:
        code: Instruction | None = None
        for inst in stage.instructions:
            if inst.keyword in ("COPY", "ADD") and code is None and _copies_code(inst):
                code = inst
            elif inst.keyword == "RUN" and any(_installs_dependencies(w) for w in _commands(inst)):
                installs += 1
                if code is not None:
                    text = f"`{code.keyword} {code.value}` (line {code.line}) comes before this install"
                    problems.append(Problem(text, inst.line))
    if not installs:
        problems.append(Problem("no RUN installs the dependencies (e.g. pip install -r requirements.txt)"))
    return problems


# --- .dockerignore ------------------------------------------------------------------------------------------


def _ignore_rules(df: Dockerfile) -> list[tuple[bool, re.Pattern[str]]] | None:
    """`.dockerignore` beside the Dockerfile as (negated, regex) pairs; None when there is none."""
    path = df.path.parent / ".dockerignore" if df.path else None
    if path is None or not path.is_file():
        return None
    rules = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = str(PurePosixPath("/" + line.removeprefix("!").strip())).lstrip("/") or "."
        rules.append((negated, re.compile(_glob_regex(pattern))))
    return rules


def _glob_regex(pattern: str) -> str:
    """Docker's .dockerignore glob (Go filepath.Match plus `**`) as a regular expression."""
    parts = re.split(r"(\*\*/?|\*|\?|\[[^]]*\])", pattern)
    out = []
    for part in parts:
        if part.startswith("**"):
            out.append("(.*/)?" if part.endswith("/") else ".*")
        elif part == "*":
            out.append("[^/]*")
        elif part == "?":
            out.append("[^/]")
        elif part.startswith("[") and part.endswith("]"):
            out.append("[^" + part[2:] if part.startswith("[!") else part)  # Go negates with [!...] or [^...]
        else:
            out.append(re.escape(part))
    return "".join(out)


def _ignored(rules: list[tuple[bool, re.Pattern[str]]], name: str) -> bool:
    """Whether the context's top-level `name` (or everything in it) stays out: the last match decides."""

    def excluded(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for negated, regex in rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                verdict = not negated
        return verdict

    return excluded(name) or excluded(f"{name}/any-file")


def _check_dockerignore(df: Dockerfile) -> list[Problem]:
    rules = _ignore_rules(df)
    if rules is None:
        return [
            Problem("there is no .dockerignore beside the Dockerfile, so data, .git and notebooks are sent")
        ]
    missing = [name for name in ("data", ".git", "notebooks") if not _ignored(rules, name)]
    return [Problem(f".dockerignore does not exclude {', '.join(missing)}")] if missing else []


# --- the final image: user, environment, health, command ----------------------------------------------------


def _stage_variables(df: Dockerfile, stage: Stage) -> dict[str, str | None]:
    """ARG and ENV values visible at the end of `stage` (a global ARG only when re-declared, as in Docker)."""
    values: dict[str, str | None] = {}
    for inst in df.inherited(stage, "ARG", "ENV"):
        words = _split(inst.arguments)
        if inst.keyword == "ENV" and words and "=" not in words[0]:
            values[words[0]] = inst.arguments.split(maxsplit=1)[1] if len(words) > 1 else ""
            continue
        for word in words:
            name, eq, value = word.partition("=")
            default = df.global_args.get(name) if inst.keyword == "ARG" else None
            values[name] = expand(value, values) if eq else values.get(name, default)
    return values


def _main_process(df: Dockerfile) -> Instruction | None:
    """What becomes PID 1: the final image's ENTRYPOINT if any, else its CMD."""
    stage = df.final
    candidates = df.inherited(stage, "ENTRYPOINT") or df.inherited(stage, "CMD")
    return candidates[-1] if candidates else None


def _check_user(df: Dockerfile) -> list[Problem]:
    stage = df.final
    users = df.inherited(stage, "USER")
    if not users:
        if "nonroot" in df.base_image(stage):  # e.g. gcr.io/distroless/python3:nonroot
            return []
        return [Problem("the final stage sets no USER, so the service runs as root", stage.line)]
    last = users[-1]
    user = expand(last.arguments, _stage_variables(df, stage)).split(":")[0].strip()
    if user in ("", "root", "0"):
        return [Problem(f"`USER {last.arguments}` runs the service as root", last.line)]
    if user.isdigit() or user == "nobody" or _creates_user(df, stage, user):
        return []
    text = f"`USER {last.arguments}` names a user that no RUN useradd/adduser in this stage creates"
    return [Problem(text + ", so the container cannot start", last.line)]


def _creates_user(df: Dockerfile, stage: Stage, user: str) -> bool:
    return any(
        words and _program(words[0]) in ("useradd", "adduser") and user in words[1:]
        for inst in df.inherited(stage, "RUN")
        for words in _commands(inst)
    )


def _check_unbuffered(df: Dockerfile) -> list[Problem]:
    if _stage_variables(df, df.final).get("PYTHONUNBUFFERED"):
        return []  # Python reads any non-empty value as "unbuffered"
    main = _main_process(df)
    argv = (main.exec_form or tuple(_words(main.arguments))) if main else ()
    if argv and re.fullmatch(r"python[\d.]*", _program(argv[0])) and "-u" in argv:
        return []
    return [Problem("the final stage does not set PYTHONUNBUFFERED")]


def _check_healthcheck(df: Dockerfile) -> list[Problem]:
    checks = df.inherited(df.final, "HEALTHCHECK")
    if not checks:
        return [Problem("the final stage has no HEALTHCHECK")]
    last = checks[-1]
    word, command = [*last.arguments.split(maxsplit=1), ""][:2]
    if word.upper() == "NONE":
        return [Problem("`HEALTHCHECK NONE` turns the check off", last.line)]
    if word.upper() != "CMD" or not command.strip():
        return [Problem(f"`HEALTHCHECK {last.value}` has no CMD", last.line)]
    if _always_succeeds(Instruction("CMD", command.strip(), last.line)):
        return [
            Problem(
                f"`HEALTHCHECK CMD {command.strip()}` cannot fail, so it reports a stuck service as healthy",
                last.line,
            )
        ]
    return []


def _always_succeeds(cmd: Instruction) -> bool:
    """True for checks whose exit status is 0 whatever happens (`true`, `exit 0`, `... || true`, echo)."""
    argv = cmd.exec_form
    script = cmd.arguments if argv is None else _shell_script(argv)
    if script is None:
        return _trivial(list(argv or ()))
    steps = [s for s in re.split(r";|\n", script) if s.strip()]
    return not steps or _trivial(_words(steps[-1].split("||")[-1]))


def _trivial(words: list[str]) -> bool:
    program = _program(words[0]) if words else ""
    return not words or program in ("true", ":", "echo", "printf") or words in (["exit"], ["exit", "0"])


def _check_expose(df: Dockerfile) -> list[Problem]:
    if any(inst.arguments for inst in df.inherited(df.final, "EXPOSE")):
        return []
    return [Problem("the final stage has no EXPOSE")]


def _check_exec_form(df: Dockerfile) -> list[Problem]:
    main = _main_process(df)
    if main is None:
        return [Problem("the final stage has no CMD or ENTRYPOINT")]
    argv = main.exec_form
    script = main.arguments if argv is None else _shell_script(argv)
    if script is None or script.lstrip().startswith("exec "):
        return []  # the server itself is PID 1 (exec replaces the shell)
    form = "shell form" if argv is None else "`sh -c` without exec"
    return [Problem(f"`{main.keyword} {main.arguments}` is in {form}, so /bin/sh is PID 1", main.line)]


# --- secrets and data ---------------------------------------------------------------------------------------

_SECRET_RE = re.compile(
    r"(^|/)(\.env(\..*)?|.*\.pem|.*\.key|id_rsa.*|id_ed25519.*|\.git|data|.*\.csv|.*\.parquet|.*\.jsonl|"
    r"notebooks|.*credentials.*|.*secret.*)/?$",
    re.IGNORECASE,
)


def _check_secrets(df: Dockerfile) -> list[Problem]:
    """Every stage counts: a secret copied into a builder stage still sits in its layers and the cache."""
    problems = []
    broad: Instruction | None = None
    for inst in (i for stage in df.stages for i in stage.all("COPY", "ADD")):
        for source in _sources(inst):
            if _SECRET_RE.search(source.rstrip("/")):
                problems.append(Problem(f"`{inst.keyword} {source}` copies data or a secret", inst.line))
            elif source.rstrip("/") in (".", "", "*") and broad is None:
                broad = inst
    rules = _ignore_rules(df) or []
    if broad is not None and not problems:
        for name in (".env", "data"):
            if not _ignored(rules, name):
                problems.append(
                    Problem(
                        f"`{broad.keyword} {broad.arguments}` copies {name} (add {name} to .dockerignore)",
                        broad.line,
                    )
                )
    return problems


RULES: tuple[Rule, ...] = (
    Rule(
        "base-slim-pinned",
        "'latest' or full images make builds large and unrepeatable",
        "use a slim, pinned tag such as python:3.11-slim (an ARG default counts)",
        "The base image is slim and pinned, so builds are small and repeatable.",
        _check_base,
    ),
    Rule(
        "deps-before-code",
        "a code edit would otherwise reinstall every dependency",
        "copy requirements.txt and run pip install before copying the code",
        "Requirements are copied and installed before the code, so code edits reuse the cached pip layer.",
        _check_deps_before_code,
    ),
    Rule(
        "dockerignore",
        "data, history and notebooks must never reach the image or slow the build",
        "add a .dockerignore beside the Dockerfile that excludes data, .git and notebooks",
        ".dockerignore excludes data, .git and notebooks, so the build context stays small and clean.",
        _check_dockerignore,
    ),
    Rule(
        "non-root-user",
        "a compromised process running as root owns the container",
        "create a user and switch to it (`RUN useradd --create-home app` then `USER app`, or `USER 1000`)",
        "The service runs as a non-root user, limiting what an exploit can do.",
        _check_user,
    ),
    Rule(
        "pythonunbuffered",
        "Python otherwise buffers stdout and logs arrive late or are lost",
        "set `ENV PYTHONUNBUFFERED=1` in the final stage",
        "PYTHONUNBUFFERED is set, so logs reach `docker logs` immediately.",
        _check_unbuffered,
    ),
    Rule(
        "healthcheck",
        "Docker must be able to tell a running service from a stuck one",
        "add a HEALTHCHECK whose CMD calls /health and fails when it does not answer 200",
        "A HEALTHCHECK lets Docker and orchestrators see when the service is ready.",
        _check_healthcheck,
    ),
    Rule(
        "expose",
        "readers and tools learn the service's port from it",
        "add `EXPOSE 8000` to the final stage",
        "EXPOSE documents the port the service listens on.",
        _check_expose,
    ),
    Rule(
        "exec-form-cmd",
        "/bin/sh does not forward SIGTERM, so the server cannot stop gracefully",
        'write CMD in exec form (`CMD ["uvicorn", "app:app", ...]`) or start the shell form with exec',
        "CMD uses the exec form, so the server is PID 1 and receives SIGTERM for a graceful stop.",
        _check_exec_form,
    ),
    Rule(
        "no-secrets-or-data",
        "anyone who pulls the image can read data and secrets",
        "do not copy them into the image (exclude them in .dockerignore, use a secret mount)",
        "No training data, credentials or keys are copied into the image.",
        _check_secrets,
    ),
)
