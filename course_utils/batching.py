"""A small dynamic batcher, written to be read: notebook 06 prints `Batcher.collect` and drives it.

Why batch? One forward pass over 16 short texts costs far less than 16 passes over one text, but a server
receives requests one at a time. So the batcher holds each request back for a moment, gathers the ones that
arrive meanwhile, and hands them to the model together. Its rules:

1. The queue is bounded: with `max_queue` requests already waiting, `submit()` raises `QueueFullError` at
   once, so a server that cannot keep up refuses work instead of letting every latency grow.
2. A batch opens with the oldest waiting request, and its window closes `max_wait_s` after that request
   *arrived* (not after the worker got to it): a request never waits longer than `max_wait_s` for company.
3. The batch goes to the model when it holds `max_batch_size` requests or when its window closes, whichever
   comes first. `max_batch_size=1` turns batching off.
4. Waiting costs no CPU: the worker awaits the queue (with a timeout while a window is open); it never polls.

The model runs in a thread (`asyncio.to_thread`), so the event loop keeps accepting requests while a batch
computes, and one batch computes at a time. That is all: no per-request deadlines, no graceful drain, no
metrics. A production batcher needs those (the capstone's bonus); this one teaches the idea.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

from course_utils.errors import CourseUtilsError

__all__ = ["BatchStats", "Batched", "Batcher", "QueueFullError"]

Item = TypeVar("Item")
Answer = TypeVar("Answer")
_Model = Callable[[list[Item]], Sequence[Answer]]  # one answer per item, in order


class QueueFullError(CourseUtilsError):
    """`max_queue` requests are waiting already; a service answers 503 and the client retries later."""


@dataclass(frozen=True, slots=True)
class Batched(Generic[Answer]):
    """One request's answer, with the size of the batch it was computed in and how long it queued."""

    value: Answer
    batch_size: int
    queue_s: float


@dataclass(slots=True)
class BatchStats:
    """Running totals of what the batcher computed: enough for a mean batch size and a histogram."""

    requests: int = 0
    batches: int = 0
    sizes: Counter[int] = field(default_factory=Counter)
    queue_s_total: float = 0.0

    def add(self, batch_size: int, queue_s: float) -> None:
        """Count one computed batch of `batch_size` requests that queued `queue_s` seconds in total."""
        self.requests += batch_size
        self.batches += 1
        self.sizes[batch_size] += 1
        self.queue_s_total += queue_s

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready totals; `batch_sizes` maps a size (as a string key) to how many batches had it."""
        return {
            "requests": self.requests,
            "batches": self.batches,
            "mean_batch_size": self.requests / self.batches if self.batches else 0.0,
            "mean_queue_ms": 1000 * self.queue_s_total / self.requests if self.requests else 0.0,
            "batch_sizes": {str(size): count for size, count in sorted(self.sizes.items())},
        }


@dataclass(slots=True)
class _Request(Generic[Item, Answer]):
    item: Item
    arrived_s: float
    answer: asyncio.Future[Batched[Answer]]


class Batcher(Generic[Item, Answer]):
    """Gathers single items into batches for `model(items) -> results` (one result per item, in order).

    Use it inside a running event loop: `start()`, then `await submit(item)` from any number of tasks,
    `await stop()` at the end. If `model` raises, every request of that batch gets the exception.
    """

    def __init__(
        self, model: _Model[Item, Answer], *, max_batch_size: int, max_wait_s: float, max_queue: int = 256
    ) -> None:
        if max_batch_size <= 0:
            raise ValueError(f"max_batch_size={max_batch_size!r}: use 1 (no batching) or more")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s={max_wait_s!r}: a wait cannot be negative; 0 means never wait")
        if max_queue <= 0:
            raise ValueError(f"max_queue={max_queue!r}: the queue must hold at least one request")
        self.model = model
        self.max_batch_size, self.max_wait_s, self.max_queue = max_batch_size, max_wait_s, max_queue
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Request[Item, Answer]] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Self:
        """Create the queue and the worker task in the running event loop."""
        if self._task is not None:
            raise RuntimeError("This Batcher is running already: call stop() first, or make a new one.")
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._task = asyncio.create_task(self._work(), name="batcher")
        return self

    async def stop(self) -> int:
        """Cancel the worker; requests being computed or still queued fail with `CancelledError`.

        Returns how many queued requests were cancelled (0 when every caller had its answer).
        """
        task, queue = self._task, self._queue
        self._task = self._queue = None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        cancelled = 0
        while queue is not None and not queue.empty():
            cancelled += queue.get_nowait().answer.cancel()
        return cancelled

    async def submit(self, item: Item) -> Batched[Answer]:
        """Queue `item` and wait for its answer; `QueueFullError` at once if `max_queue` are waiting."""
        if self._queue is None:
            raise RuntimeError("The Batcher is not running: call start() inside the event loop first.")
        request: _Request[Item, Answer] = _Request(
            item, time.monotonic(), asyncio.get_running_loop().create_future()
        )
        try:
            self._queue.put_nowait(request)
        except asyncio.QueueFull:
            raise QueueFullError(
                f"{self.max_queue} requests are waiting (max_queue={self.max_queue}): retry in a moment, "
                "or run more replicas if this happens often."
            ) from None
        return await request.answer

    async def collect(self) -> list[_Request[Item, Answer]]:
        """One batch: sleep until a request arrives, then add more until the batch is full or its window
        (`max_wait_s` from the first request's arrival) is over."""
        assert self._queue is not None, "start() creates the queue"
        batch = [await self._queue.get()]  # idle here, without CPU, until someone submits
        window_ends_s = batch[0].arrived_s + self.max_wait_s
        try:
            for _ in range(self.max_batch_size - 1):  # each turn adds one request or ends the batch
                if not self._queue.empty():  # already waiting: take it, whatever the clock says
                    batch.append(self._queue.get_nowait())
                    continue
                left_s = window_ends_s - time.monotonic()
                if left_s <= 0:
                    break  # the first request has waited long enough
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout=left_s))
                except TimeoutError:
                    break  # nobody came in time: send what we have
        except asyncio.CancelledError:  # stop() while the window was open: these callers get no answer
            for request in batch:
                request.answer.cancel()
            raise
        return batch

    async def _work(self) -> None:
        """Forever: collect a batch, run the model on it in a thread, hand each caller its answer."""
        while True:
            batch = [request for request in await self.collect() if not request.answer.done()]
            if not batch:
                continue  # every caller gave up (cancelled) while waiting
            started_s = time.monotonic()
            try:
                results = await asyncio.to_thread(self.model, [request.item for request in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"the model returned {len(results)} results for {len(batch)} items")
            except asyncio.CancelledError:  # stop(): nobody will answer these callers any more
                for request in batch:
                    request.answer.cancel()
                raise
            except Exception as exc:  # the callers get the model's error; the worker keeps serving
                for request in batch:
                    if not request.answer.done():
                        request.answer.set_exception(exc)
                continue
            self.stats.add(len(batch), sum(started_s - request.arrived_s for request in batch))
            for request, result in zip(batch, results, strict=True):
                if not request.answer.done():
                    request.answer.set_result(Batched(result, len(batch), started_s - request.arrived_s))
