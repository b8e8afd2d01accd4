"""Two uvicorn workers (`WORKERS=2 python src/serve.py`) count as one service on /metrics.

Each worker is a process with its own memory. Without prometheus_client's multiprocess mode each would
count only its own requests and /metrics would answer one worker's share; with it, every worker writes its
values to files named by its pid, and /metrics adds them up. So after N requests the counter says N and the
histogram holds N observations, whichever worker answers the scrape, and each worker's own file shows it
served part of them.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from capstone_support import SERVE_SCRIPT, UvicornProcess
from prometheus_client.multiprocess import MultiProcessCollector
from reliability_support import metric_samples, metric_sum

N_REQUESTS = 200
# Concurrent clients, each request on a new connection. Why: the workers share one listening socket and the
# kernel hands each new connection to one of them, often the same one; kept-alive connections would then
# send everything to one worker (a load balancer in front spreads requests, not connections, better).
CLIENTS = 8


@pytest.fixture(scope="module")
def metrics_parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TMPDIR of the server: serve.py makes its fresh metrics folder in it."""
    return tmp_path_factory.mktemp("tmpdir")


#: How long the second worker may take to be ready after the first answers /ready (each loads its own model).
BOTH_READY_S = 60.0


@pytest.fixture(scope="module")
def two_workers(
    start_server: Callable[..., UvicornProcess], model_dir: Path, metrics_parent: Path
) -> UvicornProcess:
    """The service with two workers, once both are ready. start_server waits for one /ready, answered by
    whichever worker the kernel picks; the other may still be loading its model and would answer 503."""
    env = {"MODEL_DIR": str(model_dir), "WORKERS": "2", "TMPDIR": str(metrics_parent)}
    server = start_server(env, command=[sys.executable, str(SERVE_SCRIPT)])
    deadline = time.monotonic() + BOTH_READY_S
    while len(ready := ready_workers(metrics_parent)) < 2:
        if time.monotonic() > deadline:
            pytest.fail(f"only the workers {sorted(ready)} were ready {BOTH_READY_S:.0f} s after /ready")
        time.sleep(0.2)
    return server


def ready_workers(metrics_parent: Path) -> set[int]:
    """Pids of the workers serving a model: each sets `model_info` to 1 in its own gauge file just before it
    turns ready (service.py), with no await in between."""
    (folder,) = metrics_parent.glob("sentiment-metrics-*")  # serve.py made it before any /ready
    return {pid for pid, value in per_worker(folder, "gauge_livemax", "model_info").items() if value == 1}


def per_worker(folder: Path, prefix: str, metric: str) -> dict[int, float]:
    """`metric` summed over its labels in each worker's own file `{prefix}_{pid}.db`, by pid."""
    values = {}
    for path in folder.glob(f"{prefix}_*.db"):
        families = MultiProcessCollector.merge([str(path)])
        values[int(path.stem.rsplit("_", 1)[1])] = sum(
            sample.value for family in families for sample in family.samples if sample.name == metric
        )
    return values


def served_by_pid(folder: Path) -> dict[int, float]:
    """predict_requests_total of each worker, read from its own counter file."""
    return per_worker(folder, "counter", "predict_requests_total")


def test_counters_and_histograms_add_up_across_two_workers(
    two_workers: UvicornProcess, metrics_parent: Path, record_property: pytest.RecordProperty
) -> None:
    (folder,) = metrics_parent.glob("sentiment-metrics-*")  # one start, one fresh folder

    def predict(index: int) -> int:
        body = {"text": f"Counted once, whichever worker answers ({index})."}
        return httpx.post(two_workers.url("/predict"), json=body, timeout=30).status_code  # a new connection

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = Counter(pool.map(predict, range(N_REQUESTS)))
    assert statuses == {200: N_REQUESTS}, statuses

    base = two_workers.base_url
    for _ in range(4):  # several scrapes: the kernel may hand each to either worker; all must agree
        assert metric_sum(base, "predict_requests_total", endpoint="/predict", status="200") == N_REQUESTS
        assert metric_sum(base, "predict_latency_seconds_count", endpoint="/predict") == N_REQUESTS
        assert (
            metric_sum(base, "predict_latency_seconds_bucket", endpoint="/predict", le="+Inf") == N_REQUESTS
        )
        assert metric_sum(base, "prediction_label_total") == N_REQUESTS
        assert metric_sum(base, "predict_requests_in_flight") == 0

    served = served_by_pid(folder)
    record_property("served_by_pid", served)
    print(f"\nrequests served by each worker: {served}")
    assert len(served) == 2 and all(count > 0 for count in served.values()), served
    assert sum(served.values()) == N_REQUESTS

    samples = metric_samples(base)
    cpu_pids = {dict(labels)["pid"] for (name, labels) in samples if name == "process_cpu_seconds_total"}
    assert cpu_pids == {str(pid) for pid in served}, "the CPU of every worker, by pid"
    assert metric_sum(base, "batch_queue_capacity") == 2 * 256  # MAX_QUEUE of each live worker


def test_a_single_worker_needs_no_metrics_folder(
    start_server: Callable[..., UvicornProcess], model_dir: Path, tmp_path: Path
) -> None:
    env = {"MODEL_DIR": str(model_dir), "TMPDIR": str(tmp_path)}
    server = start_server(env, command=[sys.executable, str(SERVE_SCRIPT)])
    httpx.post(server.url("/predict"), json={"text": "One process."}, timeout=30).raise_for_status()
    assert metric_sum(server.base_url, "predict_requests_total") == 1
    assert "pid" not in str(metric_samples(server.base_url))  # the in-process collector, no pid labels
    assert list(tmp_path.glob("sentiment-metrics-*")) == []
