"""The bonus Docker check: build the submission's image and see its container answer GET /health.

Points policy (docs/grading.md): the check is a bonus (its `max_score` is 0, a pass adds 5 points) and is
never needed for full marks. Where it cannot run (no daemon, turned off, the port it needs is busy) it is
`skipped` and the report says so in words: no silent free points, no silent zeros.

The container listens on the port its Dockerfile EXPOSEs, reached at 127.0.0.1:that port: with host
networking on Linux with a local daemon (no traffic to the bridge's private addresses), else through the
bridge with the port published on 127.0.0.1 only (Docker Desktop, rootless or remote daemons; see
`course_utils.docker_tools`). A lock runs one Docker check at a time in a batch.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

from course_utils import ports
from course_utils.errors import CourseUtilsError
from course_utils.grading.rubric import CheckResult, check_named

__all__ = ["check_docker"]

_LOCK = threading.Lock()
_MODEL_MOUNT = "/grader/model"


def _exposed_port(dockerfile: Path) -> int:
    match = re.search(
        r"^\s*EXPOSE\s+(\d+)", dockerfile.read_text(errors="replace"), re.MULTILINE | re.IGNORECASE
    )
    return int(match[1]) if match else 8000


def _build_context(root: Path, model_dir: Path, tmp: Path) -> Path:
    """A copy of the submission with the grader's model in `model/` (as `make docker` does for students)."""
    context = tmp / "context"
    shutil.copytree(
        root, context, ignore=shutil.ignore_patterns(".git", "__pycache__", ".*_cache"), symlinks=True
    )
    if not (context / "model").exists():
        shutil.copytree(model_dir, context / "model")
    return context


def check_docker(
    root: Path, *, enabled: bool | None, model_dir: Path, base_image: str | None, timeout_s: float
) -> CheckResult:
    """Build and run the image when `enabled` (None: when a daemon answers); see the module docstring."""
    check = check_named("docker_run")
    if enabled is False:
        return check.skipped(
            "Ungraded: the Docker check was turned off for this run (no points given or taken)."
        )
    from course_utils.docker_tools import build_image, docker_client, docker_status, run_container

    status = docker_status()
    if not status.ok:
        return check.skipped(
            f"Ungraded: no Docker daemon on the grading machine ({status.detail}); no points given or taken."
        )
    if not (root / "Dockerfile").is_file():
        return check.failed("There is no Dockerfile to build.")
    port = _exposed_port(root / "Dockerfile")
    tag = f"grader-{re.sub(r'[^a-z0-9]+', '-', root.name.lower())[:40]}:{uuid.uuid4().hex[:8]}"
    with _LOCK:
        if not ports.port_is_free("127.0.0.1", port):
            return check.skipped(
                f"Ungraded: port {port} (EXPOSE) is busy on the grading machine; no points given or taken."
            )
        client = docker_client()
        try:
            build_args = {"BASE_IMAGE": base_image} if base_image else None
            with tempfile.TemporaryDirectory(prefix="grader-docker-") as tmp:
                context = _build_context(root, model_dir, Path(tmp))
                try:
                    build_image(context, tag=tag, build_args=build_args, progress=False, client=client)
                except CourseUtilsError as exc:
                    return check.failed(f"docker build failed: {str(exc)[-1500:]}")
            health_url = f"http://127.0.0.1:{port}/health"
            try:
                with run_container(
                    tag,
                    env={"MODEL_DIR": _MODEL_MOUNT},
                    port=port,
                    volumes={str(model_dir): {"bind": _MODEL_MOUNT, "mode": "ro"}},
                    health_url=health_url,
                    wait_healthy=False,
                    timeout_s=timeout_s,
                    client=client,
                ):
                    pass
            except CourseUtilsError as exc:
                return check.failed(f"The container did not answer {health_url}: {str(exc)[:1500]}")
            return check.passed(f"The image built and its container answered 200 on {health_url}.")
        finally:
            with contextlib.suppress(Exception):
                client.images.remove(tag, force=True)
            client.close()
