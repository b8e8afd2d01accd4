"""The grader's probe texts: the inputs on which a submission must answer as the grader's model does.

Why the texts carry no labels: the grader does not judge the model (the course built it), it judges that the
submission *serves* it. For every probe it computes the expected label and confidence with its own copy of
the exported model (`course_utils.grading.model_answers`) and compares. So a keyword list or a constant
answer cannot pass, however easy the texts.

Two sets:
- the hidden set, which the instructor's grader reads (`GradeOptions.probes_file`, by default
  `solutions/grading/probes.jsonl` when that file exists). Hard texts: negation, contrast, no sentiment
  keyword, long and short texts, any Unicode. It never ships to students, and reports never print its
  texts ("hidden probe 7 of 24 (negation)");
- `PUBLIC_SAMPLE`, plain reviews for a student's self-grading (`course-utils grade capstone` in the kit).
  The report says which set was used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from course_utils.config import PROJECT_ROOT
from course_utils.errors import CourseUtilsError

__all__ = [
    "HIDDEN_PROBES_FILE",
    "PROBE_PASS_FRACTION",
    "PUBLIC_SAMPLE",
    "Probe",
    "ProbeSet",
    "ProbeSetError",
    "default_probes_file",
    "load_probes",
]

#: Share of probes a submission must answer as the grader's model does to pass `predict_probes`.
PROBE_PASS_FRACTION = 0.9
#: Where the instructor's hidden probes live (outside `course_utils`, which ships to students).
HIDDEN_PROBES_FILE = PROJECT_ROOT / "solutions" / "grading" / "probes.jsonl"


class ProbeSetError(CourseUtilsError):
    """A probe file that cannot be read: the grader's setup, not the student's fault."""


@dataclass(frozen=True, slots=True)
class Probe:
    """A text to send, and what kind of text it is (said in feedback instead of a hidden text)."""

    text: str
    kind: str = "plain review"


#: Shorter pieces of a hidden text are left alone in feedback: they are words, not the probe.
_REDACT_MIN_CHARS = 12


@dataclass(frozen=True, slots=True)
class ProbeSet:
    """Probes and whether their texts are hidden from the student (then feedback never prints them)."""

    probes: tuple[Probe, ...]
    hidden: bool
    source: str

    def describe(self, index: int) -> str:
        """How feedback names probe `index`: the text itself, or its number and kind when hidden."""
        probe = self.probes[index]
        if self.hidden:
            return f"hidden probe {index + 1} of {len(self.probes)} ({probe.kind})"
        return repr(probe.text if len(probe.text) <= 60 else probe.text[:57] + "...")

    def redact(self, message: str) -> str:
        """`message` with every hidden probe text cut out, however the app echoed it back.

        A submission can echo its input (as a label, in an error body, a log line, a dict key), and the
        grader quotes what came back. So every way a text can be spelt in feedback (as is, Python repr,
        JSON-escaped) is replaced, and so is any prefix of it from `_REDACT_MIN_CHARS` characters on, as
        feedback truncates long replies.
        """
        if not self.hidden:
            return message
        for index, probe in enumerate(self.probes):
            marker = f"<hidden probe {index + 1}>"
            for spelling in {probe.text, repr(probe.text)[1:-1], json.dumps(probe.text)[1:-1]}:
                for end in range(len(spelling), _REDACT_MIN_CHARS - 1, -1):
                    if spelling[:end] in message:
                        message = message.replace(spelling[:end], marker)
                        break
        return message


#: Plain, unhedged reviews written for the grader (not course data); sent when no hidden set is given.
PUBLIC_SAMPLE = ProbeSet(
    tuple(
        Probe(text)
        for text in (
            "Absolutely wonderful film, I loved every minute of it.",
            "The hotel staff were friendly and the room was spotless.",
            "This blender is fantastic and works perfectly every morning.",
            "A brilliant novel with characters I will remember for years.",
            "Great service, fair prices, and the repair was done on time.",
            "The new update made the game even more fun. Highly recommended!",
            "Best headphones I have ever owned: clear sound and a comfortable fit.",
            "Our guide was excellent and the whole tour was a delight.",
            "The trainer was patient and encouraging, and I feel much stronger now.",
            "Delicious food, lovely atmosphere, we will definitely come back.",
            "Terrible movie, boring from start to finish.",
            "The room was dirty and the staff were rude to us.",
            "It broke after two days. A complete waste of money.",
            "The plot was dull and the writing was awful.",
            "They overcharged me and never fixed the problem. Avoid.",
            "The game crashes constantly and the controls are horrible.",
            "The battery dies within an hour and the screen flickers. Very disappointed.",
            "The worst meal I have had in years: cold, bland and overpriced.",
            "The class was chaotic and the instructor ignored everyone.",
            "Awful customer support; nobody answered my emails for weeks.",
        )
    ),
    hidden=False,
    source="the public sample probes (course_utils.grading.probe_set.PUBLIC_SAMPLE)",
)


def default_probes_file() -> Path | None:
    """The hidden probe file when this is the instructor's repository, else None (the public sample)."""
    return HIDDEN_PROBES_FILE if HIDDEN_PROBES_FILE.is_file() else None


def load_probes(path: Path | None) -> ProbeSet:
    """The hidden probes in `path` (JSON lines `{"text": ..., "kind": ...}`), or `PUBLIC_SAMPLE` for None."""
    if path is None:
        return PUBLIC_SAMPLE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        probes = tuple(Probe(str(row["text"]), str(row.get("kind", "review"))) for row in rows)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProbeSetError(
            f"Cannot read the probe file {str(path)!r} ({type(exc).__name__}: {exc}). It must hold one JSON "
            'object per line with a "text" (and a "kind"); pass probes_file=None for the public sample.'
        ) from exc
    if not probes or any(not probe.text.strip() for probe in probes):
        raise ProbeSetError(f"The probe file {str(path)!r} has no probes, or a blank one: fix the file.")
    return ProbeSet(probes, hidden=True, source=f"{len(probes)} hidden probes")
