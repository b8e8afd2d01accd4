"""Raw model outputs are found by value anywhere in a body, never by key name."""

from __future__ import annotations

import pytest

from course_utils.grading.predictions import raw_output_problems


@pytest.mark.parametrize(
    "body",
    [
        {"label": "positive", "confidence": 0.9, "scores": {"negative": 0.1, "positive": 0.9}},
        {"label": "positive", "confidence": 0.9, "logits": [0.1, 0.9]},  # named logits, but probabilities
        {"label": "positive", "confidence": 0.9, "detail": {"probabilities": [0.1234, 0.8766], "tokens": 12}},
        {"label": "positive", "confidence": 0.9, "latency_ms": 3.7, "shape": [1, 2]},
    ],
    ids=["scores_dict", "probabilities_named_logits", "nested_probabilities", "other_numbers"],
)
def test_probabilities_and_other_numbers_are_not_raw_outputs(body: dict[str, object]) -> None:
    assert raw_output_problems(body) == []


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"label": "positive", "confidence": 0.9, "debug": {"out": [-2.2, 2.2]}}, "body.debug.out"),
        ({"label": "positive", "confidence": 0.9, "raw": {"Negative": -1.0, "Positive": 1.5}}, "body.raw"),
        ({"label": "positive", "confidence": 0.9, "x": [[0.3, 0.3]]}, "body.x[0]"),
        ({"label": "positive", "confidence": 0.9, "positive": 3.2}, "body.positive"),
    ],
    ids=["nested_logits", "per_label_logits", "not_summing_to_one", "scalar_under_a_label"],
)
def test_logits_anywhere_are_found(body: dict[str, object], where: str) -> None:
    problems = raw_output_problems(body)
    assert len(problems) == 1 and problems[0].startswith(where), problems
