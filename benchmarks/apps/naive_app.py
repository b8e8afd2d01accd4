"""The naive service of notebook 02, as a course student first writes it: the baseline of the benchmark.

Sync `def` endpoint (FastAPI runs it in its thread pool), PyTorch eager FP32 through
`course_utils.model.load_classifier`, one text per forward pass, no batching. Kept deliberately plain:
every gap between this and the reference service is something the course teaches.

    MODEL_DIR=artifacts/model python -m uvicorn naive_app:app --app-dir benchmarks/apps
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import numpy as np
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

from course_utils.config import get_settings
from course_utils.model import LABELS, load_classifier, load_model_card, load_tokenizer, predict_proba


class PredictRequest(BaseModel):
    text: str = Field(min_length=1)


class PredictResponse(BaseModel):
    label: Literal["negative", "positive"]
    confidence: float
    model_version: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model once, before the server accepts requests (so /health = 200 means ready)."""
    model_dir = get_settings().model_dir
    app.state.model = load_classifier(model_dir)  # checks sha256, eval mode
    app.state.tokenizer = load_tokenizer(model_dir)
    app.state.model_version = load_model_card(model_dir)["version"]
    yield
    app.state.model = None


app = FastAPI(title="Naive sentiment API (benchmark baseline)", lifespan=lifespan)


@app.get("/health")
def health(request: Request) -> dict[str, object]:
    return {"status": "ok", "model_loaded": getattr(request.app.state, "model", None) is not None}


@app.post("/predict")
def predict(body: PredictRequest, request: Request) -> PredictResponse:
    state = request.app.state
    proba = predict_proba(state.model, state.tokenizer, [body.text])[0]
    best = int(np.argmax(proba))
    return PredictResponse(
        label=LABELS[best], confidence=float(proba[best]), model_version=state.model_version
    )
