"""BackgroundServer (uvicorn thread) and ServerProcess (uvicorn subprocess), against real sockets."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from course_utils import ports
from course_utils.errors import ServerStartError
from course_utils.server import (
    BackgroundServer,
    ServerProcess,
    reference_threads_per_worker,
    running_servers,
    stop_all,
)


def test_start_query_stop_20_times_without_leaks(no_thread_leak: None, tiny_app: FastAPI) -> None:
    app = tiny_app
    before = set(threading.enumerate())
    for _ in range(20):
        with BackgroundServer(app, stop_timeout_s=5) as srv:
            port = srv.port
            assert port is not None and port > 0
            assert srv.url == f"http://127.0.0.1:{port}"
            assert httpx.get(srv.url + "/health", timeout=5).json() == {"status": "ok"}
        assert not srv.running
        assert set(threading.enumerate()) == before, "a server thread outlived stop()"
        assert ports.port_is_free("127.0.0.1", port), f"port {port} still taken after stop()"


def test_port_already_taken_fails_fast(tiny_app: FastAPI) -> None:
    sock = ports.bind_socket("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        t0 = time.perf_counter()
        with pytest.raises(ServerStartError, match=r"port is in use.*port=0"):
            BackgroundServer(tiny_app, port=port).start()
        assert time.perf_counter() - t0 < 1.0
    finally:
        sock.close()


def test_failing_lifespan_raises_with_the_cause(no_thread_leak: None) -> None:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("model.onnx not found")
        yield  # pragma: no cover

    t0 = time.perf_counter()
    with pytest.raises(ServerStartError, match=r"model\.onnx not found") as info:
        BackgroundServer(FastAPI(lifespan=lifespan), start_timeout_s=10).start()
    assert isinstance(info.value.__cause__, RuntimeError)
    assert time.perf_counter() - t0 < 5.0


def test_slow_startup_times_out_with_a_clear_message(no_thread_leak: None) -> None:
    import asyncio

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.sleep(1.5)  # a startup slower than the bounded wait below
        yield

    with pytest.raises(ServerStartError, match=r"within 0\.5s.*start_timeout_s"):
        BackgroundServer(FastAPI(lifespan=lifespan), start_timeout_s=0.5, stop_timeout_s=5).start()


def test_same_name_replaces_the_previous_server(no_thread_leak: None, tiny_app: FastAPI) -> None:
    app = tiny_app
    first = BackgroundServer(app, name="cell-3").start()
    old_port = first.port
    second = BackgroundServer(app, name="cell-3").start()  # the cell runs again
    try:
        assert not first.running
        assert running_servers() == {"cell-3": second}
        assert httpx.get(second.url + "/health").status_code == 200
        assert old_port is not None and ports.port_is_free("127.0.0.1", old_port)
    finally:
        stop_all()
    assert running_servers() == {}


def test_stop_is_idempotent_and_url_needs_a_running_server(tiny_app: FastAPI) -> None:
    srv = BackgroundServer(tiny_app)
    with pytest.raises(ServerStartError, match="start"):
        _ = srv.url
    srv.start()
    srv.stop()
    srv.stop()
    assert "stopped" in repr(srv)


def test_import_string_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tiny_mod.py").write_text(APP_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    with BackgroundServer("tiny_mod:app") as srv:
        assert httpx.get(srv.url + "/health").status_code == 200


APP_SOURCE = textwrap.dedent(
    """
    import os
    from fastapi import FastAPI

    app = FastAPI()
    if os.environ.get("FAIL_AT_IMPORT"):
        raise RuntimeError("boom at import: " + os.environ["FAIL_AT_IMPORT"])

    @app.get("/health")
    def health():
        return {"status": "ok", "greeting": os.environ.get("GREETING", "")}
    """
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP_SOURCE)
    return tmp_path


def test_subprocess_server_passes_env_and_stops(app_dir: Path) -> None:
    with ServerProcess("app:app", app_dir=app_dir, env={"GREETING": "hi"}, start_timeout_s=20) as proc:
        assert proc.running
        body = httpx.get(proc.url + "/health").json()
        assert body == {"status": "ok", "greeting": "hi"}
        port = proc.port
    assert proc.returncode is not None
    assert port is not None and ports.port_is_free("127.0.0.1", port)


def test_subprocess_failure_quotes_its_output(app_dir: Path) -> None:
    srv = ServerProcess("app:app", app_dir=app_dir, env={"FAIL_AT_IMPORT": "xyz"}, start_timeout_s=20)
    t0 = time.perf_counter()
    with pytest.raises(ServerStartError, match=r"(?s)exited with code.*boom at import: xyz"):
        srv.start()
    assert time.perf_counter() - t0 < 15
    assert not srv.running


def test_subprocess_killed_when_sigterm_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        APP_SOURCE + "\nimport signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "import uvicorn.server\nuvicorn.server.HANDLED_SIGNALS = ()\n"
    )
    with ServerProcess("app:app", app_dir=tmp_path, stop_timeout_s=1, start_timeout_s=20) as proc:
        pass
    assert proc.returncode == -9


def test_subprocess_server_runs_any_command_that_takes_host_and_port(app_dir: Path) -> None:
    """A script server (LitServe's kind): the command gets --host/--port, then extra_args."""
    script = app_dir / "serve.py"
    script.write_text(
        textwrap.dedent(
            """
            import argparse, os, uvicorn
            parser = argparse.ArgumentParser()
            for option in ("--host", "--port", "--greeting"):
                parser.add_argument(option)
            args = parser.parse_args()
            os.environ["GREETING"] = args.greeting
            uvicorn.run("app:app", host=args.host, port=int(args.port), app_dir=os.path.dirname(__file__))
            """
        )
    )
    command = [sys.executable, str(script)]
    with ServerProcess(command=command, extra_args=["--greeting", "hello"], start_timeout_s=20) as proc:
        assert httpx.get(proc.url + "/health").json() == {"status": "ok", "greeting": "hello"}
        assert proc.process is not None and proc.group.pgid == proc.process.pid
    assert proc.returncode is not None
    assert "serve.py" in repr(proc)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"app": "app:app"}, {"app": "app:app", "app_dir": ".", "command": ["python", "serve.py"]}],
    ids=["nothing", "app-without-folder", "app-and-command"],
)
def test_subprocess_server_needs_an_app_with_its_folder_or_a_command(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"pass an app with its folder .* or a command"):
        ServerProcess(**kwargs)  # type: ignore[arg-type]


def test_docstring_examples_run() -> None:
    import doctest

    from course_utils import ports, process, server

    for module in (server, ports, process):
        assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0, module.__name__


def test_stop_forces_out_a_hanging_request(no_thread_leak: None, tiny_app: FastAPI) -> None:
    srv = BackgroundServer(tiny_app, stop_timeout_s=1).start()
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(httpx.get(srv.url + "/slow?ms=30000", timeout=20).status_code)
        except httpx.HTTPError as exc:
            outcome.append(type(exc).__name__)

    client = threading.Thread(target=call)
    client.start()
    deadline = time.monotonic() + 5
    while srv._server is not None and not srv._server.server_state.tasks and time.monotonic() < deadline:
        threading.Event().wait(0.01)  # until the request is in flight
    t0 = time.perf_counter()
    srv.stop()
    assert time.perf_counter() - t0 < 4.0, "stop() did not force the hanging request out"
    client.join(10)
    assert outcome and outcome[0] != 200


def test_bad_import_string_is_a_start_error(no_thread_leak: None) -> None:
    with pytest.raises(ServerStartError, match=r"could not load the app 'no_such_module_xyz:app'"):
        BackgroundServer("no_such_module_xyz:app", name="bad").start()
    assert "bad" not in running_servers()


def test_reference_threads_come_from_the_reference_settings() -> None:
    """The thread policy is asked from ServiceSettings.threads_per_worker, in the reference's own folder."""
    assert reference_threads_per_worker(3, ort_threads=5) == 5, "ORT_THREADS set: used as is"
    one, three = reference_threads_per_worker(1), reference_threads_per_worker(3)
    assert 1 <= three <= one <= (os.cpu_count() or 1), (one, three)
    assert reference_threads_per_worker(64) == 1, "never 0 threads, however many workers"


def test_a_command_that_does_not_exist_is_a_clear_error_and_leaves_no_entry(tmp_path: Path) -> None:
    server = ServerProcess(command=[str(tmp_path / "no-such-server")], name="missing-command")
    with pytest.raises(ServerStartError, match="no-such-server"):
        server.start()
    assert "missing-command" not in running_servers()
