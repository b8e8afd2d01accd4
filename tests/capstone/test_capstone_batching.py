"""The dynamic batcher, driven by a fake clock: no real waiting, no timing assumptions.

Only the model call runs in a real thread (as in production); every wait inside the batcher goes through the
fake clock, which moves only when a test calls `advance()`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from batching import (
    BatcherClosedError,
    BatchReport,
    DeadlineExceededError,
    DynamicBatcher,
    QueueFullError,
)
from capstone_support import settle

pytestmark = pytest.mark.anyio

Batcher = DynamicBatcher[str, str]

GUARD_S = 5.0  # only guards against a hang; no test relies on real time passing


class FakeClock:
    """`now()` returns a number the test controls; `sleep()` returns when `advance()` passes its wake time."""

    def __init__(self) -> None:
        self.time = 0.0
        self.sleep_calls = 0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleep_calls += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self.time + seconds, future)
        self._sleepers.append(entry)
        try:
            await future
        finally:
            self._sleepers.remove(entry)

    @property
    def pending_sleeps(self) -> int:
        return len(self._sleepers)

    async def advance(self, seconds: float) -> None:
        await settle()  # first let everything scheduled "now" run at the current time
        self.time += seconds
        for wake_at, future in list(self._sleepers):
            if wake_at <= self.time + 1e-12 and not future.done():
                future.set_result(None)
        await settle()


class RecordingModel:
    """A stand-in model: records each batch and the fake time it started; `hold()` keeps the worker busy."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.batches: list[list[str]] = []
        self.started_at: list[float] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self.error: Exception | None = None

    def __call__(self, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        self.started_at.append(self.clock.now())
        self.entered.set()
        self.release.wait(GUARD_S)
        if self.error is not None:
            raise self.error
        return [item.upper() for item in items]

    def hold(self) -> None:
        self.release.clear()
        self.entered.clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def model(clock: FakeClock) -> RecordingModel:
    return RecordingModel(clock)


@pytest.fixture
async def make_batcher(clock: FakeClock, model: RecordingModel) -> AsyncIterator[Callable[..., Batcher]]:
    """Returns `make(**options)`: a started batcher; each one is closed (drained) after the test."""
    made: list[Batcher] = []

    def make(**options: Any) -> Batcher:
        settings: dict[str, Any] = {"max_batch_size": 8, "max_wait_s": 0.010, "max_queue": 100} | options
        batcher: Batcher = DynamicBatcher(model, clock=clock, **settings)
        batcher.start()
        made.append(batcher)
        return batcher

    yield make
    model.release.set()
    for batcher in made:
        await asyncio.wait_for(batcher.close(), GUARD_S)


def spawn(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Run a submit() in the background, as a concurrent HTTP request would."""
    return asyncio.get_running_loop().create_task(coro)


async def finish(task: asyncio.Task[Any]) -> Any:
    return await asyncio.wait_for(task, GUARD_S)


async def model_entered(model: RecordingModel) -> None:
    """Wait (in a thread, without blocking the loop) until the model has started a batch."""
    assert await asyncio.to_thread(model.entered.wait, GUARD_S), "the model was never called"


# Rule 2: batch size and waiting ----------------------------------------------------------------------------


async def test_a_full_batch_goes_at_once_without_waiting(make_batcher, model, clock) -> None:
    batcher = make_batcher(max_batch_size=4, max_wait_s=10.0)
    tasks = [spawn(batcher.submit(text, timeout_s=60)) for text in "abcd"]
    results = [await finish(task) for task in tasks]
    assert [result.value for result in results] == ["A", "B", "C", "D"]
    assert model.batches == [["a", "b", "c", "d"]]
    assert clock.time == 0.0  # the clock never moved: nobody waited for max_wait_s
    assert {result.batch_size for result in results} == {4}


async def test_the_wait_starts_when_the_first_request_arrives(make_batcher, model, clock) -> None:
    batcher = make_batcher(max_batch_size=8, max_wait_s=0.010)
    first = spawn(batcher.submit("a", timeout_s=60))
    await clock.advance(0.006)
    second = spawn(batcher.submit("b", timeout_s=60))
    await clock.advance(0.003)  # t = 9 ms: still within the first request's 10 ms
    assert model.batches == []
    await clock.advance(0.001)  # t = 10 ms: the batch goes, although "b" waited only 4 ms
    assert (await finish(first)).value == "A"
    assert (await finish(second)).value == "B"
    assert model.batches == [["a", "b"]]
    assert model.started_at == [pytest.approx(0.010)]


async def test_the_wait_counts_from_arrival_even_while_the_worker_is_busy(make_batcher, model, clock) -> None:
    batcher = make_batcher(max_batch_size=8, max_wait_s=0.010)
    model.hold()
    busy = spawn(batcher.submit("busy", timeout_s=60))
    await clock.advance(0.010)
    await model_entered(model)  # the worker is now computing ["busy"]
    late = spawn(batcher.submit("late", timeout_s=60))
    await clock.advance(0.050)  # "late" has waited 50 ms > max_wait_s while the worker was busy
    sleeps_before = clock.sleep_calls
    model.release.set()
    await finish(busy)
    assert (await finish(late)).queue_s == pytest.approx(0.050)
    assert model.batches == [["busy"], ["late"]]
    assert model.started_at[1] == pytest.approx(0.060)  # sent at once: no second wait of 10 ms
    assert clock.sleep_calls == sleeps_before  # no batch timer was started for "late"


async def test_max_batch_size_1_disables_batching(make_batcher, model, clock) -> None:
    batcher = make_batcher(max_batch_size=1, max_wait_s=10.0)
    tasks = [spawn(batcher.submit(text, timeout_s=60)) for text in "abc"]
    assert [(await finish(task)).value for task in tasks] == ["A", "B", "C"]
    assert model.batches == [["a"], ["b"], ["c"]]
    assert clock.time == 0.0


async def test_submit_many_keeps_the_order_of_the_items(make_batcher, model) -> None:
    batcher = make_batcher(max_batch_size=3, max_wait_s=0.0)
    results = await asyncio.wait_for(batcher.submit_many(list("abcde"), timeout_s=60), GUARD_S)
    assert [result.value for result in results] == list("ABCDE")
    assert [len(batch) for batch in model.batches] == [3, 2]


# Rule 3: adaptive wait ------------------------------------------------------------------------------------


async def test_adaptive_wait_sends_a_lone_request_at_once(make_batcher, model, clock) -> None:
    batcher = make_batcher(max_batch_size=8, max_wait_s=0.010, adaptive_wait=True)
    assert (await finish(spawn(batcher.submit("a", timeout_s=60)))).value == "A"  # no arrival rate known yet
    await clock.advance(1.0)
    assert (await finish(spawn(batcher.submit("b", timeout_s=60)))).value == "B"  # 1 s between arrivals
    assert model.batches == [["a"], ["b"]]
    assert model.started_at == [0.0, 1.0]  # neither waited for company that was not coming


async def test_adaptive_wait_still_waits_when_arrivals_are_close(make_batcher, model, clock) -> None:
    batcher = make_batcher(max_batch_size=8, max_wait_s=0.010, adaptive_wait=True)
    model.hold()
    busy = spawn(batcher.submit("busy", timeout_s=60))  # the first request goes at once
    await model_entered(model)
    await clock.advance(0.001)
    second = spawn(batcher.submit("b", timeout_s=60))  # 1 ms after the first: company is likely
    await settle()
    model.release.set()
    await finish(busy)
    await clock.advance(0.005)
    assert model.batches == [["busy"]]  # "b" waits for company, as without adaptive_wait
    third = spawn(batcher.submit("c", timeout_s=60))
    await clock.advance(0.005)  # t = 11 ms: the 10 ms of "b" are over
    assert [(await finish(task)).value for task in (second, third)] == ["B", "C"]
    assert model.batches == [["busy"], ["b", "c"]]


async def test_without_adaptive_wait_a_lone_request_waits_the_whole_max_wait(
    make_batcher, model, clock
) -> None:
    batcher = make_batcher(max_batch_size=8, max_wait_s=0.010)
    task = spawn(batcher.submit("a", timeout_s=60))
    await clock.advance(0.009)
    assert model.batches == []
    await clock.advance(0.001)
    assert (await finish(task)).value == "A"


# Rule 4: no CPU when idle -------------------------------------------------------------------------------


async def test_an_idle_batcher_sets_no_timer_and_does_not_poll(make_batcher, clock) -> None:
    batcher = make_batcher(max_batch_size=4, max_wait_s=0.010)
    await settle(200)
    assert clock.sleep_calls == 0  # the worker awaits the queue; nothing wakes it up
    assert clock.pending_sleeps == 0
    task = spawn(batcher.submit("a", timeout_s=60))
    await clock.advance(0.010)
    await finish(task)
    await settle(200)
    assert clock.pending_sleeps == 0  # the batch timer and the deadline timer were cancelled


# Rule 1: bounded queue ------------------------------------------------------------------------------------


async def test_a_full_queue_refuses_at_once(make_batcher, model, clock) -> None:
    batcher = make_batcher(max_batch_size=8, max_wait_s=1.0, max_queue=2)
    waiting = [spawn(batcher.submit(text, timeout_s=60)) for text in "ab"]
    await settle()
    assert batcher.waiting == 2 and batcher.is_full
    with pytest.raises(QueueFullError, match="max_queue=2"):
        await batcher.submit("c", timeout_s=60)
    await clock.advance(1.0)
    assert [(await finish(task)).value for task in waiting] == ["A", "B"]
    assert batcher.waiting == 0
    assert model.batches == [["a", "b"]]


async def test_submit_many_is_all_or_nothing(make_batcher, model) -> None:
    batcher = make_batcher(max_queue=2)
    with pytest.raises(QueueFullError):
        await batcher.submit_many(["a", "b", "c"], timeout_s=60)
    assert batcher.waiting == 0
    assert model.batches == []


# Rule 4: deadlines ---------------------------------------------------------------------------------------


async def test_expired_requests_are_dropped_before_inference(make_batcher, model, clock) -> None:
    batcher = make_batcher(max_batch_size=8, max_wait_s=0.0)
    model.hold()
    busy = spawn(batcher.submit("busy", timeout_s=60))
    await model_entered(model)
    hurried = spawn(batcher.submit("hurried", timeout_s=0.050))
    patient = spawn(batcher.submit("patient", timeout_s=60))
    await clock.advance(0.100)
    with pytest.raises(DeadlineExceededError):
        await finish(hurried)  # answered at its deadline, while the model is still busy
    model.release.set()
    await finish(busy)
    assert (await finish(patient)).value == "PATIENT"
    assert model.batches == [["busy"], ["patient"]]  # "hurried" was never computed


async def test_the_worker_drops_a_request_whose_deadline_passed_in_the_queue(clock, model) -> None:
    # A submit() whose own timer has not run yet (same instant): the worker's check must catch it.
    reports: list[BatchReport] = []
    batcher: Batcher = DynamicBatcher(
        model, max_batch_size=8, max_wait_s=0.020, max_queue=10, clock=clock, on_batch=reports.append
    )
    batcher.start()
    try:
        task = spawn(batcher.submit("slow", timeout_s=0.010))
        await settle()
        clock.time = 0.020  # jump without waking anyone, then wake only the batch timer
        for wake_at, future in list(clock._sleepers):
            if wake_at == pytest.approx(0.020):
                future.set_result(None)
        await settle()
        with pytest.raises(DeadlineExceededError, match="while queued"):
            await finish(task)
        assert model.batches == []
        assert reports == [BatchReport(size=0, expired=1, compute_s=0.0)]
    finally:
        await asyncio.wait_for(batcher.close(), GUARD_S)


# Rule 6 (workers) and failures ------------------------------------------------------------------------------


async def test_inference_runs_in_one_worker_thread(make_batcher, model, clock) -> None:
    threads: set[str] = set()
    original = model.__call__

    def recording(items: list[str]) -> list[str]:
        threads.add(threading.current_thread().name)
        return original(items)

    batcher = DynamicBatcher(recording, max_batch_size=1, max_wait_s=0.0, max_queue=10, clock=clock)
    batcher.start()
    try:
        for text in "abc":
            await asyncio.wait_for(batcher.submit(text, timeout_s=60), GUARD_S)
    finally:
        await batcher.close()
    assert len(threads) == 1 and threads != {threading.current_thread().name}


async def test_two_workers_compute_two_batches_at_once(make_batcher, model, clock) -> None:
    batcher = make_batcher(max_batch_size=2, max_wait_s=0.0, workers=2)
    model.hold()
    first = [spawn(batcher.submit(text, timeout_s=60)) for text in "ab"]
    await model_entered(model)
    model.entered.clear()  # the first batch is still being computed (held) ...
    second = [spawn(batcher.submit(text, timeout_s=60)) for text in "cd"]
    await model_entered(model)  # ... and the second one started beside it
    assert model.batches == [["a", "b"], ["c", "d"]]
    model.release.set()
    assert [(await finish(task)).value for task in first + second] == ["A", "B", "C", "D"]


async def test_one_worker_computes_one_batch_at_a_time(make_batcher, model, clock) -> None:
    batcher = make_batcher(max_batch_size=2, max_wait_s=0.0)
    model.hold()
    first = [spawn(batcher.submit(text, timeout_s=60)) for text in "ab"]
    await model_entered(model)
    second = [spawn(batcher.submit(text, timeout_s=60)) for text in "cd"]
    await settle(50)
    assert model.batches == [["a", "b"]]  # "c" and "d" wait for the only worker
    model.release.set()
    assert [(await finish(task)).value for task in first + second] == ["A", "B", "C", "D"]
    assert model.batches == [["a", "b"], ["c", "d"]]


async def test_close_waits_for_every_batch_in_flight(clock, model) -> None:
    batcher: Batcher = DynamicBatcher(
        model, max_batch_size=1, max_wait_s=0.0, max_queue=10, workers=2, clock=clock
    )
    batcher.start()
    model.hold()
    tasks = [spawn(batcher.submit(text, timeout_s=60)) for text in "ab"]
    await model_entered(model)
    closing = spawn(batcher.close())
    await settle(50)
    assert not closing.done()  # both batches are still computing
    model.release.set()
    await finish(closing)
    assert [(await finish(task)).value for task in tasks] == ["A", "B"]


async def test_a_failing_batch_fails_its_requests_and_the_batcher_keeps_going(make_batcher, model) -> None:
    batcher = make_batcher(max_batch_size=2, max_wait_s=0.0)
    model.error = RuntimeError("model exploded")
    with pytest.raises(RuntimeError, match="model exploded"):
        await asyncio.wait_for(batcher.submit_many(["a", "b"], timeout_s=60), GUARD_S)
    model.error = None
    assert (await asyncio.wait_for(batcher.submit("c", timeout_s=60), GUARD_S)).value == "C"


async def test_a_wrong_number_of_results_is_an_error_not_a_misaligned_answer(clock) -> None:
    batcher: Batcher = DynamicBatcher(
        lambda items: ["x"], max_batch_size=2, max_wait_s=0.0, max_queue=10, clock=clock
    )
    batcher.start()
    try:
        with pytest.raises(RuntimeError, match="returned 1 results for 2 items"):
            await asyncio.wait_for(batcher.submit_many(["a", "b"], timeout_s=60), GUARD_S)
    finally:
        await batcher.close()


async def test_on_batch_reports_each_computed_batch(clock, model) -> None:
    reports: list[BatchReport] = []
    batcher: Batcher = DynamicBatcher(
        model, max_batch_size=2, max_wait_s=0.0, max_queue=10, clock=clock, on_batch=reports.append
    )
    batcher.start()
    try:
        await asyncio.wait_for(batcher.submit_many(["a", "b", "c"], timeout_s=60), GUARD_S)
    finally:
        await batcher.close()
    assert [report.size for report in reports] == [2, 1]


# Draining ------------------------------------------------------------------------------------------------


async def test_close_finishes_queued_requests_then_refuses_new_ones(clock, model) -> None:
    before = set(threading.enumerate())
    batcher: Batcher = DynamicBatcher(model, max_batch_size=8, max_wait_s=10.0, max_queue=10, clock=clock)
    batcher.start()
    queued = [spawn(batcher.submit(text, timeout_s=60)) for text in "abc"]
    await settle()
    await asyncio.wait_for(batcher.close(), GUARD_S)  # no clock advance: close() does not wait max_wait_s
    assert [(await finish(task)).value for task in queued] == ["A", "B", "C"]
    with pytest.raises(BatcherClosedError):
        await batcher.submit("d", timeout_s=60)
    leaked = [thread for thread in threading.enumerate() if thread not in before and thread.is_alive()]
    assert not leaked, f"the inference thread outlived close(): {leaked}"


async def test_submit_before_start_is_refused(clock, model) -> None:
    batcher: Batcher = DynamicBatcher(model, max_batch_size=2, max_wait_s=0.0, max_queue=10, clock=clock)
    with pytest.raises(BatcherClosedError):
        await batcher.submit("a", timeout_s=1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size=0 must be >= 1"),
        ({"max_wait_s": -1}, "max_wait_s=-1 must be >= 0"),
        ({"max_queue": 0}, "max_queue=0 must be >= 1"),
        ({"workers": 0}, "workers=0 must be >= 1"),
    ],
)
def test_invalid_options_fail_at_construction(options: dict[str, Any], message: str) -> None:
    settings: dict[str, Any] = {"max_batch_size": 1, "max_wait_s": 0.0, "max_queue": 1} | options
    with pytest.raises(ValueError, match=message):
        DynamicBatcher(lambda items: items, **settings)
