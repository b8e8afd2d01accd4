"""The reference service as it runs in production: `python -m uvicorn app:app --app-dir src` on loopback.

One test per status code of the contract, each against a real process configured through environment
variables only. Servers are module-scoped and grouped by configuration to keep the suite fast.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from capstone_support import STARTER_DIR, UvicornProcess
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow

LONG_TEXT = " ".join(["word"] * 600)  # 602 tokens with [CLS] and [SEP]


def metric(server: UvicornProcess, name: str, **labels: str) -> float:
    """One sample of the server's /metrics, parsed with prometheus_client's parser."""
    text = httpx.get(server.url("/metrics"), timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"{name}{labels} not in /metrics")


def wait_for_metric(server: UvicornProcess, name: str, expected: float, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if metric(server, name) == expected:
            return
        time.sleep(0.02)
    raise AssertionError(f"{name} did not reach {expected} within {timeout_s}s: {metric(server, name)}")


def in_background(call: Callable[[], httpx.Response]) -> Callable[[], httpx.Response]:
    """Start `call` in a thread now; the returned function joins it and returns its response."""
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.setdefault("response", call()), daemon=True)
    thread.start()

    def join() -> httpx.Response:
        thread.join(30)
        assert "response" in result, "background request did not finish"
        return result["response"]

    return join


def post(server: UvicornProcess, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(server.url(path), json=body, timeout=30, **kwargs)


# The default configuration ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(start_server: Callable[..., UvicornProcess], model_dir: Path) -> UvicornProcess:
    return start_server({"MODEL_DIR": str(model_dir), "MAX_BODY_BYTES": "20000"})


def test_health_and_ready_are_200(server: UvicornProcess) -> None:
    assert httpx.get(server.url("/health")).json() == {"status": "ok", "model_loaded": True}
    ready = httpx.get(server.url("/ready"))
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_predict_200(server: UvicornProcess) -> None:
    response = post(server, "/predict", {"text": "A wonderful, moving film."})
    assert response.status_code == 200
    assert set(response.json()) == {"label", "confidence", "model_version"}


def test_predict_batch_200(server: UvicornProcess) -> None:
    response = post(server, "/predict/batch", {"texts": ["Loved it.", "Hated it."]})
    assert response.status_code == 200 and len(response.json()) == 2


def test_too_many_tokens_400_with_a_clear_message(server: UvicornProcess) -> None:
    response = post(server, "/predict", {"text": LONG_TEXT})
    assert response.status_code == 400
    assert response.json()["reason"] == "too_many_tokens"
    assert "602 tokens" in response.json()["detail"] and "at most 512" in response.json()["detail"]
    in_batch = post(server, "/predict/batch", {"texts": ["fine", LONG_TEXT]})
    assert in_batch.status_code == 400 and in_batch.json()["detail"].startswith("texts[1]:")


def test_body_over_the_limit_413_by_content_length(server: UvicornProcess) -> None:
    response = post(server, "/predict", {"text": "x" * 30_000})
    assert response.status_code == 413
    assert response.json()["reason"] == "too_large" and response.json()["request_id"]


def test_body_over_the_limit_413_when_streamed_without_content_length(server: UvicornProcess) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}'

    response = httpx.post(
        server.url("/predict"), content=chunks(), headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (json.dumps({"text": ""}), "text"),
        (json.dumps({"text": " \n\t "}), "text"),
        (json.dumps({}), "text"),
        (json.dumps({"text": 42}), "text"),
        ('{"text": "unterminated', "body"),
    ],
    ids=["empty", "whitespace", "missing", "wrong-type", "malformed-json"],
)
def test_invalid_input_422_names_the_field(server: UvicornProcess, content: str, field: str) -> None:
    response = httpx.post(
        server.url("/predict"), content=content, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 422
    assert response.json()["message"].startswith(f"invalid request: {field}:")


def test_metrics_200_in_prometheus_format(server: UvicornProcess) -> None:
    post(server, "/predict", {"text": "Fine."})
    assert metric(server, "predict_requests_total", endpoint="/predict", status="200") >= 1
    assert metric(server, "predict_latency_seconds_bucket", endpoint="/predict", le="0.001") >= 0


def test_every_request_logs_one_json_line(server: UvicornProcess) -> None:
    post(server, "/predict", {"text": "Logged."}, headers={"X-Request-ID": "log-check-1"})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "log-check-1" not in server.output():
        time.sleep(0.02)
    lines = [line for line in server.output().splitlines() if "log-check-1" in line]
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert entry["method"] == "POST" and entry["path"] == "/predict" and entry["status"] == 200
    assert entry["request_id"] == "log-check-1"
    assert entry["latency_ms"] > 0 and entry["queue_ms"] >= 0 and entry["compute_ms"] > 0


# API keys and rate limits ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(start_server: Callable[..., UvicornProcess], model_dir: Path) -> UvicornProcess:
    env = {"MODEL_DIR": str(model_dir), "API_KEYS": "key-one,key-two", "RATE_LIMIT_PER_S": "0.01"}
    return start_server(env | {"RATE_LIMIT_BURST": "2"})


def test_missing_or_wrong_api_key_401(secured: UvicornProcess) -> None:
    assert post(secured, "/predict", {"text": "hi"}).status_code == 401
    wrong = post(secured, "/predict", {"text": "hi"}, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    for path in ("/health", "/ready", "/metrics"):
        assert httpx.get(secured.url(path)).status_code == 200


def test_rate_limit_429_with_retry_after_per_key(secured: UvicornProcess) -> None:
    as_one = {"X-API-Key": "key-one"}
    assert [post(secured, "/predict", {"text": "hi"}, headers=as_one).status_code for _ in range(2)] == [
        200,
        200,
    ]
    limited = post(secured, "/predict", {"text": "hi"}, headers=as_one)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    as_two = {"Authorization": "Bearer key-two"}  # another key has its own bucket
    assert post(secured, "/predict", {"text": "hi"}, headers=as_two).status_code == 200


# Overload and deadlines ------------------------------------------------------------------------------------


def test_queue_full_503_with_retry_after_and_ready_says_overloaded(
    start_server: Callable[..., UvicornProcess], model_dir: Path
) -> None:
    # Batches wait up to 2 s for company (ADAPTIVE_WAIT off: always), so two requests sit in a queue of two.
    env = {
        "MODEL_DIR": str(model_dir),
        "MAX_BATCH_SIZE": "64",
        "MAX_WAIT_MS": "2000",
        "ADAPTIVE_WAIT": "false",
        "MAX_QUEUE": "2",
    }
    server = start_server(env)
    waiting = [in_background(lambda: post(server, "/predict", {"text": "queued"})) for _ in range(2)]
    wait_for_metric(server, "batch_queue_depth", 2)
    refused = post(server, "/predict", {"text": "one too many"})
    assert refused.status_code == 503
    assert refused.json()["reason"] == "queue_full" and refused.headers["Retry-After"] == "1"
    ready = httpx.get(server.url("/ready"))
    assert (ready.status_code, ready.json()["reason"]) == (503, "overloaded")
    assert [join().status_code for join in waiting] == [200, 200]
    assert httpx.get(server.url("/ready")).status_code == 200


def test_deadline_504_without_computing(start_server: Callable[..., UvicornProcess], model_dir: Path) -> None:
    # The batch waits 1 s for company but requests may take 0.1 s: the request expires in the queue.
    env = {
        "MODEL_DIR": str(model_dir),
        "MAX_BATCH_SIZE": "8",
        "MAX_WAIT_MS": "1000",
        "ADAPTIVE_WAIT": "false",
        "REQUEST_TIMEOUT_S": "0.1",
    }
    server = start_server(env)
    response = post(server, "/predict", {"text": "too slow"})
    assert response.status_code == 504 and response.json()["reason"] == "deadline"
    wait_for_metric(server, "batch_queue_depth", 0)  # the worker has taken the batch off the queue...
    assert metric(server, "batch_size_count") == 0  # ...and dropped it instead of computing it
    assert metric(server, "predict_rejections_total", reason="deadline") == 1


# Not ready --------------------------------------------------------------------------------------------------


def test_corrupt_model_503_not_ready_while_health_stays_200(
    start_server: Callable[..., UvicornProcess], broken_model_dir: Callable[..., Path]
) -> None:
    server = start_server({"MODEL_DIR": str(broken_model_dir(wrong_sha="model.int8.onnx"))}, ready=False)
    ready = server.wait_until("/ready", status=503)
    deadline = time.monotonic() + 30
    while ready.json()["reason"] == "loading" and time.monotonic() < deadline:
        time.sleep(0.05)
        ready = httpx.get(server.url("/ready"))
    assert ready.json()["reason"] == "failed"
    assert "sha256 mismatch for 'model.int8.onnx'" in ready.json()["detail"]
    assert httpx.get(server.url("/health")).json() == {"status": "ok", "model_loaded": False}
    refused = post(server, "/predict", {"text": "hello"})
    assert refused.status_code == 503 and refused.json()["reason"] == "not_ready"
    assert server.process.poll() is None  # still up, explaining itself


# The student starter ---------------------------------------------------------------------------------------


def test_the_starter_runs_and_answers_health(
    start_server: Callable[..., UvicornProcess], model_dir: Path
) -> None:
    server = start_server({"MODEL_DIR": str(model_dir)}, src_dir=STARTER_DIR / "src", ready=False)
    response = httpx.get(server.url("/health"))
    assert response.status_code == 200 and response.json()["status"] == "ok"
