"""Small hand-written submissions for the grader's tests: a complete keyword-based app and its files.

Why not the reference for everything: it loads a real model (seconds per start); these start in well under
a second, so the hostile cases (hangs, forks, floods) stay cheap. Each is a folder in the contract's layout.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from course_utils.grading.isolation import isolation_problem

MINI_APP = textwrap.dedent(
    '''
    """A complete capstone stand-in: a keyword classifier that follows the whole HTTP contract."""
    import json
    import os
    import re
    import time
    from pathlib import Path

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
    from pydantic import BaseModel, field_validator

    POSITIVE = set("wonderful loved friendly spotless fantastic perfectly brilliant great fun recommended "
                   "best excellent delight encouraging stronger delicious lovely good enjoyed".split())
    NEGATIVE = set("terrible boring dirty rude broke waste dull awful overcharged avoid crashes horrible "
                   "dies disappointed worst bland chaotic ignored".split())

    REGISTRY = CollectorRegistry()
    REQUESTS = Counter("predict_requests_total", "Predictions served.", registry=REGISTRY)
    LATENCY = Histogram("predict_latency_seconds", "Prediction latency.", registry=REGISTRY,
                        buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0))
    CARD_PATH = Path(os.environ.get("MODEL_DIR", "model")) / "model_card.json"
    CARD = json.loads(CARD_PATH.read_text()) if CARD_PATH.is_file() else None

    app = FastAPI()


    @app.middleware("http")
    async def log_requests(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        entry = {"method": request.method, "path": request.url.path, "status": response.status_code,
                 "latency_ms": round((time.perf_counter() - t0) * 1000, 3), "request_id": "r"}
        print(json.dumps(entry), flush=True)
        return response


    class PredictIn(BaseModel):
        text: str

        @field_validator("text")
        @classmethod
        def not_blank(cls, value: str) -> str:
            if not value.strip():
                raise ValueError("text must not be empty")
            return value


    @app.get("/health")
    def health():
        return {"status": "ok", "model_loaded": CARD is not None}


    @app.get("/ready")
    def ready():
        if CARD is None:
            return JSONResponse({"ready": False, "reason": "failed"}, status_code=503)
        return {"ready": True}


    @app.post("/predict")
    def predict(body: PredictIn):
        t0 = time.perf_counter()
        words = re.findall(r"[a-z]+", body.text.lower())
        if len(words) + 2 > 512:
            return JSONResponse({"detail": f"text has {len(words) + 2} tokens; the limit is 512 tokens"},
                                status_code=400)
        score = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
        label = "positive" if score >= 0 else "negative"
        REQUESTS.inc()
        LATENCY.observe(time.perf_counter() - t0)
        return {"label": label, "confidence": 0.9, "model_version": CARD["version"]}


    @app.get("/metrics")
    def metrics():
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
    '''
)

DOCKERFILE = textwrap.dedent(
    """\
    ARG BASE_IMAGE=python:3.11-slim
    FROM ${BASE_IMAGE}
    ENV PYTHONUNBUFFERED=1
    WORKDIR /app
    COPY requirements.txt .
    RUN pip install --no-cache-dir -r requirements.txt
    COPY src/ src/
    RUN useradd --create-home app
    USER app
    EXPOSE 8000
    HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
    CMD ["uvicorn", "app:app", "--app-dir", "src", "--host", "0.0.0.0", "--port", "8000"]
    """
)

DEPLOY_MD = textwrap.dedent(
    """\
    # Deploying the sentiment service

    ## Build
    `docker build -t sentiment .`

    ## Run
    `docker run -p 8000:8000 -e MODEL_DIR=/model sentiment`

    ## Health checks
    Liveness on `/health`, readiness on `/ready` (503 until the model is loaded).

    ## Monitoring
    Prometheus scrapes `/metrics`: predict_requests_total and predict_latency_seconds.
    """
)

FILES = {
    "Dockerfile": DOCKERFILE,
    ".dockerignore": "data\n.git\nnotebooks\n.env\n__pycache__\n",
    "requirements.txt": "fastapi==0.165.0\nuvicorn==0.54.0\nprometheus_client==0.26.0\n",
    "deploy.md": DEPLOY_MD,
}


def write_submission(folder: Path, app_source: str = MINI_APP, **overrides: str | None) -> Path:
    """The mini submission in `folder`; `overrides` replace (or with None delete) files by name."""
    files = {"src/app.py": app_source, **FILES}
    for name, text in overrides.items():
        files[name.replace("__", "/").replace("dot_", ".")] = text  # type: ignore[assignment]
    for name, text in files.items():
        if text is None:
            continue
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def write_fake_model(folder: Path) -> Path:
    """A model folder with only a model_card.json: enough for the mini app and the grader's own check."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_card.json").write_text(
        json.dumps({"version": "0.0.1+test", "labels": ["negative", "positive"]})
    )
    return folder


def patched(source: str, old: str, new: str) -> str:
    """`source` with `old` replaced once; fails when `old` is missing (the variant would be a no-op)."""
    assert source.count(old) >= 1, f"patch target {old!r} not found: the variant would not change anything"
    return source.replace(old, new, 1)


def require_isolation() -> None:
    """Skip unless `grade` runs submissions as a sandbox uid here; in CI (`CI=true`) fail instead.

    A laptop grader is not root and cannot switch users; CI and the course machine must.
    """
    why = isolation_problem()
    if not why:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must grade with filesystem isolation: {why}")
    pytest.skip(f"filesystem isolation is not available here: {why}")
