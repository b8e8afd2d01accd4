"""Smoke tests of benchmarks/: the benchmark's apps start and answer correctly, its writers work.

No timing assertions: timing belongs in `make bench` on a quiet machine, not in a shared CI run.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import httpx
import pytest

from benchmarks import serving
from benchmarks.container import CAPSTONE, one_stage
from course_utils.bench import LoadResult
from course_utils.dockerfile import parse_dockerfile, read_dockerfile
from course_utils.dockerfile_lint import lint_dockerfile


def _result(latencies_ms: list[float], concurrency: int | None = None, bad: int = 0) -> LoadResult:
    return LoadResult.from_samples(
        latencies_ms,
        duration_s=1.0,
        status_counts={200: len(latencies_ms) - bad, 503: bad},
        concurrency=concurrency,
    )


def _synthetic_samples() -> list[object]:
    """Two rounds of every server at every load point; the reference is 10x the naive service."""
    speed = {
        "naive": 1.0,
        "reference b=1": 5.0,
        "reference batched": 10.0,
        "litserve": 6.0,
        "litserve w=3": 8.0,
    }
    samples = []
    for round_no in range(2):
        for load in [*serving.LEVELS, serving.OPEN]:
            for name, factor in speed.items():
                n = int(20 * factor) + round_no
                latencies = [10.0 / factor] * n
                result = _result(latencies, load if isinstance(load, int) else None, bad=round_no)
                samples.append(serving.Sample(name, load, round_no, result, 0.9, 0.3))
    return samples


def _synthetic_raw() -> list[object]:
    return [serving.RawPoint(1, 1.0, 0.1), serving.RawPoint(16, 8.0, 0.8), serving.RawPoint(32, 20.0, 1.6)]


def test_summarise_takes_medians_over_rounds_and_sums_errors() -> None:
    rows = serving.summarise(_synthetic_samples())
    assert len(rows) == 5 * (len(serving.LEVELS) + 1), "one row per (server, load)"
    naive32 = next(r for r in rows if r.server == "naive" and r.load == 32)
    assert naive32.rps == pytest.approx(20.5), "median of 20 and 21 requests in 1 s"
    assert naive32.errors == 1, "the 503 of round 2 is counted"
    assert naive32.rounds == 2
    assert next(r for r in rows if r.server == "naive" and r.load == serving.OPEN).load == "open"


def test_targets_are_computed_from_the_rows() -> None:
    rows = serving.summarise(_synthetic_samples())
    targets = serving.evaluate_targets(rows, _synthetic_raw())
    # 10x naive, 1.25x (< 1.5x) the better LitServe with a lower p99, 200 req/s vs 2000 items/s,
    # p50 1 ms <= 1.65 ms
    assert [t.met for t in targets] == [True, False, False, True]
    assert targets[0].value == pytest.approx(200.5 / 20.5)
    assert targets[1].value == pytest.approx(200.5 / 160.5), "compared with litserve w=3, the faster one"
    assert "litserve w=3" in targets[1].detail
    assert targets[1].threshold == 1.5
    assert targets[2].threshold == 0.7
    assert targets[3].threshold == pytest.approx(1.65), "1.5 x (1.0 ms inference + 0.1 ms tokenisation)"


def test_targets_are_missed_not_crashing_when_a_server_is_absent() -> None:
    rows = [r for r in serving.summarise(_synthetic_samples()) if not r.server.startswith("litserve")]
    targets = serving.evaluate_targets(rows, _synthetic_raw())
    assert math.isnan(targets[1].value) and not targets[1].met


def test_writers_produce_markdown_json_and_png(tmp_path: Path) -> None:
    plan = serving.QUICK
    machine = serving.describe_machine(plan)
    assert machine["cores"] and machine["python"]
    text, targets = serving.write_outputs(
        tmp_path, "serving", _synthetic_samples(), _synthetic_raw(), machine, plan, {}
    )
    assert "| reference batched | c=32 | 200.5 |" in text
    assert "MET" in text and "MISSED" in text
    report = json.loads((tmp_path / "serving.json").read_text())
    assert {"plan", "machine", "rows", "raw_model", "targets", "samples"} <= set(report)
    assert len(report["samples"]) == 2 * 5 * 5
    assert report["raw_model"][1]["items_per_s"] == pytest.approx(2000.0)
    assert (tmp_path / "serving.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "serving.md").read_text() == text
    assert len(targets) == 4


def _profiled_samples() -> list[object]:
    """The reference batched at every closed load, two rounds: 100 requests in 1 s, 20 batches of 5 taking
    0.2 s in all, 0.05 s of event-loop CPU and 0.15 s of other CPU."""
    samples = []
    for round_no in range(2):
        for load in serving.LEVELS:
            result = _result([5.0] * 100, load)
            batches = serving.BatchTotals(batches=20, items=100, compute_s=0.2)
            samples.append(
                serving.Sample("reference batched", load, round_no, result, 0.2, 0.01, 0.05, batches)
            )
    return samples


def test_the_profile_splits_cpu_per_request_and_reads_batches() -> None:
    profile = serving.profile_reference([*_profiled_samples(), *_synthetic_samples()])
    assert [row.load for row in profile] == list(serving.LEVELS), "samples without a profile are skipped"
    row = profile[0]
    assert (row.batch_size, row.compute_ms) == (5.0, pytest.approx(10.0))
    assert (row.loop_ms, row.inference_ms) == (pytest.approx(0.5), pytest.approx(1.5))
    assert row.ceiling_rps(2) == pytest.approx(1000.0), "2 cores / 2 ms of CPU per request"


def test_missed_targets_are_explained_and_met_ones_are_not() -> None:
    rows = serving.summarise(_synthetic_samples())
    raw = _synthetic_raw()
    targets = serving.evaluate_targets(rows, raw)
    profile = serving.profile_reference(_profiled_samples())
    lines = serving.explain_gaps(targets, rows, raw, profile, 1.7, 2)
    # LitServe and raw-share targets are missed in the synthetic run, c=1 is met
    assert [line.split(":")[0] for line in lines] == ["c=32 against LitServe", "c=64 against the raw model"]
    assert "at most 1000 req/s" in lines[0] and "1.5x needs 241 req/s" in lines[0]
    assert "1000 req/s, 50% of the raw best (2000 items/s" in lines[1]
    assert lines[1].endswith("It ran at 10% of its ceiling."), "100 req/s against a 1000 req/s ceiling"
    met = [serving.Target(t.name, t.value, t.threshold, True, t.detail) for t in targets]
    assert serving.explain_gaps(met, rows, raw, profile, 1.7, 2) == []
    missed = [serving.Target(t.name, t.value, t.threshold, False, t.detail) for t in targets]
    c1 = serving.explain_gaps(missed, rows, raw, profile, 1.7, 2)[-1]
    assert c1.startswith("c=1: the p50 of 5.00 ms is a batch of one, 10.00 ms") and "takes 1.70 ms" in c1
    text = serving.markdown_report(
        rows, raw, targets, serving.describe_machine(serving.QUICK), serving.QUICK, profile, 1.7
    )
    assert "| c=32 | 100.0 | 5.00 | 5.0 | 10.00 | 0.500 | 1.500 |" in text
    assert "Why the missed targets are missed:" in text


def test_quick_plan_is_bounded() -> None:
    plan, _, stem = serving.parse_plan(["--quick"])
    assert plan.rounds == 1 and plan.duration_s <= 3 and stem == "serving-quick"
    plan, _, stem = serving.parse_plan([])
    n_points = len(serving.SERVERS) * (len(serving.LEVELS) + 1) * plan.rounds
    assert n_points * plan.duration_s <= 8 * 60, "the full run must stay within about 8 minutes"
    assert stem == "serving"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["naive", "litserve", "litserve w=3"])
def test_benchmark_apps_start_and_answer_a_prediction(name: str) -> None:
    spec = next(s for s in serving.SERVERS if s.name == name)
    with spec.start(serving.QUICK) as server:
        response = httpx.post(server.url + "/predict", json=serving.BODY, timeout=30, trust_env=False)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["label"] == serving.raw_label() == "positive", body
        assert 0.5 <= body["confidence"] <= 1.0
        assert body["model_version"]
        empty = httpx.post(server.url + "/predict", json={"text": ""}, timeout=30, trust_env=False)
        assert empty.status_code == 422, f"{name} must validate the body like the reference does"


@pytest.mark.slow
def test_the_reference_is_profiled_from_its_threads_and_its_metrics() -> None:
    """The profile's inputs on the real reference: its /metrics names and its event-loop thread."""
    spec = next(s for s in serving.SERVERS if s.name == serving.PROFILED)
    with spec.start(serving.QUICK) as server:
        before = serving.batch_totals(server.url)
        for _ in range(5):
            httpx.post(
                server.url + "/predict", json=serving.BODY, timeout=30, trust_env=False
            ).raise_for_status()
        done = serving.batch_totals(server.url) - before
        loop_s = serving.main_thread_cpu_s(server.group)
        assert done.items == 5 and 1 <= done.batches <= 5 and done.compute_s > 0, done
        assert loop_s is not None and 0 < loop_s < server.group.cpu_s()
    assert serving.measure_lone_batch(min_time_s=0.05, threads=1) > 0


def test_litserve_gets_as_many_inference_workers_as_the_reference() -> None:
    """The LitServe contender with several workers must mirror the reference's default, not a stale copy."""
    text = (serving.REFERENCE_SRC / "settings.py").read_text()
    default = re.search(r"inference_workers: int = Field\(\s*default=(\d+)", text)
    assert default is not None, "settings.py no longer declares inference_workers' default"
    assert int(default.group(1)) == serving.REFERENCE_WORKERS
    assert f"litserve w={serving.REFERENCE_WORKERS}" in {spec.name for spec in serving.SERVERS}


def test_the_one_stage_twin_of_the_reference_has_its_instructions_in_one_stage(tmp_path: Path) -> None:
    """benchmarks/container.py compares the reference image with its one-stage twin: same steps, one stage."""
    reference = read_dockerfile(CAPSTONE / "Dockerfile")
    twin = parse_dockerfile(one_stage(reference))
    assert len(reference.stages) == 2 and len(twin.stages) == 1
    froms = [i for i in reference.instructions if i.keyword == "FROM"]
    expected = [
        (i.keyword, i.value)
        for i in reference.instructions
        if not (i.keyword == "COPY" and "from" in i.flags) and not (i.keyword == "FROM" and i is not froms[0])
    ]
    assert [(i.keyword, i.value) for i in twin.instructions] == expected
    (tmp_path / "Dockerfile").write_text(one_stage(reference))
    (tmp_path / ".dockerignore").write_text((CAPSTONE / ".dockerignore").read_text())
    assert [f.rule for f in lint_dockerfile(tmp_path / "Dockerfile") if not f.ok] == []
