"""Run a FastAPI/ASGI app in the background: a uvicorn thread for notebooks, a subprocess for isolation.

`BackgroundServer` runs `uvicorn.Server` in a daemon thread on a socket it binds itself (port 0 by
default, the real port read back from the socket), waits a bounded time for startup and fails fast with
the cause when the port is taken, the lifespan startup raises or the thread dies. A server started with
`name=` replaces the running server of that name, so re-running a notebook cell never leaks the old one.

`ServerProcess` runs `python -m uvicorn MODULE:APP --app-dir DIR` (or any server command) through
`course_utils.process.Process`: its own process group, a health path polled, a bounded stop. Tests and the
benchmark use it so that a server cannot touch the caller's process.
"""

from __future__ import annotations

import errno
import os
import shlex
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Self

import uvicorn
from uvicorn.importer import import_from_string

from course_utils import ports
from course_utils.config import REFERENCE_SRC, get_settings
from course_utils.errors import ServerStartError, ServerStopError
from course_utils.process import Process, ProcessGroup, StartStop, run

__all__ = ["BackgroundServer", "ServerProcess", "reference_threads_per_worker", "running_servers", "stop_all"]

_ASGIApp = Callable[..., Any]
_REGISTRY: dict[str, BackgroundServer | ServerProcess] = {}
_REGISTRY_LOCK = threading.Lock()


def running_servers() -> dict[str, BackgroundServer | ServerProcess]:
    """The running servers started with a `name=`, by name.

    >>> running_servers()
    {}
    """
    with _REGISTRY_LOCK:
        return dict(_REGISTRY)


def stop_all() -> None:
    """Stop every running named server (a notebook's clean-up cell).

    >>> stop_all()
    """
    for server in running_servers().values():
        server.stop()


def _register(name: str | None, server: BackgroundServer | ServerProcess) -> None:
    if name is None:
        return
    with _REGISTRY_LOCK:
        old = _REGISTRY.pop(name, None)
    if old is not None and old is not server:
        old.stop()
    with _REGISTRY_LOCK:
        _REGISTRY[name] = server


def _unregister(name: str | None, server: BackgroundServer | ServerProcess) -> None:
    with _REGISTRY_LOCK:
        if name is not None and _REGISTRY.get(name) is server:
            del _REGISTRY[name]


class _LifespanWatch:
    """ASGI wrapper that remembers why the lifespan startup failed (uvicorn only logs it, then sys.exit)."""

    def __init__(self, app: _ASGIApp) -> None:
        self.app = app
        self.failure_message: str | None = None
        self.exception: BaseException | None = None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watched_send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "lifespan.startup.failed":
                self.failure_message = str(message.get("message", ""))
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except BaseException as exc:
            self.exception = exc
            raise


class _Server(uvicorn.Server):
    """uvicorn.Server that signals the end of its startup, whether it succeeded or not."""

    def __init__(self, config: uvicorn.Config, settled: threading.Event) -> None:
        super().__init__(config)
        self._settled = settled

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._settled.set()


class BackgroundServer(StartStop):
    """A uvicorn server in a daemon thread: context manager, or `start()` / `stop()`.

    Options default to `course_utils.config.get_settings()` (host 127.0.0.1, timeouts).

    >>> import httpx
    >>> from fastapi import FastAPI
    >>> app = FastAPI()
    >>> @app.get("/health")
    ... def health() -> dict[str, str]:
    ...     return {"status": "ok"}
    >>> with BackgroundServer(app) as srv:
    ...     httpx.get(srv.url + "/health").json()
    {'status': 'ok'}
    >>> srv = BackgroundServer(app, name="demo").start()  # a re-run of this cell stops the old one
    >>> srv.stop()
    """

    def __init__(
        self,
        app: _ASGIApp | str,
        *,
        host: str | None = None,
        port: int = 0,
        name: str | None = None,
        start_timeout_s: float | None = None,
        stop_timeout_s: float | None = None,
        log_level: str = "warning",
        **uvicorn_options: Any,
    ) -> None:
        settings = get_settings()
        self.app = app
        self.host = host if host is not None else settings.host
        self.requested_port = port
        self.name = name
        self.start_timeout_s = start_timeout_s or settings.server_start_timeout_s
        self.stop_timeout_s = stop_timeout_s or settings.server_stop_timeout_s
        self.log_level = log_level
        self.uvicorn_options = uvicorn_options
        self.port: int | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:43123` (only while running)."""
        if self.port is None:
            raise ServerStartError("The server is not running, so it has no URL yet. Call srv.start() first.")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """True between a successful `start()` and `stop()`."""
        return self._thread is not None and self._thread.is_alive() and self.port is not None

    def start(self) -> Self:
        """Bind, start the thread, wait until uvicorn has started; raise ServerStartError with the cause."""
        if self.running:
            return self
        _register(self.name, self)
        try:
            sock = ports.bind_socket(self.host, self.requested_port)
        except OSError as exc:
            _unregister(self.name, self)
            why = "the port is in use" if exc.errno == errno.EADDRINUSE else str(exc)
            raise ServerStartError(
                f"Server not started on {self.host}:{self.requested_port}: {why}. "
                "Pass port=0 for a free port, or stop the old server (srv.stop())."
            ) from exc

        try:
            app = import_from_string(self.app) if isinstance(self.app, str) else self.app
            watch = _LifespanWatch(app)
            config = uvicorn.Config(
                watch,
                log_level=self.log_level,
                timeout_graceful_shutdown=max(1, round(self.stop_timeout_s)),
                **self.uvicorn_options,
            )
        except Exception as exc:
            sock.close()
            _unregister(self.name, self)
            raise ServerStartError(
                f"Server not started: could not load the app {self.app!r} ({exc}). "
                "Pass an ASGI app object or an import string 'module:attribute'."
            ) from exc
        settled = threading.Event()
        self._server = server = _Server(config, settled)
        self._thread_error = None

        def target() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # SystemExit from uvicorn's startup failure, or any crash
                self._thread_error = exc
            finally:
                sock.close()
                settled.set()

        port: int = sock.getsockname()[1]
        self._thread = threading.Thread(target=target, name=f"uvicorn-{port}", daemon=True)
        self._thread.start()
        in_time = settled.wait(self.start_timeout_s)
        if not server.started:
            self._abort()
            cause = watch.exception or self._thread_error
            raise ServerStartError(self._start_failure(port, watch, in_time)) from cause
        self.port = port
        return self

    def _start_failure(self, port: int, watch: _LifespanWatch, settled: bool) -> str:
        where = f"Server on {self.host}:{port} did not start"
        if watch.exception is not None or watch.failure_message:
            cause = repr(watch.exception) if watch.exception is not None else ""
            cause = cause or (watch.failure_message or "").strip().splitlines()[-1]
            return (
                f"{where}: the app's lifespan startup failed with {cause}. "
                "Fix the startup code (e.g. model loading) and start again."
            )
        if not settled:
            return (
                f"{where} within {self.start_timeout_s:.1f}s: startup is still running. "
                "Pass a larger start_timeout_s or make startup faster."
            )
        return (
            f"{where}: the server thread ended with {self._thread_error!r}. "
            "Check the app and the uvicorn options, then start again."
        )

    def _abort(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(self.stop_timeout_s)
        self._thread = None
        self._server = None
        _unregister(self.name, self)

    def stop(self) -> None:
        """Graceful stop; after `stop_timeout_s` force the exit. Idempotent; ServerStopError if stuck."""
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        server.should_exit = True
        thread.join(self.stop_timeout_s)
        if thread.is_alive():
            server.force_exit = True
            thread.join(self.stop_timeout_s)
        self.port = None
        self._thread = None
        self._server = None
        _unregister(self.name, self)
        if thread.is_alive():
            raise ServerStopError(
                f"Server thread {thread.name!r} still runs {2 * self.stop_timeout_s:.1f}s after the stop "
                "request: a request handler blocks. Make handlers return (timeouts) or restart the kernel."
            )

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"BackgroundServer(name={self.name!r}, {state})"


class ServerProcess(StartStop):
    """A server in its own process group (`course_utils.process.Process`), ready once `health_path` is 200.

    Either an ASGI app, run as `python -m uvicorn APP --app-dir DIR`, or any `command` that takes
    `--host H --port P` (LitServe's script: it starts its workers in `LitServer.run()`, so uvicorn cannot
    import it). `env` is added to this process's environment.

    >>> import httpx, textwrap
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "app.py").write_text(textwrap.dedent('''
    ...     from fastapi import FastAPI
    ...     app = FastAPI()
    ...     @app.get("/health")
    ...     def health():
    ...         return {"status": "ok"}
    ... '''))
    >>> with ServerProcess("app:app", app_dir=d) as proc:
    ...     httpx.get(proc.url + "/health").status_code
    200
    """

    def __init__(
        self,
        app: str | None = None,
        *,
        app_dir: Path | str | None = None,
        command: Sequence[str] | None = None,
        host: str | None = None,
        port: int = 0,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        health_path: str = "/health",
        start_timeout_s: float | None = None,
        stop_timeout_s: float | None = None,
        log_path: Path | str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        if (app is None) == (command is None) or (app is not None and app_dir is None):
            raise ValueError(
                f"ServerProcess(app={app!r}, app_dir={app_dir!r}, command={command!r}): pass an app with its "
                "folder (ServerProcess('app:app', app_dir='src')) or a command (command=[python, 'serve.py'])"
            )
        settings = get_settings()
        if command is None:
            command = [sys.executable, "-m", "uvicorn", str(app), "--app-dir", str(app_dir)]
            self.label = f"uvicorn {app} --app-dir {app_dir}"
        else:
            self.label = shlex.join(command)
        self.command = list(command)
        self.host = host if host is not None else settings.host
        self.requested_port = port
        self.name = name
        self.env = dict(env or {})
        self.health_path = health_path
        self.start_timeout_s = start_timeout_s or settings.server_start_timeout_s
        self.stop_timeout_s = stop_timeout_s or settings.server_stop_timeout_s
        self.log_path = (
            Path(log_path) if log_path else Path(tempfile.mkdtemp(prefix="server-")) / "server.log"
        )
        self.extra_args = tuple(extra_args)
        self.port: int | None = None
        self.returncode: int | None = None
        self.process: Process | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:43123` (only while running)."""
        if self.port is None:
            raise ServerStartError("The server process is not running. Call proc.start() first.")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the process runs after a successful `start()`."""
        return self.process is not None and self.process.running and self.port is not None

    @property
    def group(self) -> ProcessGroup:
        """The server's process group (CPU time, pause/resume), e.g. to measure it under load."""
        if self.process is None:
            raise ServerStartError("The server process is not running. Call proc.start() first.")
        return self.process.group

    def output(self) -> str:
        """Everything the process wrote to stdout/stderr so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> Self:
        """Spawn the process and poll `health_path`; ServerStartError with its output if it never answers."""
        if self.running:
            return self
        _register(self.name, self)
        port = self.requested_port or ports.free_port(self.host)
        args = [*self.command, "--host", self.host, "--port", str(port), *self.extra_args]
        env = {**os.environ, **self.env} if self.env else None
        try:
            self.process = Process(
                args, env=env, output=self.log_path, label=self.label, stop_timeout_s=self.stop_timeout_s
            ).start()
        except OSError as exc:  # e.g. the command does not exist
            _unregister(self.name, self)
            raise ServerStartError(
                f"Could not start `{self.label}`: {exc}. Check the command ({args[0]!r}) exists and runs."
            ) from exc
        health_url = f"http://{self.host}:{port}{self.health_path}"
        try:
            self.process.wait_ready(health_url, timeout_s=self.start_timeout_s)
        except ServerStartError:
            self.stop()
            raise
        self.port = port
        return self

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after `stop_timeout_s`. Idempotent."""
        process = self.process
        if process is None:
            return
        self.returncode = process.stop()
        self.process = None
        self.port = None
        _unregister(self.name, self)

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"ServerProcess({self.label!r}, name={self.name!r}, {state})"


_THREADS_QUERY = "from settings import ServiceSettings; print(ServiceSettings().threads_per_worker())"


def reference_threads_per_worker(workers: int, *, ort_threads: int = 0, app_dir: Path = REFERENCE_SRC) -> int:
    """ONNX Runtime threads per model worker, as the reference service's own settings choose them.

    The policy lives in one place, `ServiceSettings.threads_per_worker()` of the reference capstone. The
    serving benchmark gives LitServe the same number by asking it: the service is an app folder, not an
    installed package, so the question runs in a subprocess started in that folder. (The instructor's
    repository only: the student kit has no reference capstone, and notebook 06 runs the library's
    teaching service instead.)
    """
    env = {**os.environ, "INFERENCE_WORKERS": str(workers), "ORT_THREADS": str(ort_threads)}
    answer = run(
        [sys.executable, "-c", _THREADS_QUERY],
        cwd=app_dir,
        env=env,
        timeout_s=60,
        label="ServiceSettings().threads_per_worker()",
    )
    return int(answer.strip().splitlines()[-1])
