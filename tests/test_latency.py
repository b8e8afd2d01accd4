"""Latency budget helpers, with fake stages whose cost is known."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from course_utils.latency import LatencyBreakdown, time_stages


def busy(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:  # a stage that costs `ms` of CPU on purpose
        pass


def fake_stages() -> dict[str, object]:
    def preprocess(text: str) -> list[int]:
        busy(1.0)
        return [len(text)]

    def inference(features: list[int]) -> float:
        busy(3.0)
        return float(features[0])

    def postprocess(score: float) -> dict[str, float]:
        return {"score": score}

    return {"preprocess": preprocess, "inference": inference, "postprocess": postprocess}


def test_breakdown_orders_stages_and_measures_them() -> None:
    b = time_stages(fake_stages(), ["a review", "another"], n_runs=15, warmup_runs=2, progress=False)  # type: ignore[arg-type]
    assert [s.stage for s in b.stages] == ["preprocess", "inference", "postprocess"]
    pre, inf, post = b.stages
    # Lower bounds are exact (busy waits); upper bounds are loose, as a shared 2-core machine is noisy.
    assert 1.0 <= pre.median_ms < 50.0
    assert 3.0 <= inf.median_ms < 50.0
    assert post.median_ms < pre.median_ms < inf.median_ms
    assert inf.share > 0.5 and sum(s.share for s in b.stages) == pytest.approx(1.0)
    assert all(s.n_runs == 15 for s in (*b.stages, b.total))
    assert b.total.median_ms >= 4.0 and b.total.share == 1.0
    assert len(b.samples_ms["total"]) == 15


def test_pipeline_feeds_each_stage_the_previous_output() -> None:
    seen: list[object] = []
    stages = [("a", lambda x: x + 1), ("b", lambda x: seen.append(x) or x * 10)]
    time_stages(stages, [1, 5], n_runs=4, warmup_runs=0, progress=False)
    assert seen == [2, 6, 2, 6]


def test_to_frame_and_budget() -> None:
    b = time_stages(fake_stages(), ["x"], n_runs=5, progress=False)  # type: ignore[arg-type]
    frame = b.to_frame()
    assert frame.index.tolist() == ["preprocess", "inference", "postprocess", "total"]
    assert frame.columns.tolist() == ["median_ms", "p95_ms", "mean_ms", "share", "n_runs"]
    assert b.over_budget(1.0) and not b.over_budget(1000.0)
    assert b.over_budget(1.0, percentile="median")


def test_plot_has_units_and_budget_line(tmp_path: Path) -> None:
    b: LatencyBreakdown = time_stages(fake_stages(), ["x"], n_runs=5, progress=False)  # type: ignore[arg-type]
    fig = b.plot(budget_ms=10)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "latency (ms)" and ax.get_xlabel() == "stage"
    assert any("budget 10 ms" in t.get_text() for t in ax.get_legend().get_texts())
    fig.savefig(tmp_path / "budget.png")
    assert (tmp_path / "budget.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("stages", "inputs", "match"),
    [({}, ["x"], "stages is empty"), ({"a": str}, [], "inputs is empty")],
)
def test_invalid_arguments(stages: dict[str, object], inputs: list[str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        time_stages(stages, inputs, progress=False)  # type: ignore[arg-type]


def test_docstring_examples_run() -> None:
    import doctest

    from course_utils import latency

    assert doctest.testmod(latency, optionflags=doctest.ELLIPSIS).failed == 0
