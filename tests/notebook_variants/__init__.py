"""Right and wrong answers to the notebooks' graded exercises, as data (tests/test_notebook_variants.py).

One module per notebook, `nbNN_name.py` for `solutions/NN_name.ipynb`, defines `VARIANTS`: for each
answer cell (its nbgrader `grade_id`), a list of whole-cell sources a student might hand in, each marked
right (it must earn every point of its exercise's graded cells) or wrong (it must lose the points of the
graded cells named in `loses`, all of its exercise's graded cells by default), with a one-line reason.
A graded cell belongs to the answer cells of its exercise: `ex2-psi-tests` to `ex2-psi`.

A module may also define `TRIM`: the first lines of slow ungraded code cells (training, benchmarks) that
the variant submissions leave out to bound CI time. No graded cell may read what they compute; the right
variants, which must still earn every point, prove it.

The capstone cell of notebook 07 grades a folder, not a cell: its variants are `CapstoneVariant`s under
the key `"capstone"` (see nb07_deliverables.py). Its right answers are correct services written
differently from the reference (the grader's wheats, tests/grading/submissions.py): the reference itself,
handed in, is refused by the grader and is one of the wrong answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.grading.submissions import MINI_APP, REFERENCE, STARTER, WHEATS, copy_capstone, write_submission

__all__ = ["CapstoneVariant", "Variant", "add_capstone", "right", "wrong"]


@dataclass(frozen=True)
class Variant:
    """An answer cell's whole source as a student might write it, and what it must score."""

    right: bool
    why: str
    source: str
    #: The graded cells a wrong answer must lose (empty: every graded cell of its exercise).
    loses: tuple[str, ...] = ()


@dataclass(frozen=True)
class CapstoneVariant:
    """What the submission holds beside notebook 07 as `capstone/`, and a cell a student might add."""

    right: bool
    why: str
    #: "reference" (a copy of solutions/capstone), "starter" (the capstone/ students start from), "none",
    #: "mini_app" or the name of a wheat (tests/grading/submissions.py: correct services in other styles).
    folder: str
    #: Source of a code cell inserted just before the graded capstone cell ("" for none).
    extra_cell: str = ""
    loses: tuple[str, ...] = ()


def right(why: str, source: str) -> Variant:
    """A correct answer written differently from the reference: it must earn full points."""
    return Variant(True, why, source.strip("\n"))


def wrong(why: str, source: str, *, loses: tuple[str, ...] = ()) -> Variant:
    """A plausible wrong answer: it must lose the points of `loses` (default: all its exercise's cells)."""
    return Variant(False, why, source.strip("\n"), loses)


def add_capstone(submission: Path, variant: CapstoneVariant) -> None:
    """Put the capstone `variant` describes into `submission/capstone`, where notebook 07's cell finds it.

    nbgrader copies a submission's other files (subfolders included) next to the notebook it grades, so
    the capstone handed in inside the assignment folder is the one the graded cell finds.
    """
    target = submission / "capstone"
    if variant.folder == "none":
        return
    if variant.folder in ("reference", "starter"):
        copy_capstone(REFERENCE if variant.folder == "reference" else STARTER, target)
        return
    services = {"mini_app": MINI_APP, **WHEATS}
    assert variant.folder in services, f"no capstone {variant.folder!r}; choose from {sorted(services)}"
    write_submission(target, services[variant.folder])
