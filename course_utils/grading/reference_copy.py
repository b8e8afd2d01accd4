"""Is this submission the reference capstone handed in again? Answer lines counted by fingerprint.

Why: in the instructor's repository (and in a grading bundle built from it) the reference capstone sits
beside the grader, and it scores 100. A student who hands it in (copied, re-indented, re-formatted, with
other comments) must not get those points. The grader refuses such a submission with a complete report
(every rubric line, 0 points) that says why, and never starts its app.

What counts:
- The reference's *answer lines* are the lines of `solutions/capstone`'s `src/**/*.py`, `Dockerfile` and
  `deploy.md`, less the lines the student is given in the starter `capstone/` (its skeleton and imports
  are nobody's own work). The starter is found where the repository layout puts it, two folders above the
  reference (`solutions/capstone` -> `capstone`), in the instructor's repository and in a grading bundle
  that copies that layout alike. `requirements.txt` is left out: pins of the same packages are identical in
  honest work. Lines are compared as `course_utils.fingerprint` does: whitespace-normalised, short lines
  (`return x`) ignored, so re-indenting or re-spacing hides nothing.
- A submission matches an answer line when any text file of it (whatever its name: code moved into one
  module still counts) holds that line. Its *share* is matched answer lines / all answer lines.

Why `REFUSE_SHARE` = 0.5: measured on the course material (docs/grading.md), the reference copied scores
100%, the reference re-indented, re-commented and re-formatted by `ruff format` at 79 columns 84%, the
starter 0.2%, and correct services written independently (tests/grading/submissions.py) about 0.5%
(a handful of lines anyone writes: the tokenizer call, the pydantic field). Half of the answer lines sits
far from both sides: a false refusal would zero a student's grade, so the threshold is nowhere near
independent work; below it a submission has rewritten most of the reference, which is no longer "the
reference handed in" but a question for the course's plagiarism review, not for an automatic zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from course_utils.config import PROJECT_ROOT
from course_utils.fingerprint import (
    Leak,
    find_leaks,
    fingerprints,
    read_text_lines,
    secret_fingerprints,
)

__all__ = [
    "REFUSE_SHARE",
    "ReferenceMatch",
    "answer_files",
    "answer_fingerprints",
    "default_reference_dir",
    "match_reference",
    "starter_beside",
]

#: Share of the reference's answer lines at or above which a submission is refused (see the module doc).
REFUSE_SHARE = 0.5
#: Where the reference capstone lives in the instructor's repository.
_REFERENCE_DIR = PROJECT_ROOT / "solutions" / "capstone"
#: How many matching places (one per file) a refusal quotes.
_PLACES_SHOWN = 5
#: Reading a submission is bounded: folders never worth reading, and a size and count limit per file.
_SKIPPED_DIRS = frozenset({"model", "__pycache__", "node_modules", "venv", ".venv", ".git"})
_MAX_FILE_BYTES = 1_000_000
_MAX_FILES = 2_000


def default_reference_dir() -> Path | None:
    """`solutions/capstone` in the instructor's repository, else None (the student kit: no check)."""
    return _REFERENCE_DIR if (_REFERENCE_DIR / "src").is_dir() else None


def answer_files(capstone: Path) -> list[Path]:
    """The files whose lines are the capstone's work: its Python sources, Dockerfile and deploy.md."""
    sources = sorted((capstone / "src").rglob("*.py")) if (capstone / "src").is_dir() else []
    return [*sources, *(path for path in (capstone / "Dockerfile", capstone / "deploy.md") if path.is_file())]


def _lines(paths: list[Path]) -> Iterator[str]:
    for path in paths:
        yield from read_text_lines(path) or []


def starter_beside(reference: Path) -> Path:
    """The starter capstone of the repository holding `reference`: `capstone/` beside `solutions/`."""
    return reference.parent.parent / "capstone"


def answer_fingerprints(reference: Path, *, starter: Path | None = None) -> frozenset[str]:
    """Fingerprints of the reference's answer lines: its own lines, less the starter's.

    `starter` defaults to `starter_beside(reference)`; when that folder is missing nothing is subtracted,
    which only adds the starter's few lines to the answer (a starter then matches well under 1%).
    """
    starter = starter_beside(reference) if starter is None else starter
    given = _lines(answer_files(starter)) if starter.is_dir() else iter(())
    return secret_fingerprints(_lines(answer_files(reference)), given=given)


def _read_first(path: Path) -> tuple[bool, str]:
    """Sort key: the files an app runs or documents (`.py`, `.md`, `Dockerfile`) before any other file."""
    return (path.suffix not in (".py", ".md") and path.name != "Dockerfile", path.as_posix())


def _submission_texts(root: Path) -> dict[str, list[str]]:
    """Every text file of the submission (relative path -> lines), skipping model/, caches and big files.

    Python files are read wherever they sit, `model/` and caches included: the app can import them from
    there. They and the other answer-bearing files are read first, so padding a submission with thousands
    of small files cannot push `src/` past the `_MAX_FILES` bound.
    """
    texts: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*"), key=_read_first):
        relative = path.relative_to(root)
        skipped = _SKIPPED_DIRS.intersection(relative.parts[:-1]) or any(
            part.endswith("_cache") for part in relative.parts[:-1]
        )
        if skipped and path.suffix != ".py":
            continue
        if not path.is_file() or path.is_symlink() or path.stat().st_size > _MAX_FILE_BYTES:
            continue
        if (lines := read_text_lines(path)) is not None:
            texts[relative.as_posix()] = lines
            if len(texts) >= _MAX_FILES:
                break
    return texts


@dataclass(frozen=True, slots=True)
class ReferenceMatch:
    """How much of the reference's answer a submission holds, and a few places where."""

    matched: int
    total: int
    places: tuple[Leak, ...]

    @property
    def share(self) -> float:
        """matched / total (0 when the reference has no answer lines)."""
        return self.matched / self.total if self.total else 0.0

    @property
    def refused(self) -> bool:
        """True when the submission is the reference handed in (share at or above `REFUSE_SHARE`)."""
        return self.total > 0 and self.share >= REFUSE_SHARE

    def message(self) -> str:
        """The refusal, in three parts: what was found, why it is not graded, what to do."""
        places = "\n".join(f"  {place}" for place in self.places)
        return (
            f"Not graded: this submission matches the reference capstone in {self.matched} of its "
            f"{self.total} answer lines ({self.share:.0%}; refused from {REFUSE_SHARE:.0%}), e.g.\n{places}\n"
            "The reference solution is not your work, so it earns no points, and its app was not started. "
            "Hand in your own capstone (start from the starter `capstone/`); if you believe this is a "
            "mistake, show your course staff how you wrote it."
        )


def match_reference(submission: Path, reference: Path, *, starter: Path | None = None) -> ReferenceMatch:
    """How many of `reference`'s answer lines (less `starter`'s) the text files of `submission` hold."""
    secret = answer_fingerprints(reference, starter=starter)
    texts = _submission_texts(submission)
    found = secret & fingerprints(line for lines in texts.values() for line in lines)
    return ReferenceMatch(
        len(found), len(secret), _first_per_file(find_leaks(texts, secret) if found else [])
    )


def _first_per_file(leaks: list[Leak]) -> tuple[Leak, ...]:
    """The first matching line of each file, for up to `_PLACES_SHOWN` files: a few places, spread out."""
    first: dict[str, Leak] = {}
    for leak in leaks:
        first.setdefault(leak.path, leak)
    return tuple(list(first.values())[:_PLACES_SHOWN])
