"""Capstone starter: serve the fine-tuned MiniLM sentiment model behind FastAPI.

Run it:   MODEL_DIR=../artifacts/model uvicorn app:app --app-dir src --reload
Docs:     http://127.0.0.1:8000/docs

What runs already: GET /health. Everything else is yours; the contract in ../README.md (written from
`course_utils.contract`, which the grader and tests/ import) lists every endpoint, status code, metric and
log field the grader checks. Search for `TODO(student)`. Keep modules small: put the
model code in `src/inference.py`, settings in `src/settings.py`, and import them here.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

# TODO(student): read settings with pydantic-settings (a `Settings(BaseSettings)` class in settings.py):
# MODEL_DIR, the backend (ONNX INT8 by default), limits (body size, batch length), ... Never read os.environ
# anywhere else.
MODEL_DIR = Path(os.environ.get("MODEL_DIR", "model"))

# TODO(student): load the model ONCE in a lifespan handler (`FastAPI(lifespan=...)`), not at import time:
#   - read model_card.json and check the sha256 of every file you load against its `files`;
#   - tokenizers.Tokenizer.from_file(MODEL_DIR / "tokenizer.json"), with truncation and padding disabled;
#   - onnxruntime.InferenceSession(... "model.int8.onnx" ...);
#   - run a few warm-up predictions before /ready says 200.
app = FastAPI(title="Sentiment service (capstone starter)")


class HealthResponse(BaseModel):
    status: str = "ok"
    model_loaded: bool


@app.get("/health")
async def health() -> HealthResponse:
    """Liveness: the process is up. Never touches the model."""
    # TODO(student): report whether the model is loaded.
    return HealthResponse(model_loaded=False)


@app.get("/ready")
async def ready() -> JSONResponse:
    """Readiness: 200 only when the model is loaded and warmed up."""
    # TODO(student): 200 {"status": "ready", ...} once warmed up; 503 with a reason (loading, warming,
    # draining, overloaded) otherwise.
    return JSONResponse({"status": "not_ready", "reason": "loading"}, status_code=503)


# TODO(student): POST /predict {"text": str} -> {"label", "confidence", "model_version"}
#   - a pydantic request model with an example for /docs; empty or whitespace text -> 422;
#   - more than 512 tokens ([CLS] and [SEP] included) -> 400 with a clear message;
#   - confidence = softmax probability of the predicted label; never return raw logits.
# TODO(student): POST /predict/batch {"texts": [...]} (bounded length) -> a list of the above.
# TODO(student): request bodies over a size limit -> 413.
# TODO(student): GET /metrics with prometheus_client: predict_requests_total (counter) and
#   predict_latency_seconds (histogram, buckets from 0.001 s), plus the others of the contract.
# TODO(student): one JSON log line per request: method, path, status, latency_ms, request id.
