"""Shared fixtures and the component policy.

Tests that need a component (a Docker daemon, wrk, a Prometheus server, ...) call `require_component`:
on a laptop without it they skip with the reason; in CI (`CI=true`) they fail, because CI installs and
starts every component first and a missing one is a broken CI.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any, NoReturn

import matplotlib
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

matplotlib.use("Agg")  # headless: figures render without a display

from course_utils.server import BackgroundServer
from tests.kit_support import kit, kit_env  # session fixtures: one kit set-up for the kit and browser tests

__all__ = ["kit", "kit_env"]


def in_ci() -> bool:
    """True when the CI script runs the tests (`CI=true`)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_component(name: str, available: bool, reason: str) -> None:
    """Skip (laptop) or fail (CI) the current test when `name` is not available."""
    if available:
        return
    message = f"{name} not available: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: .ci/run must install and start {name})", pytrace=False)
    pytest.skip(message)


@cache
def _docker_state() -> tuple[bool, str]:
    from course_utils.docker_tools import docker_status

    status = docker_status()
    return status.ok, f"{status.detail}. {status.fix}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.docker` tests need a daemon: skip without one, except in CI where they fail."""
    if item.get_closest_marker("docker") is not None:
        ok, reason = _docker_state()
        require_component("Docker daemon", ok, reason)


@pytest.fixture(name="require_component")
def require_component_fixture() -> Callable[[str, bool, str], None]:
    """`require_component(name, available, reason)` as a fixture (test modules cannot import conftest)."""
    return require_component


@pytest.fixture
def require_tool() -> Callable[[str], str]:
    """Returns a function: the path of an executable (wrk, locust...), or skip/fail as the policy says."""

    def check(tool: str) -> str:
        path = shutil.which(tool)
        require_component(tool, path is not None, f"{tool!r} is not on PATH")
        assert path is not None
        return path

    return check


@pytest.fixture
def no_thread_leak() -> Iterator[None]:
    """Fails the test if it leaves threads running that were not there before."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads leaked by the test: {leaked}"


def make_tiny_app() -> FastAPI:
    """A small FastAPI app for server and load tests: /health, /echo, /status/{code}, /slow."""
    import asyncio

    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    @app.get("/status/{code}")
    async def status(code: int) -> PlainTextResponse:
        return PlainTextResponse(str(code), status_code=code)

    @app.get("/slow")
    async def slow(ms: float = 50.0) -> dict[str, float]:
        await asyncio.sleep(ms / 1000)  # the endpoint under test is slow on purpose
        return {"slept_ms": ms}

    return app


@pytest.fixture
def tiny_app() -> FastAPI:
    """A fresh tiny app (see `make_tiny_app`)."""
    return make_tiny_app()


@pytest.fixture(scope="module")
def tiny_server() -> Iterator[BackgroundServer]:
    """The tiny app served on 127.0.0.1:0 for a whole module; stopped in `finally`."""
    server = BackgroundServer(make_tiny_app(), start_timeout_s=10, stop_timeout_s=5)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def fail(message: str) -> NoReturn:
    """pytest.fail without the traceback noise."""
    pytest.fail(message, pytrace=False)
