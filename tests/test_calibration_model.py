"""Calibration: the metrics on known cases, the temperature inside the model, and what the card reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from course_utils import export
from course_utils.calibration import (
    ECE_BINS,
    expected_calibration_error,
    fit_temperature,
    overconfident_error_rate,
    plot_reliability,
    reliability_bins,
    scaled_proba,
)
from course_utils.config import get_settings
from course_utils.data import load_challenge
from course_utils.gate import target_checks
from course_utils.model import SentimentClassifier, load_classifier, load_model_card, load_tokenizer


def _calibrated_sample(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax is the true probability of each label (labels drawn from it)."""
    rng = np.random.default_rng(seed)
    margin = rng.normal(0.0, 2.5, n)
    logits = np.stack([np.zeros(n), margin], axis=1)
    labels = (rng.random(n) < scaled_proba(logits)[:, 1]).astype(int)
    return logits, labels


def test_fit_temperature_recovers_the_overconfidence_factor() -> None:
    logits, labels = _calibrated_sample(20_000)
    assert fit_temperature(logits * 3.0, labels) == pytest.approx(3.0, rel=0.08)
    assert fit_temperature(logits, labels) == pytest.approx(1.0, rel=0.08)


def test_fit_temperature_refuses_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="one label per row"):
        fit_temperature(np.zeros((3, 2)), np.array([0, 1]))


def test_ece_on_a_hand_computed_case() -> None:
    # Four answers at confidence 0.9, two of them right: |0.9 - 0.5| = 0.4 in the single occupied bin.
    proba = np.array([[0.1, 0.9], [0.1, 0.9], [0.9, 0.1], [0.9, 0.1]])
    labels = np.array([1, 0, 0, 1])
    assert expected_calibration_error(proba, labels) == pytest.approx(0.4)
    assert overconfident_error_rate(proba, labels) == 0.0  # 0.9 is not *above* 0.9
    assert overconfident_error_rate(proba, labels, threshold=0.85) == 0.5


def test_scaling_lowers_the_ece_of_an_overconfident_model() -> None:
    logits, labels = _calibrated_sample(5_000, seed=1)
    before = expected_calibration_error(scaled_proba(logits * 4.0), labels)
    temperature = fit_temperature(logits * 4.0, labels)
    after = expected_calibration_error(scaled_proba(logits * 4.0, temperature), labels)
    assert before > 0.05 > after
    unchanged = scaled_proba(logits * 4.0).argmax(1) == scaled_proba(logits * 4.0, temperature).argmax(1)
    assert unchanged.all(), "temperature scaling must never change a predicted label"


def test_reliability_bins_partition_the_texts() -> None:
    logits, labels = _calibrated_sample(1_000, seed=2)
    rows = reliability_bins(scaled_proba(logits), labels)
    assert sum(row["count"] for row in rows) == 1_000
    assert all(0.5 - 1 / ECE_BINS <= row["lower"] < row["confidence"] <= row["upper"] for row in rows)
    assert [row["lower"] for row in rows] == sorted(row["lower"] for row in rows)


def test_plot_reliability_writes_a_png(tmp_path: Path) -> None:
    logits, labels = _calibrated_sample(300, seed=3)
    bins = reliability_bins(scaled_proba(logits), labels)
    path = plot_reliability({"test": {"before": bins, "after": bins}}, tmp_path / "r.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _tiny_classifier() -> SentimentClassifier:
    config = BertConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
    )
    torch.manual_seed(0)
    return SentimentClassifier(BertModel(config, add_pooling_layer=False)).eval()


def test_the_temperature_divides_the_logits_and_is_saved_with_the_weights() -> None:
    model = _tiny_classifier()
    ids, mask = torch.tensor([[1, 5, 7, 2]]), torch.ones(1, 4, dtype=torch.long)
    raw = model(ids, mask)
    model.set_temperature(2.5)
    assert torch.allclose(model(ids, mask), raw / 2.5)
    assert float(model.state_dict()["temperature"]) == 2.5
    with pytest.raises(ValueError, match="must be > 0"):
        model.set_temperature(0.0)


@pytest.fixture(scope="module")
def card() -> dict[str, object]:
    folder = get_settings().model_dir
    assert (folder / "model_card.json").is_file(), f"{folder} is not built: run `make model` (make test does)"
    return load_model_card(folder)


def test_the_card_temperature_is_the_one_inside_the_model(card: dict[str, object]) -> None:
    calibration = card["calibration"]
    assert isinstance(calibration, dict) and calibration["logits_are_scaled"] is True
    model = load_classifier(get_settings().model_dir)
    assert float(model.temperature) == pytest.approx(calibration["temperature"], rel=1e-5)


def test_the_card_reports_calibration_per_format_and_split(card: dict[str, object]) -> None:
    calibration = card["calibration"]
    assert isinstance(calibration, dict)
    assert set(calibration["per_format"]) == {"torch_fp32", "torch_int8", "onnx_fp32", "onnx_int8"}
    for per_split in calibration["per_format"].values():
        assert set(per_split) == {"test", "challenge", "ood"}
    for curves in calibration["reliability"].values():
        assert curves["before"] and curves["after"]
    files = card["files"]
    assert isinstance(files, dict) and calibration["reliability_plot"] in files


def test_onnx_int8_reproduces_the_card_calibration_on_challenge(card: dict[str, object]) -> None:
    folder = get_settings().model_dir
    challenge = load_challenge()
    session = export.onnx_session(folder / "model.int8.onnx")
    logits = export.onnx_logits(session, load_tokenizer(folder), [e.text for e in challenge])
    labels = np.array([e.label_id for e in challenge])
    calibration = card["calibration"]
    assert isinstance(calibration, dict)
    reported = calibration["per_format"]["onnx_int8"]["challenge"]
    assert expected_calibration_error(scaled_proba(logits), labels) == pytest.approx(
        reported["ece_after"], abs=1e-3
    )
    temperature = calibration["temperature"]
    before = expected_calibration_error(scaled_proba(logits * temperature), labels)
    assert before == pytest.approx(reported["ece_before"], abs=1e-3)


def test_the_card_targets_are_the_gate_targets(card: dict[str, object]) -> None:
    targets = card["targets"]
    assert isinstance(targets, list) and len(targets) == 4
    expected = [
        {"name": c.name, "measured": c.measured, "required": c.required, "met": c.ok}
        for c in target_checks(card)
    ]
    assert targets == expected
    phenomena = card["challenge_phenomena"]
    assert isinstance(phenomena, dict)
    assert {"implicit", "negation", "contrast", "multi_sentence", "slang", "non_ascii"} <= set(
        phenomena["onnx_int8"]
    )
