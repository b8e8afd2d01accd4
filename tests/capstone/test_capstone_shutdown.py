"""Graceful shutdown of a real uvicorn process: SIGTERM -> /ready 503 "draining" -> queue drains -> exit."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from capstone_support import STOP_TIMEOUT_S, UvicornProcess
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow


def queue_depth(server: UvicornProcess) -> float:
    for family in text_string_to_metric_families(httpx.get(server.url("/metrics"), timeout=5).text):
        if family.name == "batch_queue_depth":
            return float(family.samples[0].value)
    raise AssertionError("batch_queue_depth missing from /metrics")


def test_sigterm_drains_queued_requests_then_exits(
    start_server: Callable[..., UvicornProcess], model_dir: Path
) -> None:
    # Batches wait 1.5 s for company (ADAPTIVE_WAIT off: always), so the requests below are still queued
    # when SIGTERM arrives.
    env = {
        "MODEL_DIR": str(model_dir),
        "MAX_BATCH_SIZE": "16",
        "MAX_WAIT_MS": "1500",
        "ADAPTIVE_WAIT": "false",
        "DRAIN_DELAY_S": "1",
    }
    server = start_server(env)
    responses: list[Any] = []

    def ask(index: int) -> None:
        try:
            responses.append(httpx.post(server.url("/predict"), json={"text": f"review {index}"}, timeout=30))
        except httpx.HTTPError as exc:
            responses.append(exc)

    clients = [threading.Thread(target=ask, args=(i,), daemon=True) for i in range(3)]
    for client in clients:
        client.start()
    deadline = time.monotonic() + 10
    while queue_depth(server) < 3:
        assert time.monotonic() < deadline, "the requests never reached the queue"
        time.sleep(0.02)

    server.process.send_signal(signal.SIGTERM)
    ready = httpx.get(server.url("/ready"), timeout=5)  # within DRAIN_DELAY_S the server still answers
    assert (ready.status_code, ready.json()["reason"]) == (503, "draining")
    assert httpx.get(server.url("/health"), timeout=5).status_code == 200  # alive while draining

    for client in clients:
        client.join(30)
    assert [getattr(response, "status_code", response) for response in responses] == [200, 200, 200]
    exit_code = server.process.wait(STOP_TIMEOUT_S)
    assert exit_code in (0, -signal.SIGTERM), server.output()  # uvicorn re-raises the signal it handled

    logs = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    phases = [entry["phase"] for entry in logs if "phase" in entry]
    assert phases[-1] == "draining"
    assert "Traceback" not in server.output()
