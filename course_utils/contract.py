"""The capstone contract as data: what a capstone service must answer, written once.

Why one module: the grader (`course_utils.grading`), the capstone's own tests (`capstone/tests`), the
smoke test, the notebooks and the student-facing `capstone/README.md` all state the same rules. Written
once here, they cannot drift apart (they did: the grader wanted confidences in [0.5, 1], the capstone
tests accepted [0, 1]).

Example:
    >>> from course_utils.contract import LABELS, MAX_TOKENS, confidence_problem
    >>> confidence_problem(0.93)
    ''
    >>> confidence_problem(0.2)[:40]
    'confidence 0.2 is below 0.5: it must be '
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from course_utils.data import LABELS

__all__ = [
    "CONFIDENCE_MIN",
    "INVALID_BODIES",
    "LABELS",
    "LATENCY_BUCKET_MAX_S",
    "LATENCY_HISTOGRAM",
    "LOG_FIELDS",
    "MAX_TOKENS",
    "REQUESTS_COUNTER",
    "STATUS_CODES",
    "Endpoint",
    "InvalidBody",
    "confidence_problem",
]

#: More tokens than this ([CLS] and [SEP] included) get 400: BERT's position embeddings stop at 512.
MAX_TOKENS: Final = 512

#: The confidence is the probability of the returned label. With two labels the returned (most probable)
#: label has probability at least 1/2, so every confidence lies in [CONFIDENCE_MIN, 1].
CONFIDENCE_MIN: Final = 1.0 / len(LABELS)

#: Counter of predictions served (Prometheus adds no suffix: the sample is `predict_requests_total`).
REQUESTS_COUNTER: Final = "predict_requests_total"
#: Histogram of prediction latency, in seconds.
LATENCY_HISTOGRAM: Final = "predict_latency_seconds"
#: The smallest latency bucket must be at most this (1 ms): an INT8 MiniLM answers in about a millisecond.
LATENCY_BUCKET_MAX_S: Final = 0.001

#: Fields of the one JSON log line written per request (`latency_ms` is what the grader measures).
LOG_FIELDS: Final = ("method", "path", "status", "latency_ms", "request_id")


@dataclass(frozen=True, slots=True)
class InvalidBody:
    """A request body `POST /predict` must refuse with 422: `raw` bytes, or `json` encoded by the client."""

    name: str
    json: Any = None
    raw: bytes | None = None


#: Every body `POST /predict` must answer with 422 (the grader sends each of them).
INVALID_BODIES: Final[tuple[InvalidBody, ...]] = (
    InvalidBody('{"text": ""}', json={"text": ""}),
    InvalidBody('{"text": "   "}', json={"text": "   "}),
    InvalidBody("{}", json={}),
    InvalidBody('{"text": 123}', json={"text": 123}),
    InvalidBody('{"text": null}', json={"text": None}),
    InvalidBody('{"text": ["good"]}', json={"text": ["good"]}),
    InvalidBody("malformed JSON", raw=b'{"text": "good'),
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint of the contract: what it answers, with which status code and when."""

    method: str
    path: str
    answers: tuple[tuple[int, str], ...]
    graded: bool = True


STATUS_CODES: Final[tuple[Endpoint, ...]] = (
    Endpoint(
        "GET",
        "/health",
        ((200, 'always, without touching the model: {"status": "ok", "model_loaded": true|false}'),),
    ),
    Endpoint(
        "GET",
        "/ready",
        (
            (200, "only once the model is loaded and warmed up"),
            (503, "with a reason (loading, warming, draining, overloaded), also when no model can be loaded"),
        ),
    ),
    Endpoint(
        "POST",
        "/predict",
        (
            (200, '{"label": "negative"|"positive", "confidence": float in [0.5, 1], "model_version": str}'),
            (400, f"more than {MAX_TOKENS} tokens ([CLS] and [SEP] included), with a message saying so"),
            (413, "a body over the size limit"),
            (422, "empty or whitespace text, missing or non-string text, malformed JSON"),
        ),
    ),
    Endpoint(
        "POST", "/predict/batch", ((200, '{"texts": [...]} (bounded length) -> a list of the above'),), False
    ),
    Endpoint(
        "GET",
        "/metrics",
        ((200, f"Prometheus text with {REQUESTS_COUNTER} (counter) and {LATENCY_HISTOGRAM} (histogram)"),),
    ),
)


def confidence_problem(value: Any) -> str:
    """'' when `value` is a valid confidence (a finite number in [0.5, 1]), else what is wrong with it.

    `bool` is not a number here, and neither is NaN: JSON clients would not read either as a probability.
    """
    if type(value) not in (int, float) or not math.isfinite(value):
        return f"confidence {value!r} is not a finite number"
    if value > 1.0:
        return f"confidence {value!r} is above 1: a probability never is (raw logits?)"
    if value < CONFIDENCE_MIN:
        return (
            f"confidence {value!r} is below {CONFIDENCE_MIN:g}: it must be the probability of the returned "
            "label, which is the most probable one"
        )
    return ""
