"""A small sentiment service with dynamic batching: the service notebook 06 measures, scales and operates.

    python -m course_utils.teaching_service --port 8001 --backend onnx-fp32 --max-batch-size 16

It serves the exported ONNX model (`MODEL_DIR`, sha256-checked) through `course_utils.batching.Batcher`:

- `POST /predict` `{"text": "..."}` -> `{"label": "positive"|"negative", "confidence": float}`; 503 when the
  batcher's queue is full.
- `GET /stats` -> the service's options and the batcher's totals (requests, batches, mean batch size, a
  histogram of batch sizes, mean queue wait). It answers once the model is loaded and warmed up.

Confidences are calibrated: the exported model already divides its logits by the temperature fitted on the
validation split (the model card's `calibration`), so a softmax is all that is left to do here.

This is teaching material, not a capstone answer. It leaves out on purpose what the capstone contract asks
of a production service (`capstone/README.md`): liveness and readiness endpoints, input limits and their
status codes, Prometheus metrics, structured request logs, the model version in every answer.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from course_utils.batching import Batcher, QueueFullError
from course_utils.config import get_settings
from course_utils.onnx_model import encode, load_tokenizer, onnx_session, softmax, verify_model_dir

__all__ = ["BACKENDS", "OnnxSentiment", "ServiceOptions", "create_app", "main"]

#: The ONNX file each backend serves, in the exported model folder.
BACKENDS = {"onnx-int8": "model.int8.onnx", "onnx-fp32": "model.onnx"}
_WARM_UP_TEXTS = ["A short warm-up sentence.", "Another one, so the first real batch is not the slow one."]


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """What can be changed from the command line; `model_dir=None` means the course's `MODEL_DIR`."""

    backend: Literal["onnx-int8", "onnx-fp32"] = "onnx-int8"
    max_batch_size: int = 16
    max_wait_ms: float = 2.0
    max_queue: int = 256
    ort_threads: int = 0
    model_dir: Path | None = None


class OnnxSentiment:
    """Texts in, `(label, confidence)` out: the tokenizer and one ONNX Runtime session, checked by sha256.

    Built on `course_utils.onnx_model` (the card, the sha256 check, the tokenizer, the session and the
    batch encoding), so it serves exactly what the grader and the gate evaluate.
    """

    def __init__(self, model_dir: Path, *, backend: str, threads: int = 0) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r} is unknown: use one of {sorted(BACKENDS)}")
        card = verify_model_dir(model_dir, files=[BACKENDS[backend], "tokenizer.json"])
        self.version = str(card["version"])
        self.labels: list[str] = list(card["labels"])
        self.tokenizer = load_tokenizer(model_dir)
        self.session = onnx_session(model_dir / BACKENDS[backend], threads=threads)

    def __call__(self, texts: list[str]) -> list[tuple[str, float]]:
        """One forward pass over the whole batch (cut at 512 tokens, padded to its longest text)."""
        (logits,) = self.session.run(["logits"], encode(self.tokenizer, texts))
        proba = softmax(np.asarray(logits, dtype=np.float64))
        return [(self.labels[int(row.argmax())], float(row.max())) for row in proba]


class TextIn(BaseModel):
    text: str


class SentimentOut(BaseModel):
    label: str
    confidence: float


def create_app(options: ServiceOptions | None = None) -> FastAPI:
    """The FastAPI app: the model is loaded, warmed up and the batcher started before it takes requests."""
    options = options or ServiceOptions()
    model_dir = options.model_dir or get_settings().model_dir

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model = OnnxSentiment(model_dir, backend=options.backend, threads=options.ort_threads)
        model(_WARM_UP_TEXTS)  # the first run allocates ORT's buffers; do it before any user waits
        batcher: Batcher[str, tuple[str, float]] = Batcher(
            model,
            max_batch_size=options.max_batch_size,
            max_wait_s=options.max_wait_ms / 1000,
            max_queue=options.max_queue,
        )
        batcher.start()
        app.state.model, app.state.batcher = model, batcher
        yield
        await batcher.stop()

    app = FastAPI(title="Teaching sentiment service (notebook 06)", lifespan=lifespan)

    @app.post("/predict")
    async def predict(body: TextIn) -> SentimentOut:
        try:
            answer = await app.state.batcher.submit(body.text)
        except QueueFullError as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from exc
        label, confidence = answer.value
        return SentimentOut(label=label, confidence=confidence)

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        settings = {key: value for key, value in asdict(options).items() if key != "model_dir"}
        return {**settings, "model_version": app.state.model.version, **app.state.batcher.stats.as_dict()}

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve `create_app` with the options of the command line (blocks until Ctrl-C or SIGTERM)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="onnx-int8")
    parser.add_argument("--max-batch-size", type=int, default=16, help="1 turns batching off")
    parser.add_argument("--max-wait-ms", type=float, default=2.0, help="longest wait for company")
    parser.add_argument("--max-queue", type=int, default=256, help="waiting requests before 503")
    parser.add_argument("--ort-threads", type=int, default=0, help="ONNX Runtime threads; 0 = every core")
    parser.add_argument("--log-level", default="warning", help="uvicorn's log level")
    args = parser.parse_args(argv)
    options = ServiceOptions(
        backend=args.backend,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        ort_threads=args.ort_threads,
    )
    uvicorn.run(create_app(options), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
