"""Docker for the course: daemon status, build with streamed progress, run until healthy.

Everything goes through the Docker SDK (`docker` package). Builds and containers use host networking by
default (`network_mode="host"`): the course machines reach no registry and tests talk to 127.0.0.1 only.
The Dockerfile linter (it needs no daemon) is `course_utils.dockerfile_lint`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import docker
import httpx
from docker.errors import DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.models.images import Image
from tqdm.auto import tqdm

from course_utils.errors import (
    ContainerStartError,
    DockerBuildError,
    DockerUnavailableError,
    ImageNotFoundError,
)

__all__ = [
    "BuildResult",
    "DockerStatus",
    "RunningContainer",
    "build_image",
    "docker_client",
    "docker_status",
    "image_size_mb",
    "image_user",
    "parse_build_events",
    "run_container",
]

_FIX = (
    "Start a daemon: on Linux as root `bash .ci/docker.sh` (installs docker.io and starts dockerd), "
    "or start Docker Desktop; then check with `docker version`."
)


@dataclass(frozen=True)
class DockerStatus:
    """Whether a Docker daemon answers: `detail` says what was found (or why not), `fix` how to get one."""

    ok: bool
    detail: str
    fix: str = ""
    server_version: str | None = None


def docker_client(*, timeout_s: float = 600.0) -> docker.DockerClient:
    """A client whose daemon answered a ping; DockerUnavailableError (what, why, fix) otherwise.

    >>> client = docker_client()  # doctest: +SKIP
    """
    try:
        client = docker.from_env(timeout=int(timeout_s))
        client.ping()
    except DockerException as exc:
        raise DockerUnavailableError(
            f"No Docker daemon answers (DOCKER_HOST, default unix:///var/run/docker.sock): {exc}. {_FIX}"
        ) from exc
    return client


def docker_status() -> DockerStatus:
    """Never raises: `DockerStatus(ok=True, ...)` or the reason there is no daemon (and the fix).

    >>> docker_status().ok in (True, False)
    True
    """
    try:
        client = docker.from_env(timeout=5)
        version = str(client.version().get("Version", "unknown"))
        client.close()
    except Exception as exc:  # the contract: report, never raise
        return DockerStatus(ok=False, detail=f"no Docker daemon answers: {exc}", fix=_FIX)
    return DockerStatus(ok=True, detail=f"Docker daemon {version} answers", server_version=version)


# --- build -----------------------------------------------------------------------------------------------

_STEP_RE = re.compile(r"^(Step \d+/\d+ : .*|#\d+ \[.*)$")
_TOTAL_RE = re.compile(r"^Step (\d+)/(\d+) :")


@dataclass(frozen=True)
class BuildResult:
    """A successful build: the image id, its tag, every output line and the wall time."""

    image_id: str
    tag: str | None
    log: tuple[str, ...]
    duration_s: float


def parse_build_events(
    events: Iterable[Mapping[str, Any]],
    *,
    tag: str | None = None,
    on_line: Callable[[str], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[str, list[str]]:
    """Consume `APIClient.build(decode=True)` events; return (image id, lines) or raise DockerBuildError.

    The low-level API does not raise when a step fails: the failure arrives as an `error`/`errorDetail`
    event. The error names the last `Step N/M` (classic builder) or `#N [...]` (BuildKit) line and quotes
    that step's output.

    >>> events = [{"stream": "Step 1/2 : FROM base\\n"}, {"stream": "Step 2/2 : RUN false\\n"},
    ...           {"errorDetail": {"code": 1}, "error": "The command '/bin/sh -c false' returned 1"}]
    >>> parse_build_events(events)
    Traceback (most recent call last):
    ...
    course_utils.errors.DockerBuildError: docker build failed at 'Step 2/2 : RUN false': ...
    """
    lines: list[str] = []
    step, step_start, image_id = None, 0, ""
    for event in events:
        error = event.get("error") or (event.get("errorDetail") or {}).get("message")
        if error:
            output = "\n".join(lines[step_start:][-25:])
            where = f"at {step!r}" if step else "before its first step"
            raise DockerBuildError(
                f"docker build{' of ' + repr(tag) if tag else ''} failed {where}: {str(error).strip()}. "
                f"Fix that instruction in the Dockerfile and build again. Output of the step:\n{output}"
            )
        aux = event.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("ID"), str):
            image_id = aux["ID"]
        text = event.get("stream") or event.get("status")
        if not isinstance(text, str):
            continue
        for line in text.splitlines():
            line = line.rstrip()
            if not line:
                continue
            lines.append(line)
            if on_line is not None:
                on_line(line)
            if _STEP_RE.match(line):
                step, step_start = line, len(lines) - 1
                total = _TOTAL_RE.match(line)
                if total and on_step is not None:
                    on_step(int(total.group(1)), int(total.group(2)))
            elif line.startswith("Successfully built "):
                image_id = image_id or line.split()[-1]
    if not image_id:
        raise DockerBuildError(
            f"docker build{' of ' + repr(tag) if tag else ''} ended without an image id. "
            "Check the daemon's log and build again. Last output:\n" + "\n".join(lines[-25:])
        )
    return image_id, lines


def build_image(
    context: Path | str,
    *,
    tag: str,
    dockerfile: str = "Dockerfile",
    build_args: Mapping[str, str] | None = None,
    network_mode: str | None = "host",
    nocache: bool = False,
    on_line: Callable[[str], None] | None = None,
    progress: bool = True,
    client: docker.DockerClient | None = None,
) -> BuildResult:
    """Build `context` into `tag`, streaming output to `on_line` and a step progress bar.

    >>> build_image("capstone", tag="sentiment:dev",
    ...             build_args={"BASE_IMAGE": "course-base:bookworm"})  # doctest: +SKIP
    BuildResult(image_id='sha256:...', tag='sentiment:dev', ...)
    """
    client = client or docker_client()
    bar = tqdm(total=None, desc=f"docker build {tag}", unit="step", disable=not progress, leave=False)

    def on_step(n: int, total: int) -> None:
        bar.total = total
        bar.n = n - 1
        bar.refresh()

    start = time.perf_counter()
    try:
        events = client.api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            buildargs=dict(build_args or {}),
            network_mode=network_mode,
            nocache=nocache,
            rm=True,
            forcerm=True,
            decode=True,
        )
        image_id, lines = parse_build_events(events, tag=tag, on_line=on_line, on_step=on_step)
    except DockerException as exc:
        raise DockerBuildError(
            f"docker build of {tag!r} from {str(context)!r} could not run: {exc}."
        ) from exc
    finally:
        bar.close()
    return BuildResult(image_id=image_id, tag=tag, log=tuple(lines), duration_s=time.perf_counter() - start)


def _image(client: docker.DockerClient, name: str) -> Image:
    try:
        return client.images.get(name)
    except ImageNotFound as exc:
        raise ImageNotFoundError(
            f"No image {name!r} in the local Docker daemon: it was never built or was removed. "
            f"Build it first (build_image(..., tag={name!r})); no registry is reachable to pull it."
        ) from exc


def image_size_mb(image: str, *, client: docker.DockerClient | None = None) -> float:
    """Size of a local image in MB (10^6 bytes, as `docker images` shows).

    >>> image_size_mb("course-base:bookworm")  # doctest: +SKIP
    190.8
    """
    client = client or docker_client()
    return float(_image(client, image).attrs["Size"]) / 1e6


def image_user(image: str, *, client: docker.DockerClient | None = None) -> str:
    """The image's `USER` ('' means root), e.g. to check that a service does not run as root.

    >>> image_user("sentiment:dev")  # doctest: +SKIP
    'app'
    """
    client = client or docker_client()
    return str(_image(client, image).attrs["Config"].get("User") or "")


# --- run -------------------------------------------------------------------------------------------------


@dataclass
class RunningContainer:
    """A started container; `stop()` (or leaving the `with` block) stops and removes it."""

    container: Container
    url: str | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def id(self) -> str:
        """The container id."""
        return str(self.container.id)

    def logs(self) -> str:
        """Everything the container wrote to stdout and stderr."""
        raw: bytes = self.container.logs(stdout=True, stderr=True)
        return raw.decode(errors="replace")

    def health(self) -> str | None:
        """Docker's HEALTHCHECK status ('starting', 'healthy', 'unhealthy') or None without a HEALTHCHECK."""
        self.container.reload()
        health = self.container.attrs["State"].get("Health")
        return str(health["Status"]) if health else None

    def exec(self, cmd: str | Sequence[str]) -> tuple[int, str]:
        """Run a command inside the container; (exit code, output)."""
        code, out = self.container.exec_run(cmd)
        return int(code), out.decode(errors="replace")

    def stop(self, *, timeout_s: float = 10.0, remove: bool = True) -> None:
        """Stop (SIGTERM, SIGKILL after `timeout_s`) and remove. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.container.stop(timeout=int(timeout_s))
            if remove:
                self.container.remove(force=True)
        except NotFound:
            pass

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run_container(
    image: str,
    *,
    env: Mapping[str, str] | None = None,
    command: str | Sequence[str] | None = None,
    network_mode: str = "host",
    ports: Mapping[str, int] | None = None,
    name: str | None = None,
    wait_healthy: bool = True,
    health_url: str | None = None,
    health_interval_s: float | None = 1.0,
    timeout_s: float = 60.0,
    client: docker.DockerClient | None = None,
    **run_options: Any,
) -> RunningContainer:
    """Start `image` detached and wait until Docker reports it healthy and/or `health_url` answers 200.

    `health_interval_s` overrides the image's HEALTHCHECK interval (its test stays) so the wait is short;
    pass None to keep the image's own. On failure the container is removed and ContainerStartError quotes
    its logs.

    >>> with run_container("sentiment:dev", env={"UVICORN_PORT": "8123"},
    ...                    health_url="http://127.0.0.1:8123/health") as c:  # doctest: +SKIP
    ...     httpx.post("http://127.0.0.1:8123/predict", json={"text": "great"}).json()["label"]
    'positive'
    """
    client = client or docker_client()
    options: dict[str, Any] = dict(run_options)
    if health_interval_s is not None and _image(client, image).attrs["Config"].get("Healthcheck"):
        interval_ns = int(health_interval_s * 1e9)
        options["healthcheck"] = {"interval": interval_ns, "start_period": interval_ns}
    try:
        container = client.containers.run(
            image,
            command=command,
            environment=dict(env or {}),
            network_mode=network_mode,
            ports=dict(ports) if ports and network_mode != "host" else None,
            name=name,
            detach=True,
            **options,
        )
    except DockerException as exc:
        raise ContainerStartError(f"Could not start a container from {image!r}: {exc}.") from exc
    running = RunningContainer(container, url=health_url)
    try:
        _wait_ready(running, wait_healthy=wait_healthy, health_url=health_url, timeout_s=timeout_s)
    except BaseException:
        running.stop(timeout_s=2)
        raise
    return running


def _wait_ready(
    running: RunningContainer, *, wait_healthy: bool, health_url: str | None, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()  # never set: its wait() is the poll interval
    healthy_needed = wait_healthy and running.health() is not None
    url_ok = health_url is None
    with httpx.Client(timeout=2.0, trust_env=False) as http:
        while time.monotonic() < deadline:
            health = running.health()  # reloads the container's attrs
            state = running.container.attrs["State"]
            if state.get("Status") in ("exited", "dead"):
                _fail(running, f"exited with code {state.get('ExitCode')}")
            if health == "unhealthy":
                _fail(running, "became unhealthy (its HEALTHCHECK failed)")
            if not url_ok and health_url is not None:
                try:
                    url_ok = http.get(health_url).status_code == 200
                except httpx.HTTPError:
                    url_ok = False
            if url_ok and (not healthy_needed or health == "healthy"):
                return
            pause.wait(0.2)
    what = "healthy" if healthy_needed else f"answering {health_url}"
    _fail(running, f"was not {what} within {timeout_s:.0f}s (health: {running.health()})")


def _fail(running: RunningContainer, what: str) -> None:
    logs = "\n".join(running.logs().splitlines()[-30:])
    image = running.container.attrs["Config"]["Image"]
    raise ContainerStartError(
        f"Container {running.id[:12]} of {image!r} {what}. Fix the error in its logs and run it again. "
        f"Last log lines:\n{logs}"
    )
