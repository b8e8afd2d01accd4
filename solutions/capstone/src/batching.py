"""Dynamic batching, written out by hand.

Why batch? A forward pass over 16 short texts costs far less than 16 passes over one text: the model's matrix
multiplications get wider instead of being repeated. A server sees requests one at a time, so the batcher
holds each request back for a moment to see whether others arrive, and sends them to the model together.

The rules, in the order the code applies them:

1. The queue is bounded. When `max_queue` requests are already waiting, `submit()` raises `QueueFullError`
   at once (the service answers 503 + Retry-After) instead of letting everyone's latency grow without bound.
2. A batch starts with the first request taken off the queue, and the wait starts when that request
   ARRIVED (not when the worker got to it): the batch is sent when it holds `max_batch_size` items or when
   its first request has waited `max_wait_s`, whichever comes first. `max_batch_size=1` turns batching off.
3. With `adaptive_wait`, nobody waits for company that will not come in time: the batcher keeps a moving
   average of the gap between arrivals, and when the next request is not expected before the batch's wait
   is over, it sends the batch at once. A lone client (or light traffic) then pays no batching delay at all,
   while under load the gaps are short and batches still fill up.
4. Waiting costs no CPU. The worker awaits the queue (or one timer per batch); it never polls in a loop.
5. Every request has a deadline. Requests whose deadline passed are dropped from the batch before inference
   (the caller gets `DeadlineExceededError`, the service answers 504): computing an answer nobody waits for
   would only delay everyone else.
6. Inference runs in `workers` threads (`run_in_executor`), so the event loop keeps accepting and queueing
   requests while the model computes. With one worker, batches never compete for the CPU; with more, the
   next batch is formed and started while others compute. The model releases the GIL while it computes,
   the Python around it (tokenising, building results) does not, so a batch in its Python part leaves the
   cores to the others: the service uses 3 workers, which kept a 2-core machine busiest (`make bench`).

Time comes from an injectable `Clock`, so tests drive the batcher with a fake clock: fast and deterministic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

__all__ = [
    "BatchReport",
    "BatcherClosedError",
    "BatcherError",
    "Clock",
    "Completed",
    "DeadlineExceededError",
    "DynamicBatcher",
    "MonotonicClock",
    "QueueFullError",
]

logger = logging.getLogger("capstone.batching")

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class Clock(Protocol):
    """Where the batcher gets the time from; swapped for a fake clock in tests."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences matter)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for `seconds` without using CPU."""
        ...


class MonotonicClock:
    """The real clock: `time.monotonic` and `asyncio.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class BatcherError(Exception):
    """Base class of the batcher's refusals; each maps to one HTTP status in the service."""


class QueueFullError(BatcherError):
    """The queue holds `max_queue` waiting requests already: come back later (503 + Retry-After)."""


class DeadlineExceededError(BatcherError):
    """The request's deadline passed before its batch was computed (504)."""


class BatcherClosedError(BatcherError):
    """The batcher is draining for shutdown and takes no new requests (503)."""


@dataclass(frozen=True)
class Completed(Generic[ResultT]):
    """One item's result plus where its time went (logged per request as queue_ms and compute_ms)."""

    value: ResultT
    queue_s: float
    compute_s: float
    batch_size: int


@dataclass(frozen=True)
class BatchReport:
    """What the worker did with one batch; handed to the `on_batch` callback (metrics)."""

    size: int
    expired: int
    compute_s: float


@dataclass
class _Pending(Generic[ItemT, ResultT]):
    """A request waiting in the queue: the item, where to put its answer, and its timestamps."""

    item: ItemT
    future: asyncio.Future[Completed[ResultT]]
    arrived_at: float
    deadline: float


# Weight of the newest gap in the moving average of arrival gaps: about the last ten arrivals count.
_GAP_SMOOTHING = 0.1

# Put on the queue by `close()`: everything queued before it is still processed, then the worker stops.
_STOP = object()


class DynamicBatcher(Generic[ItemT, ResultT]):
    """Collects single requests into batches for `process_batch`, following the rules in the module docstring.

    `process_batch(items)` runs in the worker thread and returns one result per item, in order. If it
    raises, every item of the batch gets that exception.
    """

    def __init__(
        self,
        process_batch: Callable[[list[ItemT]], Sequence[ResultT]],
        *,
        max_batch_size: int,
        max_wait_s: float,
        max_queue: int,
        workers: int = 1,
        adaptive_wait: bool = False,
        clock: Clock | None = None,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size={max_batch_size!r} must be >= 1 (1 disables batching)")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s={max_wait_s!r} must be >= 0")
        if max_queue < 1:
            raise ValueError(f"max_queue={max_queue!r} must be >= 1")
        if workers < 1:
            raise ValueError(f"workers={workers!r} must be >= 1")
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.workers = workers
        self.adaptive_wait = adaptive_wait
        self._process_batch = process_batch
        self._clock: Clock = clock or MonotonicClock()
        self._on_batch = on_batch
        # Unbounded on purpose: the bound is `max_queue`, checked in submit_many() against `_waiting`, which
        # also counts the requests already taken off the queue into the batch being formed.
        self._queue: asyncio.Queue[_Pending[ItemT, ResultT] | object] = asyncio.Queue()
        self._waiting = 0
        # Moving average of the time between arrivals (rule 3); infinite until two requests have arrived.
        self._arrival_gap_s = float("inf")
        self._last_arrival: float | None = None
        self._closed = False
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def waiting(self) -> int:
        """Requests accepted but not yet handed to the model (queued or in the batch being formed)."""
        return self._waiting

    @property
    def is_full(self) -> bool:
        return self._waiting >= self.max_queue

    def start(self) -> None:
        """Start the worker task and thread; call from inside the running event loop."""
        if self._worker is not None:
            raise RuntimeError("DynamicBatcher.start() was called twice; create a new batcher instead")
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="inference")
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="dynamic-batcher")

    async def close(self) -> None:
        """Drain: refuse new requests, finish every queued one, then stop the worker and its thread."""
        self._closed = True
        if self._worker is None:
            return
        self._queue.put_nowait(_STOP)
        await self._worker
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, item: ItemT, *, timeout_s: float) -> Completed[ResultT]:
        """Queue one item and wait for its result (see `submit_many`)."""
        (completed,) = await self.submit_many([item], timeout_s=timeout_s)
        return completed

    async def submit_many(self, items: Sequence[ItemT], *, timeout_s: float) -> list[Completed[ResultT]]:
        """Queue all items (or none of them) and wait at most `timeout_s` for all results.

        Raises `QueueFullError` if they do not fit, `BatcherClosedError` while draining,
        `DeadlineExceededError` after `timeout_s`, or the exception `process_batch` raised.
        """
        if self._closed or self._worker is None:
            raise BatcherClosedError("the batcher is not running (starting up or draining for shutdown)")
        if self._waiting + len(items) > self.max_queue:
            raise QueueFullError(
                f"{self._waiting} requests are waiting and {len(items)} more do not fit "
                f"(max_queue={self.max_queue})"
            )
        loop = asyncio.get_running_loop()
        now = self._clock.now()
        self._note_arrival(now)
        pending = [_Pending(item, loop.create_future(), now, now + timeout_s) for item in items]
        for entry in pending:
            self._queue.put_nowait(entry)
        self._waiting += len(pending)
        try:
            return await self._wait_for(pending, timeout_s)
        finally:
            # If we stop waiting (deadline, cancellation), the worker sees a done future and skips the item.
            for entry in pending:
                if not entry.future.done():
                    entry.future.cancel()

    def _note_arrival(self, now: float) -> None:
        """Update the moving average of the gap between arrivals (rule 3)."""
        if self._last_arrival is not None:
            gap = now - self._last_arrival
            if self._arrival_gap_s == float("inf"):
                self._arrival_gap_s = gap
            else:
                self._arrival_gap_s += _GAP_SMOOTHING * (gap - self._arrival_gap_s)
        self._last_arrival = now

    def _company_expected_within(self, seconds: float) -> bool:
        """Is another request likely to arrive within `seconds`? Always True without `adaptive_wait`."""
        return not self.adaptive_wait or self._arrival_gap_s <= seconds

    async def _wait_for(
        self, pending: list[_Pending[ItemT, ResultT]], timeout_s: float
    ) -> list[Completed[ResultT]]:
        """Wait for every future or the deadline, whichever comes first."""
        results = asyncio.gather(*(entry.future for entry in pending), return_exceptions=True)
        timer = asyncio.ensure_future(self._clock.sleep(timeout_s))
        waiters: set[asyncio.Future[Any]] = {results, timer}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if not results.done():
            results.cancel()
            raise DeadlineExceededError(f"no result within the {timeout_s:g} s deadline")
        values = results.result()
        for value in values:
            if isinstance(value, BaseException):
                raise value
        return list(values)  # type: ignore[arg-type]  # no exceptions left, only Completed values

    # The worker ---------------------------------------------------------------------------------------

    async def _run(self) -> None:
        """Form a batch, hand it to a free worker, repeat; returns after the stop marker (see `close`) once
        every batch in flight is done."""
        free_workers = asyncio.Semaphore(self.workers)
        computing: set[asyncio.Task[None]] = set()

        def release(task: asyncio.Task[None]) -> None:
            computing.discard(task)
            free_workers.release()

        stopping = False
        while not stopping:
            await free_workers.acquire()  # Form the next batch only when a worker can take it.
            batch, stopping = await self._collect_batch()
            if not batch:
                free_workers.release()
                continue
            self._waiting -= len(batch)  # Handed to the model: no longer counts against `max_queue`.
            task = asyncio.get_running_loop().create_task(self._compute(batch))
            computing.add(task)
            task.add_done_callback(release)
        await asyncio.gather(*computing)

    async def _collect_batch(self) -> tuple[list[_Pending[ItemT, ResultT]], bool]:
        """Wait for a first request, then gather more until the batch is full or its wait is over.

        Returns the batch and whether the stop marker was seen.
        """
        batch: list[_Pending[ItemT, ResultT]] = []
        first = await self._queue.get()  # Idle here: the task sleeps until a request arrives.
        if first is _STOP:
            return batch, True
        batch.append(first)  # type: ignore[arg-type]  # anything but _STOP is a _Pending
        flush_at = batch[0].arrived_at + self.max_wait_s  # The wait started when the first request arrived.
        timer: asyncio.Future[None] | None = None
        try:
            while len(batch) < self.max_batch_size:
                if self._queue.empty():
                    # Nothing queued: wait for a request or for the batch's deadline, without polling.
                    remaining_s = flush_at - self._clock.now()
                    if remaining_s <= 0 or not self._company_expected_within(remaining_s):
                        break
                    if timer is None:
                        timer = asyncio.ensure_future(self._clock.sleep(remaining_s))
                    getter = asyncio.ensure_future(self._queue.get())
                    waiters: set[asyncio.Future[Any]] = {getter, timer}
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()  # Safe: a cancelled Queue.get() leaves its item in the queue.
                        break
                    entry = getter.result()
                else:
                    entry = self._queue.get_nowait()
                if entry is _STOP:
                    return batch, True  # Draining: send what we have now, do not wait for company.
                batch.append(entry)  # type: ignore[arg-type]
        finally:
            if timer is not None:
                timer.cancel()
        return batch, False

    async def _compute(self, batch: list[_Pending[ItemT, ResultT]]) -> None:
        """Drop expired requests, run the model on the rest in a worker thread, hand out the results."""
        now = self._clock.now()
        live: list[_Pending[ItemT, ResultT]] = []
        expired = 0
        for entry in batch:
            if entry.future.done():
                continue  # The caller stopped waiting (its own deadline timer fired): nothing to compute.
            if now >= entry.deadline:
                entry.future.set_exception(DeadlineExceededError("the deadline passed while queued"))
                expired += 1
                continue
            live.append(entry)
        if not live:
            self._report(BatchReport(size=0, expired=expired, compute_s=0.0))
            return

        started = self._clock.now()
        items = [entry.item for entry in live]
        try:
            loop = asyncio.get_running_loop()
            results = await loop.run_in_executor(self._executor, self._process_batch, items)
            if len(results) != len(live):
                raise RuntimeError(f"process_batch returned {len(results)} results for {len(live)} items")
        except Exception as exc:
            logger.exception("batch of %d failed", len(live))
            for entry in live:
                if not entry.future.done():
                    entry.future.set_exception(exc)
            return
        compute_s = self._clock.now() - started
        for entry, result in zip(live, results, strict=True):
            if not entry.future.done():  # else: the caller gave up while we computed
                queue_s = started - entry.arrived_at
                entry.future.set_result(Completed(result, queue_s, compute_s, len(live)))
        self._report(BatchReport(size=len(live), expired=expired, compute_s=compute_s))

    def _report(self, report: BatchReport) -> None:
        if self._on_batch is None:
            return
        try:
            self._on_batch(report)
        except Exception:  # Metrics must never break serving; log the bug instead.
            logger.exception("on_batch callback failed")
