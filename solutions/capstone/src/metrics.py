"""Prometheus metrics of the service, in a registry of their own.

Why a fresh `CollectorRegistry` per app instead of prometheus_client's global one? Tests (and notebooks)
create several apps in one process; with the global registry the second app fails with "Duplicated
timeseries". Units are seconds, and every label has a small, fixed set of values (route templates, not raw
paths; a reason from a fixed list): unbounded labels would create unbounded time series.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "REJECTION_REASONS", "ServiceMetrics"]

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
    """All metrics of one app, registered in `self.registry`; `render()` gives the /metrics body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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
        )
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

    def set_model(self, *, name: str, version: str, backend: str, labels: tuple[str, ...]) -> None:
        self.model_info.labels(name=name, version=version, backend=backend).set(1)
        for label in labels:
            self.labels.labels(label=label)

    def track_queue_depth(self, depth: Callable[[], float]) -> None:
        """Read the queue depth at scrape time (no bookkeeping on the request path)."""
        self.queue_depth.set_function(depth)

    def reject(self, reason: str) -> None:
        if reason not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}; use one of {REJECTION_REASONS}")
        self.rejections.labels(reason=reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
