"""The reference app in-process (FastAPI's TestClient runs the lifespan): lifecycle, errors, docs, metrics.

Status codes that need timing or a real socket (413 on a stream, 429, 503 queue full, 504, SIGTERM) are
tested against a real uvicorn process in test_capstone_server.py and test_capstone_shutdown.py.
"""

from __future__ import annotations

import gc
import importlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import inference
import pytest
import service
from app import create_app
from capstone_support import wait_ready
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from settings import ServiceSettings


def settings_for(model_dir: Path, **overrides: Any) -> ServiceSettings:
    return ServiceSettings(model_dir=model_dir, **overrides)


@pytest.fixture
def client(model_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(model_dir)), raise_server_exceptions=False) as test_client:
        wait_ready(test_client)
        yield test_client


def metric_samples(client: TestClient) -> dict[str, list[Any]]:
    """/metrics parsed with prometheus_client's own parser: {sample name: [samples]}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    matches = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matches) == 1, f"expected one sample {name}{labels}, found {len(matches)}"
    return float(matches[0])


# Lifecycle ------------------------------------------------------------------------------------------------


def test_importing_the_module_loads_no_model() -> None:
    module = importlib.import_module("app")
    assert module.app.state.service.model_loaded is False
    assert module.app.state.service.phase == "loading"


def test_ready_reports_loading_then_warming_then_ready(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    may_load, may_warm = threading.Event(), threading.Event()
    real_load, real_warm_up = service.load_predictor, service.ModelService._warm_up

    def slow_load(*args: Any, **kwargs: Any) -> Any:
        may_load.wait(10)
        return real_load(*args, **kwargs)

    def slow_warm_up(self: service.ModelService, predictor: Any) -> None:
        may_warm.wait(10)
        real_warm_up(self, predictor)

    monkeypatch.setattr(service, "load_predictor", slow_load)
    monkeypatch.setattr(service.ModelService, "_warm_up", slow_warm_up)
    with TestClient(create_app(settings_for(model_dir)), raise_server_exceptions=False) as client:
        ready = client.get("/ready")
        assert (ready.status_code, ready.json()["reason"]) == (503, "loading")
        assert client.get("/health").json() == {"status": "ok", "model_loaded": False}
        refused = client.post("/predict", json={"text": "too early"})
        assert refused.status_code == 503 and refused.json()["reason"] == "not_ready"
        assert "Retry-After" in refused.headers
        may_load.set()
        for _ in range(500):
            if client.get("/ready").json().get("reason") == "warming":
                break
            threading.Event().wait(0.01)
        assert client.get("/ready").json()["reason"] == "warming"
        assert client.get("/health").json()["model_loaded"] is True  # loaded, but not warmed up: not ready
        may_warm.set()
        wait_ready(client)
        body = client.get("/ready").json()
        assert body["status"] == "ready" and body["backend"] == "onnx-int8" and body["model_version"]


def test_a_corrupt_model_keeps_the_process_up_and_says_why(broken_model_dir) -> None:
    folder = broken_model_dir(wrong_sha="tokenizer.json")
    with TestClient(create_app(settings_for(folder)), raise_server_exceptions=False) as client:
        for _ in range(500):
            ready = client.get("/ready")
            if ready.json()["reason"] != "loading":
                break
            threading.Event().wait(0.01)
        assert ready.status_code == 503
        assert ready.json()["reason"] == "failed"
        assert "sha256 mismatch for 'tokenizer.json'" in ready.json()["detail"]
        assert client.get("/health").json() == {"status": "ok", "model_loaded": False}
        refused = client.post("/predict", json={"text": "hello"})
        assert refused.status_code == 503 and "sha256" in refused.json()["detail"]


# Requests -------------------------------------------------------------------------------------------------


def test_predict_returns_label_confidence_and_version_only(client: TestClient) -> None:
    response = client.post("/predict", json={"text": "I loved this film."})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"label", "confidence", "model_version"}  # never logits
    assert body["label"] in ("negative", "positive") and 0.0 <= body["confidence"] <= 1.0
    assert body["model_version"] == client.get("/ready").json()["model_version"]


def test_predict_batch_answers_in_order(client: TestClient) -> None:
    texts = ["I loved this film.", "Terrible, boring film.", "I loved this film."]
    response = client.post("/predict/batch", json={"texts": texts})
    assert response.status_code == 200
    batch = response.json()
    assert len(batch) == 3 and batch[0]["label"] == batch[2]["label"]
    single = client.post("/predict", json={"text": texts[1]}).json()
    assert batch[1]["label"] == single["label"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"texts": []}, "texts"), ({"texts": ["ok"] * 65}, "texts"), ({"texts": ["ok", "  "]}, "texts[1]")],
)
def test_predict_batch_validation_names_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/predict/batch", json=body)
    assert response.status_code == 422
    assert response.json()["message"].startswith(f"invalid request: {field}:")


def test_request_ids_are_echoed_or_generated(client: TestClient) -> None:
    given = client.get("/health", headers={"X-Request-ID": "trace-42"})
    assert given.headers["X-Request-ID"] == "trace-42"
    generated = client.get("/health").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    unsafe = client.get("/health", headers={"X-Request-ID": "x" * 500}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe)  # overlong or odd ids are replaced, not echoed


def test_an_inference_crash_is_a_json_500_with_the_request_id(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(self: inference.OnnxBackend, input_ids: Any, attention_mask: Any) -> Any:
        raise RuntimeError("simulated backend failure")

    monkeypatch.setattr(inference.OnnxBackend, "logits", explode)
    response = client.post("/predict", json={"text": "hello"}, headers={"X-Request-ID": "crash-1"})
    assert response.status_code == 500
    assert response.json()["request_id"] == "crash-1" == response.headers["X-Request-ID"]
    assert "simulated" not in response.text  # internals stay in the log
    monkeypatch.undo()
    assert client.post("/predict", json={"text": "hello"}).status_code == 200  # still serving
    assert value(metric_samples(client), "predict_rejections_total", reason="error") == 1


def test_an_unexpected_bug_anywhere_is_a_json_500(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any) -> Any:
        raise KeyError("bug")

    monkeypatch.setattr(service.ModelService, "readiness", broken)
    response = client.get("/ready", headers={"X-Request-ID": "bug-1"})
    assert response.status_code == 500 and response.json()["request_id"] == "bug-1"


def test_api_keys_accept_both_headers_and_leave_probes_open(model_dir: Path) -> None:
    app = create_app(settings_for(model_dir, api_keys=("k1",)))
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        assert client.post("/predict", json={"text": "hi"}).status_code == 401
        assert client.post("/predict", json={"text": "hi"}, headers={"X-API-Key": "k1"}).status_code == 200
        assert (
            client.post("/predict", json={"text": "hi"}, headers={"Authorization": "Bearer k1"}).status_code
            == 200
        )
        assert (
            client.post("/predict", json={"text": "hi"}, headers={"Authorization": "Bearer k2"}).status_code
            == 401
        )
        for path in ("/health", "/ready", "/metrics"):
            assert client.get(path).status_code == 200


# Docs and metrics ------------------------------------------------------------------------------------------


def test_openapi_documents_examples_errors_and_auth(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert schemas["PredictRequest"]["examples"][0]["text"]
    assert schemas["PredictBatchRequest"]["examples"][0]["texts"]
    assert schemas["PredictResponse"]["examples"][0]["label"] in ("negative", "positive")
    predict = spec["paths"]["/predict"]["post"]
    assert {"200", "400", "401", "413", "422", "429", "503", "504"} <= set(predict["responses"])
    assert {"APIKeyHeader", "HTTPBearer"} <= set(spec["components"]["securitySchemes"])


def test_metrics_follow_the_contract(client: TestClient) -> None:
    client.post("/predict", json={"text": "I loved this film."})
    client.post("/predict/batch", json={"texts": ["Great.", "Awful."]})
    client.post("/predict", json={"text": " "})
    client.get("/no/such/page/12345")
    samples = metric_samples(client)

    assert value(samples, "predict_requests_total", endpoint="/predict", status="200") == 1
    assert value(samples, "predict_requests_total", endpoint="/predict", status="422") == 1
    assert value(samples, "predict_latency_seconds_bucket", endpoint="/predict", le="0.001") >= 0
    assert value(samples, "predict_latency_seconds_count", endpoint="/predict") == 2
    assert value(samples, "http_requests_total", method="POST", route="/predict/batch", status="200") == 1
    assert value(samples, "http_requests_total", method="GET", route="unmatched", status="404") == 1
    routes = {s.labels["route"] for s in samples["http_requests_total"]}
    assert not any("12345" in route for route in routes), "raw paths must not become label values"
    assert value(samples, "batch_queue_wait_seconds_count") == 3
    assert value(samples, "batch_size_sum") == 3
    assert value(samples, "predict_requests_in_flight") == 0
    assert value(samples, "batch_queue_depth") == 0
    assert value(samples, "predict_rejections_total", reason="invalid") == 1
    assert value(samples, "predict_rejections_total", reason="queue_full") == 0
    (info,) = samples["model_info"]
    assert info.value == 1 and info.labels["backend"] == "onnx-int8" and info.labels["version"]
    assert value(samples, "prediction_confidence_count") == 3
    labels = {s.labels["label"]: s.value for s in samples["prediction_label_total"]}
    assert set(labels) == {"negative", "positive"} and sum(labels.values()) == 3


def test_each_app_has_its_own_registry(model_dir: Path) -> None:
    first, second = create_app(settings_for(model_dir)), create_app(settings_for(model_dir))
    assert first.state.metrics.registry is not second.state.metrics.registry
    with TestClient(first) as client:
        client.get("/health")
    with TestClient(second) as client:
        samples = metric_samples(client)
    assert "http_requests_total" not in samples or all(
        s.labels["route"] != "/health" for s in samples["http_requests_total"]
    )


def test_ready_freezes_the_startup_heap_out_of_the_garbage_collector(model_dir: Path) -> None:
    """Full collections over the startup heap made the p99 tail under load (service.py explains)."""
    gc.unfreeze()
    try:
        with TestClient(create_app(settings_for(model_dir)), raise_server_exceptions=False) as client:
            wait_ready(client)
            assert gc.get_freeze_count() > 10_000, "the service did not gc.freeze() once ready"
    finally:
        gc.unfreeze()  # give this test process its collector back
