"""Model files, tokenisation and backends of the reference service, on the real exported model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from inference import BackendUnavailableError, Prediction, TokenLimitError, TorchBackend, load_predictor
from model_card import ModelIntegrityError, read_model_card
from settings import Backend
from tokenizers import Tokenizer

CLEAR_REVIEWS = {
    "An absolute delight: wonderful acting, a moving story, I loved every minute of it.": "positive",
    "Dreadful. Boring, badly acted and far too long; I want my money back.": "negative",
}


def text_with_tokens(model_dir: Path, count: int) -> str:
    """A text that the model's tokenizer turns into exactly `count` tokens, [CLS] and [SEP] included."""
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    text = " ".join(["word"] * (count - 2))
    assert len(tokenizer.encode(text).ids) == count
    return text


def test_the_card_lists_every_file_the_service_loads(model_dir: Path) -> None:
    card = read_model_card(model_dir)
    assert {"tokenizer.json", "model.onnx", "model.int8.onnx"} <= set(card.files)
    assert card.labels == ("negative", "positive")
    assert card.max_tokens == 512


@pytest.mark.parametrize("backend", [Backend.ONNX_INT8, Backend.ONNX_FP32])
def test_clear_reviews_get_the_expected_label(model_dir: Path, backend: Backend) -> None:
    predictor, _ = load_predictor(model_dir, backend)
    results = predictor.predict_batch(list(CLEAR_REVIEWS))
    assert all(isinstance(result, Prediction) for result in results)
    assert [result.label for result in results] == list(CLEAR_REVIEWS.values())  # type: ignore[union-attr]
    assert all(0.5 <= result.confidence <= 1.0 for result in results)  # type: ignore[union-attr]


def test_padding_to_the_longest_text_does_not_change_predictions(model_dir: Path) -> None:
    predictor, _ = load_predictor(model_dir, Backend.ONNX_FP32)
    texts = ["Great!", *CLEAR_REVIEWS, " ".join(["a fine film"] * 40)]
    alone = [predictor.predict_batch([text])[0] for text in texts]
    together = predictor.predict_batch(texts)
    assert [p.label for p in together] == [p.label for p in alone]  # type: ignore[union-attr]
    np.testing.assert_allclose(
        [p.confidence for p in together],  # type: ignore[union-attr]
        [p.confidence for p in alone],  # type: ignore[union-attr]
        atol=1e-4,
    )


def test_the_token_limit_counts_cls_and_sep(model_dir: Path) -> None:
    predictor, _ = load_predictor(model_dir, Backend.ONNX_INT8)
    at_limit, over_limit = text_with_tokens(model_dir, 512), text_with_tokens(model_dir, 513)
    ok, too_long, short = predictor.predict_batch([at_limit, over_limit, "fine"])
    assert isinstance(ok, Prediction) and isinstance(short, Prediction)
    assert isinstance(too_long, TokenLimitError)
    assert (too_long.tokens, too_long.limit) == (513, 512)
    assert "at most 512" in str(too_long) and "shorten" in str(too_long)


def test_a_sha256_mismatch_refuses_to_load(broken_model_dir) -> None:
    folder = broken_model_dir(wrong_sha="model.int8.onnx")
    with pytest.raises(ModelIntegrityError, match=r"sha256 mismatch for 'model\.int8\.onnx'"):
        load_predictor(folder, Backend.ONNX_INT8)


def test_only_the_files_of_the_chosen_backend_are_needed(broken_model_dir) -> None:
    folder = broken_model_dir(wrong_sha="model.int8.onnx")
    predictor, _ = load_predictor(folder, Backend.ONNX_FP32)  # model.onnx and tokenizer.json are intact
    assert isinstance(predictor.predict_batch(["fine"])[0], Prediction)


def test_a_missing_file_refuses_to_load(broken_model_dir) -> None:
    with pytest.raises(ModelIntegrityError, match=r"'tokenizer\.json' is missing"):
        load_predictor(broken_model_dir(missing="tokenizer.json"), Backend.ONNX_INT8)


def test_a_missing_folder_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="set MODEL_DIR"):
        load_predictor(tmp_path / "nowhere", Backend.ONNX_INT8)


def test_a_file_absent_from_the_card_is_not_loaded(model_dir: Path, tmp_path: Path) -> None:
    import json

    for item in model_dir.iterdir():
        (tmp_path / item.name).symlink_to(item.resolve())
    card = json.loads((model_dir / "model_card.json").read_text())
    del card["files"]["tokenizer.json"]
    (tmp_path / "model_card.json").unlink()
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelIntegrityError, match="not listed"):
        load_predictor(tmp_path, Backend.ONNX_INT8)


def test_the_torch_backend_agrees_with_onnx(model_dir: Path) -> None:
    torch_predictor, _ = load_predictor(model_dir, Backend.TORCH)
    onnx_predictor, _ = load_predictor(model_dir, Backend.ONNX_FP32)
    texts = list(CLEAR_REVIEWS)
    from_torch, from_onnx = torch_predictor.predict_batch(texts), onnx_predictor.predict_batch(texts)
    assert [p.label for p in from_torch] == [p.label for p in from_onnx]  # type: ignore[union-attr]
    np.testing.assert_allclose(
        [p.confidence for p in from_torch],  # type: ignore[union-attr]
        [p.confidence for p in from_onnx],  # type: ignore[union-attr]
        atol=1e-3,
    )


def test_the_torch_backend_outside_the_course_environment_says_what_to_do(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "course_utils.model", None)  # makes the import fail, as in the image
    with pytest.raises(BackendUnavailableError, match=r"course environment.*BACKEND=onnx-int8"):
        TorchBackend(model_dir)
