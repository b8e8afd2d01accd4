"""Waiting for `GET /ready`, and the `ready` check: how long the grader waits, and when it stops early.

Why stop early: the contract's `/ready` answers 503 until the model is loaded, and an unfinished
submission (the untouched starter) answers 503 forever. Waiting all of `ready_timeout_s` (30 s) for each
of them was most of the time a class took to grade. A service that is still loading is *working*: reading
the model, building an ONNX Runtime session and running warm-up predictions all use CPU. So, once the app
answers HTTP (its startup has finished), the grader polls `/ready` and measures the CPU used by every
process of the run (`SandboxedApp.cpu_times`, children that left the process group included). When `/ready`
has not said 200 during the last `idle_s` seconds and in that time all those processes together used less
than `IDLE_CPU_SHARE` of one core, nothing is loading, so nothing will change: the grader stops waiting.
A submission that keeps working keeps the whole `ready_timeout_s`.

The same rule bounds the second wait, on `POST /predict` answering 503 after `/ready` said 200 too early.
If that wait ends with `/predict` answering (the app picked up work after all), `/ready` is asked once
more, so a late loader is judged on its readiness then, not on the reply from before.

Known limit (docs/grading.md): a loader that uses no CPU for `idle_s` seconds while `/ready` says 503 (it
sleeps before loading) is judged idle. Where the run's processes cannot be read at all, the grader never
stops early.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from course_utils.grading.http_probe import HttpProbe, Reply
from course_utils.grading.predictions import SAMPLE_TEXT
from course_utils.grading.predictions import predict as _predict
from course_utils.grading.rubric import CheckResult, check_named

__all__ = ["IDLE_CPU_SHARE", "POLL_S", "IdleWatch", "ReadyWait", "check_ready_when_loaded", "wait_for_ready"]

#: Below this share of one core over `idle_s`, the app's processes are idle. Answering the grader's polls
#: costs about 1% (measured on the starter); loading a model uses most of a core even on a busy machine.
IDLE_CPU_SHARE = 0.10
#: Seconds between two polls of /ready (or /predict).
POLL_S = 0.2

#: CPU seconds by (pid, creation time) of every live process of a run: `SandboxedApp.cpu_times`.
CpuReader = Callable[[], dict[tuple[int, float], float]]


class IdleWatch:
    """Whether a run's processes used (almost) no CPU over the last `idle_s` seconds.

    Call `idle()` at each poll. CPU is summed per process, so a process that exits or a pid that is reused
    never counts as negative work, and a new process counts with all the CPU it used.
    """

    def __init__(self, read: CpuReader | None, idle_s: float, share: float = IDLE_CPU_SHARE) -> None:
        self._read = read
        self.idle_s = idle_s
        self.share = share
        self._last: dict[tuple[int, float], float] = {}
        self._used_s = 0.0  # CPU seconds used since the first sample
        self._samples: deque[tuple[float, float]] = deque()  # (monotonic time, _used_s)

    def idle(self) -> bool:
        """True once a full `idle_s` window has passed with under `share` of a core used in it."""
        if self._read is None or self.idle_s <= 0:
            return False
        now_cpu = self._read()
        now = time.monotonic()
        if not now_cpu:  # no process readable (not even the app's own): unknown, never idle
            self._samples.clear()
            return False
        self._used_s += sum(max(0.0, cpu - self._last.get(key, 0.0)) for key, cpu in now_cpu.items())
        self._last = now_cpu
        self._samples.append((now, self._used_s))
        while len(self._samples) > 1 and self._samples[1][0] <= now - self.idle_s:
            self._samples.popleft()  # keep the newest sample at or before the window's start
        start, used_then = self._samples[0]
        return now - start >= self.idle_s and self._used_s - used_then < self.share * (now - start)


@dataclass(frozen=True, slots=True)
class ReadyWait:
    """The last /ready reply, how long the grader waited, and whether it stopped because the app was idle."""

    reply: Reply
    seconds: float
    stopped_idle: bool = False
    idle_s: float = 0.0

    def describe(self) -> str:
        """Why the wait ended, for feedback on a failed `ready` check."""
        if self.stopped_idle:
            return (
                f"The grader stopped waiting after {self.seconds:.1f}s: during the last {self.idle_s:g}s "
                f"the app used almost no CPU (under {IDLE_CPU_SHARE:.0%} of a core) while /ready did not "
                "say 200, so nothing was loading the model."
            )
        return f"The grader waited {self.seconds:.1f}s."


def wait_for_ready(
    probe: HttpProbe, timeout_s: float, *, cpu: CpuReader | None = None, idle_s: float = 0.0
) -> ReadyWait:
    """Poll GET /ready until 200, `timeout_s`, or `idle_s` seconds of an idle app (see the module docstring).

    Then, within the same time and the same idle rule, poll POST /predict while it answers 503: a service
    whose /ready says 200 too early loses the `ready` points only, not every prediction check as well.
    `cpu=None` or `idle_s=0` never stops early (the whole `timeout_s`).
    """
    started = time.monotonic()
    deadline = started + timeout_s
    watch = IdleWatch(cpu, idle_s)
    watch.idle()  # the first sample: the window starts now, after the app's startup
    reply = probe.send("GET", "/ready")
    stopped_idle = False
    while reply.status != 200 and reply.status is not None and time.monotonic() < deadline:
        time.sleep(POLL_S)
        if watch.idle():
            stopped_idle = True
            break
        reply = probe.send("GET", "/ready")
    waited = False
    while time.monotonic() < deadline and _predict(probe, SAMPLE_TEXT).status == 503:
        if watch.idle():
            stopped_idle = True
            break
        waited = True
        time.sleep(POLL_S)  # still loading although /ready said otherwise
    else:
        if stopped_idle and waited:  # it went back to work and now answers: judge its readiness now
            reply = probe.send("GET", "/ready")
            stopped_idle = reply.status != 200
    return ReadyWait(reply, time.monotonic() - started, stopped_idle, idle_s)


def check_ready_when_loaded(ready: ReadyWait, without_model: str) -> CheckResult:
    """/ready is 200 once loaded (`ready`); `without_model` says what went wrong without a model, or ''."""
    check = check_named("ready")
    if ready.reply.status != 200:
        return check.failed(
            f"GET /ready never answered 200 with a valid model (last: {ready.reply.describe()}). "
            + ready.describe()
        )
    if without_model:
        return check.failed(without_model)
    return check.passed("GET /ready -> 200 with the model, and not 200 with a missing model.")
