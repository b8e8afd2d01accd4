"""Latency budgets: time each stage of a prediction (preprocess, inference, postprocess) separately.

`time_stages` runs the stages as a pipeline (each stage gets the previous stage's output) over N runs
and returns a `LatencyBreakdown`: median and p95 per stage, each stage's share of the total, a table
(`to_frame`) and a bar plot (`plot`) against an optional budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from course_utils._plots import figure_and_axes

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["LatencyBreakdown", "StageTiming", "time_stages"]

Stage = Callable[[Any], Any]


@dataclass(frozen=True)
class StageTiming:
    """Timing of one stage over all runs, in milliseconds; `share` is its part of the summed medians."""

    stage: str
    median_ms: float
    p95_ms: float
    mean_ms: float
    share: float
    n_runs: int


@dataclass(frozen=True)
class LatencyBreakdown:
    """Per-stage timings plus the end-to-end total (the sum of the stages, run by run).

    >>> b = time_stages({"a": lambda x: x, "b": lambda x: x}, ["text"], n_runs=5, progress=False)
    >>> [s.stage for s in b.stages], b.total.stage
    (['a', 'b'], 'total')
    """

    stages: tuple[StageTiming, ...]
    total: StageTiming
    samples_ms: Mapping[str, tuple[float, ...]]

    def to_frame(self) -> pd.DataFrame:
        """One row per stage plus a `total` row; columns median_ms, p95_ms, mean_ms, share, n_runs.

        >>> time_stages({"a": str}, [1], n_runs=3, progress=False).to_frame().index.tolist()
        ['a', 'total']
        """
        import pandas as pd

        rows = [*self.stages, self.total]
        frame = pd.DataFrame([vars(r) for r in rows]).set_index("stage")
        return frame

    def over_budget(self, budget_ms: float, *, percentile: str = "p95") -> bool:
        """True when the total's `p95` (or `median`) exceeds `budget_ms`.

        >>> time_stages({"a": str}, [1], n_runs=3, progress=False).over_budget(1000.0)
        False
        """
        value = self.total.p95_ms if percentile == "p95" else self.total.median_ms
        return value > budget_ms

    def plot(self, *, budget_ms: float | None = None, ax: Axes | None = None) -> Figure:
        """Bar plot: median per stage (bars) and p95 (markers) in ms, with the budget as a line.

        Uses matplotlib's object API, so it needs no display (Agg) and leaves pyplot's state alone.

        >>> fig = time_stages({"a": str}, [1], n_runs=3, progress=False).plot(budget_ms=10)
        >>> fig.axes[0].get_ylabel()
        'latency (ms)'
        """
        fig, ax = figure_and_axes(ax)
        rows = [*self.stages, self.total]
        names = [r.stage for r in rows]
        medians = [r.median_ms for r in rows]
        bars = ax.bar(names, medians, color=["C0"] * len(self.stages) + ["C7"], label="median")
        ax.scatter(names, [r.p95_ms for r in rows], color="C3", marker="_", s=400, label="p95", zorder=3)
        for bar, row in zip(bars, rows, strict=True):
            if row is not self.total:
                ax.annotate(
                    f"{row.share:.0%}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                )
        if budget_ms is not None:
            ax.axhline(budget_ms, color="C1", linestyle="--", label=f"budget {budget_ms:g} ms")
        ax.set_xlabel("stage")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"Latency budget ({self.total.n_runs} runs)")
        ax.legend()
        return fig


def _summarise(stage: str, samples: Sequence[float], total_median: float) -> StageTiming:
    arr = np.asarray(samples, dtype=float)
    median = float(np.median(arr))
    return StageTiming(
        stage=stage,
        median_ms=median,
        p95_ms=float(np.percentile(arr, 95)),
        mean_ms=float(arr.mean()),
        share=median / total_median if total_median > 0 else 0.0,
        n_runs=int(arr.size),
    )


def time_stages(
    stages: Mapping[str, Stage] | Sequence[tuple[str, Stage]],
    inputs: Sequence[Any],
    *,
    n_runs: int = 100,
    warmup_runs: int = 5,
    progress: bool = True,
) -> LatencyBreakdown:
    """Time a pipeline stage by stage; run r feeds `inputs[r % len(inputs)]` to the first stage.

    >>> breakdown = time_stages(
    ...     {"preprocess": str.lower, "inference": len, "postprocess": lambda n: {"n": n}},
    ...     ["A great film", "Dull"], n_runs=20, progress=False)
    >>> breakdown.to_frame().columns.tolist()
    ['median_ms', 'p95_ms', 'mean_ms', 'share', 'n_runs']
    """
    pipeline = list(stages.items()) if isinstance(stages, Mapping) else list(stages)
    if not pipeline:
        raise ValueError("stages is empty: pass e.g. {'preprocess': f, 'inference': g, 'postprocess': h}.")
    if not inputs:
        raise ValueError("inputs is empty: pass at least one example input, e.g. ['a short review'].")
    if n_runs < 1 or warmup_runs < 0:
        raise ValueError(f"n_runs={n_runs!r} must be >= 1 and warmup_runs={warmup_runs!r} >= 0.")
    samples: dict[str, list[float]] = {name: [] for name, _ in pipeline}
    totals: list[float] = []
    clock = time.perf_counter_ns
    for run in tqdm(range(-warmup_runs, n_runs), desc="timing stages", unit="run", disable=not progress):
        value = inputs[run % len(inputs)]
        elapsed_total = 0.0
        for name, fn in pipeline:
            t0 = clock()
            value = fn(value)
            elapsed = (clock() - t0) / 1e6
            elapsed_total += elapsed
            if run >= 0:
                samples[name].append(elapsed)
        if run >= 0:
            totals.append(elapsed_total)
    medians_sum = sum(float(np.median(s)) for s in samples.values())
    timings = tuple(_summarise(name, s, medians_sum) for name, s in samples.items())
    total = replace(_summarise("total", totals, medians_sum), share=1.0)
    return LatencyBreakdown(
        stages=timings,
        total=total,
        samples_ms={name: tuple(s) for name, s in [*samples.items(), ("total", totals)]},
    )
