"""benchmarks/grading.py: the class it builds has the issue's shares, and a small run prints every target.

No timing assertion: the 10-minute target is for a quiet machine (`python -m benchmarks.grading`); here
only the output's shape and the score comparison (class against one at a time) are checked.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from benchmarks import grading


def test_the_class_has_the_issues_shares_and_every_variant() -> None:
    plan = grading.class_plan(200)
    group_of = {name: group for group, variants in grading.VARIANTS.items() for name, _build in variants}
    shares = Counter(group_of[variant] for variant in plan.values())
    assert shares == {"correct": 100, "partial": 60, "untouched_or_crashing": 40}
    assert set(plan.values()) == set(group_of), "200 students cover every variant"
    assert grading.class_plan(200) == plan, "the same class every run (fixed seed)"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_small_class_prints_the_targets_and_matches_one_at_a_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = grading.main(["--n", "6", "--jobs", "3"])
    out = capsys.readouterr().out
    assert re.search(r"^submissions/minute: \d+\.\d$", out, re.M), out
    assert re.search(r"^per submission: p50 \d+\.\d s, p95 \d+\.\d s, max \d+\.\d s$", out, re.M), out
    assert re.search(r"^wall time: \d+\.\d s for 6 ", out, re.M), out
    assert re.search(r"^(MET   |MISSED) 200 graded in at most 10 minutes: \d+\.\d min \(projected", out, re.M)
    assert "MET    every score identical to grading one at a time: 6 of 6 students match" in out, out
    assert code == (0 if "MISSED" not in out else 1)
