"""Load generator, wrk/locust runners and plots, against the tiny app on 127.0.0.1 (each run < ~2 s)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from course_utils import bench
from course_utils.bench import LoadResult, ToolNotInstalledError
from course_utils.server import BackgroundServer


def test_from_samples_percentiles_and_throughput() -> None:
    r = LoadResult.from_samples(
        [float(x) for x in range(1, 101)], duration_s=2.0, status_counts={200: 95, 503: 5}
    )
    assert r.n_requests == 100
    assert r.throughput_rps == 50.0
    assert r.p50_ms == pytest.approx(50.5)
    assert r.p90_ms == pytest.approx(90.1)
    assert r.p95_ms == pytest.approx(95.05)
    assert r.p99_ms == pytest.approx(99.01)
    assert (r.n_ok, r.n_errors, r.max_ms) == (95, 0, 100.0)


def test_from_samples_without_samples_is_nan() -> None:
    r = LoadResult.from_samples([], duration_s=1.0, status_counts={}, error_counts={"ConnectError": 3})
    assert math.isnan(r.p50_ms) and r.n_errors == 3 and r.throughput_rps == 0.0


def test_closed_loop_duration_bounded(tiny_server: BackgroundServer) -> None:
    r = bench.run_closed_loop(tiny_server.url + "/health", concurrency=4, duration_s=0.5, progress=False)
    assert 0.4 < r.duration_s < 2.0
    assert r.n_requests > 10 and r.status_counts == {200: r.n_requests}
    assert r.concurrency == 4 and r.error_counts == {}
    assert 0 < r.p50_ms <= r.p90_ms <= r.p95_ms <= r.p99_ms <= r.max_ms


def test_closed_loop_counts_requests_statuses_and_posts(tiny_server: BackgroundServer) -> None:
    r = bench.run_closed_loop(
        tiny_server.url + "/echo",
        method="POST",
        json={"text": "x"},
        concurrency=3,
        n_requests=30,
        progress=False,
    )
    assert r.n_requests == 30 and r.status_counts == {200: 30}
    r404 = bench.run_closed_loop(tiny_server.url + "/status/404", n_requests=5, concurrency=2, progress=False)
    assert r404.status_counts == {404: 5} and r404.n_ok == 0


def test_latency_reflects_a_slow_endpoint(tiny_server: BackgroundServer) -> None:
    r = bench.run_closed_loop(tiny_server.url + "/slow?ms=40", concurrency=2, n_requests=6, progress=False)
    assert r.p50_ms >= 40


def test_connection_errors_are_counted_not_raised() -> None:
    from course_utils import ports

    url = f"http://127.0.0.1:{ports.free_port()}/health"
    r = bench.run_closed_loop(url, concurrency=2, n_requests=4, timeout_s=1, progress=False)
    assert r.n_requests == 0 and r.error_counts == {"ConnectError": 4}


@pytest.mark.parametrize("arrival", ["fixed", "poisson"])
def test_open_loop_holds_the_rate(tiny_server: BackgroundServer, arrival: str) -> None:
    r = bench.run_open_loop(
        tiny_server.url + "/health", rate_rps=100, duration_s=1.0, arrival=arrival, seed=0, progress=False
    )
    assert r.target_rate_rps == 100
    assert 60 <= r.n_requests <= 140
    assert r.status_counts == {200: r.n_requests}


def test_open_loop_drops_arrivals_over_the_in_flight_cap(tiny_server: BackgroundServer) -> None:
    r = bench.run_open_loop(
        tiny_server.url + "/slow?ms=300",
        rate_rps=50,
        n_requests=20,
        arrival="fixed",
        max_in_flight=2,
        progress=False,
    )
    assert r.error_counts["dropped_over_cap"] > 0
    assert r.n_requests + r.error_counts["dropped_over_cap"] == 20
    assert r.p50_ms >= 300  # counted from the scheduled time


def test_unbounded_or_invalid_runs_are_refused() -> None:
    with pytest.raises(ValueError, match="bounded"):
        bench.run_closed_loop("http://127.0.0.1:1/")
    with pytest.raises(ValueError, match="arrival"):
        bench.run_open_loop("http://127.0.0.1:1/", rate_rps=1, n_requests=1, arrival="burst")


def test_runs_inside_a_running_event_loop(tiny_server: BackgroundServer) -> None:
    import asyncio

    async def in_notebook() -> LoadResult:
        return bench.run_closed_loop(tiny_server.url + "/health", n_requests=5, progress=False)

    assert asyncio.run(in_notebook()).n_requests == 5


def test_sweep_frame_and_plot(tiny_server: BackgroundServer, tmp_path: Path) -> None:
    results = bench.sweep_concurrency(
        tiny_server.url + "/health", levels=(1, 4), duration_s=0.3, progress=False
    )
    assert [r.concurrency for r in results] == [1, 4]
    frame = bench.results_frame(results)
    assert list(frame["concurrency"]) == [1, 4] and "p95_ms" in frame.columns
    fig = bench.plot_latency_throughput(results)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "throughput (requests/s)" and ax.get_ylabel() == "latency (ms)"
    fig.savefig(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000


WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:8000/health
  2 threads and 4 connections
COURSE_RESULT 4000 1000500 0 1 0 2 0.700000 2.000000 3.500000 6.000000 1.100000 12.500000 503=3,200=3997
"""


def test_parse_wrk_output() -> None:
    r = bench.parse_wrk_output(WRK_OUTPUT, concurrency=4)
    assert r.tool == "wrk" and r.n_requests == 4000
    assert r.throughput_rps == pytest.approx(3998.0, rel=1e-3)
    assert (r.p50_ms, r.p90_ms, r.p95_ms, r.p99_ms, r.max_ms) == (0.7, 2.0, 3.5, 6.0, 12.5)
    assert r.status_counts == {200: 3997, 503: 3} and r.n_ok == 3997
    assert r.error_counts == {"ReadError": 1, "ReadTimeout": 2} and r.n_errors == 3


def test_parse_wrk_output_without_result_line() -> None:
    with pytest.raises(bench.CourseUtilsError, match="No result line"):
        bench.parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused")


LOCUST_CSV = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
    "99.99%,100%\n"
    "GET,/health,200,2,4,4.5,1,30,15,100.0,1.0,4,5,5,6,7,9,12,20,30,30,30\n"
    ",Aggregated,200,2,4,4.5,1,30,15,100.0,1.0,4,5,5,6,7,9,12,20,30,30,30\n"
)


LOCUST_COUNTS = '{"status_counts": {"200": 190, "503": 8}, "error_counts": {"ConnectionResetError": 2}}'


def test_parse_locust_stats() -> None:
    r = bench.parse_locust_stats(LOCUST_CSV, LOCUST_COUNTS, concurrency=8)
    assert (r.tool, r.n_requests, r.duration_s, r.throughput_rps) == ("locust", 198, 2.0, 99.0)
    assert (r.p50_ms, r.p90_ms, r.p95_ms, r.p99_ms, r.max_ms) == (4.0, 7.0, 9.0, 20.0, 30.0)
    assert r.status_counts == {200: 190, 503: 8} and r.n_ok == 190
    assert r.error_counts == {"ConnectionResetError": 2} and r.n_errors == 2


def test_status_counts_are_keyed_by_int_codes() -> None:
    with pytest.raises(ValueError, match=r"HTTP status codes as int, got \['200'\].*int\(code\)"):
        LoadResult.from_samples([1.0], duration_s=1.0, status_counts={"200": 1})
    with pytest.raises(ValueError, match=r"got \[42\]"):
        LoadResult.from_samples([1.0], duration_s=1.0, status_counts={42: 1})


def test_missing_wrk_has_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    monkeypatch.setattr(bench.sys, "executable", str(tmp_path / "python"))
    with pytest.raises(ToolNotInstalledError, match=r"'wrk' is not installed.*apt-get install wrk"):
        bench.run_wrk("http://127.0.0.1:1/")


def test_missing_locust_has_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    monkeypatch.setattr(bench.sys, "executable", str(tmp_path / "python"))  # nothing installed beside it
    with pytest.raises(ToolNotInstalledError, match=r"'locust' is not installed.*locust==2.47.0"):
        bench.run_locust("http://127.0.0.1:1")


def test_wrk_against_the_tiny_app(tiny_server: BackgroundServer, require_tool: Callable[[str], str]) -> None:
    require_tool("wrk")
    r = bench.run_wrk(
        tiny_server.url + "/echo", method="POST", body='{"text": "it\'s"}', concurrency=4, duration_s=1
    )
    assert r.tool == "wrk" and r.n_requests > 10
    assert r.status_counts == {200: r.n_requests}, "the POST body did not reach /echo as JSON"
    assert 0 < r.p50_ms <= r.p95_ms <= r.p99_ms


# --- one vocabulary: every runner against a service that answers 200, and 503 to every 4th request ----------


@pytest.fixture(scope="module")
def flaky_server() -> Iterator[BackgroundServer]:
    """GET /flaky: 503 for every 4th request, 200 otherwise; served on 127.0.0.1:0."""
    app = FastAPI()
    calls = itertools.count()

    @app.get("/flaky")
    async def flaky() -> PlainTextResponse:
        busy = next(calls) % 4 == 3
        return PlainTextResponse("busy" if busy else "ok", status_code=503 if busy else 200)

    with BackgroundServer(app, start_timeout_s=10, stop_timeout_s=5) as server:  # stops on the way out
        yield server


def assert_mostly_ok_some_503(r: LoadResult) -> None:
    assert set(r.status_counts) == {200, 503}, r.status_counts
    assert r.n_ok == r.status_counts[200] > 0 and r.error_counts == {}
    assert sum(r.status_counts.values()) == r.n_requests
    assert 0.15 < r.status_counts[503] / r.n_requests < 0.35, r.status_counts


def test_closed_loop_statuses(flaky_server: BackgroundServer) -> None:
    r = bench.run_closed_loop(flaky_server.url + "/flaky", concurrency=4, n_requests=40, progress=False)
    assert r.status_counts == {200: 30, 503: 10} and r.n_ok == 30  # any 40 calls hold ten 4th ones
    assert_mostly_ok_some_503(r)


def test_open_loop_statuses(flaky_server: BackgroundServer) -> None:
    r = bench.run_open_loop(
        flaky_server.url + "/flaky", rate_rps=200, n_requests=80, arrival="fixed", progress=False
    )
    assert r.status_counts == {200: 60, 503: 20} and r.n_ok == 60
    assert_mostly_ok_some_503(r)


def test_wrk_statuses(flaky_server: BackgroundServer, require_tool: Callable[[str], str]) -> None:
    require_tool("wrk")
    r = bench.run_wrk(flaky_server.url + "/flaky", concurrency=2, threads=2, duration_s=1)
    assert r.tool == "wrk"
    assert_mostly_ok_some_503(r)


def test_locust_statuses(flaky_server: BackgroundServer) -> None:
    # locust is pinned in requirements.txt and found beside this Python; it runs as a subprocess only,
    # never imported here (its gevent monkey-patching would break the test process).
    r = bench.run_locust(flaky_server.url, path="/flaky", users=2, duration_s=2)
    assert r.tool == "locust" and r.concurrency == 2
    assert_mostly_ok_some_503(r)


def test_locust_counts_refused_connections_as_errors() -> None:
    from course_utils import ports

    r = bench.run_locust(f"http://127.0.0.1:{ports.free_port()}", path="/x", users=1, duration_s=1)
    assert r.n_requests == 0 and r.status_counts == {} and r.throughput_rps == 0.0
    assert set(r.error_counts) == {"ConnectionRefusedError"} and r.n_errors > 0, r.error_counts


def test_docstring_examples_run() -> None:
    import doctest

    assert doctest.testmod(bench, optionflags=doctest.ELLIPSIS).failed == 0
