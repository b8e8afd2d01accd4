"""Helpers shared by the capstone tests: paths, a real uvicorn subprocess, and event-loop utilities.

The reference service's modules live in `solutions/capstone/src` and import each other by plain name
(uvicorn runs it with `--app-dir src`), so importing this module puts that folder on sys.path.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from course_utils.config import PROJECT_ROOT

SOLUTION_DIR = PROJECT_ROOT / "solutions" / "capstone"
SOLUTION_SRC = SOLUTION_DIR / "src"
STARTER_DIR = PROJECT_ROOT / "capstone"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0

if str(SOLUTION_SRC) not in sys.path:
    sys.path.insert(0, str(SOLUTION_SRC))


def free_port() -> int:
    """A port that was free a moment ago (uvicorn's command line needs a number)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class UvicornProcess:
    """`python -m uvicorn app:app --app-dir <src>` on 127.0.0.1 in a subprocess, its output in a file."""

    def __init__(self, src_dir: Path, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(src_dir)]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def url(self, path: str) -> str:
        return self.base_url + path

    def wait_until(self, path: str, status: int = 200, timeout_s: float = START_TIMEOUT_S) -> httpx.Response:
        """Poll `path` until it answers `status`; fail with the server's output if it dies or times out."""
        deadline = time.monotonic() + timeout_s
        last: object = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.output()}", pytrace=False)
            try:
                response = httpx.get(self.url(path), timeout=2.0)
                if response.status_code == status:
                    return response
                last = (response.status_code, response.text)
            except httpx.TransportError as exc:
                last = exc
            time.sleep(0.05)
        pytest.fail(f"{path} did not answer {status} within {timeout_s}s (last: {last!r}):\n{self.output()}")

    def terminate(self) -> int:
        """SIGTERM, a bounded wait, then SIGKILL; returns the exit code (negative: killed by that signal)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        self._log.close()
        return self.process.returncode


def wait_ready(client: Any, timeout_s: float = START_TIMEOUT_S) -> None:
    """Poll /ready of an in-process TestClient until 200 (the model loads in the background)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = client.get("/ready")
        if response.status_code == 200:
            return
        if response.json().get("reason") == "failed":
            pytest.fail(f"model failed to load: {response.json()}", pytrace=False)
        time.sleep(0.02)
    pytest.fail(f"/ready not 200 within {timeout_s}s", pytrace=False)


async def settle(rounds: int = 50) -> None:
    """Let every runnable task of the event loop run until it blocks (used with the fake clock)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
