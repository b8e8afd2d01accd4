"""The teaching batcher keeps its four rules: a bounded queue, a window that starts at the first arrival,
a batch sent when full or when the window closes, and no CPU while idle.

Timing tests use windows of tenths of a second and compare against the answer a wrong rule would give, so
a busy 2-core machine cannot make them pass or fail by chance.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from course_utils.batching import Batcher, BatchStats, QueueFullError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the batcher is written for asyncio


def recording_model(sizes: list[int], compute_s: float = 0.0):  # type: ignore[no-untyped-def]
    """A stand-in model: records each batch's size, sleeps `compute_s`, answers each item doubled."""

    def model(items: list[int]) -> list[int]:
        sizes.append(len(items))
        time.sleep(compute_s)
        return [2 * item for item in items]

    return model


async def test_a_burst_fills_batches_up_to_max_batch_size() -> None:
    sizes: list[int] = []
    batcher = Batcher(recording_model(sizes), max_batch_size=8, max_wait_s=0.2).start()
    answers = await asyncio.gather(*(batcher.submit(i) for i in range(20)))
    assert await batcher.stop() == 0, "nothing was left in the queue"
    assert sizes == [8, 8, 4]
    assert [a.value for a in answers] == [2 * i for i in range(20)], "each caller gets its own answer"
    assert [a.batch_size for a in answers] == [8] * 16 + [4] * 4
    assert batcher.stats.as_dict() == {
        "requests": 20,
        "batches": 3,
        "mean_batch_size": pytest.approx(20 / 3),
        "mean_queue_ms": pytest.approx(batcher.stats.queue_s_total * 1000 / 20),
        "batch_sizes": {"4": 1, "8": 2},
    }


async def test_a_full_batch_goes_at_once_without_waiting_for_the_window() -> None:
    batcher = Batcher(recording_model([]), max_batch_size=4, max_wait_s=5.0)
    batcher.start()
    started = time.monotonic()
    await asyncio.gather(*(batcher.submit(i) for i in range(4)))
    await batcher.stop()
    assert time.monotonic() - started < 2.5, "a full batch must not wait for its 5 s window"


async def test_sparse_requests_each_wait_the_window_alone() -> None:
    sizes: list[int] = []
    batcher = Batcher(recording_model(sizes), max_batch_size=8, max_wait_s=0.05)
    batcher.start()
    answers = []
    for i in range(3):
        answers.append(await batcher.submit(i))
        await asyncio.sleep(0.1)
    await batcher.stop()
    assert sizes == [1, 1, 1]
    assert all(a.queue_s >= 0.049 for a in answers), [a.queue_s for a in answers]


async def test_the_window_counts_from_the_first_arrival_not_from_when_the_worker_is_free() -> None:
    """A's window closes at 0.3 s and A computes until ~0.9 s. B arrives at 0.35 s, so its window is over
    when the worker is free: B computes at once (done at ~1.5 s), not after another 0.3 s (~1.8 s)."""
    batcher = Batcher(recording_model([], compute_s=0.6), max_batch_size=4, max_wait_s=0.3)
    batcher.start()
    started = time.monotonic()
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.35)  # A's window (0.3 s) is over: A computes until ~0.9 s
    second = await batcher.submit(2)
    done_s = time.monotonic() - started
    await first
    await batcher.stop()
    assert second.batch_size == 1
    assert done_s < 1.65, f"B finished at {done_s:.2f} s: it waited a second window once the worker was free"


async def test_a_full_queue_refuses_at_once() -> None:
    release = threading.Event()

    def blocked_model(items: list[int]) -> list[int]:
        release.wait(5)
        return items

    batcher = Batcher(blocked_model, max_batch_size=1, max_wait_s=0.0, max_queue=2)
    batcher.start()
    computing = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.05)  # the worker takes request 0 and blocks in the model
    queued = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0)
    with pytest.raises(QueueFullError, match="max_queue=2"):
        await batcher.submit(3)
    release.set()
    assert [a.value for a in await asyncio.gather(computing, *queued)] == [0, 1, 2]
    await batcher.stop()


async def test_a_model_error_reaches_every_caller_of_the_batch_and_the_batcher_goes_on() -> None:
    calls: list[list[int]] = []

    def flaky_model(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            raise OSError("model crashed")
        return items

    batcher = Batcher(flaky_model, max_batch_size=4, max_wait_s=0.1)
    batcher.start()
    failed = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert [type(f) for f in failed] == [OSError] * 3
    assert (await batcher.submit(7)).value == 7, "the worker survives a failed batch"
    await batcher.stop()
    assert batcher.stats.batches == 1, "a failed batch is not counted as computed"


async def test_a_model_that_loses_answers_is_an_error_not_a_hang() -> None:
    batcher = Batcher(lambda items: items[:1], max_batch_size=4, max_wait_s=0.1)
    batcher.start()
    results = await asyncio.gather(*(batcher.submit(i) for i in range(2)), return_exceptions=True)
    await batcher.stop()
    assert all(isinstance(r, RuntimeError) and "1 results for 2 items" in str(r) for r in results)


async def test_idle_worker_uses_no_cpu() -> None:
    batcher = Batcher(recording_model([]), max_batch_size=8, max_wait_s=0.001)
    batcher.start()
    await batcher.submit(1)
    cpu_before = time.process_time()
    await asyncio.sleep(0.5)
    cpu_s = time.process_time() - cpu_before
    await batcher.stop()
    assert cpu_s < 0.05, f"the idle batcher used {cpu_s:.3f} s of CPU in 0.5 s: it polls"


async def test_stop_cancels_what_is_computing_or_queued() -> None:
    release = threading.Event()
    batcher = Batcher(lambda items: release.wait(5) and items, max_batch_size=1, max_wait_s=0.0)
    batcher.start()
    computing = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.05)
    queued = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0)
    assert await batcher.stop() == 1, "one request was still queued"
    release.set()
    await asyncio.gather(computing, queued, return_exceptions=True)
    assert computing.cancelled() and queued.cancelled(), "every caller hears of the stop, none hangs"


async def test_stop_while_a_batch_window_is_open_cancels_its_callers() -> None:
    """A request taken off the queue into an open window must hear of stop(), not wait forever."""
    batcher = Batcher(lambda items: items, max_batch_size=8, max_wait_s=5.0).start()
    waiting = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.1)  # the worker holds it in a batch and waits for company
    await batcher.stop()
    await asyncio.wait_for(asyncio.gather(waiting, return_exceptions=True), timeout=2)
    assert waiting.cancelled()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_batch_size": 0, "max_wait_s": 0.0}, "max_batch_size=0"),
        ({"max_batch_size": 2, "max_wait_s": -1.0}, "max_wait_s=-1.0"),
        ({"max_batch_size": 2, "max_wait_s": 0.0, "max_queue": 0}, "max_queue=0"),
    ],
)
def test_bad_options_are_refused_with_the_value(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Batcher(lambda items: items, **kwargs)  # type: ignore[arg-type]


async def test_submit_before_start_and_start_twice_say_what_to_do() -> None:
    batcher = Batcher(lambda items: items, max_batch_size=2, max_wait_s=0.0)
    with pytest.raises(RuntimeError, match="call start"):
        await batcher.submit(1)
    batcher.start()
    with pytest.raises(RuntimeError, match="stop"):
        batcher.start()
    await batcher.stop()


def test_empty_stats_have_no_division_by_zero() -> None:
    assert BatchStats().as_dict() == {
        "requests": 0,
        "batches": 0,
        "mean_batch_size": 0.0,
        "mean_queue_ms": 0.0,
        "batch_sizes": {},
    }
