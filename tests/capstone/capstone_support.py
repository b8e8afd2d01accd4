"""Helpers shared by the capstone tests: paths, a real uvicorn subprocess, and event-loop utilities.

`free_port` is the library's (`course_utils.ports`), re-exported for the reliability tests.

The reference service's modules live in `solutions/capstone/src` and import each other by plain name
(uvicorn runs it with `--app-dir src`), so importing this module puts that folder on sys.path.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from course_utils.config import PROJECT_ROOT
from course_utils.ports import free_port as free_port  # re-exported: tests/reliability use it
from course_utils.server import ServerProcess

SOLUTION_DIR = PROJECT_ROOT / "solutions" / "capstone"
SOLUTION_SRC = SOLUTION_DIR / "src"
#: The launcher of a multi-worker start (`WORKERS=2`): `[sys.executable, str(SERVE_SCRIPT)]`.
SERVE_SCRIPT = SOLUTION_SRC / "serve.py"
STARTER_DIR = PROJECT_ROOT / "capstone"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0

if str(SOLUTION_SRC) not in sys.path:
    sys.path.insert(0, str(SOLUTION_SRC))


class UvicornProcess:
    """The service under test as the library runs servers: `course_utils.server.ServerProcess`
    (`python -m uvicorn app:app --app-dir SRC`, or `command` such as `[python, SERVE_SCRIPT]` for several
    workers; own process group, output in `log_path`, bounded stop),
    started and answering /health once constructed, with the accessors the tests read it by."""

    def __init__(
        self, src_dir: Path, env: dict[str, str], log_path: Path, *, command: Sequence[str] | None = None
    ) -> None:
        self.log_path = log_path
        self.server = ServerProcess(
            None if command else "app:app",
            app_dir=None if command else src_dir,
            command=command,
            env={"PYTHONUNBUFFERED": "1", **env},
            log_path=log_path,
            start_timeout_s=START_TIMEOUT_S,
            stop_timeout_s=STOP_TIMEOUT_S,
        ).start()
        assert self.server.process is not None and self.server.port is not None
        self.port = self.server.port
        self.base_url = self.server.url
        self.process = self.server.process.popen  # tests send it signals and wait for its exit code
        self._runner = self.server.process

    def output(self) -> str:
        return self.server.output()

    def url(self, path: str) -> str:
        return self.base_url + path

    def wait_until(self, path: str, status: int = 200, timeout_s: float = START_TIMEOUT_S) -> httpx.Response:
        """Poll `path` until it answers `status`; ServerStartError with the server's output if it dies or
        times out."""
        return self._runner.wait_ready(self.url(path), status=status, timeout_s=timeout_s)

    def terminate(self) -> int | None:
        """SIGTERM the group, a bounded wait, then SIGKILL; the exit code (negative: the killing signal)."""
        self.server.stop()
        return self.server.returncode


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
