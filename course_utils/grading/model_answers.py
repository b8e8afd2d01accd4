"""What the grader's own copy of the exported model answers for each probe text.

Why: `predict_probes` judges that a submission serves the course model, not that its labels agree with a
human's. So the grader runs the model the student was given (MODEL_DIR: `model.int8.onnx`, the contract's
default, and `model.onnx` when present, since serving FP32 is allowed too) on every probe, one text at a
time as a client sends them, and accepts an answer that matches either format within `TOLERANCE`.
Expectations are computed at grade time from the folder, never stored: a rebuilt model is graded against
itself. They are cached per model folder content and probe set, so a class costs one computation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course_utils.contract import LABELS
from course_utils.errors import ModelNotBuiltError

__all__ = ["ONNX_FILES", "TOLERANCE", "ModelAnswers", "model_answers"]

#: The exported formats a submission may serve, by file name; the first is the contract's default.
ONNX_FILES = ("model.int8.onnx", "model.onnx")
#: Largest accepted difference between a returned confidence and the model's probability of that label.
TOLERANCE = 0.02

_cache: dict[tuple[str, ...], ModelAnswers] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class ModelAnswers:
    """Class probabilities `[n_texts, n_labels]` per served format, and the label names in class order."""

    labels: tuple[str, ...]
    proba: dict[str, np.ndarray]

    def expected(self, index: int) -> tuple[str, float]:
        """Label and confidence of the contract's default format for text `index` (for feedback)."""
        row = next(iter(self.proba.values()))[index]
        best = int(np.argmax(row))
        return self.labels[best], float(row[best])

    def matches(self, index: int, label: str, confidence: float | None) -> bool:
        """Whether (`label`, `confidence`) is what one of the formats answers for text `index`.

        `label` is compared case-insensitively (its spelling is `predict_schema`'s business). With a
        `confidence` (a valid one: `predict_confidence` judges the others), it must be within TOLERANCE of
        the model's probability of `label`; that also accepts either label on a near tie. Without one, the
        label must be the model's, or within TOLERANCE of a tie.
        """
        names = [name.lower() for name in self.labels]
        if label.lower() not in names:
            return False
        column = names.index(label.lower())
        for proba in self.proba.values():
            probability = float(proba[index, column])
            if confidence is not None and abs(confidence - probability) <= TOLERANCE:
                return True
            if confidence is None and probability >= float(proba[index].max()) - TOLERANCE:
                return True
        return False


def model_answers(model_dir: Path, texts: tuple[str, ...]) -> ModelAnswers:
    """The model's answers for `texts`, after checking the sha256 of every file it loads."""
    from course_utils.onnx_model import (
        load_model_card,
        load_tokenizer,
        onnx_proba,
        onnx_session,
        verify_model_dir,
    )

    card = load_model_card(model_dir)
    formats = [name for name in ONNX_FILES if (model_dir / name).is_file()]
    if ONNX_FILES[0] not in formats:
        raise ModelNotBuiltError(
            f"{str(model_dir / ONNX_FILES[0])!r} is missing, so the grader cannot compute the answers a "
            "submission must give. Run `make model`, or pass a complete exported folder as MODEL_DIR."
        )
    digests = card.get("files", {})
    key = (str(model_dir), *(str(digests.get(name)) for name in (*formats, "tokenizer.json")), *texts)
    with _lock:
        cached = _cache.get(key)
        if cached is None:
            verify_model_dir(model_dir, files=[*formats, "tokenizer.json"])
            tokenizer = load_tokenizer(model_dir)
            proba = {
                name: onnx_proba(
                    onnx_session(model_dir / name, threads=1), tokenizer, list(texts), batch_size=1
                )
                for name in formats
            }
            cached = ModelAnswers(tuple(card.get("labels", LABELS)), proba)
            _cache[key] = cached
    return cached
