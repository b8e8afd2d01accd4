"""The student kit: the repository students get, built from this one, with a leak check that fails the build.

    course-utils student-kit OUT [--zip]      (make student-kit)

What ships (`KIT_CONTENT`): the release notebooks, the capstone starter with its README, the library with
the self-grader, the data inside it, a student README and Makefile (`tools/student_kit/`), the pins and the
project file (so `pip install -e .` works), and the two benchmark files notebook 06 reads. Nothing else: no
`solutions/`, no instructor tests, no instructor docs, no `benchmarks/apps/naive_app.py` (it is notebook
02's Exercise 2 answer).

Why a leak check on top of a list: a list says which files ship, not what is written in them. An answer
pasted into a library module, a docstring or a copied helper ships under an innocent name. So the check
reads every text file of the built kit and looks for any line of a solution region, a hidden test, the
reference capstone or the hidden probe texts (`course_utils.fingerprint`: normalised lines, so
re-indenting hides nothing), less the lines students are given anyway (the release notebooks and the
starter), lines that only name things (imports, decorators, `except` clauses) and the lines an instructor
listed, each with its reason, in `tools/student_kit/shared_lines.txt`. One hit fails the build and names
the file and line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from course_utils.config import PROJECT_ROOT
from course_utils.errors import CourseUtilsError
from course_utils.fingerprint import (
    MIN_CHARS,
    Leak,
    find_leaks,
    normalise,
    read_text_lines,
    secret_fingerprints,
    tree_texts,
)
from course_utils.grading.probe_set import load_probes

__all__ = [
    "IGNORED_NAMES",
    "KIT_CONTENT",
    "SHARED_LINES_FILE",
    "KitError",
    "KitReport",
    "LeakCheck",
    "build_kit",
    "check_leaks",
    "secret_lines",
]

#: (path in this repository, path in the kit). A folder is copied whole, less `IGNORED_NAMES`.
KIT_CONTENT: tuple[tuple[str, str], ...] = (
    ("notebooks", "notebooks"),
    ("capstone", "capstone"),
    ("course_utils", "course_utils"),
    ("requirements.txt", "requirements.txt"),
    ("environment.yml", "environment.yml"),
    ("pyproject.toml", "pyproject.toml"),
    # Notebook 06 starts LitServe from this script and plots the committed benchmark snapshot.
    ("benchmarks/apps/litserve_app.py", "benchmarks/apps/litserve_app.py"),
    ("benchmarks/snapshot/serving.json", "benchmarks/snapshot/serving.json"),
    ("tools/student_kit/README.md", "README.md"),
    ("tools/student_kit/Makefile", "Makefile"),
    ("tools/student_kit/gitignore", ".gitignore"),
)

#: Names never copied: caches, build output, a model copied into the capstone, editable-install metadata.
IGNORED_NAMES = frozenset(
    {
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        ".mypy_cache",
        ".ipynb_checkpoints",
        "model",
        "build",
    }
)
_IGNORED_SUFFIXES = (".pyc", ".egg-info")

_SOLUTION_MARKERS = (("BEGIN SOLUTION", "END SOLUTION"), ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"))
#: What nbgrader writes in place of a solution (nbgrader_config.py's ClearSolutions stubs).
_NBGRADER_STUBS = ("# YOUR CODE HERE", "raise NotImplementedError()", "YOUR ANSWER HERE")
#: Lines the library may share with an answer on purpose, each with its reason (an instructor's review).
SHARED_LINES_FILE = PROJECT_ROOT / "tools" / "student_kit" / "shared_lines.txt"
#: Lines that only name things: imports, decorators, `except` clauses, an `__all__` entry, the opening line
#: of `raise SomeError(`, a typed parameter on its own line, a method without parameters, `self.x = x`.
#: They say what code uses, not what it does, and every module of the library has them; the lines of an
#: answer that do the work are still checked.
_TYPE = r"[\w.\[\], |]+"
_NAMING_ONLY = re.compile(
    r"(from [\w.]+ )?import [\w., ()]+"
    r"|@[\w.]+(\(.*\))?"
    r"|except\b.*:"
    r"|[\"'][A-Za-z_]\w*[\"'],?"
    r"|raise [\w.]+\("
    rf"|\w+: {_TYPE},"
    rf"|(async )?def \w+\((self|cls)?\)( -> {_TYPE})?:"
    r"|self\.(?P<attr>\w+) = (?P=attr)"
)


class KitError(CourseUtilsError):
    """The kit cannot be built here, or the built kit leaks answers (the message lists every leaked line)."""


@dataclass(frozen=True, slots=True)
class LeakCheck:
    """The result of scanning a folder: how many secret fingerprints were looked for, and what was found."""

    fingerprints: int
    files_scanned: int
    leaks: tuple[Leak, ...]

    @property
    def ok(self) -> bool:
        """True when no secret line was found."""
        return not self.leaks

    def summary(self) -> str:
        """One line for the build's output: passed or how many lines leaked, and what was scanned."""
        result = "passed" if self.ok else f"FAILED: {len(self.leaks)} leaked lines"
        return f"leak check {result} ({self.fingerprints} secret fingerprints, {self.files_scanned} files)"


@dataclass(frozen=True, slots=True)
class KitReport:
    """What `build_kit` wrote: the folder (and zip), its size and the leak check it passed."""

    out: Path
    files: int
    size_bytes: int
    leak_check: LeakCheck
    zip_path: Path | None = None


def _ignored(path: Path) -> bool:
    return path.name in IGNORED_NAMES or path.name.endswith(_IGNORED_SUFFIXES)


def _files(root: Path) -> Iterator[Path]:
    """Every file under `root` (or `root` itself), skipping `IGNORED_NAMES` at any depth."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.iterdir()):
        if _ignored(path):
            continue
        if path.is_dir():
            yield from _files(path)
        elif path.is_file():
            yield path


def _split_regions(lines: Iterable[str]) -> tuple[list[str], list[str]]:
    """(inside, outside): the lines between the solution / hidden-test markers, and the rest (markers
    dropped). Outside is what nbgrader keeps of a source when it makes the release."""
    inside: list[str] = []
    outside: list[str] = []
    in_region = False
    for line in lines:
        if any(begin in line for begin, _ in _SOLUTION_MARKERS):
            in_region = True
        elif any(end in line for _, end in _SOLUTION_MARKERS):
            in_region = False
        else:
            (inside if in_region else outside).append(line)
    return inside, outside


def _regions(lines: Iterable[str]) -> list[str]:
    """The lines between `### BEGIN SOLUTION` and `### END SOLUTION` (and the hidden-test markers)."""
    return _split_regions(lines)[0]


def _unmarked_solution_cells(path: Path) -> Iterator[str]:
    """Lines of nbgrader solution cells without markers: nbgrader replaces such a cell whole."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook.get("cells", []):
        source = cell.get("source", "")
        source = source if isinstance(source, str) else "".join(source)
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution") and "BEGIN SOLUTION" not in source:
            yield from source.splitlines()


def _probe_texts(path: Path) -> Iterator[str]:
    """The hidden probe lines as stored and their texts alone (a copy may hold the text in other JSON)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        yield line
        try:
            yield str(json.loads(line)["text"])
        except (ValueError, KeyError, TypeError):
            continue


def secret_lines(repo: Path = PROJECT_ROOT) -> tuple[list[str], list[str]]:
    """(secret, given): the answer lines of `repo`, and the lines students get anyway.

    Secret: every solution and hidden-test region of the notebook sources and notebooks, every text file
    of the reference capstone (its model copy excluded: students build the same model; its pins too: they
    are the course's) and the hidden probes. Given: what nbgrader keeps of the sources (the lines outside
    their regions, and its stubs), the capstone starter, lines that only name things (`_NAMING_ONLY`) and
    the reviewed shared lines (`SHARED_LINES_FILE`).
    """
    solutions = repo / "solutions"
    if not solutions.is_dir():
        raise KitError(
            f"No solutions/ in {str(repo)!r}: the kit is built from the instructor repository, which holds "
            "what the leak check looks for. Run `course-utils student-kit` there."
        )
    secret: list[str] = []
    # Given: what nbgrader keeps of each source (never the release notebooks themselves: a stale or
    # hand-edited release, or a stray file in notebooks/, must not vouch for its own lines).
    kept: list[str] = list(_NBGRADER_STUBS)
    for path in sorted(solutions.glob("src/*.py")) + sorted(solutions.glob("*.ipynb")):
        inside, outside = _split_regions(read_text_lines(path) or [])
        secret.extend(inside)
        whole = set(_unmarked_solution_cells(path)) if path.suffix == ".ipynb" else set()
        secret.extend(whole)
        kept.extend(line for line in outside if line not in whole)
    for path in _files(solutions / "capstone"):
        if path.name != "requirements.txt":  # its pins are the course's, shipped in requirements.txt
            secret.extend(read_text_lines(path) or [])
    probes = solutions / "grading" / "probes.jsonl"
    if probes.is_file():
        secret.extend(_probe_texts(probes))
    given: list[str] = [line for line in secret if _NAMING_ONLY.fullmatch(" ".join(line.split()))]
    given.extend(kept)
    for path in _files(repo / "capstone"):  # the starter
        given.extend(read_text_lines(path) or [])
    shared = repo / SHARED_LINES_FILE.relative_to(PROJECT_ROOT)
    if shared.is_file():
        given.extend(ln for ln in shared.read_text(encoding="utf-8").splitlines() if not ln.startswith("#"))
    return secret, given


def _probe_spellings(probes_file: Path) -> set[str]:
    """Each hidden probe text as a copy would hold it: as is, inside a repr or inside a JSON string.

    Texts shorter than `MIN_CHARS` are left out ("Meh."): as common words, they cannot be told from text
    that merely contains them.
    """
    spellings: set[str] = set()
    for probe in load_probes(probes_file).probes:
        for spelling in (probe.text, repr(probe.text)[1:-1], json.dumps(probe.text)[1:-1]):
            if len(text := normalise(spelling)) >= MIN_CHARS:
                spellings.add(text)
    return spellings


def _probe_leaks(texts: dict[str, list[str]], probes_file: Path) -> list[Leak]:
    """Lines holding a hidden probe text anywhere (in a list, a dict, a call), not only as the whole line."""
    spellings = _probe_spellings(probes_file) if probes_file.is_file() else set()
    return [
        Leak(name, number, line)
        for name, lines in texts.items()
        for number, line in enumerate(lines, start=1)
        if any(spelling in normalise(line) for spelling in spellings)
    ]


def check_leaks(kit: Path, repo: Path = PROJECT_ROOT) -> LeakCheck:
    """Scan every text file under `kit` for secret lines of `repo` (see `secret_lines`) and, inside any
    line, for the hidden probe texts."""
    secret = secret_fingerprints(*secret_lines(repo))
    texts = tree_texts(kit)
    leaks = {(leak.path, leak.line_number): leak for leak in find_leaks(texts, secret)}
    for leak in _probe_leaks(texts, repo / "solutions" / "grading" / "probes.jsonl"):
        leaks.setdefault((leak.path, leak.line_number), leak)
    return LeakCheck(len(secret), len(texts), tuple(leaks[key] for key in sorted(leaks)))


def _leak_message(check: LeakCheck) -> str:
    shown = "\n".join(f"  {leak}" for leak in check.leaks[:40])
    more = f"\n  ... and {len(check.leaks) - 40} more" if len(check.leaks) > 40 else ""
    return (
        f"The student kit leaks {len(check.leaks)} answer lines (a solution region, a hidden test, the "
        f"reference capstone or a hidden probe; {check.fingerprints} fingerprints checked). For a notebook "
        f"the number counts the lines of its cells and outputs.\n{shown}{more}\nRemove the answer from "
        "those files (or stop shipping them in course_utils.kit.KIT_CONTENT) and build again."
    )


def _copy(repo: Path, target: Path) -> None:
    for source_name, kit_name in KIT_CONTENT:
        source = repo / source_name
        if not source.exists():
            raise KitError(
                f"{source_name!r} is missing from {str(repo)!r}, so the kit would be incomplete. Restore it "
                f"(`git checkout -- {source_name}`, or `make model`/`tools/build_notebooks.py` for generated "
                "files) or take it out of course_utils.kit.KIT_CONTENT, then build again."
            )
        for path in _files(source):
            dest = target / kit_name / path.relative_to(source) if source.is_dir() else target / kit_name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)


def _zip(folder: Path, zip_path: Path) -> None:
    """Zip `folder` with its name as the top-level folder (executable bits kept, so `make` works)."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, Path(folder.name) / path.relative_to(folder))


def build_kit(
    out: Path, *, repo: Path = PROJECT_ROOT, make_zip: bool = False, force: bool = False
) -> KitReport:
    """Write the student kit to `out` (and `out`.zip), or raise `KitError` if it would leak an answer.

    The kit is assembled in a sibling folder and renamed into place only once the leak check passes, so a
    leaking build leaves no kit behind that could be handed out by mistake.
    """
    out = out.resolve()
    sources = [(repo / source).resolve() for source, _ in KIT_CONTENT]
    if out in (repo.resolve(), *repo.resolve().parents) or any(out.is_relative_to(s) for s in sources):
        raise KitError(
            f"{str(out)!r} would hold or be copied into itself (it is the repository, holds it, or lies in a "
            "folder the kit copies). Pass a folder outside them, e.g. build/student-kit."
        )
    if out.exists() and any(out.iterdir()) and not force:
        raise KitError(
            f"{str(out)!r} exists and is not empty. Pass another folder, or --force to replace it."
        )
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _copy(repo, partial)
        check = check_leaks(partial, repo)
        if not check.ok:
            raise KitError(_leak_message(check))
        shutil.rmtree(out, ignore_errors=True)
        os.replace(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    files = [path for path in out.rglob("*") if path.is_file()]
    zip_path = None
    if make_zip:
        zip_path = out.with_name(f"{out.name}.zip")
        _zip(out, zip_path)
    return KitReport(out, len(files), sum(p.stat().st_size for p in files), check, zip_path)
