"""Load testing: a bounded async load generator, wrk and locust runners, a concurrency sweep and its plot.

Closed loop (`run_closed_loop`): N workers, each sends its next request when the previous one answered;
throughput follows the server's speed. Open loop (`run_open_loop`): requests arrive on a schedule (fixed
or Poisson rate) whatever the server does, latency is measured from the *scheduled* time (no coordinated
omission), and arrivals beyond `max_in_flight` are dropped and counted. Every run is bounded by
`duration_s` and/or `n_requests`, and every result is a `LoadResult` (latencies in ms, rates in req/s).

Every runner counts outcomes in one vocabulary, whatever tool made the load: `status_counts` maps each HTTP
status code (an int) to the number of responses with it, and `error_counts` maps the name of a transport
error (no HTTP response: `ConnectError`, `ReadTimeout`, `dropped_over_cap`...) to how often it happened.
So `n_ok` (2xx responses) means the same for the async generator, wrk and locust.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import numpy as np
from tqdm.auto import tqdm

from course_utils import process
from course_utils._plots import figure_and_axes
from course_utils.errors import CourseUtilsError, ToolNotInstalledError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "LoadResult",
    "ToolNotInstalledError",
    "parse_locust_stats",
    "parse_wrk_output",
    "plot_latency_throughput",
    "results_frame",
    "run_closed_loop",
    "run_locust",
    "run_open_loop",
    "run_wrk",
    "sweep_concurrency",
]

_T = TypeVar("_T")


@dataclass(frozen=True)
class LoadResult:
    """Summary of one load run. Latencies in milliseconds, throughput in HTTP responses per second.

    `n_requests` counts HTTP responses (any status); `status_counts` splits them by status code (int) and
    `error_counts` counts, by name, the requests that got no response at all.

    >>> r = LoadResult.from_samples([1.0, 2.0, 3.0], duration_s=1.0, status_counts={200: 2, 503: 1})
    >>> (r.p50_ms, r.throughput_rps, r.n_ok)
    (2.0, 3.0, 2)
    """

    tool: str
    n_requests: int
    duration_s: float
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    status_counts: dict[int, int] = field(default_factory=dict)
    error_counts: dict[str, int] = field(default_factory=dict)
    concurrency: int | None = None
    target_rate_rps: float | None = None

    def __post_init__(self) -> None:
        bad = [code for code in self.status_counts if type(code) is not int or not 100 <= code <= 599]
        if bad:
            raise ValueError(
                f"status_counts keys must be HTTP status codes as int, got {bad!r}: "
                f"write {{200: 95, 503: 5}}, not {{'200': 95}} (int(code) converts a string)."
            )

    @classmethod
    def from_samples(
        cls,
        latencies_ms: Sequence[float],
        *,
        duration_s: float,
        status_counts: Mapping[int, int],
        error_counts: Mapping[str, int] | None = None,
        tool: str = "httpx",
        concurrency: int | None = None,
        target_rate_rps: float | None = None,
    ) -> LoadResult:
        """Summarise raw latencies (one per HTTP response, any status) of a run that lasted `duration_s`."""
        lat = np.asarray(latencies_ms, dtype=float)
        pct = np.percentile(lat, [50, 90, 95, 99]) if lat.size else np.full(4, math.nan)
        return cls(
            tool=tool,
            n_requests=int(lat.size),
            duration_s=duration_s,
            throughput_rps=lat.size / duration_s if duration_s > 0 else math.nan,
            p50_ms=float(pct[0]),
            p90_ms=float(pct[1]),
            p95_ms=float(pct[2]),
            p99_ms=float(pct[3]),
            mean_ms=float(lat.mean()) if lat.size else math.nan,
            max_ms=float(lat.max()) if lat.size else math.nan,
            status_counts=dict(status_counts),
            error_counts=dict(error_counts or {}),
            concurrency=concurrency,
            target_rate_rps=target_rate_rps,
        )

    @property
    def n_ok(self) -> int:
        """Responses with a 2xx status."""
        return sum(n for code, n in self.status_counts.items() if 200 <= code < 300)

    @property
    def n_errors(self) -> int:
        """Requests that got no HTTP response (timeouts, refused connections, dropped arrivals)."""
        return sum(self.error_counts.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable) of every field."""
        return asdict(self)


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion, also from inside a running event loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="course-bench", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: _T = box["value"]
    return value


class _Recorder:
    """Latencies and outcomes of one async run, its progress bar, and its `LoadResult`."""

    def __init__(self, total: float, unit: str, progress: bool, desc: str) -> None:
        self.latencies_ms: list[float] = []
        self.status: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.bar = tqdm(total=total, unit=unit, desc=desc, disable=not progress, leave=False)
        self.start = time.perf_counter()

    @staticmethod
    def client(max_connections: int, timeout_s: float) -> httpx.AsyncClient:
        """A client that keeps up to `max_connections` open and ignores proxy variables (loopback)."""
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        return httpx.AsyncClient(timeout=timeout_s, limits=limits, trust_env=False)

    def result(self, **fields: Any) -> LoadResult:
        """Close the bar and summarise the run, timed from this recorder's creation."""
        elapsed = time.perf_counter() - self.start
        self.bar.close()
        return LoadResult.from_samples(
            self.latencies_ms,
            duration_s=elapsed,
            status_counts=self.status,
            error_counts=self.errors,
            **fields,
        )

    async def send(
        self, client: httpx.AsyncClient, method: str, url: str, body: Any, started: float | None = None
    ) -> None:
        t0 = time.perf_counter() if started is None else started
        try:
            response = await client.request(method, url, json=body)
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] += 1
        else:
            self.latencies_ms.append((time.perf_counter() - t0) * 1000.0)
            self.status[response.status_code] += 1


def _check_bounds(duration_s: float | None, n_requests: int | None) -> None:
    if duration_s is None and n_requests is None:
        raise ValueError(
            "Pass duration_s=... and/or n_requests=... so the run is bounded (e.g. duration_s=5)."
        )
    if (duration_s is not None and duration_s <= 0) or (n_requests is not None and n_requests <= 0):
        raise ValueError(f"duration_s={duration_s!r} and n_requests={n_requests!r} must be positive.")


def run_closed_loop(
    url: str,
    *,
    concurrency: int = 8,
    duration_s: float | None = None,
    n_requests: int | None = None,
    method: str = "GET",
    json: Any = None,
    timeout_s: float = 10.0,
    progress: bool = True,
) -> LoadResult:
    """Closed loop: `concurrency` workers send requests back to back until `duration_s` or `n_requests`.

    >>> result = run_closed_loop(srv.url + "/predict", method="POST", json={"text": "great"},
    ...                          concurrency=4, duration_s=5)  # doctest: +SKIP
    >>> result.p95_ms, result.throughput_rps  # doctest: +SKIP
    (12.3, 410.5)
    """
    _check_bounds(duration_s, n_requests)
    if concurrency < 1:
        raise ValueError(f"concurrency={concurrency!r} must be at least 1.")

    async def main() -> LoadResult:
        total = float(n_requests) if n_requests is not None else float(duration_s or 0)
        rec = _Recorder(total, "req" if n_requests else "s", progress, f"closed loop x{concurrency}")
        issued = 0
        deadline = rec.start + duration_s if duration_s is not None else math.inf

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal issued
            while time.perf_counter() < deadline and (n_requests is None or issued < n_requests):
                issued += 1
                await rec.send(client, method, url, json)
                if n_requests is not None:
                    rec.bar.update(1)

        async with rec.client(concurrency, timeout_s) as client:
            ticker = asyncio.create_task(_tick(rec.bar, rec.start, duration_s)) if not n_requests else None
            await asyncio.gather(*(worker(client) for _ in range(concurrency)))
            if ticker is not None:
                ticker.cancel()
        return rec.result(concurrency=concurrency)

    return _run(main())


async def _tick(bar: Any, start: float, duration_s: float | None) -> None:
    while duration_s is not None:
        await asyncio.sleep(0.25)  # progress display only
        bar.n = min(duration_s, round(time.perf_counter() - start, 1))
        bar.refresh()


def run_open_loop(
    url: str,
    *,
    rate_rps: float,
    duration_s: float | None = None,
    n_requests: int | None = None,
    arrival: str = "poisson",
    max_in_flight: int = 256,
    method: str = "GET",
    json: Any = None,
    timeout_s: float = 10.0,
    seed: int | None = None,
    progress: bool = True,
) -> LoadResult:
    """Open loop: requests arrive at `rate_rps` (`arrival="fixed"` or `"poisson"`) whatever the server does.

    Latency counts from each request's scheduled time; arrivals while `max_in_flight` requests are pending
    are dropped and counted in `error_counts["dropped_over_cap"]`.

    >>> result = run_open_loop(srv.url + "/health", rate_rps=200, duration_s=5)  # doctest: +SKIP
    >>> result.p99_ms  # doctest: +SKIP
    4.2
    """
    _check_bounds(duration_s, n_requests)
    if rate_rps <= 0 or max_in_flight < 1:
        raise ValueError(f"rate_rps={rate_rps!r} must be > 0 and max_in_flight={max_in_flight!r} >= 1.")
    if arrival not in ("poisson", "fixed"):
        raise ValueError(f"arrival={arrival!r}: use 'poisson' or 'fixed'.")
    rng = random.Random(seed)

    async def main() -> LoadResult:
        budget = n_requests if n_requests is not None else math.inf
        horizon = duration_s if duration_s is not None else math.inf
        rec = _Recorder(float(n_requests or math.ceil(rate_rps * (duration_s or 0))), "req", progress, "open")
        pending: set[asyncio.Task[None]] = set()
        sent = 0
        async with rec.client(max_in_flight, timeout_s) as client:
            start = rec.start = time.perf_counter()  # the schedule starts once the client is ready
            next_at = 0.0
            while sent < budget and next_at < horizon:
                delay = start + next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)  # the arrival schedule, not a readiness wait
                sent += 1
                rec.bar.update(1)
                if len(pending) >= max_in_flight:
                    rec.errors["dropped_over_cap"] += 1
                else:
                    task = asyncio.create_task(rec.send(client, method, url, json, start + next_at))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                gap = rng.expovariate(rate_rps) if arrival == "poisson" else 1.0 / rate_rps
                next_at += gap
            if pending:
                await asyncio.gather(*pending)
            return rec.result(target_rate_rps=rate_rps)

    return _run(main())


def sweep_concurrency(
    url: str,
    *,
    levels: Sequence[int] = (1, 2, 4, 8, 16),
    duration_s: float = 5.0,
    method: str = "GET",
    json: Any = None,
    timeout_s: float = 10.0,
    progress: bool = True,
) -> list[LoadResult]:
    """One closed-loop run per concurrency level, for `plot_latency_throughput`.

    >>> results = sweep_concurrency(srv.url + "/health", levels=(1, 4, 16), duration_s=3)  # doctest: +SKIP
    >>> fig = plot_latency_throughput(results)  # doctest: +SKIP
    """
    results = []
    for level in tqdm(levels, desc="concurrency sweep", unit="level", disable=not progress):
        results.append(
            run_closed_loop(
                url,
                concurrency=level,
                duration_s=duration_s,
                method=method,
                json=json,
                timeout_s=timeout_s,
                progress=False,
            )
        )
    return results


def results_frame(results: Sequence[LoadResult]) -> pd.DataFrame:
    """A table of results, one row per run (status and error counts as dict columns).

    >>> results_frame([LoadResult.from_samples([1.0], duration_s=1.0, status_counts={200: 1})]).shape
    (1, 14)
    """
    import pandas as pd

    return pd.DataFrame([r.to_dict() for r in results])


def plot_latency_throughput(results: Sequence[LoadResult], *, ax: Axes | None = None) -> Figure:
    """Latency (p50 and p95, ms) against throughput (req/s), each point labelled with its concurrency.

    Uses matplotlib's object API, so it needs no display (Agg) and leaves pyplot's state alone.

    >>> rs = [LoadResult.from_samples([1.0, 2.0], duration_s=1.0, status_counts={200: 2}, concurrency=1)]
    >>> plot_latency_throughput(rs).axes[0].get_xlabel()
    'throughput (requests/s)'
    """
    fig, ax = figure_and_axes(ax)
    x = [r.throughput_rps for r in results]
    ax.plot(x, [r.p50_ms for r in results], marker="o", label="p50")
    ax.plot(x, [r.p95_ms for r in results], marker="s", label="p95")
    for r in results:
        label = f"c={r.concurrency}" if r.concurrency is not None else f"{r.target_rate_rps} rps"
        ax.annotate(label, (r.throughput_rps, r.p95_ms), textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("throughput (requests/s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency vs throughput")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


# --- external tools ------------------------------------------------------------------------------------

# wrk counts only "status > 399" itself: the script counts every status code per thread (`response`) and
# sums the threads' tables in `done`, after wrk's own summary.
_WRK_SCRIPT = """
wrk.method = "{method}"
{body}
local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  statuses = {{}}
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  local counts, parts = {{}}, {{}}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  for status, n in pairs(counts) do
    table.insert(parts, status .. "=" .. n)
  end
  local e = summary.errors
  io.write(string.format("COURSE_RESULT %d %d %d %d %d %d %f %f %f %f %f %f %s\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000, latency.max / 1000,
    #parts > 0 and table.concat(parts, ",") or "-"))
end
"""

#: The latency fields of a LoadResult, in the order wrk's script prints them.
_LATENCY_FIELDS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms")
#: The columns of locust's stats CSV that hold them.
_LOCUST_COLUMNS = ("50%", "90%", "95%", "99%", "Average Response Time", "Max Response Time")

#: wrk's socket error counters, named like the httpx exceptions the async runners count.
_WRK_ERRORS = ("ConnectError", "ReadError", "WriteError", "ReadTimeout")


def _require(tool: str, executable: str | None) -> str:
    """The tool's path: given, installed beside this Python (locust in .venv), or on PATH."""
    beside = Path(sys.executable).with_name(tool)
    path = executable or (str(beside) if beside.is_file() else shutil.which(tool))
    if path is None:
        fix = "apt-get install wrk" if tool == "wrk" else "make venv (pip install locust==2.47.0)"
        raise ToolNotInstalledError(f"{tool!r} is not installed (not on PATH). Install it: `{fix}`.")
    return path


def parse_wrk_output(output: str, *, concurrency: int | None = None) -> LoadResult:
    """Parse the `COURSE_RESULT` line that `run_wrk`'s Lua script prints into a `LoadResult`.

    wrk's socket errors become `ConnectError`, `ReadError`, `WriteError` and `ReadTimeout` (wrk also counts
    a response slower than its 2 s timeout as a timeout).

    >>> r = parse_wrk_output("COURSE_RESULT 100 1000000 0 0 0 1 1.0 2.0 3.0 4.0 1.5 9.0 200=98,503=2")
    >>> (r.throughput_rps, r.p95_ms, r.status_counts, r.n_ok, r.error_counts)
    (100.0, 3.0, {200: 98, 503: 2}, 98, {'ReadTimeout': 1})
    """
    match = re.search(r"^COURSE_RESULT ((?:\S+ ){12}\S+)$", output, flags=re.MULTILINE)
    if match is None:
        raise CourseUtilsError(f"No result line in wrk's output; it printed:\n{output[-2000:]}")
    v = match.group(1).split()
    n, dur_us = int(v[0]), int(v[1])
    errors = {name: int(count) for name, count in zip(_WRK_ERRORS, v[2:6], strict=True) if int(count)}
    latencies = dict(zip(_LATENCY_FIELDS, map(float, v[6:12]), strict=True))
    statuses = dict(item.split("=") for item in v[12].split(",")) if v[12] != "-" else {}
    return LoadResult(
        tool="wrk",
        n_requests=n,
        duration_s=dur_us / 1e6,
        throughput_rps=n / (dur_us / 1e6) if dur_us else math.nan,
        status_counts={int(code): int(count) for code, count in sorted(statuses.items())},
        error_counts=errors,
        concurrency=concurrency,
        **latencies,
    )


def run_wrk(
    url: str,
    *,
    concurrency: int = 8,
    threads: int = 2,
    duration_s: float = 5.0,
    method: str = "GET",
    body: str | None = None,
    content_type: str = "application/json",
    executable: str | None = None,
) -> LoadResult:
    """Run wrk (closed loop, C) for `duration_s` as a bounded subprocess; ToolNotInstalledError if absent.

    >>> run_wrk(srv.url + "/health", concurrency=16, duration_s=5).throughput_rps  # doctest: +SKIP
    4100.0
    """
    wrk = _require("wrk", executable)
    lines = ""
    if body is not None:  # a Lua long string needs no escaping
        lines = f'wrk.body = [==[{body}]==]\nwrk.headers["Content-Type"] = "{content_type}"'
    seconds = max(1, math.ceil(duration_s))
    with tempfile.TemporaryDirectory(prefix="wrk-") as folder:
        script = Path(folder) / "course.lua"
        script.write_text(_WRK_SCRIPT.format(method=method, body=lines))
        args = [wrk, f"-t{min(threads, concurrency)}", f"-c{concurrency}", f"-d{seconds}s", "-s", str(script)]
        output = process.run([*args, url], timeout_s=seconds + 30, label="wrk")
    return parse_wrk_output(output, concurrency=concurrency)


_LOCUSTFILE = """
from locust import FastHttpUser, constant, task


class CourseUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def call(self):
        self.client.request({method!r}, {path!r}, json={body!r})
"""

# Loaded beside any locustfile (`-f users.py,statuses.py`): locust's CSV has no status codes, so this
# listener counts them (0 means no response) and writes them when locust quits.
_LOCUST_STATUSES = """
import json
from collections import Counter

from locust import events

statuses, errors = Counter(), Counter()


@events.request.add_listener
def count(response=None, exception=None, **kwargs):
    code = getattr(response, "status_code", 0) or 0
    if code:
        statuses[code] += 1
    else:
        errors[type(exception).__name__ if exception else "NoResponse"] += 1


@events.quitting.add_listener
def write(**kwargs):
    with open({path!r}, "w", encoding="utf-8") as out:
        json.dump({{"status_counts": statuses, "error_counts": errors}}, out)
"""


def parse_locust_stats(stats_csv: str, counts_json: str, *, concurrency: int | None = None) -> LoadResult:
    """A `LoadResult` from locust's `PREFIX_stats.csv` (`Aggregated` row) and `run_locust`'s status counts.

    Latencies come from locust's CSV; status codes and transport errors from the JSON that `run_locust`'s
    listener writes (locust's CSV only says "failure", which mixes a 503 with a refused connection).

    >>> head = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    >>> head += "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    >>> head += "50%,90%,95%,99%"
    >>> counts = '{"status_counts": {"200": 8, "503": 1}, "error_counts": {"ConnectionRefusedError": 1}}'
    >>> r = parse_locust_stats(head + "\\n,Aggregated,10,2,3,3.5,1,9,20,5.0,0.5,3,5,6,9\\n", counts)
    >>> (r.n_requests, r.n_ok, r.p95_ms, r.duration_s, r.status_counts, r.error_counts)
    (9, 8, 6.0, 2.0, {200: 8, 503: 1}, {'ConnectionRefusedError': 1})
    """
    import csv
    import io
    import json  # here: the runners' `json=` parameter is the request body

    rows = [row for row in csv.DictReader(io.StringIO(stats_csv)) if row.get("Name") == "Aggregated"]
    if not rows:
        raise CourseUtilsError(f"No 'Aggregated' row in locust's stats CSV:\n{stats_csv[-2000:]}")
    row = {k: (v if v not in ("N/A", "") else "nan") for k, v in rows[0].items()}
    counts = json.loads(counts_json)
    statuses = {int(code): int(n) for code, n in sorted(counts["status_counts"].items())}
    n = sum(statuses.values())
    # Requests/s counts every request locust made, answered or not: it gives the run's length.
    duration_s = (
        int(row["Request Count"]) / float(row["Requests/s"]) if float(row["Requests/s"]) else math.nan
    )
    return LoadResult(
        tool="locust",
        n_requests=n,
        duration_s=duration_s,
        throughput_rps=0.0 if n == 0 else n / duration_s,
        status_counts=statuses,
        error_counts={str(name): int(c) for name, c in counts["error_counts"].items()},
        concurrency=concurrency,
        **{name: float(row[column]) for name, column in zip(_LATENCY_FIELDS, _LOCUST_COLUMNS, strict=True)},
    )


def run_locust(
    url: str,
    *,
    path: str = "/",
    users: int = 8,
    spawn_rate: float = 100.0,
    duration_s: float = 10.0,
    method: str = "GET",
    json: Any = None,
    locustfile: Path | str | None = None,
    executable: str | None = None,
) -> LoadResult:
    """Run locust headless as a bounded subprocess (it cannot run inside a Jupyter kernel: gevent).

    `url` is the host (`http://127.0.0.1:8000`), `path` the endpoint; pass your own `locustfile` to replace
    the generated one (a user that calls `method path` with `json` back to back). Status codes are counted
    by a listener loaded beside it, so your own locustfile gets them too.

    >>> run_locust(srv.url, path="/health", users=8, duration_s=10).p95_ms  # doctest: +SKIP
    6.0
    """
    locust = _require("locust", executable)
    with tempfile.TemporaryDirectory(prefix="locust-") as folder:
        workdir = Path(folder)
        if locustfile is None:
            locustfile = workdir / "locustfile.py"
            locustfile.write_text(_LOCUSTFILE.format(method=method, path=path, body=json))
        listener = workdir / "course_statuses.py"
        listener.write_text(_LOCUST_STATUSES.format(path=str(workdir / "statuses.json")))
        seconds = max(1, math.ceil(duration_s))
        args = [locust, "-f", f"{locustfile},{listener}", "--headless", "--host", url, "-u", str(users)]
        args += ["-r", str(spawn_rate), "-t", f"{seconds}s", "--csv", str(workdir / "run"), "--only-summary"]
        # locust exits 1 when some requests failed; its stats still hold.
        output = process.run(args, timeout_s=seconds + 60, label="locust", ok_codes=(0, 1))
        try:
            stats = (workdir / "run_stats.csv").read_text()
            counts = (workdir / "statuses.json").read_text()
        except OSError:
            tail = "\n".join(output.splitlines()[-40:])
            raise CourseUtilsError(
                "locust ended without writing its statistics (a locustfile that fails to import, or a crash "
                f"at start). Fix what its output says:\n{tail}"
            ) from None
    return parse_locust_stats(stats, counts, concurrency=users)
