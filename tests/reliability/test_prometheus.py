"""A real Prometheus server scrapes the reference service during a load run; its figures must match the
load generator's, and `promtool check metrics` must find nothing wrong with the service's /metrics.

Prometheus (Debian package `prometheus`, installed by .ci/components.sh) runs from a temporary config and
storage folder, listens on 127.0.0.1 only and scrapes the service on 127.0.0.1 every second. On a laptop
without it the test skips with the reason; in CI (`CI=true`) a missing prometheus or promtool fails.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from capstone_support import UvicornProcess
from reliability_support import PrometheusServer, tool_path

from course_utils.bench import run_open_loop

pytestmark = pytest.mark.slow

RATE_RPS = 40.0
LOAD_S = 24.0
WINDOW_S = 15  # the PromQL range: [5 s, 20 s] of the run, clear of its ramp-up and its end
SCRAPE_S = 1
# Tolerances. Rate: Prometheus extrapolates a counter over a 15 s window from 1 s scrapes; a sample may
# land on either side of a window edge, so one scrape in 15 (~7%) plus timing jitter: 15%.
RATE_TOLERANCE = 0.15
# p95: histogram_quantile only knows which bucket the 95th percentile falls in and interpolates linearly
# inside it, so its answer may be anywhere in that bucket. The load generator measures on the client
# (loopback, HTTP client and scheduling add time the server never sees). Accept the Prometheus figure if it
# lies within the bucket of the client's p95, or the bucket below it (client overhead), widened by 25%.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def bucket_bounds(value_s: float) -> tuple[float, float]:
    """The (lower, upper] bucket of the service's latency histogram that holds `value_s`."""
    lower = 0.0
    for upper in LATENCY_BUCKETS_S:
        if value_s <= upper:
            return lower, upper
        lower = upper
    return lower, math.inf


@pytest.fixture(scope="module")
def scraped_server(start_server: Callable[..., UvicornProcess], model_dir: Path) -> UvicornProcess:
    return start_server({"MODEL_DIR": str(model_dir)})


@pytest.fixture
def prometheus(
    scraped_server: UvicornProcess,
    tmp_path: Path,
    require_component: Callable[[str, bool, str], None],
) -> Iterator[str]:
    """A Prometheus server on 127.0.0.1:<free port> scraping `scraped_server`; yields its base URL."""
    binary = tool_path("prometheus", require_component)
    with PrometheusServer(
        binary, [f"127.0.0.1:{scraped_server.port}"], tmp_path, scrape_s=SCRAPE_S
    ) as server:
        yield server.base_url


def query(base: str, promql: str, at: float) -> float:
    """An instant PromQL query evaluated at Unix time `at`; the single scalar of its result vector."""
    body = httpx.get(base + "/api/v1/query", params={"query": promql, "time": f"{at:.3f}"}, timeout=10).json()
    assert body["status"] == "success", body
    result = body["data"]["result"]
    assert len(result) == 1, f"{promql} -> {result}"
    return float(result[0]["value"][1])


def test_prometheus_rate_and_p95_match_the_load_generator(
    prometheus: str, scraped_server: UvicornProcess, record_property: pytest.RecordProperty
) -> None:
    started = time.time()
    result = run_open_loop(
        scraped_server.url("/predict"),
        method="POST",
        json={"text": "Scraped every second, measured twice."},
        rate_rps=RATE_RPS,
        duration_s=LOAD_S,
        arrival="fixed",
        timeout_s=30,
        progress=False,
    )
    assert result.status_counts == {200: result.n_requests} and result.error_counts == {}, result

    at = started + 5 + WINDOW_S  # the window [started + 5 s, started + 20 s] lies inside the run
    wait_until = at + 3 * SCRAPE_S
    while time.time() < wait_until:  # let Prometheus scrape past the end of the window
        time.sleep(0.2)
    selector = 'endpoint="/predict"'
    prom_rate = query(prometheus, f"sum(rate(predict_requests_total{{{selector}}}[{WINDOW_S}s]))", at)
    prom_p95_s = query(
        prometheus,
        "histogram_quantile(0.95, sum by (le) "
        f"(rate(predict_latency_seconds_bucket{{{selector}}}[{WINDOW_S}s])))",
        at,
    )

    # The load generator: a fixed arrival rate, so its achieved rate is what reached the service.
    gen_rate = result.n_requests / LOAD_S
    gen_p95_s = result.p95_ms / 1000
    figures = {
        "requests": result.n_requests,
        "generator_rate_rps": round(gen_rate, 2),
        "prometheus_rate_rps": round(prom_rate, 2),
        "generator_p95_ms": round(gen_p95_s * 1000, 2),
        "prometheus_p95_ms": round(prom_p95_s * 1000, 2),
    }
    for key, value in figures.items():
        record_property(key, value)
    print(f"\nPrometheus vs load generator: {figures}")

    assert abs(prom_rate - gen_rate) <= RATE_TOLERANCE * gen_rate, figures
    lower, upper = bucket_bounds(gen_p95_s)
    lower_below, _ = bucket_bounds(lower) if lower > 0 else (0.0, 0.0)
    assert lower_below * 0.75 <= prom_p95_s <= upper * 1.25, (figures, (lower_below, upper))


def test_promtool_finds_no_problem_in_the_metrics(
    scraped_server: UvicornProcess, require_component: Callable[[str, bool, str], None]
) -> None:
    promtool = tool_path("promtool", require_component)
    httpx.post(scraped_server.url("/predict"), json={"text": "Fill every family."}, timeout=30)
    httpx.post(scraped_server.url("/predict"), json={"text": ""}, timeout=30)  # a rejection too
    exposition = httpx.get(scraped_server.url("/metrics"), timeout=10).text
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0 and checked.stdout.strip() == "" and checked.stderr.strip() == "", (
        f"promtool check metrics (exit {checked.returncode}):\n{checked.stdout}{checked.stderr}"
    )
