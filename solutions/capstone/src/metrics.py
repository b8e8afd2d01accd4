"""Prometheus metrics of the service, in a registry of their own: the four golden signals and more.

Why a fresh `CollectorRegistry` per app instead of prometheus_client's global one? Tests (and notebooks)
create several apps in one process; with the global registry the second app fails with "Duplicated
timeseries". Units are seconds, and every label has a small, fixed set of values (route templates, not raw
paths; a reason from a fixed list): unbounded labels would create unbounded time series.

The golden signals: latency (`predict_latency_seconds`, `http_request_duration_seconds`), traffic
(`predict_requests_total`, `http_requests_total`), errors (the same counters by `status`, and
`predict_rejections_total` by reason), saturation (`predict_requests_in_flight`, `batch_queue_depth` against
`batch_queue_capacity`, and the CPU seconds of prometheus_client's process collector,
`process_cpu_seconds_total`).

Several uvicorn workers (`WORKERS=2`, started by serve.py) are several processes, each with its own memory:
alone, each would count only the requests it served. In prometheus_client's multiprocess mode every value
lives in a file of PROMETHEUS_MULTIPROC_DIR, one per process, and /metrics adds the files up: counters and
histograms are summed, and each gauge says how (`multiprocess_mode`). Two things do not carry over: a gauge
read through a callback at scrape time (`set_function`), so the queue depth is written when it changes; and
the process collector, which sees only the process answering the scrape, so `WorkerProcesses` reports the CPU
and memory of every live worker, labelled by pid the way prometheus_client labels per-process gauges.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.process_collector import ProcessCollector

__all__ = ["CONTENT_TYPE_LATEST", "REJECTION_REASONS", "ServiceMetrics", "WorkerProcesses"]

# Latency buckets start at 1 ms: an INT8 MiniLM answers a short text in about a millisecond.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONFIDENCE_BUCKETS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)

#: Every value the `reason` label of `predict_rejections_total` can take.
REJECTION_REASONS = (
    "unauthorized",
    "rate_limited",
    "too_large",
    "invalid",
    "too_many_tokens",
    "not_ready",
    "queue_full",
    "deadline",
    "error",
)


class ServiceMetrics:
    """All metrics of one app, registered in `self.registry`; `render()` gives the /metrics body.

    `multiprocess_dir`: the PROMETHEUS_MULTIPROC_DIR of a multi-worker start (None: one process). It must be
    the folder prometheus_client itself found in the environment when it was imported, which it checks.
    """

    def __init__(self, *, multiprocess_dir: Path | None = None, max_queue: int = 0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = multiprocess_dir
        registry = self.registry

        # The two metrics of the course text.
        self.predict_requests = Counter(
            "predict_requests",
            "Prediction requests answered, by endpoint and HTTP status.",
            ["endpoint", "status"],
            registry=registry,
        )
        self.predict_latency = Histogram(
            "predict_latency_seconds",
            "Time from receiving a prediction request to its response, in seconds.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )

        # Every HTTP request, labelled by route template (e.g. /predict/batch), never by raw path.
        self.http_requests = Counter(
            "http_requests",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration by method and route template, in seconds.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.in_flight = Gauge(
            "predict_requests_in_flight",
            "Prediction requests being handled right now (queued or computing).",
            registry=registry,
            multiprocess_mode="livesum",  # all live workers together; a dead worker's requests are gone
        )

        # Dynamic batching.
        self.queue_wait = Histogram(
            "batch_queue_wait_seconds",
            "Time a request waited in the batcher before its batch started computing, in seconds.",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.batch_size = Histogram(
            "batch_size",
            "Requests per computed batch.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.batch_compute = Histogram(
            "batch_compute_seconds",
            "Time to tokenise and run the model on one batch, in seconds.",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "batch_queue_depth",
            "Requests accepted but not yet computing.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.queue_capacity = Gauge(
            "batch_queue_capacity",
            "Requests the queue holds (MAX_QUEUE, per worker); beyond it, 503 queue_full.",
            registry=registry,
            multiprocess_mode="livesum",  # the capacity of all live workers, to compare with the depth
        )
        self.queue_capacity.set(max_queue)
        self.rejections = Counter(
            "predict_rejections",
            "Prediction requests refused, by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in REJECTION_REASONS:
            self.rejections.labels(reason=reason)  # export zeros, so rate() works from the start

        # The model, and what it predicts (drift: compare these distributions with the training data).
        self.model_info = Gauge(
            "model_info",
            "The loaded model: always 1, with its name, version and backend as labels.",
            ["name", "version", "backend"],
            registry=registry,
            multiprocess_mode="livemax",  # 1 while any live worker serves that model
        )
        self.confidence = Histogram(
            "prediction_confidence",
            "Softmax probability of the predicted label.",
            buckets=CONFIDENCE_BUCKETS,
            registry=registry,
        )
        self.labels = Counter(
            "prediction_label",
            "Predictions by label.",
            ["label"],
            registry=registry,
        )

        # Saturation of the CPU, and what /metrics renders.
        self._workers: WorkerProcesses | None = None
        if multiprocess_dir is None:
            ProcessCollector(registry=registry)  # process_cpu_seconds_total, process_resident_memory_bytes...
            self._exposition = registry
        else:
            self._check_multiprocess(multiprocess_dir)
            self._workers = WorkerProcesses(multiprocess_dir)
            self._exposition = CollectorRegistry()
            MultiProcessCollector(self._exposition, path=str(multiprocess_dir))
            self._exposition.register(self._workers)

    @staticmethod
    def _check_multiprocess(folder: Path) -> None:
        """The metrics above must have created this process's files in `folder`, else /metrics is empty."""
        if not any(folder.glob(f"*_{os.getpid()}.db")):
            raise RuntimeError(
                f"PROMETHEUS_MULTIPROC_DIR={str(folder)!r} holds no metrics file of this process: "
                "prometheus_client was imported before the variable was set (or with another value), so "
                "every worker would count only its own requests. Start the service with `python "
                "src/serve.py` (WORKERS=2), which sets it before the workers start."
            )

    def set_model(self, *, name: str, version: str, backend: str, labels: tuple[str, ...]) -> None:
        self.model_info.labels(name=name, version=version, backend=backend).set(1)
        for label in labels:
            self.labels.labels(label=label)

    def reject(self, reason: str) -> None:
        if reason not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}; use one of {REJECTION_REASONS}")
        self.rejections.labels(reason=reason).inc()

    def render(self) -> bytes:
        """The /metrics body: this process's registry, or every worker's files in multiprocess mode."""
        if self._workers is not None:
            self._workers.forget_dead()
        return generate_latest(self._exposition)

    def close(self) -> None:
        """At a worker's exit: drop its `live*` gauges (in-flight, queue depth, model) from the sums.

        Its counters and histograms stay: what it served was served. A worker that crashed never gets here;
        `render()` drops its gauges at the next scrape instead.
        """
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), str(self.multiprocess_dir))


class WorkerProcesses:
    """The worker processes of a multiprocess start, known by their files in PROMETHEUS_MULTIPROC_DIR.

    As a collector it reports `process_cpu_seconds_total` and `process_resident_memory_bytes` of every live
    worker, with a `pid` label: prometheus_client's `ProcessCollector` reads them from /proc (Linux), but
    only for one process. `sum(rate(process_cpu_seconds_total[1m]))` is the service's CPU in cores either way.
    """

    _FILE = re.compile(r"^[a-z_]+_(\d+)\.db$")  # counter_123.db, gauge_livesum_123.db, histogram_123.db
    _REPORTED = ("process_cpu_seconds", "process_resident_memory_bytes")

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def pids(self) -> set[int]:
        """Every process that wrote metrics since the start, dead or alive."""
        matches = (self._FILE.match(path.name) for path in self.folder.glob("*.db"))
        return {int(match.group(1)) for match in matches if match}

    def live_pids(self) -> list[int]:
        return sorted(pid for pid in self.pids() if _alive(pid))

    def forget_dead(self) -> None:
        """`mark_process_dead` for workers that died without `close()` (killed, crashed, restarted)."""
        for pid in self.pids() - set(self.live_pids()):
            mark_process_dead(pid, str(self.folder))

    def collect(self) -> Iterator[Metric]:
        cpu = CounterMetricFamily(
            "process_cpu_seconds", "User and system CPU time of each worker, in seconds.", labels=["pid"]
        )
        memory = GaugeMetricFamily(
            "process_resident_memory_bytes", "Resident memory of each worker, in bytes.", labels=["pid"]
        )
        for pid in self.live_pids():
            values = {
                family.name: family.samples[0].value
                for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect()
                if family.name in self._REPORTED and family.samples
            }
            if "process_cpu_seconds" in values:  # the worker may have exited since live_pids()
                cpu.add_metric([str(pid)], values["process_cpu_seconds"])
                memory.add_metric([str(pid)], values["process_resident_memory_bytes"])
        yield cpu
        yield memory


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True
