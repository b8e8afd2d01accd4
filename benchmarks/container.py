"""The reference capstone as a container: image size, user, and time from `docker run` to ready.

Builds solutions/capstone with the exported model (in a temporary build context, so solutions/ stays
clean), then starts it `--runs` times on a free loopback port (host networking, or the port published
on 127.0.0.1 where host networking does not reach this machine: `docker_tools.container_network`) and
times each start until GET /ready answers 200 (model verified, loaded and warmed up). Needs a Docker daemon
(`bash .ci/docker.sh` on a Debian machine as root).

    .venv/bin/python benchmarks/container.py [--base-image course-base:bookworm] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from course_utils import docker_tools, ports
from course_utils.config import PROJECT_ROOT, get_settings

CAPSTONE = PROJECT_ROOT / "solutions" / "capstone"
TAG = "course-capstone:bench"


def build(base_image: str) -> docker_tools.BuildResult:
    """Build the reference image from a temporary copy of its folder plus the exported model."""
    with tempfile.TemporaryDirectory(prefix="capstone-") as tmp:
        context = Path(tmp) / "capstone"
        ignore = shutil.ignore_patterns(".ruff_cache", "__pycache__", ".pytest_cache", "model")
        shutil.copytree(CAPSTONE, context, ignore=ignore)
        shutil.copytree(get_settings().model_dir, context / "model")
        return docker_tools.build_image(
            context, tag=TAG, build_args={"BASE_IMAGE": base_image}, progress=False
        )


def time_to_ready() -> float:
    """Seconds from `docker run` until /ready is 200, on a free port; checks one prediction too."""
    port = ports.free_port()
    network = docker_tools.container_network()
    started = time.perf_counter()
    with docker_tools.run_container(
        TAG,
        env={"UVICORN_HOST": network.bind_host, "UVICORN_PORT": str(port)},
        port=port,
        network_mode=network.mode,
        wait_healthy=False,
        health_url=f"http://127.0.0.1:{port}/ready",
        timeout_s=120,
    ):
        seconds = time.perf_counter() - started
        answer = httpx.post(
            f"http://127.0.0.1:{port}/predict", json={"text": "A wonderful film."}, timeout=10
        )
        answer.raise_for_status()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-image", default="course-base:bookworm", help="BASE_IMAGE build argument")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result = build(args.base_image)
    starts = [time_to_ready() for _ in range(args.runs)]
    print(
        f"image {TAG} (FROM {args.base_image}): {docker_tools.image_size_mb(TAG):.0f} MB, "
        f"user {docker_tools.image_user(TAG)!r}, built in {result.duration_s:.1f} s"
    )
    print(
        f"docker run -> /ready 200: median {statistics.median(starts):.2f} s over {args.runs} runs "
        f"({', '.join(f'{s:.2f}' for s in starts)})"
    )


if __name__ == "__main__":
    main()
