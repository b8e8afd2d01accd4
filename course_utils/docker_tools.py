"""Docker for the course: daemon status, build with streamed progress, run until healthy.

Everything goes through the Docker SDK (`docker` package). The Dockerfile linter (it needs no daemon) is
`course_utils.dockerfile_lint`.

Networking. A container reaches this machine's 127.0.0.1 in one of two ways (`network_mode`):

- `host`: the container shares the machine's network, so a service on port P inside is on 127.0.0.1:P
  outside, with no port mapping and no traffic to the bridge's private addresses. This works only on
  Linux with a local, rootful daemon: Docker Desktop (macOS, Windows, and Desktop for Linux) runs the
  daemon in a VM, a rootless daemon in a network namespace of its own, and a remote (tcp://, ssh://)
  daemon on another machine, so there "host" is not this machine.
- `bridge`: the container gets its own network and `run_container(port=P)` publishes its port P on the
  machine's 127.0.0.1:P only (never on the LAN). The service must listen on 0.0.0.0 *inside* the
  container: its own 127.0.0.1 is not where published traffic arrives.

`auto` (the default, setting COURSE_DOCKER_NETWORK) picks `host` where it works and `bridge` elsewhere.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import docker
import httpx
from docker.errors import DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.models.images import Image
from tqdm.auto import tqdm

from course_utils.config import get_settings
from course_utils.errors import (
    ContainerStartError,
    DockerBuildError,
    DockerUnavailableError,
    ImageNotFoundError,
)

__all__ = [
    "BuildResult",
    "DockerStatus",
    "NetworkChoice",
    "RunningContainer",
    "build_image",
    "container_network",
    "detect_network",
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


# --- networking ------------------------------------------------------------------------------------------

NetworkMode = Literal["host", "bridge"]
_LOCAL_SOCKETS = ("http+docker://localhost", "unix://", "http+unix://")  # docker-py's form, DOCKER_HOST's


@dataclass(frozen=True)
class NetworkChoice:
    """How containers reach this machine's loopback (`mode`), and why that mode was chosen."""

    mode: NetworkMode
    reason: str

    @property
    def bind_host(self) -> str:
        """Where a service inside the container must listen so that 127.0.0.1:port here reaches it.

        With `host` networking 127.0.0.1 (the machine's loopback; 0.0.0.0 would open it to the LAN); with
        `bridge` 0.0.0.0, the container's own interfaces, where published traffic arrives (the publish
        itself is on the machine's 127.0.0.1 only).
        """
        return "127.0.0.1" if self.mode == "host" else "0.0.0.0"


def detect_network(*, platform: str, base_url: str, info: Mapping[str, Any]) -> NetworkChoice:
    """`host` only on Linux with a local, rootful daemon that is not Docker Desktop; else `bridge`.

    `platform` is `sys.platform`, `base_url` the client's (`client.api.base_url`, or a DOCKER_HOST such as
    `tcp://10.0.0.5:2376`), `info` the daemon's `client.info()`.

    >>> detect_network(platform="darwin", base_url="http+docker://localhost", info={}).mode
    'bridge'
    >>> detect_network(platform="linux", base_url="http+docker://localhost",
    ...                info={"OperatingSystem": "Debian GNU/Linux 12 (bookworm)"}).mode
    'host'
    """
    if not platform.startswith("linux"):
        where = "macOS" if platform == "darwin" else "Windows" if platform == "win32" else platform
        return NetworkChoice("bridge", f"on {where} the Docker daemon runs in a VM (Docker Desktop)")
    if not base_url.startswith(_LOCAL_SOCKETS):
        return NetworkChoice("bridge", f"the daemon ({base_url}) is not a local socket of this machine")
    if str(info.get("OperatingSystem", "")) == "Docker Desktop":
        return NetworkChoice("bridge", "Docker Desktop runs the daemon in a VM")
    if any("name=rootless" in str(option) for option in info.get("SecurityOptions") or ()):
        return NetworkChoice("bridge", "a rootless daemon runs containers in a network namespace of its own")
    return NetworkChoice("host", "a local, rootful daemon on Linux: containers share this machine's network")


def container_network(
    requested: str | None = None, *, client: docker.DockerClient | None = None
) -> NetworkChoice:
    """The mode `run_container` uses: `requested` ('auto', 'host', 'bridge'), else COURSE_DOCKER_NETWORK.

    >>> container_network("bridge").reason
    "network_mode='bridge' was asked for"
    """
    source = f"network_mode={requested!r}"
    if requested is None:
        requested = get_settings().docker_network
        source = f"COURSE_DOCKER_NETWORK={requested}"
    if requested == "host":
        return NetworkChoice("host", f"{source} was asked for")
    if requested == "bridge":
        return NetworkChoice("bridge", f"{source} was asked for")
    if requested != "auto":
        raise ValueError(
            f"network_mode={requested!r} is not a mode run_container knows: pass 'auto', 'host' or 'bridge' "
            "(or set COURSE_DOCKER_NETWORK to one of them)."
        )
    client = client or docker_client()
    return detect_network(platform=sys.platform, base_url=client.api.base_url, info=client.info())


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

    Builds keep host networking on every daemon (unlike `run_container`): a build step needs outbound
    access only (pip), never this machine's loopback, and the daemon's host network gives that on Docker
    Desktop (its VM's) and rootless daemons (their namespace's) too, without the bridge's NAT.

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
        if bar.total:  # the last step ran: fill the bar, or tqdm shows a closed, unfinished bar in red
            bar.update(bar.total - bar.n)
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
    network: NetworkChoice | None = None
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
    port: int | None = None,
    network_mode: str | None = None,
    name: str | None = None,
    wait_healthy: bool = True,
    health_url: str | None = None,
    health_interval_s: float | None = 1.0,
    timeout_s: float = 60.0,
    client: docker.DockerClient | None = None,
    **run_options: Any,
) -> RunningContainer:
    """Start `image` detached and wait until Docker reports it healthy and/or `health_url` answers 200.

    `port` is the TCP port the service listens on inside the container; it is reachable at
    127.0.0.1:`port` here in either network mode (`bridge` publishes it there, `host` needs nothing).
    `network_mode` is 'auto' (default: COURSE_DOCKER_NETWORK, else auto), 'host' or 'bridge'; see the
    module docstring, and `NetworkChoice.bind_host` for where the service must listen.

    `health_interval_s` overrides the image's HEALTHCHECK interval (its test stays) so the wait is short;
    pass None to keep the image's own. On failure the container is removed and ContainerStartError quotes
    its logs.

    >>> network = container_network()  # doctest: +SKIP
    >>> with run_container("sentiment:dev", port=8123, network_mode=network.mode,
    ...                    env={"UVICORN_HOST": network.bind_host, "UVICORN_PORT": "8123"},
    ...                    health_url="http://127.0.0.1:8123/health") as c:  # doctest: +SKIP
    ...     httpx.post("http://127.0.0.1:8123/predict", json={"text": "great"}).json()["label"]
    'positive'
    """
    client = client or docker_client()
    network = container_network(network_mode, client=client)
    options: dict[str, Any] = dict(run_options)
    if health_interval_s is not None and _image(client, image).attrs["Config"].get("Healthcheck"):
        interval_ns = int(health_interval_s * 1e9)
        options["healthcheck"] = {"interval": interval_ns, "start_period": interval_ns}
    if network.mode == "bridge" and port is not None:
        options["ports"] = {f"{port}/tcp": ("127.0.0.1", port)}  # loopback only, never the LAN
    try:
        container = client.containers.run(
            image,
            command=command,
            environment=dict(env or {}),
            network_mode=network.mode,
            name=name,
            detach=True,
            **options,
        )
    except DockerException as exc:
        raise ContainerStartError(
            f"Could not start a container from {image!r} ({network.mode} network: {network.reason}): {exc}."
        ) from exc
    running = RunningContainer(container, url=health_url, network=network)
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
    hint = ""
    if running.network is not None and running.network.mode == "bridge":
        hint = (
            "; on the bridge network the service must listen on 0.0.0.0 inside the container (its 127.0.0.1 "
            "is not reached) and run_container needs port= to publish it"
        )
    _fail(running, f"was not {what} within {timeout_s:.0f}s (health: {running.health()}){hint}")


def _fail(running: RunningContainer, what: str) -> None:
    logs = "\n".join(running.logs().splitlines()[-30:])
    image = running.container.attrs["Config"]["Image"]
    raise ContainerStartError(
        f"Container {running.id[:12]} of {image!r} {what}. Fix the error in its logs and run it again. "
        f"Last log lines:\n{logs}"
    )
