"""Read a Dockerfile the way Docker (BuildKit) reads it, for checks that need no daemon.

What the parser follows, because students write all of it: parser directives at the top (`# escape=`` `
changes the line-continuation character, `# syntax=` is accepted), comments (also between continued lines),
line continuations (empty continued lines are skipped, as Docker does), heredocs (`RUN <<EOF`), case-
insensitive instruction names, leading `--flag=value` options, JSON (exec) and shell forms, `ARG` before the
first `FROM`, and multi-stage builds (`FROM image AS name`, `FROM name`).

Why not the `dockerfile-parse` package: version 2.0.1 ends an instruction at an empty continued line and
turns the next line into a bogus instruction, and it does not tell exec from shell form.

>>> df = parse_dockerfile('ARG BASE=python:3.11-slim\\nFROM ${BASE} AS run\\nCMD ["python3", "-V"]\\n')
>>> df.final.image, df.final.name, df.final.instructions[0].exec_form
('python:3.11-slim', 'run', ('python3', '-V'))
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from course_utils.errors import DockerfileSyntaxError

__all__ = [
    "INSTRUCTIONS",
    "Dockerfile",
    "Instruction",
    "Stage",
    "expand",
    "parse_dockerfile",
    "read_dockerfile",
]

#: Every instruction Docker knows; anything else is a syntax error, as in `docker build`.
INSTRUCTIONS = frozenset(
    {
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
        "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    }
)  # fmt: skip
_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = ("syntax", "escape", "check")
_FLAG_RE = re.compile(r"--([A-Za-z][\w-]*)(?:=(\S*))?(?:\s+|$)")
_HEREDOC_RE = re.compile(r"<<(-?)([\"']?)([A-Za-z_][\w.-]*)\2")
_VAR_RE = re.compile(r"\$(?:\{(\w+)(?:(:?[-+])([^}]*))?\}|(\w+))")


@dataclass(frozen=True)
class Instruction:
    """One instruction: `keyword` upper-case, `value` everything after it, `line` where it starts (1-based).

    Continued lines are joined (the continuation character removed, comments between them dropped), and
    heredoc bodies are kept apart in `heredocs`.
    """

    keyword: str
    value: str
    line: int
    heredocs: tuple[str, ...] = ()

    @property
    def flags(self) -> dict[str, str]:
        """Leading options, e.g. `{"from": "build"}` for `COPY --from=build ...` ('' for a bare `--flag`)."""
        return dict(self._split()[0])

    @property
    def arguments(self) -> str:
        """The value after its leading `--flag` options."""
        return self._split()[1]

    @property
    def exec_form(self) -> tuple[str, ...] | None:
        """The JSON array of an exec-form instruction (`CMD ["a", "b"]`), or None for the shell form.

        Docker reads the arguments as JSON when they parse as an array of strings, otherwise as shell form.
        """
        return _json_array(self.arguments)

    @property
    def text(self) -> str:
        """The arguments and every heredoc body: what a shell would run for RUN."""
        return "\n".join((self.arguments, *self.heredocs))

    def _split(self) -> tuple[list[tuple[str, str]], str]:
        flags, rest = [], self.value.lstrip()
        while rest.startswith("--") and (match := _FLAG_RE.match(rest)):
            flags.append((match.group(1).lower(), match.group(2) or ""))
            rest = rest[match.end() :]
        return flags, rest.strip()


@dataclass(frozen=True)
class Stage:
    """One build stage: its `FROM` image (ARGs expanded), optional `AS` name, and its instructions.

    `parent` is the index of the earlier stage this one starts from (`FROM build`), or None for an image.
    """

    index: int
    image: str
    name: str | None
    line: int
    parent: int | None
    instructions: tuple[Instruction, ...]

    def all(self, *keywords: str) -> list[Instruction]:
        """This stage's instructions with one of `keywords`, in order."""
        return [i for i in self.instructions if i.keyword in keywords]


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: every instruction, the stages, and the ARGs declared before the first FROM."""

    instructions: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    global_args: Mapping[str, str | None] = field(default_factory=dict)
    escape: str = "\\"
    path: Path | None = None

    @property
    def final(self) -> Stage:
        """The last stage: what `docker build` tags as the image."""
        return self.stages[-1]

    def lineage(self, stage: Stage) -> list[Stage]:
        """`stage` and the stages it starts from (`FROM name`), root first: what its image inherits."""
        chain = [stage]
        while chain[0].parent is not None:
            chain.insert(0, self.stages[chain[0].parent])
        return chain

    def base_image(self, stage: Stage) -> str:
        """The external image at the root of `stage`'s lineage (through `FROM name` aliases)."""
        return self.lineage(stage)[0].image

    def inherited(self, stage: Stage, *keywords: str) -> list[Instruction]:
        """Instructions with `keywords` that shape `stage`'s image: its own and its parent stages'."""
        return [i for s in self.lineage(stage) for i in s.all(*keywords)]


def expand(value: str, variables: Mapping[str, str | None]) -> str:
    """Substitute `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}` (and `-`/`+`) as Docker does.

    >>> expand("${BASE:-python:3.11-slim}", {}), expand("$A-x", {"A": "1"})
    ('python:3.11-slim', '1-x')
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        current, op, word = variables.get(name), match.group(2), match.group(3) or ""
        if op in (":-", "-"):
            unset = current is None or (op == ":-" and current == "")
            return word if unset else str(current)
        if op in (":+", "+"):
            set_ = current is not None and (op == "+" or current != "")
            return word if set_ else ""
        return current or ""

    return _VAR_RE.sub(replace, value)


def read_dockerfile(path: Path | str) -> Dockerfile:
    """Parse the Dockerfile at `path`; DockerfileSyntaxError names the line when Docker would refuse it."""
    path = Path(path)
    return parse_dockerfile(path.read_text(encoding="utf-8"), path=path)


def parse_dockerfile(text: str, *, path: Path | None = None) -> Dockerfile:
    """Parse Dockerfile `text`; DockerfileSyntaxError (line, what, fix) where `docker build` would fail."""
    lines = text.removeprefix("\ufeff").splitlines()
    escape, start = _directives(lines, where=str(path or "Dockerfile"))
    instructions = _instructions(lines, start, escape, where=str(path or "Dockerfile"))
    global_args, stages = _stages(instructions, where=str(path or "Dockerfile"))
    return Dockerfile(tuple(instructions), tuple(stages), global_args, escape, path)


def _directives(lines: list[str], *, where: str) -> tuple[str, int]:
    """(escape character, index of the first line after the parser directives)."""
    escape, seen = "\\", set()
    for index, line in enumerate(lines):
        match = _DIRECTIVE_RE.match(line.strip())
        if match is None or match.group(1).lower() not in _KNOWN_DIRECTIVES:
            return escape, index
        name, value = match.group(1).lower(), match.group(2)
        if name in seen:
            raise DockerfileSyntaxError(
                f"{where}:{index + 1}: the parser directive {name!r} appears twice; keep one."
            )
        seen.add(name)
        if name == "escape":
            if value not in ("\\", "`"):
                raise DockerfileSyntaxError(
                    f"{where}:{index + 1}: `# escape={value}` is invalid; use \\ or `."
                )
            escape = value
    return escape, len(lines)


def _instructions(lines: list[str], start: int, escape: str, *, where: str) -> list[Instruction]:
    out: list[Instruction] = []
    index = start
    while index < len(lines):
        first = lines[index].strip()
        index += 1
        if not first or first.startswith("#"):
            continue
        line_no, joined = index, first
        while joined.rstrip(" \t").endswith(escape) and index < len(lines):
            joined = joined.rstrip(" \t")[:-1]
            while index < len(lines) and (not lines[index].strip() or lines[index].lstrip().startswith("#")):
                index += 1  # comments and empty lines between continued lines are dropped
            if index < len(lines):
                joined += lines[index]
                index += 1
        if joined.rstrip(" \t").endswith(escape):
            joined = joined.rstrip(" \t")[:-1]  # a continuation on the last line
        keyword, value = _keyword(joined)
        if keyword not in INSTRUCTIONS:
            raise DockerfileSyntaxError(
                f"{where}:{line_no}: unknown instruction {keyword!r} (docker build stops here); "
                f"use one of {', '.join(sorted(INSTRUCTIONS))}."
            )
        heredocs: list[str] = []
        if keyword in ("RUN", "COPY", "ADD"):
            for match in _HEREDOC_RE.finditer(value):
                body, index = _heredoc(lines, index, match.group(3), strip_tabs=bool(match.group(1)))
                heredocs.append(body)
        out.append(Instruction(keyword, value, line_no, tuple(heredocs)))
    return out


def _keyword(joined: str) -> tuple[str, str]:
    """("RUN", "pip install x") from "run  pip install x": the name is case-insensitive."""
    word, *rest = joined.strip().split(maxsplit=1)
    return word.upper(), (rest[0].strip() if rest else "")


def _heredoc(lines: list[str], index: int, word: str, *, strip_tabs: bool) -> tuple[str, int]:
    body = []
    while index < len(lines):
        line = lines[index].lstrip("\t") if strip_tabs else lines[index]
        index += 1
        if line == word:
            break
        body.append(line)
    return "\n".join(body), index


def _stages(instructions: list[Instruction], *, where: str) -> tuple[dict[str, str | None], list[Stage]]:
    global_args: dict[str, str | None] = {}
    heads: list[tuple[Instruction, str, str | None, int | None]] = []
    bodies: list[list[Instruction]] = []
    for inst in instructions:
        if inst.keyword == "FROM":
            words = inst.arguments.split()
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
                raise DockerfileSyntaxError(
                    f"{where}:{inst.line}: `FROM {inst.value}` is invalid; write FROM image [AS name]."
                )
            image = expand(words[0], global_args)
            names = [head[2] for head in heads]
            parent = names.index(image.lower()) if image.lower() in names else None
            heads.append((inst, image, words[2].lower() if len(words) == 3 else None, parent))
            bodies.append([])
        elif bodies:
            bodies[-1].append(inst)
        elif inst.keyword == "ARG":
            global_args.update(_arg_defaults(inst, global_args))
        else:
            raise DockerfileSyntaxError(
                f"{where}:{inst.line}: {inst.keyword} before the first FROM (only ARG may come first); "
                "move it below FROM."
            )
    if not heads:
        raise DockerfileSyntaxError(
            f"{where}: no FROM instruction, so there is nothing to build; start with FROM image."
        )
    stages = [
        Stage(n, image, name, inst.line, parent, tuple(body))
        for n, ((inst, image, name, parent), body) in enumerate(zip(heads, bodies, strict=True))
    ]
    return global_args, stages


def _arg_defaults(inst: Instruction, known: Mapping[str, str | None]) -> dict[str, str | None]:
    """`ARG A=1 B` -> {"A": "1", "B": None}: quotes removed and earlier ARGs expanded, as Docker does."""
    out: dict[str, str | None] = {}
    for word in re.findall(r"""(?:[^\s"']+|"[^"]*"|'[^']*')+""", inst.arguments):
        name, eq, default = word.partition("=")
        out[name] = expand(re.sub(r"""["']""", "", default), {**known, **out}) if eq else None
    return out


def _json_array(arguments: str) -> tuple[str, ...] | None:
    if not arguments.startswith("["):
        return None
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None
