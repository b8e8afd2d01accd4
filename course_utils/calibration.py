"""Calibration: is a confidence of 0.9 right nine times in ten? Measure it, and fix it with one number.

A fine-tuned classifier's softmax is usually over-confident on texts unlike its training data. Temperature
scaling (Guo et al., 2017) divides the logits by one scalar T > 1 fitted on held-out data: the predicted
label never changes (so accuracy does not either), only how sure the model says it is.

- `fit_temperature`: the T that minimises the negative log-likelihood of the validation split;
- `expected_calibration_error` (ECE): the gap between confidence and accuracy, averaged over 15 equal-width
  bins of the *predicted label's* probability, weighted by how many texts fall in each bin;
- `reliability_bins`: the same bins as data (for a model card), and `plot_reliability` draws them;
- `overconfident_error_rate`: the share of texts that are wrong with a confidence above 0.9, the mistakes
  a user is least likely to question.

Example:
    >>> import numpy as np
    >>> from course_utils.calibration import expected_calibration_error, fit_temperature
    >>> logits, labels = np.array([[0.0, 4.0], [0.0, 4.0], [4.0, 0.0]]), np.array([1, 0, 0])
    >>> fit_temperature(logits, labels) > 1.0   # one confident mistake: soften every prediction
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

__all__ = [
    "ECE_BINS",
    "OVERCONFIDENT",
    "expected_calibration_error",
    "fit_temperature",
    "overconfident_error_rate",
    "plot_reliability",
    "reliability_bins",
    "scaled_proba",
]

#: Equal-width confidence bins over [0, 1]; with two labels only the upper half (0.5-1) is ever used.
ECE_BINS = 15
#: A wrong answer above this confidence counts as over-confident.
OVERCONFIDENT = 0.9
#: Search range of T: below 1/20 or above 20 the model is broken, not miscalibrated.
_LOG_T_BOUNDS = (-3.0, 3.0)


def scaled_proba(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax of `logits / temperature`, row-wise and overflow-safe."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    shifted = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    proba: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return proba


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    shifted = scaled - scaled.max(axis=1, keepdims=True)
    log_proba = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_proba[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the mean negative log-likelihood of `labels` (class ids) under `logits`.

    Searched over log T (bounded, so T stays in [0.05, 20]): NLL is smooth and unimodal in log T.
    """
    labels = np.asarray(labels)
    if len(labels) == 0 or len(labels) != len(logits):
        raise ValueError(
            f"fit_temperature needs one label per row of logits, got {len(logits)} rows and {len(labels)} "
            "labels; pass the validation split's logits and class ids"
        )
    result = minimize_scalar(
        lambda log_t: _nll(logits, labels, float(np.exp(log_t))), bounds=_LOG_T_BOUNDS, method="bounded"
    )
    return float(np.exp(result.x))


def _confidence_and_correct(proba: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted = proba.argmax(axis=1)
    return proba.max(axis=1), predicted == np.asarray(labels)


def _bins(proba: np.ndarray, labels: np.ndarray, bins: int) -> list[dict[str, float]]:
    """Unrounded statistics of every non-empty bin; bin i holds confidences in (edges[i], edges[i+1]]."""
    confidence, correct = _confidence_and_correct(proba, labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    return [
        {
            "lower": float(edges[i]),
            "upper": float(edges[i + 1]),
            "count": int((index == i).sum()),
            "confidence": float(confidence[index == i].mean()),
            "accuracy": float(correct[index == i].mean()),
        }
        for i in range(bins)
        if (index == i).any()
    ]


def reliability_bins(proba: np.ndarray, labels: np.ndarray, *, bins: int = ECE_BINS) -> list[dict[str, Any]]:
    """Per non-empty confidence bin: its range, how many texts, their mean confidence and their accuracy."""
    return [{key: round(value, 4) for key, value in row.items()} for row in _bins(proba, labels, bins)]


def expected_calibration_error(proba: np.ndarray, labels: np.ndarray, *, bins: int = ECE_BINS) -> float:
    """Sum over bins of (share of texts in the bin) x |mean confidence - accuracy|; 0 is perfect."""
    total = len(labels)
    return float(
        sum(
            row["count"] / total * abs(row["confidence"] - row["accuracy"])
            for row in _bins(proba, labels, bins)
        )
    )


def overconfident_error_rate(
    proba: np.ndarray, labels: np.ndarray, *, threshold: float = OVERCONFIDENT
) -> float:
    """Share of all texts whose predicted label is wrong while its probability is above `threshold`."""
    confidence, correct = _confidence_and_correct(proba, labels)
    return float(((confidence > threshold) & ~correct).mean())


def plot_reliability(
    diagrams: dict[str, dict[str, list[dict[str, Any]]]], path: Path, *, title: str = ""
) -> Path:
    """Draw reliability diagrams, one panel per split, "before" and "after" scaling in each; save a PNG.

    `diagrams` maps a split name to {"before": bins, "after": bins} as made by `reliability_bins`.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on build machines; must precede pyplot
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(diagrams), figsize=(4.2 * len(diagrams), 4.2), squeeze=False)
    for axis, (split, curves) in zip(axes[0], diagrams.items(), strict=True):
        axis.plot([0.5, 1.0], [0.5, 1.0], color="grey", linestyle=":", label="perfectly calibrated")
        for name, style in (("before", "o--"), ("after", "s-")):
            rows = curves[name]
            axis.plot(
                [r["confidence"] for r in rows], [r["accuracy"] for r in rows], style, label=f"{name} scaling"
            )
        axis.set(
            title=split,
            xlabel="mean confidence of the predicted label",
            ylabel="accuracy in the bin",
            xlim=(0.45, 1.02),
            ylim=(0.0, 1.02),
        )
        axis.grid(alpha=0.3)
        axis.legend(loc="lower right", fontsize="small")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
