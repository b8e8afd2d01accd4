"""Docker tools: build-stream parsing (no daemon), then builds and runs on a real daemon.

The Dockerfile linter is tested in test_dockerfile.py.

Tests marked `docker` skip on a laptop without a daemon and fail in CI (see conftest.py). Builds use host
networking; containers use what `container_network()` picks (host here in CI), and the bridge tests
publish ports on 127.0.0.1 only: every service is reachable from this machine's loopback and nowhere else.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import httpx
import psutil
import pytest

from course_utils import docker_tools, ports
from course_utils.config import get_settings
from course_utils.docker_tools import NetworkChoice, container_network, detect_network, parse_build_events
from course_utils.dockerfile_lint import lint_dockerfile
from course_utils.errors import ContainerStartError, DockerBuildError, DockerUnavailableError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "course-base:bookworm"

RECORDED_OK = [
    {"stream": "Step 1/3 : ARG BASE_IMAGE=python:3.11-slim"},
    {"stream": "\n"},
    {"stream": "Step 2/3 : FROM ${BASE_IMAGE}\n"},
    {"stream": " ---> 1a2b3c\n"},
    {"stream": 'Step 3/3 : CMD ["python3"]\n'},
    {"stream": " ---> Running in 9f8e\n"},
    {"aux": {"ID": "sha256:abc123"}},
    {"stream": "Successfully built abc123\n"},
    {"stream": "Successfully tagged tiny:test\n"},
]


def test_parse_build_events_success_reports_lines_and_steps() -> None:
    lines: list[str] = []
    steps: list[tuple[int, int]] = []
    image_id, log = parse_build_events(
        RECORDED_OK, on_line=lines.append, on_step=lambda n, total: steps.append((n, total))
    )
    assert image_id == "sha256:abc123"
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert lines == log and log[-1] == "Successfully tagged tiny:test"


def test_parse_build_events_failure_names_the_step_and_its_output() -> None:
    events = [
        *RECORDED_OK[:4],
        {"stream": "Step 3/4 : RUN pip install nosuchpackage==0.0.1\n"},
        {"stream": " ---> Running in 9f8e\n"},
        {"stream": "ERROR: No matching distribution found for nosuchpackage==0.0.1\n"},
        {
            "errorDetail": {
                "code": 1,
                "message": "The command '/bin/sh -c pip install' returned a non-zero code: 1",
            },
            "error": "The command '/bin/sh -c pip install' returned a non-zero code: 1",
        },
    ]
    with pytest.raises(DockerBuildError) as info:
        parse_build_events(events, tag="tiny:test")
    message = str(info.value)
    assert "'Step 3/4 : RUN pip install nosuchpackage==0.0.1'" in message
    assert "No matching distribution found" in message
    assert "tiny:test" in message and "Step 2/3" not in message.split("Output of the step:")[1]


def test_parse_build_events_buildkit_style_step() -> None:
    events = [
        {"stream": "#5 [2/3] RUN false\n"},
        {
            "errorDetail": {
                "message": 'process "/bin/sh -c false" did not complete successfully: exit code: 1'
            }
        },
    ]
    with pytest.raises(DockerBuildError, match=r"failed at '#5 \[2/3\] RUN false'.*exit code: 1"):
        parse_build_events(events)


def test_parse_build_events_without_image_id() -> None:
    with pytest.raises(DockerBuildError, match="without an image id"):
        parse_build_events([{"stream": "Step 1/1 : FROM x\n"}])


def test_unreachable_daemon_becomes_docker_unavailable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(DockerUnavailableError, match=r"No Docker daemon answers.*docker\.sh") as info:
        docker_tools.docker_client()
    assert isinstance(info.value.__cause__, docker.errors.DockerException)
    status = docker_tools.docker_status()
    assert not status.ok and "no Docker daemon answers" in status.detail and "docker.sh" in status.fix


# --- real daemon -------------------------------------------------------------------------------------------

TINY_DOCKERFILE = """\
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 PORT=8000 BIND=127.0.0.1
WORKDIR /srv
RUN useradd --create-home app && echo ok > /srv/health
USER app
EXPOSE 8000
# PID 1 ignores SIGTERM unless it handles it; Python handles SIGINT, so `docker stop` is quick.
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s CMD python3 -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\\"PORT\\"]}/health')"
CMD ["sh", "-c", "exec python3 -m http.server \\"$PORT\\" --bind \\"$BIND\\""]
"""


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    c = docker_tools.docker_client()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def base_image(client: docker.DockerClient, require_component: Callable[[str, bool, str], None]) -> str:
    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        require_component(
            BASE_IMAGE, False, "the local base image is missing; run `bash .ci/docker.sh` as root"
        )
    return BASE_IMAGE


@pytest.fixture
def tag(client: docker.DockerClient) -> Iterator[str]:
    name = f"course-test-{uuid.uuid4().hex[:8]}:latest"
    try:
        yield name
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(name, force=True)


@pytest.mark.docker
def test_build_run_healthy_user_and_size(
    tmp_path: Path, client: docker.DockerClient, base_image: str, tag: str
) -> None:
    (tmp_path / "Dockerfile").write_text(TINY_DOCKERFILE)
    lines: list[str] = []
    result = docker_tools.build_image(
        tmp_path,
        tag=tag,
        build_args={"BASE_IMAGE": base_image},
        on_line=lines.append,
        progress=False,
        client=client,
    )
    assert result.image_id.startswith("sha256:") and result.tag == tag
    assert any(line.startswith("Step 1/") for line in lines)
    assert docker_tools.image_user(tag, client=client) == "app"
    size = docker_tools.image_size_mb(tag, client=client)
    assert 50 < size < 1000

    port = ports.free_port()
    network = container_network(client=client)
    with docker_tools.run_container(
        tag,
        env={"PORT": str(port), "BIND": network.bind_host},
        port=port,
        health_url=f"http://127.0.0.1:{port}/health",
        timeout_s=60,
        client=client,
    ) as running:
        assert running.health() == "healthy"
        assert httpx.get(f"http://127.0.0.1:{port}/health").text.strip() == "ok"
        running.container.reload()
        assert running.container.attrs["HostConfig"]["NetworkMode"] == network.mode  # host in CI
        code, out = running.exec(["id", "-u"])
        assert code == 0 and out.strip() != "0"
        container_id = running.id
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container_id)


@pytest.mark.docker
def test_failing_build_names_the_step(
    tmp_path: Path, client: docker.DockerClient, base_image: str, tag: str
) -> None:
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo preparing\nRUN echo broken-step-output && exit 3\n"
    )
    with pytest.raises(DockerBuildError) as info:
        docker_tools.build_image(
            tmp_path, tag=tag, build_args={"BASE_IMAGE": base_image}, progress=False, client=client
        )
    message = str(info.value)
    assert "Step 4/4 : RUN echo broken-step-output && exit 3" in message
    assert "broken-step-output" in message.split("Output of the step:")[1]
    assert "non-zero code: 3" in message


@pytest.mark.docker
def test_container_that_exits_fails_with_its_logs(client: docker.DockerClient, base_image: str) -> None:
    with pytest.raises(ContainerStartError, match=r"(?s)exited with code 7.*model folder missing"):
        docker_tools.run_container(
            base_image,
            command=["sh", "-c", "echo model folder missing; exit 7"],
            health_url="http://127.0.0.1:1/health",
            timeout_s=30,
            client=client,
        )


# --- the reference capstone image ---------------------------------------------------------------------------

CAPSTONE = PROJECT_ROOT / "solutions" / "capstone"


def capstone_context(tmp_path: Path, require_component: Callable[[str, bool, str], None]) -> Path:
    """A build context: a copy of solutions/capstone plus the exported model in model/.

    The copy keeps solutions/ untouched.
    """
    model_dir = get_settings().model_dir
    require_component(
        "capstone Dockerfile", (CAPSTONE / "Dockerfile").exists(), f"{CAPSTONE}/Dockerfile is missing"
    )
    require_component(
        "exported model", (model_dir / "model_card.json").exists(), f"run `make model` ({model_dir})"
    )
    context = tmp_path / "capstone"
    ignore = shutil.ignore_patterns(".ruff_cache", "__pycache__", ".pytest_cache", "model")
    shutil.copytree(CAPSTONE, context, ignore=ignore)
    shutil.copytree(model_dir, context / "model")
    return context


@pytest.mark.docker
@pytest.mark.slow
def test_capstone_image_builds_runs_and_predicts(
    tmp_path: Path,
    client: docker.DockerClient,
    base_image: str,
    tag: str,
    record_property: pytest.RecordProperty,
    require_component: Callable[[str, bool, str], None],
) -> None:
    context = capstone_context(tmp_path, require_component)
    findings = [f for f in lint_dockerfile(context / "Dockerfile") if not f.ok]
    assert findings == [], f"the reference Dockerfile breaks the course's own rules: {findings}"

    result = docker_tools.build_image(
        context, tag=tag, build_args={"BASE_IMAGE": base_image}, progress=False, client=client
    )
    size_mb = docker_tools.image_size_mb(tag, client=client)
    record_property("capstone_image_size_mb", round(size_mb, 1))
    record_property("capstone_build_s", round(result.duration_s, 1))
    assert docker_tools.image_user(tag, client=client) not in ("", "root", "0")

    # With host networking the container shares the machine's ports: the image's uvicorn reads its port
    # from UVICORN_PORT (CMD and HEALTHCHECK alike), so give it a free one (published as is on a bridge).
    assert "UVICORN_PORT" in (context / "Dockerfile").read_text()
    port = ports.free_port()
    network = container_network(client=client)
    env = {"UVICORN_PORT": str(port), "UVICORN_HOST": network.bind_host}
    with docker_tools.run_container(
        tag,
        env=env,
        port=port,
        health_url=f"http://127.0.0.1:{port}/ready",  # /health is liveness; /ready waits for the model
        timeout_s=120,
        client=client,
    ) as running:
        assert running.health() == "healthy", running.logs()[-2000:]
        code, out = running.exec(["id", "-u"])
        assert code == 0 and out.strip() != "0"
        answer = httpx.post(
            f"http://127.0.0.1:{port}/predict", json={"text": "A wonderful, moving film."}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["label"] in ("positive", "negative") and 0.0 <= body["confidence"] <= 1.0
        assert body["model_version"]
        # Two stages: the service's interpreter (the venv's) has no installer, and no layer of the image
        # ran pip: the install happened in the build stage, whose layers are not part of the image.
        code, out = running.exec(["python3", "-m", "pip", "--version"])
        assert code != 0 and "No module named pip" in out, f"the runtime venv still has pip: {out}"
    history = [step["CreatedBy"] for step in client.images.get(tag).history()]
    assert not [line for line in history if "pip install" in line], f"pip ran in the final stage: {history}"

    # Supply chain: the runtime image ships no compiler or build tool (nothing to build exploits with).
    probe = 'for tool in gcc cc g++ c++ clang make; do command -v "$tool" || true; done'
    found = client.containers.run(tag, ["sh", "-c", probe], remove=True, network_mode="none").decode().split()
    assert found == [], f"compilers or build tools in the runtime image: {found}"


def test_docstring_examples_run() -> None:
    import doctest

    flags = doctest.ELLIPSIS | doctest.IGNORE_EXCEPTION_DETAIL
    assert doctest.testmod(docker_tools, optionflags=flags).failed == 0


@pytest.mark.docker
def test_missing_image_is_a_clear_error(client: docker.DockerClient) -> None:
    from course_utils.errors import ImageNotFoundError

    with pytest.raises(ImageNotFoundError, match=r"No image 'course-test-missing:0'.*Build it first"):
        docker_tools.image_size_mb("course-test-missing:0", client=client)
    with pytest.raises(ImageNotFoundError):
        docker_tools.run_container("course-test-missing:0", client=client)


# --- networking: host where it reaches this machine, else a port published on 127.0.0.1 -------------------

LOCAL = "http+docker://localhost"  # docker-py's base URL for a unix socket
ENGINE = {
    "OperatingSystem": "Debian GNU/Linux 12 (bookworm)",
    "SecurityOptions": ["name=seccomp,profile=default"],
}
DESKTOP = {"OperatingSystem": "Docker Desktop", "SecurityOptions": ["name=seccomp,profile=unconfined"]}
ROOTLESS = {
    "OperatingSystem": "Ubuntu 24.04 LTS",
    "SecurityOptions": ["name=seccomp,profile=default", "name=rootless"],
}
DAEMONS = {
    "local": (LOCAL, ENGINE),
    "tcp": ("tcp://10.0.0.5:2376", ENGINE),
    "https": ("https://10.0.0.5:2376", ENGINE),
    "ssh": ("http+docker://ssh", ENGINE),
    "rootless": (LOCAL, ROOTLESS),
    "desktop": (LOCAL, DESKTOP),
}


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
@pytest.mark.parametrize("daemon", list(DAEMONS))
def test_detect_network_uses_host_only_for_a_local_rootful_engine_on_linux(
    platform: str, daemon: str
) -> None:
    base_url, info = DAEMONS[daemon]
    choice = detect_network(platform=platform, base_url=base_url, info=info)
    expected = "host" if (platform, daemon) == ("linux", "local") else "bridge"
    assert choice.mode == expected, choice.reason
    assert choice.bind_host == ("127.0.0.1" if expected == "host" else "0.0.0.0")
    assert choice.reason, "every choice says why"


def test_detect_network_reasons_name_the_cause() -> None:
    assert "VM" in detect_network(platform="darwin", base_url=LOCAL, info=ENGINE).reason
    assert (
        "tcp://10.0.0.5:2376"
        in detect_network(platform="linux", base_url="tcp://10.0.0.5:2376", info={}).reason
    )
    assert "rootless" in detect_network(platform="linux", base_url=LOCAL, info=ROOTLESS).reason
    assert "Docker Desktop" in detect_network(platform="linux", base_url=LOCAL, info=DESKTOP).reason
    assert (
        detect_network(platform="linux", base_url="unix:///run/user/1000/docker.sock", info={}).mode == "host"
    )


def test_container_network_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DOCKER_NETWORK", "bridge")
    assert container_network() == NetworkChoice("bridge", "COURSE_DOCKER_NETWORK=bridge was asked for")
    assert container_network("host") == NetworkChoice("host", "network_mode='host' was asked for")
    with pytest.raises(ValueError, match=r"network_mode='none' is not a mode.*'auto', 'host' or 'bridge'"):
        container_network("none")
    monkeypatch.setenv("COURSE_DOCKER_NETWORK", "nat")
    with pytest.raises(ValueError, match="docker_network"):  # pydantic names the setting and the choices
        container_network()


@pytest.mark.docker
def test_container_network_auto_asks_the_daemon(
    client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COURSE_DOCKER_NETWORK", raising=False)
    expected = detect_network(platform=sys.platform, base_url=client.api.base_url, info=client.info())
    assert container_network(client=client) == expected == container_network("auto", client=client)


def _non_loopback_ipv4() -> list[str]:
    """This machine's own IPv4 addresses other than loopback (its LAN and bridge addresses)."""
    return [
        address.address
        for addresses in psutil.net_if_addrs().values()
        for address in addresses
        if address.family == socket.AF_INET and not address.address.startswith("127.")
    ]


def _http_server(port: int, bind: str) -> list[str]:
    return ["python3", "-m", "http.server", str(port), "--bind", bind]


@pytest.mark.docker
def test_bridge_publishes_the_port_on_loopback_only(
    client: docker.DockerClient, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COURSE_DOCKER_NETWORK", "bridge")  # the setting reaches run_container
    port = ports.free_port()
    with docker_tools.run_container(
        base_image,
        command=_http_server(port, "0.0.0.0"),
        port=port,
        health_url=f"http://127.0.0.1:{port}/",
        timeout_s=30,
        client=client,
    ) as running:
        assert running.network is not None and running.network.mode == "bridge"
        running.container.reload()
        host_config = running.container.attrs["HostConfig"]
        assert host_config["NetworkMode"] == "bridge"
        assert host_config["PortBindings"] == {
            f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        }
        assert httpx.get(f"http://127.0.0.1:{port}/", trust_env=False).status_code == 200
        for address in _non_loopback_ipv4():
            with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
                pass


@pytest.mark.docker
def test_bridge_service_on_its_own_loopback_is_a_clear_error(
    client: docker.DockerClient, base_image: str
) -> None:
    port = ports.free_port()
    with pytest.raises(ContainerStartError, match=r"must listen on 0\.0\.0\.0 inside the container"):
        docker_tools.run_container(
            base_image,
            command=_http_server(port, "127.0.0.1"),  # published traffic never arrives there
            port=port,
            network_mode="bridge",
            health_url=f"http://127.0.0.1:{port}/",
            timeout_s=5,
            client=client,
        )
