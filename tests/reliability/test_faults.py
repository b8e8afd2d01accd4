"""Faults against a real uvicorn process: a broken model folder, and SIGTERM while requests are in flight.

Already covered elsewhere, so not repeated here:
- the card lists a wrong sha256 -> /ready 503 "failed" naming the file, /health 200, process up:
  tests/capstone/test_capstone_server.py::test_corrupt_model_503_not_ready_while_health_stays_200;
- a missing file at load time: tests/capstone/test_capstone_inference.py::test_a_missing_file_refuses_to_load;
- inference raising -> JSON 500 with the request id, later requests served:
  tests/capstone/test_capstone_app.py::test_an_inference_crash_is_a_json_500_with_the_request_id;
- SIGTERM with three queued requests and DRAIN_DELAY_S=1: tests/capstone/test_capstone_shutdown.py.

Added here: the same refusals with the *files* damaged (deleted, or their bytes changed while the card is
intact) in a real process, and SIGTERM with no drain delay (the default) while many requests are in flight.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from capstone_support import STOP_TIMEOUT_S, UvicornProcess
from reliability_support import metric_sum

from course_utils.bench import LoadResult, run_closed_loop

pytestmark = pytest.mark.slow

N_IN_FLIGHT = 48


def _damaged_copy(model_dir: Path, folder: Path, damage: str) -> Path:
    """A copy of the model folder (symlinks, but a real copy of the INT8 model) with `damage` done to it."""
    folder.mkdir()
    for item in model_dir.iterdir():
        if item.name != "model.int8.onnx":
            (folder / item.name).symlink_to(item.resolve())
    if damage == "missing":
        return folder
    target = folder / "model.int8.onnx"
    shutil.copyfile(model_dir / "model.int8.onnx", target)
    data = bytearray(target.read_bytes())
    if damage == "bit-flip":
        data[len(data) // 2] ^= 0x01  # one bit: still a plausible file, only the hash can tell
    else:  # truncated, as by an interrupted copy
        del data[len(data) // 2 :]
    target.write_bytes(bytes(data))
    return folder


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("missing", "'model.int8.onnx' is missing"),
        ("bit-flip", "sha256 mismatch for 'model.int8.onnx'"),
        ("truncated", "sha256 mismatch for 'model.int8.onnx'"),
    ],
)
def test_a_damaged_model_file_keeps_the_service_unready_with_a_clear_reason(
    start_server: Callable[..., UvicornProcess], model_dir: Path, tmp_path: Path, damage: str, expected: str
) -> None:
    folder = _damaged_copy(model_dir, tmp_path / "model", damage)
    server = start_server({"MODEL_DIR": str(folder)}, ready=False)
    deadline = time.monotonic() + 60
    ready = httpx.get(server.url("/ready"), timeout=5)
    while ready.json()["reason"] in ("loading", "warming") and time.monotonic() < deadline:
        time.sleep(0.05)  # poll /ready until the loader has decided
        ready = httpx.get(server.url("/ready"), timeout=5)
    assert ready.status_code == 503 and ready.json()["reason"] == "failed", ready.text
    assert expected in ready.json()["detail"]
    assert httpx.get(server.url("/health"), timeout=5).json() == {"status": "ok", "model_loaded": False}
    refused = httpx.post(server.url("/predict"), json={"text": "hello"}, timeout=10)
    assert refused.status_code == 503 and refused.json()["reason"] == "not_ready"
    assert refused.headers["Retry-After"] == "1"
    assert server.process.poll() is None, "the process must stay up and explain itself"


def test_sigterm_while_requests_are_in_flight_answers_every_one_of_them(
    start_server: Callable[..., UvicornProcess], model_dir: Path, record_property: pytest.RecordProperty
) -> None:
    # DRAIN_DELAY_S=0 (the default): uvicorn stops listening at once, so only the in-flight requests are
    # left. A batch (up to 64) waits 5 s for company, so all N requests are inside the service, waiting,
    # when SIGTERM arrives; the drain must then compute them rather than drop them.
    env = {
        "MODEL_DIR": str(model_dir),
        "MAX_BATCH_SIZE": "64",
        "MAX_WAIT_MS": "5000",
        "ADAPTIVE_WAIT": "false",
        "DRAIN_DELAY_S": "0",
    }
    server = start_server(env)
    box: dict[str, LoadResult] = {}

    def fire() -> None:  # N workers, one request each: N concurrent requests, nothing sent after them
        box["result"] = run_closed_loop(
            server.url("/predict"),
            method="POST",
            json={"text": "Still answered during shutdown."},
            concurrency=N_IN_FLIGHT,
            n_requests=N_IN_FLIGHT,
            timeout_s=60,
            progress=False,
        )

    load = threading.Thread(target=fire, name="in-flight-load", daemon=True)
    load.start()
    deadline = time.monotonic() + 30
    while metric_sum(server.base_url, "predict_requests_in_flight") < N_IN_FLIGHT:
        assert time.monotonic() < deadline, "the requests never all reached the service"
        time.sleep(0.02)  # poll the in-flight gauge

    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    load.join(60)
    assert not load.is_alive(), "the load generator did not finish"
    exit_code = server.process.wait(STOP_TIMEOUT_S)
    exit_s = time.monotonic() - signalled

    result = box["result"]
    assert result.error_counts == {}, f"requests dropped by the shutdown: {result.error_counts}"
    assert result.status_counts == {200: N_IN_FLIGHT}, result.status_counts
    assert exit_code in (0, -signal.SIGTERM), server.output()
    assert "Traceback" not in server.output()
    logged = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    answered = [e for e in logged if e.get("path") == "/predict" and e.get("status") == 200]
    assert len(answered) == N_IN_FLIGHT  # each one logged, i.e. answered by the app, not cut by uvicorn
    record_property("sigterm_in_flight", N_IN_FLIGHT)
    record_property("sigterm_exit_s", round(exit_s, 2))
    print(f"\nSIGTERM with {N_IN_FLIGHT} in flight: {result.status_counts}, exited after {exit_s:.2f}s")
