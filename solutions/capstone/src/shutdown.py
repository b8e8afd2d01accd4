"""Graceful shutdown: on SIGTERM, first tell load balancers to stop routing here, then let uvicorn stop.

Uvicorn stops listening the moment it handles SIGTERM, so nobody could ever see /ready turn 503. This module
puts a handler in front of uvicorn's: it marks the service as draining at once (/ready -> 503 "draining"),
keeps serving for `DRAIN_DELAY_S` so probes and load balancers notice, then hands the signal to uvicorn,
which finishes in-flight requests and runs the lifespan shutdown (where the batcher drains its queue).
Kubernetes gets the same effect from a preStop hook; see deploy.md.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["drain_on_sigterm"]

logger = logging.getLogger("capstone.shutdown")


@contextmanager
def drain_on_sigterm(on_drain: Callable[[], None], *, delay_s: float) -> Iterator[None]:
    """While active, SIGTERM calls `on_drain()` and forwards the signal to the previous handler after
    `delay_s` seconds. Does nothing outside the main thread (e.g. an app served from a test thread), where
    Python cannot install signal handlers and the server is not stopped by signals anyway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)

    def forward() -> None:
        signal.signal(signal.SIGTERM, previous)  # a second SIGTERM now goes straight to uvicorn
        if callable(previous):
            previous(signal.SIGTERM, None)
        elif previous == signal.SIG_DFL:
            signal.raise_signal(signal.SIGTERM)

    def handle_sigterm(signum: int, frame: FrameType | None) -> None:
        on_drain()
        logger.info(
            "SIGTERM: draining for %.1f s before shutdown", delay_s, extra={"fields": {"delay_s": delay_s}}
        )
        # Signal handlers interrupt the event loop between bytecodes: only call_soon_threadsafe is safe here.
        loop.call_soon_threadsafe(loop.call_later, delay_s, forward)

    signal.signal(signal.SIGTERM, handle_sigterm)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is handle_sigterm:
            signal.signal(signal.SIGTERM, previous)
