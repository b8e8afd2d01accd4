"""capstone/README.md is the contract and rubric as the grader knows them: generated, and current."""

from __future__ import annotations

from course_utils.config import PROJECT_ROOT
from course_utils.contract import INVALID_BODIES, LATENCY_HISTOGRAM, MAX_TOKENS, REQUESTS_COUNTER
from course_utils.grading import RUBRIC
from course_utils.grading.readme import capstone_readme


def test_the_committed_readme_is_current() -> None:
    committed = (PROJECT_ROOT / "capstone" / "README.md").read_text(encoding="utf-8")
    assert committed == capstone_readme(), (
        "capstone/README.md is stale: run `python -m course_utils.grading.readme capstone/README.md`"
    )


def test_the_readme_states_every_graded_rule() -> None:
    text = capstone_readme()
    for needle in (REQUESTS_COUNTER, LATENCY_HISTOGRAM, str(MAX_TOKENS), "[0.5, 1]", "latency_ms"):
        assert needle in text
    assert all(body.name in text for body in INVALID_BODIES)
    assert all(f"`{check.name}`" in text for check in RUBRIC)
