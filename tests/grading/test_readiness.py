"""The readiness wait: it stops early only for an idle app, never for one that is still loading.

The rule (`course_utils/grading/readiness.py`): wait up to `ready_timeout_s` for /ready to say 200, but stop
once the app's processes used under 10% of a core for `ready_idle_s` seconds. Stopping early must change
no score: the untouched starter and a service that never flips /ready score as with the whole wait, and a
correct service that loads slowly, or never finishes loading while working, is waited for.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from submissions import MINI_APP, STARTER, copy_capstone, patched, slow_loading_app, write_submission

from course_utils.grading import GradeOptions, GradeReport, grade
from course_utils.grading.readiness import IdleWatch


def _points(report: GradeReport) -> dict[str, float]:
    return {result.check.name: result.score for result in report.results}


def _detail(report: GradeReport, name: str) -> str:
    return next(result.detail for result in report.results if result.check.name == name)


class FakeCpu:
    """CPU seconds by process, as `SandboxedApp.cpu_times` returns them, set by the test."""

    def __init__(self) -> None:
        self.times: dict[tuple[int, float], float] = {(1, 0.0): 5.0}

    def __call__(self) -> dict[tuple[int, float], float]:
        return dict(self.times)


def _watch_until(watch: IdleWatch, seconds: float, step: object = None) -> bool:
    """Sample `watch` every 20 ms for `seconds`; True as soon as it says idle."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(step):
            step()
        if watch.idle():
            return True
        time.sleep(0.02)
    return False


def test_idle_only_after_a_whole_quiet_window() -> None:
    cpu = FakeCpu()
    watch = IdleWatch(cpu, idle_s=0.3)
    started = time.monotonic()
    assert _watch_until(watch, 2.0)
    assert time.monotonic() - started >= 0.3, "never idle before a whole window has passed"


def test_a_working_process_is_never_idle() -> None:
    cpu = FakeCpu()

    def work() -> None:  # 50% of a core: 10 ms of CPU per 20 ms step
        cpu.times[1, 0.0] += 0.01

    assert not _watch_until(IdleWatch(cpu, idle_s=0.3), 1.0, work)


def test_exits_and_new_processes_are_counted_per_process() -> None:
    cpu = FakeCpu()
    watch = IdleWatch(cpu, idle_s=0.3)
    watch.idle()
    del cpu.times[1, 0.0]  # the leader exited: its 5 CPU seconds are not negative work
    cpu.times[2, 1.0] = 0.0
    assert _watch_until(watch, 2.0)
    cpu.times[3, 2.0] = 1.0  # a new child that already worked a second
    assert not watch.idle()


def test_unreadable_processes_never_stop_the_wait() -> None:
    assert not _watch_until(IdleWatch(dict, idle_s=0.2), 0.8), "no process seen: unknown, so keep waiting"
    assert not _watch_until(IdleWatch(None, idle_s=0.2), 0.5)
    assert not _watch_until(IdleWatch(FakeCpu(), idle_s=0.0), 0.5), "idle_s=0 waits the whole timeout"


@pytest.fixture(scope="module")
def never_ready(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Submissions whose /ready never says 200: the starter, and a complete app that never flips it."""
    root = tmp_path_factory.mktemp("never-ready")
    flips_never = patched(MINI_APP, 'return {"ready": True}', "return JSONResponse({}, status_code=503)")
    return {
        "starter": copy_capstone(STARTER, root / "starter"),
        "ready_never_200": write_submission(root / "ready_never_200", flips_never),
    }


@pytest.mark.parametrize("name", ["starter", "ready_never_200"])
def test_an_idle_never_ready_app_is_graded_as_with_the_whole_wait(
    never_ready: dict[str, Path], fast_options: GradeOptions, name: str
) -> None:
    whole_wait = grade(never_ready[name], options=replace(fast_options, ready_idle_s=0.0))
    idle_rule = grade(never_ready[name], options=fast_options)
    assert _points(idle_rule) == _points(whole_wait)
    assert idle_rule.score < 100 and _points(idle_rule)["ready"] == 0
    saved = whole_wait.execution_time_s - idle_rule.execution_time_s
    assert saved >= fast_options.ready_timeout_s - fast_options.ready_idle_s - 2.0, (
        f"the idle rule saved only {saved:.1f}s"
    )
    detail = _detail(idle_rule, "ready")
    assert "stopped waiting" in detail and "nothing was loading" in detail, detail
    assert f"waited {fast_options.ready_timeout_s:.0f}" in _detail(whole_wait, "ready")


def test_a_correct_app_that_loads_slowly_is_waited_for(tmp_path: Path, fast_options: GradeOptions) -> None:
    """Loading for 6 s (twice the idle window) while working: full marks, and the grade waited for it."""
    sub = write_submission(tmp_path / "slow", slow_loading_app(6.0))
    options = replace(fast_options, ready_timeout_s=20.0, ready_idle_s=3.0)
    report = grade(sub, options=options)
    assert report.score == 100, report.to_markdown()
    assert report.execution_time_s >= 6.0


def test_an_app_that_works_forever_keeps_the_whole_timeout(
    tmp_path: Path, fast_options: GradeOptions
) -> None:
    """The bound kept for a service that is busy but never ready: `ready_timeout_s`, not the idle window."""
    sub = write_submission(tmp_path / "busy", slow_loading_app(3600.0))
    options = replace(fast_options, ready_timeout_s=6.0, ready_idle_s=2.0)
    report = grade(sub, options=options)
    detail = _detail(report, "ready")
    assert _points(report)["ready"] == 0 and "waited 6." in detail, detail
    assert "stopped waiting" not in detail
