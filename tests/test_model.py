"""The default model: integrity checks, the exported folder and its card, caching, reproducible training."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils import export
from course_utils._hashing import sha256_file
from course_utils.config import get_settings
from course_utils.data import load_sentiment
from course_utils.errors import ModelIntegrityError, ModelNotBuiltError
from course_utils.model import (
    BASE_MODEL_SHA256,
    LABELS,
    SentimentClassifier,
    base_model_dir,
    encode,
    load_classifier,
    load_encoder,
    load_model_card,
    load_tokenizer,
    logits_by_length,
    predict_proba,
    verify_model_dir,
)
from course_utils.training import TrainConfig, fine_tune

FORMATS = ("torch_fp32", "torch_int8", "onnx_fp32", "onnx_int8")


@pytest.fixture(scope="module")
def model_dir() -> Path:
    folder = get_settings().model_dir
    assert (folder / "model_card.json").is_file(), f"{folder} is not built: run `make model` (make test does)"
    return folder


@pytest.fixture(scope="module")
def card(model_dir: Path) -> dict[str, object]:
    return load_model_card(model_dir)


def _linked_copy(source: Path, target: Path) -> Path:
    """A copy of a model folder made of symlinks, so one file can be swapped without copying 200 MB."""
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).symlink_to(path)
    return target


def test_base_model_hash_is_the_documented_one() -> None:
    assert sha256_file(base_model_dir() / "model.safetensors") == BASE_MODEL_SHA256


def test_encoder_refuses_weights_with_another_hash(tmp_path: Path) -> None:
    folder = _linked_copy(base_model_dir(), tmp_path / "base")
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(ModelIntegrityError, match=r"sha256 of .*model\.safetensors"):
        load_encoder(folder)


def test_missing_model_folder_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(ModelNotBuiltError, match="make model"):
        load_model_card(tmp_path / "nowhere")


def test_encode_pads_to_the_longest_and_keeps_sep_when_truncating() -> None:
    tokenizer = load_tokenizer()
    batch = encode(tokenizer, ["short", "a much longer sentence than the first one"])
    assert batch["input_ids"].dtype == np.int64
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()
    truncated = encode(tokenizer, ["word " * 100], max_length=16)
    sep = tokenizer.token_to_id("[SEP]")
    assert truncated["input_ids"].shape == (1, 16) and truncated["input_ids"][0, -1] == sep


def test_card_lists_every_file_with_a_matching_hash(model_dir: Path, card: dict[str, object]) -> None:
    files = card["files"]
    assert isinstance(files, dict)
    on_disk = {p.name for p in model_dir.iterdir()} - {"model_card.json"}
    assert set(files) == on_disk
    assert {"model.safetensors", "model.onnx", "model.int8.onnx", "tokenizer.json", "config.json"} <= on_disk
    verify_model_dir(model_dir)  # raises on any mismatch


def test_card_reports_every_format(card: dict[str, object]) -> None:
    for key in ("metrics", "sizes_bytes", "latency_ms"):
        section = card[key]
        assert isinstance(section, dict) and set(section) == set(FORMATS), key
    assert card["labels"] == list(LABELS) and card["max_tokens"] == 512
    assert str(card["version"]).startswith("1.0.0+")
    for name in (
        "seeds",
        "dataset_sha256",
        "challenge_sha256",
        "packages",
        "parity",
        "train_config",
        "build_key",
    ):
        assert card[name], name
    for key in ("calibration", "challenge_phenomena", "targets"):
        assert card[key], key
    metrics = card["metrics"]
    assert isinstance(metrics, dict)
    for per_format in metrics.values():
        assert {"val_accuracy", "test_accuracy", "ood_accuracy", "challenge_accuracy"} <= set(per_format)
        assert {"val_natural_accuracy", "test_natural_accuracy"} <= set(per_format)


def test_every_format_reaches_the_accuracy_target(card: dict[str, object]) -> None:
    metrics = card["metrics"]
    assert isinstance(metrics, dict)
    low = {fmt: m["test_accuracy"] for fmt, m in metrics.items() if m["test_accuracy"] < 0.90}
    assert not low, f"test accuracy below 0.90: {low}"


def test_exports_agree_with_the_torch_model(card: dict[str, object]) -> None:
    parity = card["parity"]
    assert isinstance(parity, dict)
    assert parity["onnx_fp32_vs_torch_fp32"]["max_abs_logit_diff"] < 1e-3
    assert parity["onnx_fp32_vs_torch_fp32"]["label_agreement"] == 1.0
    assert parity["onnx_int8_vs_torch_fp32"]["label_agreement"] >= 0.97


def test_int8_is_smaller_than_fp32(card: dict[str, object]) -> None:
    sizes = card["sizes_bytes"]
    assert isinstance(sizes, dict)
    assert sizes["onnx_int8"] < sizes["onnx_fp32"] / 3
    assert sizes["torch_int8"] < sizes["torch_fp32"]


def test_onnx_int8_reproduces_the_card_accuracy(model_dir: Path, card: dict[str, object]) -> None:
    test = load_sentiment("test")
    session = export.onnx_session(model_dir / "model.int8.onnx")
    proba = export.onnx_proba(session, load_tokenizer(model_dir), [e.text for e in test])
    measured = float((proba.argmax(1) == np.array([e.label_id for e in test])).mean())
    metrics = card["metrics"]
    assert isinstance(metrics, dict)
    assert round(measured, 4) == metrics["onnx_int8"]["test_accuracy"]


def test_loaded_classifier_reads_sentiment(model_dir: Path) -> None:
    model = load_classifier(model_dir)
    assert not model.training
    proba = predict_proba(
        model, load_tokenizer(model_dir), ["This movie is excellent!", "Awful, a waste of money."]
    )
    assert proba.shape == (2, 2)
    assert proba[0].argmax() == LABELS.index("positive") and proba[1].argmax() == LABELS.index("negative")


def test_load_classifier_refuses_a_tampered_state_dict(model_dir: Path, tmp_path: Path) -> None:
    folder = _linked_copy(model_dir, tmp_path / "model")
    (folder / "model.safetensors").unlink()
    shutil.copy2(model_dir / "model.safetensors", folder / "model.safetensors")
    with (folder / "model.safetensors").open("r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelIntegrityError, match=r"model\.safetensors"):
        load_classifier(folder)


def test_build_is_cached_when_inputs_are_unchanged(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_build(*args: object) -> None:
        raise AssertionError("build_model retrained although its inputs did not change")

    monkeypatch.setattr(export, "_write_folder", must_not_build)
    assert export.build_model(model_dir) == model_dir


def test_build_key_follows_every_training_input() -> None:
    assert export.build_key(TrainConfig()) == export.build_key(TrainConfig())
    assert export.build_key(TrainConfig(seed=1)) != export.build_key(TrainConfig(seed=2))
    assert export.build_key(TrainConfig(epochs=1)) != export.build_key(TrainConfig(epochs=2))


def test_batches_group_texts_of_similar_length_and_cover_every_example() -> None:
    from course_utils.training import _batches

    train, tokenizer = load_sentiment("train")[:256], load_tokenizer()
    batches = _batches(tokenizer, train, TrainConfig(batch_size=16), random.Random(0))
    assert sorted(int(label) for _, _, labels in batches for label in labels) == sorted(
        e.label_id for e in train
    )
    padding = sum(int((mask == 0).sum()) for _, mask, _ in batches)
    lengths = [len(e.ids) for e in tokenizer.encode_batch([e.text for e in train])]
    unsorted = sum(max(chunk) * len(chunk) - sum(chunk) for chunk in np.array_split(lengths, 16))
    assert padding < unsorted / 2, f"bucketing left {padding} padding tokens, random batches {unsorted}"


def test_failed_build_leaves_the_old_folder_and_no_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "model_card.json").write_text(json.dumps({"build_key": "old"}))

    def crash(*args: object) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(export, "_write_folder", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        export.build_model(target)
    assert json.loads((target / "model_card.json").read_text()) == {"build_key": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_fine_tuning_is_reproducible_with_fixed_seeds() -> None:
    train = load_sentiment("train")[:16]
    config = TrainConfig(epochs=1, batch_size=8)
    first, _ = fine_tune(config, train=train, progress=False)
    second, _ = fine_tune(config, train=train, progress=False)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{name} differs between two runs with the same seed"


def test_logits_by_length_batches_similar_lengths_and_keeps_input_order() -> None:
    tokenizer = load_tokenizer()
    texts = ["a much longer sentence than all of the others here", "short", "a middling one", "hi there"]
    widths: list[int] = []

    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        widths.append(batch["input_ids"].shape[1])
        # Per row: its real length and its first word's id, neither of which depends on its neighbours.
        return np.stack([batch["attention_mask"].sum(1), batch["input_ids"][:, 1]], axis=1)

    got = logits_by_length(run, tokenizer, texts, batch_size=2)
    expected = np.concatenate([run(encode(tokenizer, [text])) for text in texts])
    assert np.array_equal(got, expected), "rows must come back in the order of the texts"
    assert widths[:2] == sorted(widths[:2]) and widths[0] < widths[1], "batches must group similar lengths"
    with pytest.raises(ValueError, match="non-empty"):
        logits_by_length(run, tokenizer, [])


class _FirstTokenPooling(SentimentClassifier):
    """A stand-in for another architecture: fine_tune must train what `classifier` builds."""


def test_fine_tune_trains_the_classifier_it_is_given() -> None:
    train = load_sentiment("train")[:8]
    model, result = fine_tune(
        TrainConfig(epochs=1, batch_size=8), train=train, classifier=_FirstTokenPooling, progress=False
    )
    assert isinstance(model, _FirstTokenPooling) and not model.training
    assert (result.texts, result.hand_written_texts) == (8, sum(e.hand_written for e in train))


def test_card_records_build_phases_and_training_data(card: dict[str, object]) -> None:
    phases = card["build_phases"]
    assert isinstance(phases, dict)
    assert list(phases) == ["train", "calibrate", "export", "evaluate", "report"]
    assert all(row["wall_s"] >= 0 and row["cpu_s"] >= 0 for row in phases.values())
    train = load_sentiment("train")
    assert card["train_texts"] == {"total": len(train), "hand_written": sum(e.hand_written for e in train)}
