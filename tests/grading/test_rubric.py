"""The rubric's invariants: 100 points, unique names, a fix-it line for every check, one bonus."""

from __future__ import annotations

import pytest

from course_utils.grading import RUBRIC, TOTAL_POINTS
from course_utils.grading.rubric import check_named


def test_points_add_up_to_100_without_bonus() -> None:
    assert TOTAL_POINTS == 100
    assert [c.name for c in RUBRIC if c.bonus] == ["docker_run"]


def test_names_are_unique_and_every_check_has_a_one_line_fix() -> None:
    assert len({c.name for c in RUBRIC}) == len(RUBRIC)
    for check in RUBRIC:
        assert check.fix and "\n" not in check.fix, check.name
        assert check.points > 0


def test_results_carry_the_fix_only_when_something_is_wrong() -> None:
    check = check_named("health")
    assert "Fix:" not in check.passed("fine").output
    assert check.failed("GET /health answered 500").output.endswith(check.fix)
    blocked = check.not_run("The app did not start.", blocked_by="app_starts")
    assert blocked.score == 0
    assert "blocked by `app_starts`" in blocked.output and "Fix:" not in blocked.output


def test_bonus_counts_nothing_towards_the_maximum() -> None:
    docker = check_named("docker_run")
    assert docker.passed("built").max_score == 0
    assert docker.passed("built").score == 5
    assert docker.skipped("no daemon").score == 0


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(KeyError, match="files_present"):
        check_named("nope")
