"""Serving benchmark: raw model ceiling, naive service, reference (batching off/on), LitServe; one run.

Same model (ONNX INT8, except the naive service's PyTorch FP32), same text, same machine, one run. Every
server runs as a real process on 127.0.0.1; all are started once, and each measurement point (closed loop
at concurrency 1, 8, 32, 64 with wrk; open loop at a fixed Poisson rate with course_utils.bench) visits
the servers round-robin, in a rotated order each round; medians over rounds are reported. The servers not
being measured are paused (SIGSTOP to their process group; `ProcessGroup.pause`), so an idle server's
background work (LitServe's batch loop polls its queue) cannot tax the one under load. The load generator
shares the 2 cores with the server (not pinned: see benchmarks/README.md); its CPU use is reported next to
the server's.

Writes benchmarks/results/serving.{md,json,png} (serving-quick.* with --quick) and prints the table, the
targets (MET/MISSED) and the reference's profile that explains them (CPU per request of its event loop and
of its inference threads, its batches). Bounded: --quick about 2 minutes, the default about 8 minutes.

    .venv/bin/python benchmarks/serving.py [--quick] [--rounds 3] [--duration-s 5]
    .venv/bin/python -m benchmarks.serving [--quick]    (the same, from the repository root)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from course_utils.bench import LoadResult, results_frame, run_open_loop, run_wrk
from course_utils.config import REFERENCE_SRC, get_settings
from course_utils.errors import ServerStartError
from course_utils.process import ProcessGroup
from course_utils.server import ServerProcess, reference_threads_per_worker

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
RESULTS = HERE / "results"
#: One short review (15 tokens with [CLS]/[SEP]): the text export.py times, sent by every client.
TEXT = "The hotel staff were friendly and the room was spotless."
BODY = {"text": TEXT}
LEVELS = (1, 8, 32, 64)
OPEN = "open"
RAW_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
PACKAGES = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "onnxruntime", "tokenizers", "torch")
PACKAGES += ("numpy", "litserve")
# The reference's default INFERENCE_WORKERS (solutions/capstone/src/settings.py; tests/test_benchmarks.py
# checks that the two agree): LitServe gets as many inference workers in its second configuration.
REFERENCE_WORKERS = 3
HTTP_STACKS = {"asyncio-h11": ("asyncio", "h11"), "uvloop-httptools": ("uvloop", "httptools")}


@dataclass(frozen=True)
class Plan:
    """How long and how often: the run's bounds."""

    duration_s: float
    rounds: int
    warmup_s: float
    open_rate_rps: float
    raw_min_time_s: float
    max_batch_size: int = 16
    max_wait_ms: float = 2.0
    http_stack: str = "uvloop-httptools"
    ort_threads: int = 0


QUICK = Plan(duration_s=2.0, rounds=1, warmup_s=1.0, open_rate_rps=100.0, raw_min_time_s=0.3)
FULL = Plan(duration_s=5.0, rounds=3, warmup_s=1.0, open_rate_rps=100.0, raw_min_time_s=1.0)


# --- the raw model ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawPoint:
    """ONNX INT8 in-process at one batch size; tokenisation timed apart from inference."""

    batch_size: int
    infer_ms: float
    tokenise_ms: float

    @property
    def items_per_s(self) -> float:
        return self.batch_size / self.infer_ms * 1000

    @property
    def items_per_s_with_tokenise(self) -> float:
        return self.batch_size / (self.infer_ms + self.tokenise_ms) * 1000


def _median_call_ms(call: Callable[[], object], *, min_time_s: float, pause_s: float = 0.0) -> float:
    """Median wall time of `call` after a warm-up, repeated for at least `min_time_s` (and 5 calls), with an
    untimed `pause_s` sleep before each call (0: back to back, no sleep at all)."""

    def pause() -> None:
        if pause_s > 0:
            time.sleep(pause_s)

    for _ in range(3):
        pause()
        call()
    times: list[float] = []
    deadline = time.perf_counter() + min_time_s
    while len(times) < 5 or time.perf_counter() < deadline:
        pause()
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure_raw_model(*, min_time_s: float, batch_sizes: Sequence[int] = RAW_BATCH_SIZES) -> list[RawPoint]:
    """The ceiling no server can beat: the INT8 session as the reference builds it, no HTTP at all."""
    from course_utils.export import onnx_session
    from course_utils.model import encode, load_tokenizer

    model_dir = get_settings().model_dir
    tokenizer = load_tokenizer(model_dir)
    session = onnx_session(model_dir / "model.int8.onnx", threads=0)
    points = []
    for size in batch_sizes:
        texts = [TEXT] * size
        feeds = encode(tokenizer, texts)
        tokenise_ms = _median_call_ms(partial(encode, tokenizer, texts), min_time_s=min_time_s / 4)
        infer_ms = _median_call_ms(partial(session.run, ["logits"], feeds), min_time_s=min_time_s)
        points.append(RawPoint(size, infer_ms, tokenise_ms))
    return points


#: The pause before each call of `measure_lone_batch`: about the HTTP part of a request at c=1, during which
#: the inference thread has nothing to do.
LONE_PAUSE_S = 0.001


def measure_lone_batch(*, min_time_s: float, threads: int) -> float:
    """Median ms of batch-1 inference as the reference runs it at c=1: `threads` ORT threads (its per-worker
    policy), and a pause before each call, as between one client's requests. The raw table times the same
    call back to back on every core, which no request/response rhythm sees: caches and the CPU cool down
    in the pauses. This is the model's share of the c=1 p50, measured without the service."""
    from course_utils.export import onnx_session
    from course_utils.model import encode, load_tokenizer

    model_dir = get_settings().model_dir
    session = onnx_session(model_dir / "model.int8.onnx", threads=threads)
    feeds = encode(load_tokenizer(model_dir), [TEXT])
    return _median_call_ms(
        partial(session.run, ["logits"], feeds), min_time_s=min_time_s, pause_s=LONE_PAUSE_S
    )


def raw_label() -> str:
    """The label the raw model gives TEXT: every server must answer the same."""
    from course_utils.export import onnx_proba, onnx_session
    from course_utils.model import LABELS, load_tokenizer

    model_dir = get_settings().model_dir
    proba = onnx_proba(onnx_session(model_dir / "model.int8.onnx"), load_tokenizer(model_dir), [TEXT])
    return LABELS[int(proba[0].argmax())]


def median_raw(rounds: Sequence[Sequence[RawPoint]]) -> list[RawPoint]:
    """Per batch size, the median over rounds of inference and tokenisation time."""
    return [
        RawPoint(
            group[0].batch_size,
            statistics.median(p.infer_ms for p in group),
            statistics.median(p.tokenise_ms for p in group),
        )
        for group in zip(*rounds, strict=True)
    ]


# --- the servers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    """One contender: `start(plan)` returns its (unstarted) `ServerProcess`, ready once started."""

    name: str
    description: str
    start: Callable[[Plan], ServerProcess]


def _uvicorn_args(plan: Plan) -> list[str]:
    loop, http = HTTP_STACKS[plan.http_stack]
    return ["--loop", loop, "--http", http, "--no-access-log"]


def _naive(plan: Plan) -> ServerProcess:
    env = {"MODEL_DIR": str(get_settings().model_dir)}
    return ServerProcess("naive_app:app", app_dir=APPS, env=env, extra_args=_uvicorn_args(plan))


def _reference(batch_size: int) -> Callable[[Plan], ServerProcess]:
    def start(plan: Plan) -> ServerProcess:
        env = {
            "MODEL_DIR": str(get_settings().model_dir),
            "BACKEND": "onnx-int8",
            "MAX_BATCH_SIZE": str(batch_size or plan.max_batch_size),
            "MAX_WAIT_MS": str(plan.max_wait_ms),
            "ORT_THREADS": str(plan.ort_threads),
            "UVICORN_ACCESS_LOG": "false",
        }
        return ServerProcess(
            "app:app", app_dir=REFERENCE_SRC, env=env, health_path="/ready", extra_args=_uvicorn_args(plan)
        )

    return start


#: The reference's thread policy, asked from its own settings (run in its src folder, as uvicorn runs it).
def _litserve(workers: int) -> Callable[[Plan], ServerProcess]:
    def start(plan: Plan) -> ServerProcess:
        loop, http = HTTP_STACKS[plan.http_stack]
        args = ["--max-batch-size", str(plan.max_batch_size), "--batch-timeout-ms", str(plan.max_wait_ms)]
        threads = reference_threads_per_worker(workers, ort_threads=plan.ort_threads)
        args += ["--loop", loop, "--http", http, "--ort-threads", str(threads), "--workers", str(workers)]
        return ServerProcess(
            command=[sys.executable, str(APPS / "litserve_app.py")],
            extra_args=args,
            env={"MODEL_DIR": str(get_settings().model_dir)},
            start_timeout_s=90,
        )

    return start


SERVERS = (
    ServerSpec("naive", "sync def, PyTorch eager FP32, batch 1 (notebook 02)", _naive),
    ServerSpec("reference b=1", "reference capstone, ONNX INT8, MAX_BATCH_SIZE=1", _reference(1)),
    ServerSpec("reference batched", "reference capstone, ONNX INT8, dynamic batching", _reference(0)),
    ServerSpec("litserve", "LitServe 1 API server + 1 worker, ONNX INT8, its own batching", _litserve(1)),
    # The reference computes several batches at once (INFERENCE_WORKERS); LitServe's equivalent is as many
    # worker processes.
    ServerSpec(
        f"litserve w={REFERENCE_WORKERS}",
        f"LitServe 1 API server + {REFERENCE_WORKERS} workers, ONNX INT8, its own batching",
        _litserve(REFERENCE_WORKERS),
    ),
)


#: The server whose threads and /metrics `make bench` profiles: the reference as it ships.
PROFILED = "reference batched"


@dataclass
class Running:
    spec: ServerSpec
    url: str
    group: ProcessGroup
    check: dict[str, Any] = field(default_factory=dict)


def start_all(
    stack: ExitStack, plan: Plan, specs: Sequence[ServerSpec], expected_label: str
) -> list[Running]:
    """Start every server (stopped by `stack`), check its answer, and pause it until its turn."""
    running = []
    for spec in specs:
        server = stack.enter_context(spec.start(plan))
        url, group = server.url, server.group  # stopping a server resumes its group first
        answer = httpx.post(url + "/predict", json=BODY, timeout=30, trust_env=False).json()
        check = {"answer": answer, "label_ok": answer.get("label") == expected_label}
        if not check["label_ok"]:
            raise ServerStartError(f"{spec.name} answered {answer!r}, expected label {expected_label!r}.")
        group.pause()
        running.append(Running(spec, url, group, check))
    return running


# --- measuring -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One measurement of one server at one load point in one round."""

    server: str
    load: int | str
    round: int
    result: LoadResult
    server_cpu_s: float
    client_cpu_s: float
    #: PROFILED only (None for the others): CPU of its event loop (the process's main thread), and its
    #: batching counters, both as differences over the measurement.
    loop_cpu_s: float | None = None
    batches: BatchTotals | None = None


@dataclass(frozen=True)
class BatchTotals:
    """The reference's own batching counters on /metrics: batches computed, items in them, compute seconds."""

    batches: float
    items: float
    compute_s: float

    def __sub__(self, before: BatchTotals) -> BatchTotals:
        return BatchTotals(
            self.batches - before.batches, self.items - before.items, self.compute_s - before.compute_s
        )


def batch_totals(url: str) -> BatchTotals:
    """Read `batch_size` and `batch_compute_seconds` (histograms) from the reference's /metrics."""
    text = httpx.get(url + "/metrics", timeout=10, trust_env=False).text
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in ("batch_size_count", "batch_size_sum", "batch_compute_seconds_sum")
    }
    return BatchTotals(
        values.get("batch_size_count", 0.0),
        values.get("batch_size_sum", 0.0),
        values.get("batch_compute_seconds_sum", 0.0),
    )


def main_thread_cpu_s(group: ProcessGroup) -> float | None:
    """CPU seconds of the main thread of the group's processes: for uvicorn, the event loop, which runs all
    the HTTP, middleware and metrics code; the model runs in other threads. None off Linux, where psutil
    does not tell which thread is the main one."""
    if not sys.platform.startswith("linux"):
        return None
    total = 0.0
    for proc in group.processes():
        with contextlib.suppress(psutil.Error):
            total += sum(t.user_time + t.system_time for t in proc.threads() if t.id == proc.pid)
    return total


#: psutil counts reaped children's CPU time (wrk's) on Linux only; 0 on macOS and Windows.
CHILDREN_CPU_COUNTED = sys.platform.startswith("linux")
CLIENT_CPU_NOTE = (
    "client cores count this process only: this OS does not report the CPU time of finished child "
    "processes, so wrk's share is missing (run on Linux for the full client figure)"
)


def _client_cpu_s() -> float:
    """CPU seconds of this process and its reaped children (wrk), both the load generator's.

    The same figures as getrusage(RUSAGE_SELF) + getrusage(RUSAGE_CHILDREN), through psutil, which also
    runs where `resource` does not exist (Windows); see CLIENT_CPU_NOTE for what is missing off Linux.
    """
    times = psutil.Process().cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def load_once(url: str, load: int | str, plan: Plan, *, duration_s: float, seed: int = 0) -> LoadResult:
    """One bounded run: wrk closed loop at concurrency `load`, or the Poisson open loop (load == OPEN)."""
    if load == OPEN:
        return run_open_loop(
            url + "/predict",
            rate_rps=plan.open_rate_rps,
            duration_s=duration_s,
            method="POST",
            json=BODY,
            seed=seed,
            progress=False,
        )
    concurrency = int(load)
    return run_wrk(
        url + "/predict",
        concurrency=concurrency,
        threads=min(2, concurrency),
        duration_s=duration_s,
        method="POST",
        body=json.dumps(BODY),
    )


def measure(server: Running, load: int | str, plan: Plan, round_no: int) -> Sample:
    """Resume the server, warm it up on the first round, measure, pause it again."""
    server.group.resume()
    try:
        if round_no == 0 and plan.warmup_s > 0:
            load_once(server.url, load, plan, duration_s=plan.warmup_s)
        profiled = server.spec.name == PROFILED
        batches0 = batch_totals(server.url) if profiled else None
        loop0 = main_thread_cpu_s(server.group) if profiled else None
        cpu0, client0 = server.group.cpu_s(), _client_cpu_s()
        result = load_once(server.url, load, plan, duration_s=plan.duration_s, seed=round_no)
        server_cpu_s, client_cpu_s = server.group.cpu_s() - cpu0, _client_cpu_s() - client0
        loop1 = main_thread_cpu_s(server.group) if profiled else None
        batches = batch_totals(server.url) - batches0 if batches0 is not None else None
    finally:
        server.group.pause()
    loop_cpu_s = loop1 - loop0 if loop0 is not None and loop1 is not None else None
    return Sample(server.spec.name, load, round_no, result, server_cpu_s, client_cpu_s, loop_cpu_s, batches)


def run_benchmark(plan: Plan, specs: Sequence[ServerSpec] = SERVERS, *, log: Callable[[str], None] = print):
    """Start everything, then for each round: the raw model (its table and the lone batch of c=1), and every
    load point round-robin over servers. Returns the samples, the raw table, the lone-batch ms, the checks."""
    samples: list[Sample] = []
    raw_rounds: list[list[RawPoint]] = []
    lone_rounds: list[float] = []
    loads: list[int | str] = [*LEVELS, OPEN]
    lone_threads = reference_threads_per_worker(REFERENCE_WORKERS, ort_threads=plan.ort_threads)
    with ExitStack() as stack:
        running = start_all(stack, plan, specs, raw_label())
        log(f"started {len(running)} servers: " + ", ".join(f"{r.spec.name} {r.url}" for r in running))
        for round_no in range(plan.rounds):
            raw_rounds.append(measure_raw_model(min_time_s=plan.raw_min_time_s))
            lone_rounds.append(measure_lone_batch(min_time_s=plan.raw_min_time_s / 2, threads=lone_threads))
            for load in loads:
                shift = round_no % len(running)
                for server in running[shift:] + running[:shift]:
                    sample = measure(server, load, plan, round_no)
                    samples.append(sample)
                    log(_progress_line(sample))
        checks = {r.spec.name: r.check for r in running}
    return samples, median_raw(raw_rounds), statistics.median(lone_rounds), checks


def _progress_line(sample: Sample) -> str:
    r = sample.result
    return (
        f"round {sample.round + 1} {sample.server:<18} {sample.load!s:>4}: {r.throughput_rps:7.1f} req/s"
        f"  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:8.2f} ms  errors {_errors(r)}"
    )


# --- summarising -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """Medians over rounds for one server at one load point; errors summed."""

    server: str
    load: int | str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cores: float
    client_cores: float
    rounds: int


def _errors(result: LoadResult) -> int:
    """Non-2xx answers plus requests with no answer (refused, timed out, dropped over the in-flight cap)."""
    return result.n_requests - result.n_ok + result.n_errors


def summarise(samples: Sequence[Sample]) -> list[Row]:
    """One Row per (server, load), in the order first seen."""
    frame = results_frame([s.result for s in samples])
    frame["server"] = [s.server for s in samples]
    frame["load"] = [str(s.load) for s in samples]
    frame["errors"] = [_errors(s.result) for s in samples]
    frame["server_cores"] = [s.server_cpu_s / s.result.duration_s for s in samples]
    frame["client_cores"] = [s.client_cpu_s / s.result.duration_s for s in samples]
    rows = []
    for (server, load), group in frame.groupby(["server", "load"], sort=False):
        rows.append(
            Row(
                server=str(server),
                load=int(load) if str(load).isdigit() else str(load),
                rps=float(group["throughput_rps"].median()),
                p50_ms=float(group["p50_ms"].median()),
                p99_ms=float(group["p99_ms"].median()),
                errors=int(group["errors"].sum()),
                server_cores=float(group["server_cores"].median()),
                client_cores=float(group["client_cores"].median()),
                rounds=len(group),
            )
        )
    return rows


@dataclass(frozen=True)
class Target:
    name: str
    value: float
    threshold: float
    met: bool
    detail: str


def _row(rows: Sequence[Row], server: str, load: int | str) -> Row | None:
    return next((r for r in rows if r.server == server and r.load == load), None)


def _better_litserve(rows: Sequence[Row], load: int) -> Row | None:
    """LitServe's faster configuration at `load`, so the reference cannot win by a weak opponent."""
    litserve = (r for r in rows if r.server.startswith("litserve") and r.load == load)
    return max(litserve, key=lambda r: r.rps, default=None)


#: The targets (issue "Faster at both ends"): the reference against the better LitServe at c=32 (with a
#: lower p99), its share of the raw model's best batched items/s at c=64, its p50 at c=1 against the raw
#: batch-1 inference plus tokenisation.
VS_LITSERVE = 1.5
RAW_SHARE = 0.7
C1_BUDGET_FACTOR = 1.5


def evaluate_targets(rows: Sequence[Row], raw: Sequence[RawPoint]) -> list[Target]:
    """The issue's four ratio targets from one run's medians (NaN and MISSED when a row is absent)."""
    nan_row = Row("", 0, math.nan, math.nan, math.nan, 0, math.nan, math.nan, 0)
    naive32 = _row(rows, "naive", 32) or nan_row
    ref32 = _row(rows, "reference batched", 32) or nan_row
    lit32 = _better_litserve(rows, 32) or nan_row
    ref64 = _row(rows, "reference batched", 64) or nan_row
    ref1 = _row(rows, "reference batched", 1) or nan_row
    best = max(raw, key=lambda p: p.items_per_s)
    one = next(p for p in raw if p.batch_size == 1)
    budget_ms = C1_BUDGET_FACTOR * (one.infer_ms + one.tokenise_ms)
    speedup = ref32.rps / naive32.rps
    vs_lit = ref32.rps / lit32.rps
    share = ref64.rps / best.items_per_s
    return [
        Target(
            "reference batched >= 8x naive req/s at c=32",
            speedup,
            8.0,
            speedup >= 8.0,
            f"{ref32.rps:.0f} vs {naive32.rps:.0f} req/s",
        ),
        Target(
            f"reference batched >= {VS_LITSERVE}x LitServe req/s at c=32, lower p99",
            vs_lit,
            VS_LITSERVE,
            vs_lit >= VS_LITSERVE and ref32.p99_ms < lit32.p99_ms,
            f"{ref32.rps:.0f} vs {lit32.rps:.0f} req/s ({lit32.server}, the better LitServe); "
            f"p99 {ref32.p99_ms:.1f} vs {lit32.p99_ms:.1f} ms",
        ),
        Target(
            f"reference batched at c=64 >= {RAW_SHARE:.0%} of raw best batched items/s",
            share,
            RAW_SHARE,
            share >= RAW_SHARE,
            f"{ref64.rps:.0f} req/s vs {best.items_per_s:.0f} items/s at batch {best.batch_size}",
        ),
        Target(
            f"reference batched p50 at c=1 <= {C1_BUDGET_FACTOR}x (raw batch-1 + tokenise)",
            ref1.p50_ms,
            budget_ms,
            ref1.p50_ms <= budget_ms,
            f"p50 {ref1.p50_ms:.2f} ms vs budget {budget_ms:.2f} ms "
            f"({C1_BUDGET_FACTOR} x ({one.infer_ms:.2f} + {one.tokenise_ms:.3f}))",
        ),
    ]


# --- the profile that explains the targets ----------------------------------------------------------------


@dataclass(frozen=True)
class ProfileRow:
    """Where the reference's time and CPU went at one closed-loop load (medians over rounds)."""

    load: int
    rps: float
    p50_ms: float
    batch_size: float  # mean requests per computed batch
    compute_ms: float  # mean per batch, hand-off to an inference thread to answers back: tokenise, model
    loop_ms: float  # event-loop CPU per request: HTTP, validation, batching, the log line, metrics
    inference_ms: float  # CPU of every other thread per request: tokenising, the model, building answers

    def ceiling_rps(self, cores: int) -> float:
        """The most requests/s `cores` could serve at these CPU costs, were nothing else running."""
        return cores * 1000 / (self.loop_ms + self.inference_ms)


def _profile_sample(sample: Sample) -> ProfileRow | None:
    """One round's ProfileRow, or None for a sample without thread CPU or /metrics (not the reference)."""
    if sample.loop_cpu_s is None or sample.batches is None or not isinstance(sample.load, int):
        return None
    requests = max(sample.result.n_requests, 1)
    batches = max(sample.batches.batches, 1.0)
    return ProfileRow(
        load=sample.load,
        rps=sample.result.throughput_rps,
        p50_ms=sample.result.p50_ms,
        batch_size=sample.batches.items / batches,
        compute_ms=sample.batches.compute_s * 1000 / batches,
        loop_ms=sample.loop_cpu_s * 1000 / requests,
        inference_ms=(sample.server_cpu_s - sample.loop_cpu_s) * 1000 / requests,
    )


def profile_reference(samples: Sequence[Sample]) -> list[ProfileRow]:
    """One ProfileRow per closed-loop load of the shipped reference: each field's median over rounds."""
    rows = []
    for load in LEVELS:
        rounds = [
            row for s in samples if s.server == PROFILED and s.load == load and (row := _profile_sample(s))
        ]
        if rounds:
            medians = {
                f.name: statistics.median(getattr(row, f.name) for row in rounds)
                for f in fields(ProfileRow)
                if f.name != "load"
            }
            rows.append(ProfileRow(load=load, **medians))
    return rows


def explain_gaps(
    targets: Sequence[Target],
    rows: Sequence[Row],
    raw: Sequence[RawPoint],
    profile: Sequence[ProfileRow],
    lone_ms: float | None,
    cores: int,
) -> list[str]:
    """For each missed target of the reference, the measured costs that decide it (one sentence each)."""
    by_load = {p.load: p for p in profile}
    lines: list[str] = []
    if len(targets) < 4:
        return lines
    vs_lit, share, c1 = (not t.met for t in targets[1:4])  # evaluate_targets' order

    p32 = by_load.get(32)
    lit = _better_litserve(rows, 32)
    if vs_lit and p32 is not None and lit is not None:
        need = VS_LITSERVE * lit.rps
        ceiling = p32.ceiling_rps(cores)
        lines.append(
            f"c=32 against LitServe: per request the reference spent {p32.loop_ms:.2f} ms of CPU in its "
            f"event loop and {p32.inference_ms:.2f} ms in its inference threads, so {cores} cores allow at "
            f"most {ceiling:.0f} req/s ({ceiling / lit.rps:.2f}x {lit.server}'s {lit.rps:.0f}); "
            f"{VS_LITSERVE}x needs {need:.0f} req/s, at most {cores * 1000 / need:.2f} ms of CPU per request "
            f"in all. It ran at {p32.rps / ceiling:.0%} of that ceiling, in batches of {p32.batch_size:.1f}."
        )
    p64 = by_load.get(64)
    if share and p64 is not None and raw:
        best = max(raw, key=lambda p: p.items_per_s)
        item_ms = cores * 1000 / best.items_per_s
        ceiling = p64.ceiling_rps(cores)
        budget = cores * 1000 / (RAW_SHARE * best.items_per_s)
        lines.append(
            f"c=64 against the raw model: per request, {p64.loop_ms:.2f} ms of event-loop CPU and "
            f"{p64.inference_ms:.2f} ms in the inference threads (batches of {p64.batch_size:.1f}); at these "
            f"costs {cores} cores serve at most {ceiling:.0f} req/s, {ceiling / best.items_per_s:.0%} of the "
            f"raw best ({best.items_per_s:.0f} items/s: batches of {best.batch_size} back to back on every "
            f"core, {item_ms:.2f} ms of CPU per item). {RAW_SHARE:.0%} of it allows {budget:.2f} ms of CPU "
            f"per request in all, {budget - item_ms:.2f} ms beyond the raw model's own cost for HTTP, "
            f"batching, the log line and metrics; the event loop alone spends {p64.loop_ms:.2f} ms. "
            f"It ran at {p64.rps / ceiling:.0%} of its ceiling."
        )
    p1 = by_load.get(1)
    one = next((p for p in raw if p.batch_size == 1), None)
    if c1 and p1 is not None and one is not None:
        budget = C1_BUDGET_FACTOR * (one.infer_ms + one.tokenise_ms)
        alone = (
            f"; called as c=1 calls it (the service's ONNX Runtime threads per worker, a "
            f"{LONE_PAUSE_S * 1000:g} ms pause before each call), the model alone takes {lone_ms:.2f} ms"
            if lone_ms is not None
            else ""
        )
        lines.append(
            f"c=1: the p50 of {p1.p50_ms:.2f} ms is a batch of one, {p1.compute_ms:.2f} ms from the hand-off "
            f"to an inference thread until its answer is back in the event loop (tokenising, the model, both "
            f"hand-offs), plus {p1.p50_ms - p1.compute_ms:.2f} ms through HTTP, validation, the batcher, the "
            f"log line and metrics ({p1.loop_ms:.2f} ms of event-loop CPU). The budget, {budget:.2f} ms, is "
            f"{C1_BUDGET_FACTOR}x the raw table's batch 1 ({one.infer_ms:.2f} ms, back to back on every "
            f"core){alone}."
        )
    return lines


# --- reporting -------------------------------------------------------------------------------------------


def describe_machine(plan: Plan) -> dict[str, Any]:
    """What the numbers depend on: CPU, cores, load average (a noisy machine shows here), versions."""
    cpu = platform.processor() or "unknown"  # a family name; /proc/cpuinfo has the model on Linux
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1m": round(psutil.getloadavg()[0], 2),  # emulated on Windows (0 at first)
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
        "client": "wrk (closed loop), course_utils.bench.run_open_loop (open loop); not pinned",
        "http_stack": plan.http_stack,
        "notes": [] if CHILDREN_CPU_COUNTED else [CLIENT_CPU_NOTE],
    }


def markdown_report(
    rows: Sequence[Row],
    raw: Sequence[RawPoint],
    targets: Sequence[Target],
    machine: dict[str, Any],
    plan: Plan,
    profile: Sequence[ProfileRow] = (),
    lone_ms: float | None = None,
) -> str:
    """The tables a reader needs: servers, the raw model, the targets, the profile that explains them, and
    the machine they ran on."""
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, load average "
        f"{machine['load_average_1m']} (start) / {machine.get('load_average_1m_end', '?')} (end); "
        f"HTTP stack {plan.http_stack}; {plan.rounds} round(s) x {plan.duration_s:g} s per point; "
        f"open loop = Poisson {plan.open_rate_rps:g} req/s; batching {plan.max_batch_size} / "
        f"{plan.max_wait_ms:g} ms; ORT_THREADS {plan.ort_threads} (servers; raw model: 0 = all cores).",
        "",
        "| server | load | req/s | p50 ms | p99 ms | errors | server cores | client cores |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        load = f"c={r.load}" if isinstance(r.load, int) else f"open {plan.open_rate_rps:g}/s"
        lines.append(
            f"| {r.server} | {load} | {r.rps:.1f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} "
            f"| {r.server_cores:.2f} | {r.client_cores:.2f} |"
        )
    lines += [
        "",
        "| raw ONNX INT8 batch | infer ms | items/s | tokenise ms | items/s incl. tokenise |",
        "|---:|---:|---:|---:|---:|",
    ]
    for p in raw:
        lines.append(
            f"| {p.batch_size} | {p.infer_ms:.3f} | {p.items_per_s:.0f} | {p.tokenise_ms:.3f} "
            f"| {p.items_per_s_with_tokenise:.0f} |"
        )
    lines += ["", "| target | value | threshold | result | detail |", "|---|---:|---:|---|---|"]
    for t in targets:
        lines.append(
            f"| {t.name} | {t.value:.2f} | {t.threshold:.2f} | {'MET' if t.met else 'MISSED'} | {t.detail} |"
        )
    if profile:
        lines += [
            "",
            f"Where the time goes in `{PROFILED}` (CPU per request from its threads, batches from /metrics):",
            "",
            "| load | req/s | p50 ms | mean batch | compute ms per batch | event loop CPU ms/req "
            "| inference CPU ms/req | CPU ceiling req/s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in profile:
            lines.append(
                f"| c={row.load} | {row.rps:.1f} | {row.p50_ms:.2f} | {row.batch_size:.1f} "
                f"| {row.compute_ms:.2f} | {row.loop_ms:.3f} | {row.inference_ms:.3f} "
                f"| {row.ceiling_rps(machine['cores']):.0f} |"
            )
    gaps = explain_gaps(targets, rows, raw, profile, lone_ms, machine["cores"])
    if gaps:
        lines += ["", "Why the missed targets are missed:", "", *(f"- {line}" for line in gaps)]
    lines += [f"\nNote: {note}." for note in machine.get("notes", [])]
    return "\n".join(lines) + "\n"


def report_dict(
    samples: Sequence[Sample],
    rows: Sequence[Row],
    raw: Sequence[RawPoint],
    targets: Sequence[Target],
    machine: dict[str, Any],
    plan: Plan,
    checks: dict[str, Any],
    profile: Sequence[ProfileRow] = (),
    lone_ms: float | None = None,
) -> dict[str, Any]:
    """Everything, JSON-serialisable: medians, targets, profile, raw runs (for re-analysis), machine, plan."""
    return {
        "plan": asdict(plan),
        "machine": machine,
        "servers": {s.name: s.description for s in SERVERS},
        "checks": checks,
        "rows": [asdict(r) for r in rows],
        "raw_model": [
            {
                **asdict(p),
                "items_per_s": p.items_per_s,
                "items_per_s_with_tokenise": p.items_per_s_with_tokenise,
            }
            for p in raw
        ],
        "targets": [asdict(t) for t in targets],
        "profile": [{**asdict(p), "ceiling_rps": p.ceiling_rps(machine["cores"])} for p in profile],
        "lone_batch_ms": lone_ms,
        "samples": [
            {
                "server": s.server,
                "load": s.load,
                "round": s.round,
                "server_cpu_s": s.server_cpu_s,
                "client_cpu_s": s.client_cpu_s,
                "loop_cpu_s": s.loop_cpu_s,
                "batches": asdict(s.batches) if s.batches is not None else None,
                **s.result.to_dict(),
            }
            for s in samples
        ],
    }


def write_json(path: Path, report: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str, allow_nan=True) + "\n", encoding="utf-8")
    return path


def plot(rows: Sequence[Row], raw: Sequence[RawPoint], path: Path) -> Path:
    """Throughput vs p99, one line per server (closed-loop points), open-loop points as crosses."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    for server in dict.fromkeys(r.server for r in rows):
        closed = [r for r in rows if r.server == server and isinstance(r.load, int)]
        (line,) = ax.plot([r.rps for r in closed], [r.p99_ms for r in closed], marker="o", label=server)
        for r in closed:
            ax.annotate(
                f"c={r.load}", (r.rps, r.p99_ms), textcoords="offset points", xytext=(4, 4), fontsize=8
            )
        for r in (r for r in rows if r.server == server and not isinstance(r.load, int)):
            ax.plot([r.rps], [r.p99_ms], marker="x", markersize=9, color=line.get_color(), linestyle="none")
    best = max(raw, key=lambda p: p.items_per_s)
    ax.axvline(
        best.items_per_s,
        color="grey",
        linestyle="--",
        label=f"raw ONNX INT8, batch {best.batch_size} ({best.items_per_s:.0f} items/s)",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("throughput (requests/s, log)")
    ax.set_ylabel("p99 latency (ms, log)")
    ax.set_title("Throughput vs p99 (closed loop c=1..64; x = open loop)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def write_outputs(
    out_dir: Path,
    stem: str,
    samples: Sequence[Sample],
    raw: Sequence[RawPoint],
    machine: dict[str, Any],
    plan: Plan,
    checks: dict[str, Any],
    lone_ms: float | None = None,
) -> tuple[str, list[Target]]:
    """Summarise, evaluate the targets, profile the reference, write STEM.md, STEM.json and STEM.png; return
    the Markdown."""
    rows = summarise(samples)
    targets = evaluate_targets(rows, raw)
    profile = profile_reference(samples)
    text = markdown_report(rows, raw, targets, machine, plan, profile, lone_ms)
    (out_dir / f"{stem}.md").parent.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.md").write_text(text, encoding="utf-8")
    report = report_dict(samples, rows, raw, targets, machine, plan, checks, profile, lone_ms)
    write_json(out_dir / f"{stem}.json", report)
    plot(rows, raw, out_dir / f"{stem}.png")
    return text, targets


def parse_plan(argv: Sequence[str] | None = None) -> tuple[Plan, Path, str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 2 s per point (~2 min)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds; medians are reported")
    parser.add_argument("--duration-s", type=float, help="seconds per measurement point")
    parser.add_argument("--open-rate-rps", type=float, help="Poisson arrival rate of the open-loop point")
    parser.add_argument("--max-batch-size", type=int, default=16, help="reference and LitServe batching")
    parser.add_argument("--max-wait-ms", type=float, default=2.0, help="reference and LitServe batch wait")
    parser.add_argument(
        "--http-stack",
        choices=sorted(HTTP_STACKS),
        default="uvloop-httptools",
        help="uvicorn loop/parser for every server (uvloop-httptools = the reference image's)",
    )
    parser.add_argument(
        "--ort-threads",
        type=int,
        default=0,
        help="ONNX Runtime threads per model worker of the reference and LitServe "
        "(0 = the reference's default, ServiceSettings.threads_per_worker())",
    )
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    plan = Plan(
        duration_s=args.duration_s or base.duration_s,
        rounds=args.rounds or base.rounds,
        warmup_s=base.warmup_s,
        open_rate_rps=args.open_rate_rps or base.open_rate_rps,
        raw_min_time_s=base.raw_min_time_s,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        http_stack=args.http_stack,
        ort_threads=args.ort_threads,
    )
    return plan, args.out_dir, "serving-quick" if args.quick else "serving"


def main(argv: Sequence[str] | None = None) -> None:
    plan, out_dir, stem = parse_plan(argv)
    machine = describe_machine(plan)
    started = time.monotonic()
    samples, raw, lone_ms, checks = run_benchmark(plan)
    machine["load_average_1m_end"] = round(psutil.getloadavg()[0], 2)
    machine["wall_s"] = round(time.monotonic() - started, 1)
    text, targets = write_outputs(out_dir, stem, samples, raw, machine, plan, checks, lone_ms)
    print("\n" + text)
    for t in targets:
        print(
            f"{'MET   ' if t.met else 'MISSED'} {t.name}: {t.value:.2f} "
            f"(threshold {t.threshold:.2f}); {t.detail}"
        )
    for note in machine["notes"]:
        print(f"note: {note}")
    print(f"\nwrote {out_dir / stem}.{{md,json,png}} in {machine['wall_s']} s")


if __name__ == "__main__":
    main()
