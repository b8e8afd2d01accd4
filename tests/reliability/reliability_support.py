"""Helpers shared by the reliability tests (test modules cannot import conftest): metrics and a sampler."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["RssSampler", "metric_samples", "metric_sum"]

Labels = tuple[tuple[str, str], ...]


def metric_samples(base_url: str) -> dict[tuple[str, Labels], float]:
    """Every sample of `base_url`/metrics: {(name, sorted labels): value}, parsed by prometheus_client."""
    text = httpx.get(base_url + "/metrics", timeout=10).text
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return samples


def metric_sum(base_url: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0.0 when there are none)."""
    return sum(
        value
        for (sample, sample_labels), value in metric_samples(base_url).items()
        if sample == name and all(dict(sample_labels).get(k) == v for k, v in labels.items())
    )


class RssSampler:
    """Samples the resident memory of one process every `interval_s` in a thread, while in a `with` block."""

    def __init__(self, pid: int, *, interval_s: float = 0.05) -> None:
        self._process = psutil.Process(pid)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.samples_mb: list[float] = []

    def rss_mb(self) -> float:
        return self._process.memory_info().rss / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples_mb.append(self.rss_mb())
            except psutil.Error:
                return
            self._stop.wait(self._interval_s)  # a sampling period, not a readiness wait

    @property
    def peak_mb(self) -> float:
        return max(self.samples_mb, default=0.0)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)
