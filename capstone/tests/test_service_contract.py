"""The capstone contract, checked in-process: the `test` stage of the pipeline (`make test`).

Why these tests: they are the part of the contract every later stage relies on (the image smoke test, the
load balancer's probes, Prometheus). FastAPI's TestClient runs the app's lifespan, so the model is loaded
as in production but no server or port is involved. A capstone that follows the contract passes; the
untouched starter passes only /health, and each failure names what is left to do. The whole contract
(batching, limits, every metric) is graded by `course-utils grade`; the rules checked here come from the
same place as the grader's, `course_utils.contract` (see capstone/README.md).

Where things are: CAPSTONE_DIR (default: the folder above tests/) holds src/app.py; MODEL_DIR (default:
CAPSTONE_DIR/model) is the exported model. `make test` sets both, so the same tests check any capstone.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from course_utils.contract import (
    INVALID_BODIES,
    LABELS,
    LATENCY_BUCKET_MAX_S,
    LATENCY_HISTOGRAM,
    MAX_TOKENS,
    REQUESTS_COUNTER,
    InvalidBody,
    confidence_problem,
)
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

CAPSTONE_DIR = Path(os.environ.get("CAPSTONE_DIR") or Path(__file__).resolve().parents[1]).resolve()
MODEL_DIR = Path(os.environ.get("MODEL_DIR") or CAPSTONE_DIR / "model").resolve()
READY_TIMEOUT_S = float(os.environ.get("READY_TIMEOUT_S", "60"))


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """The capstone's `app` from src/app.py, imported as uvicorn would (`--app-dir src`), lifespan running."""
    if not (MODEL_DIR / "model_card.json").is_file():
        pytest.fail(
            f"no exported model in {str(MODEL_DIR)!r}: copy one there or set MODEL_DIR "
            "(make test MODEL_DIR=../artifacts/model)",
            pytrace=False,
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_DIR", str(MODEL_DIR))
        patch.syspath_prepend(str(CAPSTONE_DIR / "src"))
        module = importlib.import_module("app")
        with TestClient(module.app, raise_server_exceptions=False) as test_client:
            yield test_client


@pytest.fixture(scope="module")
def ready_client(client: TestClient) -> TestClient:
    """The client once /ready answers 200 (model loaded and warmed up); fails with the last answer."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        response = client.get("/ready")
        if response.status_code == 200:
            return client
        if time.monotonic() > deadline:
            pytest.fail(
                f"/ready answered {response.status_code} {response.text[:200]!r} for "
                f"{READY_TIMEOUT_S:.0f} s: load the model in the lifespan, warm it up, then answer 200",
                pytrace=False,
            )
        time.sleep(0.1)


def test_health_answers_without_waiting_for_the_model(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200, f"/health answered {response.status_code}: it must always be 200"
    body = response.json()
    assert body.get("status") == "ok", f"/health answered {body}: expected status 'ok'"
    assert isinstance(body.get("model_loaded"), bool), f"/health answered {body}: model_loaded must be a bool"


def test_ready_once_the_model_is_loaded(ready_client: TestClient) -> None:
    assert ready_client.get("/health").json()["model_loaded"] is True, (
        "/ready is 200 but model_loaded is not true"
    )


@pytest.mark.parametrize(
    ("text", "label"),
    [("This movie is excellent!", "positive"), ("A dull, boring waste of time.", "negative")],
)
def test_predict_answers_label_confidence_and_version(
    ready_client: TestClient, text: str, label: str
) -> None:
    response = ready_client.post("/predict", json={"text": text})
    assert response.status_code == 200, (
        f"POST /predict answered {response.status_code}: {response.text[:300]}"
    )
    body = response.json()
    assert body.get("label") in LABELS, f"label must be one of {LABELS}, exactly; got {body}"
    assert body.get("label") == label, f"{text!r} should be {label}, got {body}"
    problem = confidence_problem(body.get("confidence"))
    assert not problem, f"{problem}; got {body}"
    assert isinstance(body.get("model_version"), str) and body["model_version"], (
        f"model_version must name the model card's version; got {body}"
    )


@pytest.mark.parametrize("body", INVALID_BODIES, ids=[body.name for body in INVALID_BODIES])
def test_predict_refuses_invalid_bodies(ready_client: TestClient, body: InvalidBody) -> None:
    if body.raw is not None:
        headers = {"Content-Type": "application/json"}
        response = ready_client.post("/predict", content=body.raw, headers=headers)
    else:
        response = ready_client.post("/predict", json=body.json)
    assert response.status_code == 422, f"{body.name} must get 422, got {response.status_code}"


def test_predict_refuses_more_than_512_tokens(ready_client: TestClient) -> None:
    response = ready_client.post("/predict", json={"text": "great " * (MAX_TOKENS + 88)})
    assert response.status_code == 400, (
        f"a text over {MAX_TOKENS} tokens must be 400, got {response.status_code}"
    )


def test_metrics_count_predictions_and_their_latency(ready_client: TestClient) -> None:
    assert ready_client.post("/predict", json={"text": "Fine."}).status_code == 200
    response = ready_client.get("/metrics")
    assert response.status_code == 200, f"GET /metrics answered {response.status_code}"
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    requests = families.get(REQUESTS_COUNTER.removesuffix("_total"))
    assert requests is not None and requests.type == "counter", f"expose a counter {REQUESTS_COUNTER}"
    assert sum(s.value for s in requests.samples if s.name == REQUESTS_COUNTER) >= 1
    latency = families.get(LATENCY_HISTOGRAM)
    assert latency is not None and latency.type == "histogram", f"expose a histogram {LATENCY_HISTOGRAM}"
    bounds = [float(s.labels["le"]) for s in latency.samples if s.name.endswith("_bucket")]
    assert bounds and min(bounds) <= LATENCY_BUCKET_MAX_S, (
        f"latency buckets must start at {LATENCY_BUCKET_MAX_S} s or below, got {sorted(bounds)}"
    )
