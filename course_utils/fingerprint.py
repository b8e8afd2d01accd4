"""Line fingerprints: find answer text in a folder by what it says, not by what its files are called.

Two checks need the same idea:
- the student kit's leak check (`course-utils student-kit`): no line of a solution region, a hidden test or
  the reference capstone may appear anywhere in the kit, whatever file it was copied into;
- the grader's refusal of a submission that is the reference capstone handed in again.

A fingerprint is a short sha256 of one *normalised* line: surrounding whitespace stripped and inner runs of
whitespace collapsed, so re-indenting or re-wrapping spaces does not hide a copy. Lines too short to be
anyone's own work (`return x`, `)`, `pass`, `import json`) are ignored: `MIN_CHARS` says how short. Lines
that the students are given anyway (the starter, the text around an exercise) are subtracted from the
secret set by the caller (`secret_fingerprints(secret, given)`), so the checks only look at answer lines.

Notebooks are read as their cells' sources and text outputs, not as JSON, because a line copied into a
notebook cell is stored escaped inside a JSON string.

    >>> secret = secret_fingerprints(["    return {'label': LABELS[int(best)]}\\n"], given=[])
    >>> [leak.line for leak in find_leaks({"copy.py": "return {'label':  LABELS[int(best)]}"}, secret)]
    ["return {'label':  LABELS[int(best)]}"]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MIN_CHARS",
    "Leak",
    "find_leaks",
    "fingerprint",
    "fingerprints",
    "normalise",
    "read_text_lines",
    "secret_fingerprints",
    "tree_texts",
]

#: Normalised lines shorter than this are ignored: too common to be evidence of copying.
MIN_CHARS = 20

#: Files that are never text worth reading (weights, archives, images).
_BINARY_SUFFIXES = frozenset(
    {".onnx", ".safetensors", ".bin", ".pt", ".pth", ".png", ".jpg", ".gif", ".zip", ".gz", ".whl", ".pyc"}
)


def normalise(line: str) -> str:
    """The line with surrounding whitespace stripped and inner whitespace runs collapsed to one space."""
    return " ".join(line.split())


def fingerprint(line: str) -> str | None:
    """16 hex digits of sha256 of the normalised line, or None for a line too short to count."""
    text = normalise(line)
    if len(text) < MIN_CHARS:
        return None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprints(lines: Iterable[str]) -> set[str]:
    """The fingerprints of every line long enough to count."""
    return {digest for line in lines if (digest := fingerprint(line)) is not None}


def secret_fingerprints(secret: Iterable[str], given: Iterable[str]) -> frozenset[str]:
    """Fingerprints of the secret lines, less those of lines the students are given anyway.

    Why subtract: the reference capstone shares its imports and skeleton with the starter, and a solution
    region may repeat a line of the exercise text; neither is an answer.
    """
    return frozenset(fingerprints(secret) - fingerprints(given))


def read_text_lines(path: Path) -> list[str] | None:
    """The lines of a text file (a notebook: its cells' sources and text outputs), or None if binary."""
    if path.suffix in _BINARY_SUFFIXES:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    if path.suffix == ".ipynb":
        return _notebook_lines(text)
    return text.splitlines()


def _notebook_lines(text: str) -> list[str]:
    """Cells' sources and text outputs; a file that is not a notebook of the usual shape is read as text.

    Why so lenient: the files come from students and kits (a scratch notebook, a JSON list named .ipynb),
    and an unreadable one must never stop a grade or a kit build.
    """
    try:
        lines: list[str] = []
        for cell in json.loads(text).get("cells") or []:
            lines += _joined(cell.get("source", "")).splitlines()
            for output in cell.get("outputs") or []:
                lines += _joined(output.get("text", "")).splitlines()
                lines += _joined((output.get("data") or {}).get("text/plain", "")).splitlines()
        return lines
    except (ValueError, AttributeError, TypeError):
        return text.splitlines()


def _joined(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)


def tree_texts(root: Path) -> dict[str, list[str]]:
    """Every text file under `root` (relative POSIX path -> lines), binary files skipped."""
    texts: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and (lines := read_text_lines(path)) is not None:
            texts[path.relative_to(root).as_posix()] = lines
    return texts


@dataclass(frozen=True, slots=True)
class Leak:
    """One line of the checked files whose fingerprint is secret: where it is and what it says."""

    path: str
    line_number: int
    line: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line_number}: {self.line.strip()}"


def find_leaks(texts: Mapping[str, str | list[str]], secret: frozenset[str]) -> list[Leak]:
    """Every line of `texts` (name -> text or lines) whose fingerprint is in `secret`, in file order."""
    leaks: list[Leak] = []
    for name, text in texts.items():
        lines = text.splitlines() if isinstance(text, str) else text
        for number, line in enumerate(lines, start=1):
            if (digest := fingerprint(line)) is not None and digest in secret:
                leaks.append(Leak(name, number, line))
    return leaks
