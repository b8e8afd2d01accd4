"""Texts in, predictions out: tokenisation, the model backends, softmax.

Three backends compute the same logits: ONNX Runtime with the INT8 model (default, fastest on CPU), ONNX
Runtime FP32, and PyTorch (imported lazily: the serving image has no torch). The service never returns
logits, only the label and its softmax probability.

That probability is calibrated: the exported model divides its logits by the temperature fitted on the
validation split (the card's `calibration.temperature`) inside every format, so a plain softmax here gives
confidences that match accuracy. Dividing again here would double the scaling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from model_card import ModelCard, read_model_card, read_verified_bytes, verify_file
from settings import Backend

__all__ = [
    "BackendUnavailableError",
    "LogitsBackend",
    "OnnxBackend",
    "Prediction",
    "Predictor",
    "TokenLimitError",
    "TorchBackend",
    "load_predictor",
]

TOKENIZER_FILE = "tokenizer.json"
ONNX_FILES = {Backend.ONNX_INT8: "model.int8.onnx", Backend.ONNX_FP32: "model.onnx"}
TORCH_FILES = ("model.safetensors", "config.json")


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float


class TokenLimitError(ValueError):
    """A text is longer than the model accepts; the service answers 400 with this message."""

    def __init__(self, tokens: int, limit: int) -> None:
        self.tokens = tokens
        self.limit = limit
        super().__init__(
            f"text has {tokens} tokens (counting [CLS] and [SEP]) but the model accepts at most {limit}; "
            "shorten the text or split it into several requests"
        )


class BackendUnavailableError(RuntimeError):
    """The configured backend cannot run in this environment (e.g. BACKEND=torch in the serving image)."""


class LogitsBackend(Protocol):
    """Anything that maps padded token ids and their attention mask to logits of shape [batch, labels]."""

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...


class OnnxBackend:
    """ONNX Runtime on CPU, built from the verified bytes of model.onnx or model.int8.onnx."""

    def __init__(self, model_bytes: bytes, *, threads: int) -> None:
        # How many threads is a policy of the service (ServiceSettings.threads_per_worker), not of this class;
        # ONNX Runtime would read 0 as "one per core", the oversubscription that policy exists to avoid.
        if threads < 1:
            raise ValueError(
                f"OnnxBackend needs threads >= 1, got {threads!r}: pass ServiceSettings.threads_per_worker() "
                "(or ORT_THREADS), which already turns 'automatic' into a number"
            )
        options = ort.SessionOptions()
        # One session serves every inference worker: `run` is thread-safe, each call uses its own threads.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # parallelism inside the matmuls, not across ops
        self._session = ort.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        (logits,) = self._session.run(["logits"], feeds)
        return np.asarray(logits, dtype=np.float32)


class TorchBackend:
    """PyTorch eager mode through `course_utils.model.load_classifier` (course environment only)."""

    def __init__(self, model_dir: Path) -> None:
        try:
            import torch
            from course_utils.model import load_classifier
        except ImportError as exc:
            raise BackendUnavailableError(
                f"BACKEND=torch needs PyTorch and course_utils, which only the course environment has "
                f"({exc}); run the service from the course .venv (`make serve`) or use BACKEND=onnx-int8"
            ) from exc
        self._torch = torch
        self._model = load_classifier(model_dir)

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            logits = self._model(torch.from_numpy(input_ids), torch.from_numpy(attention_mask))
        return np.asarray(logits.float().cpu().numpy(), dtype=np.float32)


class Predictor:
    """Tokenises a batch, pads it to its longest text, runs the backend, turns logits into predictions."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        backend: LogitsBackend,
        *,
        labels: Sequence[str],
        max_tokens: int,
    ) -> None:
        # The exported tokenizer.json may carry truncation/padding settings from training; the service
        # needs the true length to enforce max_tokens, and pads each batch itself.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._backend = backend
        self._labels = tuple(labels)
        self._pad_id = tokenizer.token_to_id("[PAD]") or 0
        self.max_tokens = max_tokens

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction | TokenLimitError]:
        """One entry per text: a prediction, or a TokenLimitError for a text that is too long."""
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = [len(encoding.ids) for encoding in encodings]
        fits = [i for i, length in enumerate(lengths) if length <= self.max_tokens]
        results: list[Prediction | TokenLimitError] = [
            TokenLimitError(length, self.max_tokens) for length in lengths
        ]
        if not fits:
            return results

        # Pad to the longest text of THIS batch (not to max_tokens): attention cost grows with length.
        longest = max(lengths[i] for i in fits)
        input_ids = np.full((len(fits), longest), self._pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(fits), longest), dtype=np.int64)
        for row, i in enumerate(fits):
            input_ids[row, : lengths[i]] = encodings[i].ids
            attention_mask[row, : lengths[i]] = 1

        probabilities = _softmax(self._backend.logits(input_ids, attention_mask))
        best = probabilities.argmax(axis=1)
        for row, i in enumerate(fits):
            results[i] = Prediction(self._labels[best[row]], float(probabilities[row, best[row]]))
        return results


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)  # subtract the max: exp() cannot overflow
    exp = np.exp(shifted)
    probabilities: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return probabilities


def load_predictor(model_dir: Path, backend: Backend, *, ort_threads: int = 1) -> tuple[Predictor, ModelCard]:
    """Read the card, verify and load the tokenizer and the backend's model files, build the Predictor.

    `ort_threads` (>= 1) is used by the ONNX backends; the service passes `threads_per_worker()`.
    Raises `ModelIntegrityError` (missing file, sha256 mismatch) or `BackendUnavailableError`.
    """
    card = read_model_card(model_dir)
    tokenizer = Tokenizer.from_str(read_verified_bytes(model_dir, card, TOKENIZER_FILE).decode("utf-8"))
    logits_backend: LogitsBackend
    if backend is Backend.TORCH:
        for name in TORCH_FILES:
            verify_file(model_dir, card, name)
        logits_backend = TorchBackend(model_dir)
    else:
        model_bytes = read_verified_bytes(model_dir, card, ONNX_FILES[backend])
        logits_backend = OnnxBackend(model_bytes, threads=ort_threads)
    predictor = Predictor(tokenizer, logits_backend, labels=card.labels, max_tokens=card.max_tokens)
    return predictor, card
