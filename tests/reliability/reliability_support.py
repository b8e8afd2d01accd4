"""Helpers shared by the reliability tests (test modules cannot import conftest): metrics, a sampler, and a
real Prometheus server."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import psutil
from capstone_support import free_port
from prometheus_client.parser import text_string_to_metric_families

from course_utils.process import Process, StartStop

__all__ = ["PrometheusServer", "RssSampler", "metric_samples", "metric_sum", "tool_path"]

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


def tool_path(name: str, require_component: Callable[[str, bool, str], None]) -> str:
    """The path of a command-line component (prometheus, promtool); skips on a laptop, fails in CI."""
    path = shutil.which(name)
    require_component(name, path is not None, f"{name!r} is not on PATH: run `sudo bash .ci/components.sh`")
    assert path is not None
    return path


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


class PrometheusServer(StartStop):
    """Debian's `prometheus` on 127.0.0.1:<free port>, scraping `targets` (job `sentiment`) every `scrape_s`,
    with its config and storage in `folder`. `start()` returns once every target has been scraped; the
    process is a `course_utils.process.Process` (own group, bounded stop, log in `folder`)."""

    def __init__(self, binary: str, targets: Sequence[str], folder: Path, *, scrape_s: int = 1) -> None:
        self.binary = binary
        self.targets = list(targets)
        self.folder = folder
        self.scrape_s = scrape_s
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "prometheus.log"
        self._process: Process | None = None

    def start(self, timeout_s: float = 60) -> Self:
        config = self.folder / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {self.scrape_s}s\n"
            f"  evaluation_interval: {self.scrape_s}s\n"
            "scrape_configs:\n"
            "  - job_name: sentiment\n"
            f"    scrape_timeout: {self.scrape_s}s\n"
            "    static_configs:\n"
            f"      - targets: {self.targets!r}\n"
        )
        self._process = Process(
            [
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            output=self.log_path,
            label="prometheus",
            stop_timeout_s=15,
        ).start()
        deadline = time.monotonic() + timeout_s
        while not self._all_targets_up():  # wait for the first successful scrape of every target
            if not self._process.running:
                raise AssertionError(f"prometheus exited: {self._process.tail(60)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus did not scrape {self.targets} within {timeout_s} s")
            time.sleep(0.2)
        return self

    def _all_targets_up(self) -> bool:
        try:
            body = httpx.get(self.base_url + "/api/v1/targets", timeout=2).json()
            active = body["data"]["activeTargets"]
        except (httpx.TransportError, ValueError, KeyError):
            return False
        return len(active) == len(self.targets) and all(target["health"] == "up" for target in active)

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/`path`; the `data` of a successful answer (AssertionError with the body otherwise)."""
        body = httpx.get(f"{self.base_url}/api/v1/{path}", params=params, timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.stop()
