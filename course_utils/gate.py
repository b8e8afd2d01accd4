"""The evaluation gate: a model folder ships only if its numbers, its files and its data all hold up.

CI/CD for ML adds a step ordinary CI lacks: before an image is built, the *model* must pass. This gate
checks an exported folder (docs/contracts.md) against configured thresholds and fails with a table of
what fell short:

- integrity: every file's sha256 matches the card, and no file is unlisted;
- quality: every format's val/test accuracy meets the minimum, and re-evaluating ONNX INT8 on the test
  split reproduces the card (a card can be edited; the weights cannot lie);
- parity: ONNX FP32 matches torch and INT8 agrees with it on labels;
- data validation: the evaluation data has the expected schema (ids, labels, splits, non-empty text),
  balanced labels, is the data the model was evaluated on (dataset sha256), and its val/test length
  distributions match the training reference (PSI);
- targets (when the card reports them): accuracy, calibration (ECE) and over-confident mistakes on the
  held-out natural challenge set, and test accuracy, for ONNX INT8, the format the service runs.
  `target_checks` is shared with the build, so `make model` prints the same table. Targets are goals,
  not release criteria: a missed target is reported (`blocking=False`) and fails the gate only with
  `GateThresholds(enforce_targets=True)` (`course-utils gate --enforce-targets`). The default model does
  not meet them all yet (docs/model.md, with the measured frontier); reporting them keeps the gap visible
  without lowering them.

Example:
    >>> from course_utils.gate import run_gate
    >>> checks = run_gate()                    # the default model folder  # doctest: +SKIP
    >>> any(check.fails_gate for check in checks)  # doctest: +SKIP
    False
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course_utils._hashing import sha256_file
from course_utils.config import get_settings
from course_utils.data import (
    LABELS,
    SPLITS,
    Example,
    challenge_sha256,
    dataset_sha256,
    load_challenge,
    load_sentiment,
)
from course_utils.drift import psi
from course_utils.errors import CourseUtilsError

__all__ = ["GateCheck", "GateThresholds", "run_gate", "target_checks", "validate_data"]

#: The format the targets are measured on: the one the reference service runs by default.
TARGET_FORMAT = "onnx_int8"


@dataclass(frozen=True, slots=True)
class GateThresholds:
    """What a model must reach to pass; the defaults are the course's release criteria."""

    min_accuracy: float = 0.90
    max_onnx_logit_diff: float = 1e-3
    min_int8_label_agreement: float = 0.97
    max_reevaluation_gap: float = 0.005
    min_label_share: float = 0.45
    max_length_psi: float = 0.10
    # Targets on TARGET_FORMAT (issue 17): natural texts, and confidence a user can trust.
    min_challenge_accuracy: float = 0.93
    max_challenge_ece: float = 0.05
    max_overconfident_wrong: float = 0.02
    min_test_accuracy: float = 0.95
    #: Whether a missed target fails the gate (True) or is reported only (False, the default).
    enforce_targets: bool = False


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One row of the gate's table: what was measured against what was required."""

    name: str
    ok: bool
    measured: str
    required: str
    detail: str = ""
    #: A failed blocking check fails the gate; a failed non-blocking one (a target) is only reported.
    blocking: bool = True

    @property
    def fails_gate(self) -> bool:
        """True when this row alone makes the gate fail."""
        return self.blocking and not self.ok


def _files(model_dir: Path, card: dict[str, Any], _: GateThresholds) -> list[GateCheck]:
    expected: dict[str, str] = card.get("files", {})
    on_disk = {p.name for p in model_dir.iterdir() if p.is_file() and p.name != "model_card.json"}
    bad = sorted(
        name for name in expected if name not in on_disk or sha256_file(model_dir / name) != expected[name]
    )
    unlisted = sorted(on_disk - set(expected))
    return [
        GateCheck(
            "file hashes",
            not bad and bool(expected),
            f"{len(expected) - len(bad)}/{len(expected)} match",
            "all match",
            f"missing or changed: {', '.join(bad)}" if bad else "",
        ),
        GateCheck(
            "no unlisted files",
            not unlisted,
            f"{len(unlisted)} unlisted",
            "0",
            f"not in the card: {', '.join(unlisted)}" if unlisted else "",
        ),
    ]


def _accuracy(_: Path, card: dict[str, Any], limits: GateThresholds) -> list[GateCheck]:
    checks = []
    for fmt, metrics in sorted(card.get("metrics", {}).items()):
        for split in ("val", "test"):
            value = float(metrics.get(f"{split}_accuracy", 0.0))
            checks.append(
                GateCheck(
                    f"{fmt} {split} accuracy",
                    value >= limits.min_accuracy,
                    f"{value:.4f}",
                    f">= {limits.min_accuracy:.2f}",
                )
            )
    return checks or [GateCheck("accuracy", False, "no metrics in the card", "metrics per format")]


def _parity(_: Path, card: dict[str, Any], limits: GateThresholds) -> list[GateCheck]:
    parity = card.get("parity", {})
    diff = float(parity.get("onnx_fp32_vs_torch_fp32", {}).get("max_abs_logit_diff", float("inf")))
    agreement = float(parity.get("onnx_int8_vs_torch_fp32", {}).get("label_agreement", 0.0))
    return [
        GateCheck(
            "ONNX FP32 vs torch logits",
            diff <= limits.max_onnx_logit_diff,
            f"{diff:.2g}",
            f"<= {limits.max_onnx_logit_diff:.0e}",
        ),
        GateCheck(
            "ONNX INT8 label agreement",
            agreement >= limits.min_int8_label_agreement,
            f"{agreement:.4f}",
            f">= {limits.min_int8_label_agreement:.2f}",
        ),
    ]


def _reevaluate(model_dir: Path, card: dict[str, Any], limits: GateThresholds) -> list[GateCheck]:
    from course_utils.onnx_model import load_tokenizer, onnx_logits, onnx_session
    from course_utils.training import accuracy

    session, tokenizer = onnx_session(model_dir / "model.int8.onnx"), load_tokenizer(model_dir)
    claims = card.get("metrics", {}).get("onnx_int8", {})
    splits = {"test": ("ONNX INT8 re-evaluated", load_sentiment("test"))}
    if "challenge_accuracy" in claims:
        splits["challenge"] = ("ONNX INT8 re-evaluated on challenge", load_challenge())
    checks = []
    for split, (name, examples) in splits.items():
        measured = accuracy(onnx_logits(session, tokenizer, [e.text for e in examples]), examples)
        claimed = float(claims.get(f"{split}_accuracy", -1.0))
        checks.append(
            GateCheck(
                name,
                abs(measured - claimed) <= limits.max_reevaluation_gap,
                f"{measured:.4f} (card {claimed:.4f})",
                f"within {limits.max_reevaluation_gap}",
            )
        )
    return checks


def target_checks(card: dict[str, Any], limits: GateThresholds | None = None) -> list[GateCheck]:
    """The model targets, read from a card's metrics and calibration sections (empty if it has none)."""
    limits = limits or GateThresholds()
    metrics = card.get("metrics", {}).get(TARGET_FORMAT, {})
    challenge = card.get("calibration", {}).get("per_format", {}).get(TARGET_FORMAT, {}).get("challenge")
    if challenge is None or "challenge_accuracy" not in metrics:
        return []
    accuracy = float(metrics["challenge_accuracy"])
    ece = float(challenge["ece_after"])
    wrong = float(challenge["overconfident_wrong_after"])
    test = float(metrics.get("test_accuracy", 0.0))
    return [
        GateCheck(
            "challenge accuracy (ONNX INT8)",
            accuracy >= limits.min_challenge_accuracy,
            f"{accuracy:.4f}",
            f">= {limits.min_challenge_accuracy:.2f}",
            blocking=limits.enforce_targets,
        ),
        GateCheck(
            "challenge ECE (ONNX INT8)",
            ece <= limits.max_challenge_ece,
            f"{ece:.4f}",
            f"<= {limits.max_challenge_ece:.2f}",
            f"before temperature scaling: {float(challenge['ece_before']):.4f}",
            blocking=limits.enforce_targets,
        ),
        GateCheck(
            "challenge wrong with confidence > 0.9",
            wrong <= limits.max_overconfident_wrong,
            f"{wrong:.4f}",
            f"<= {limits.max_overconfident_wrong:.2f}",
            f"before temperature scaling: {float(challenge['overconfident_wrong_before']):.4f}",
            blocking=limits.enforce_targets,
        ),
        GateCheck(
            "test accuracy (ONNX INT8)",
            test >= limits.min_test_accuracy,
            f"{test:.4f}",
            f">= {limits.min_test_accuracy:.2f}",
            blocking=limits.enforce_targets,
        ),
    ]


def _targets(_: Path, card: dict[str, Any], limits: GateThresholds) -> list[GateCheck]:
    return target_checks(card, limits)


def _lineage(_: Path, card: dict[str, Any], __: GateThresholds) -> list[GateCheck]:
    hashes = {"evaluated on this dataset": ("dataset_sha256", dataset_sha256)}
    if "challenge_sha256" in card:
        hashes["evaluated on this challenge set"] = ("challenge_sha256", challenge_sha256)
    checks = []
    for name, (key, current_sha256) in hashes.items():
        current, claimed = current_sha256(), str(card.get(key, ""))
        checks.append(
            GateCheck(
                name,
                claimed == current,
                claimed[:12] or "missing",
                current[:12],
                "" if claimed == current else f"the card's {key} differs: rebuild with `make model`",
            )
        )
    return checks


def validate_data(examples: list[Example], limits: GateThresholds | None = None) -> list[GateCheck]:
    """Schema, balance and distribution checks of a labelled dataset (every split in `examples`)."""
    limits = limits or GateThresholds()
    problems = []
    ids = Counter(e.id for e in examples)
    problems += [f"duplicate id {i!r}" for i, n in ids.items() if n > 1][:3]
    problems += [f"{e.id}: empty text" for e in examples if not e.text.strip()][:3]
    problems += [f"{e.id}: label {e.label!r}" for e in examples if e.label not in LABELS][:3]
    problems += [f"{e.id}: split {e.split!r}" for e in examples if e.split not in SPLITS][:3]
    checks = [GateCheck("data schema", not problems, f"{len(problems)} problems", "0", "; ".join(problems))]
    by_split: dict[str, list[Example]] = {}
    for example in examples:
        by_split.setdefault(example.split, []).append(example)
    for split, rows in sorted(by_split.items()):
        share = min(Counter(e.label for e in rows).get(label, 0) for label in LABELS) / len(rows)
        checks.append(
            GateCheck(
                f"{split} label balance",
                share >= limits.min_label_share,
                f"min share {share:.2f}",
                f">= {limits.min_label_share:.2f}",
            )
        )
    train = [len(e.text.split()) for e in by_split.get("train", [])]
    for split in ("val", "test"):
        if train and by_split.get(split):
            value = psi(train, [len(e.text.split()) for e in by_split[split]])
            checks.append(
                GateCheck(
                    f"{split} length vs train (PSI)",
                    value <= limits.max_length_psi,
                    f"{value:.3f}",
                    f"<= {limits.max_length_psi:.2f}",
                )
            )
    return checks


def _data(_: Path, __: dict[str, Any], limits: GateThresholds) -> list[GateCheck]:
    return validate_data(load_sentiment("all"), limits)


_STEPS: tuple[Callable[[Path, dict[str, Any], GateThresholds], list[GateCheck]], ...] = (
    _files,
    _accuracy,
    _parity,
    _reevaluate,
    _lineage,
    _data,
    _targets,
)


def run_gate(model_dir: Path | None = None, thresholds: GateThresholds | None = None) -> list[GateCheck]:
    """Every check of the gate, in order; a step that cannot run becomes a failed row, never a crash."""
    from course_utils.model import load_model_card

    folder = model_dir or get_settings().model_dir
    limits = thresholds or GateThresholds()
    try:
        card = load_model_card(folder)
    except (CourseUtilsError, ValueError) as exc:
        return [GateCheck("model card", False, "unreadable", "model_card.json", str(exc))]
    checks = []
    for step in _STEPS:
        try:
            checks += step(folder, card, limits)
        except Exception as exc:  # the gate reports every failure, it never crashes
            name = step.__name__.strip("_")
            checks.append(GateCheck(name, False, "error", "runs", f"{type(exc).__name__}: {exc}"))
    return checks
