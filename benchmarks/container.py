"""The reference capstone as a container: image size with one stage and two, build times, time to ready.

Builds solutions/capstone with the exported model (in a temporary build context, so solutions/ stays
clean) twice without the cache: as it is (two stages: a build stage installs the venv, the final stage
copies it without pip) and as the same instructions in one stage (`one_stage`), then rebuilds each after a
code edit. Then starts the reference image `--runs` times on a free loopback port (host networking, or the
port published on 127.0.0.1 where host networking does not reach this machine:
`docker_tools.container_network`) and times each start until GET /ready answers 200 (model verified,
loaded and warmed up). Needs a Docker daemon (`bash .ci/docker.sh` on a Debian machine as root).

    .venv/bin/python benchmarks/container.py [--base-image course-base:bookworm] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from course_utils import docker_tools, ports
from course_utils.config import PROJECT_ROOT, get_settings
from course_utils.dockerfile import Dockerfile, read_dockerfile

CAPSTONE = PROJECT_ROOT / "solutions" / "capstone"
TAG = "course-capstone:bench"
ONE_STAGE_TAG = "course-capstone:bench-one-stage"


@dataclass(frozen=True)
class Build:
    """One image: its size, a build without the cache, and a rebuild after a code edit."""

    tag: str
    size_mb: float
    cold_s: float
    rebuild_s: float


def one_stage(dockerfile: Dockerfile) -> str:
    """The same instructions in a single stage: every later `FROM` and every `COPY --from` dropped.

    What the multi-stage build saves is then exactly what its stages leave behind: the venv layer with pip
    and setuptools stays in the image even though a later RUN uninstalls them.
    """
    lines: list[str] = []
    for inst in dockerfile.instructions:
        later_from = inst.keyword == "FROM" and any(line.startswith("FROM ") for line in lines)
        copy_from_stage = inst.keyword == "COPY" and "from" in inst.flags
        if not (later_from or copy_from_stage):
            lines.append(f"{inst.keyword} {inst.value}")
    return "\n".join(lines) + "\n"


def build(base_image: str) -> list[Build]:
    """Build the reference and its one-stage twin from a temporary copy of the folder plus the model."""
    builds = []
    with tempfile.TemporaryDirectory(prefix="capstone-") as tmp:
        context = Path(tmp) / "capstone"
        ignore = shutil.ignore_patterns(".ruff_cache", "__pycache__", ".pytest_cache", "model")
        shutil.copytree(CAPSTONE, context, ignore=ignore)
        shutil.copytree(get_settings().model_dir, context / "model")
        (context / "Dockerfile.one-stage").write_text(one_stage(read_dockerfile(context / "Dockerfile")))
        for tag, dockerfile in ((ONE_STAGE_TAG, "Dockerfile.one-stage"), (TAG, "Dockerfile")):
            options = {"tag": tag, "dockerfile": dockerfile, "build_args": {"BASE_IMAGE": base_image}}
            cold = docker_tools.build_image(context, nocache=True, progress=False, **options)
            app = context / "src" / "app.py"
            app.write_text(app.read_text() + f"\n# a code edit before rebuilding {tag}\n")
            rebuild = docker_tools.build_image(context, progress=False, **options)
            size_mb = docker_tools.image_size_mb(tag)
            builds.append(Build(tag, size_mb, cold.duration_s, rebuild.duration_s))
    return builds


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
    builds = build(args.base_image)
    base_mb = docker_tools.image_size_mb(args.base_image)
    print(f"FROM {args.base_image} ({base_mb:.0f} MB)")
    print("| image | size (MB) | added to the base (MB) | build, no cache (s) | rebuild after an edit (s) |")
    print("|---|---:|---:|---:|---:|")
    for item in builds:
        print(
            f"| {item.tag} | {item.size_mb:.1f} | {item.size_mb - base_mb:.1f} | {item.cold_s:.1f} "
            f"| {item.rebuild_s:.1f} |"
        )
    starts = [time_to_ready() for _ in range(args.runs)]
    print(f"{TAG} runs as {docker_tools.image_user(TAG)!r}")
    print(
        f"docker run -> /ready 200: median {statistics.median(starts):.2f} s over {args.runs} runs "
        f"({', '.join(f'{s:.2f}' for s in starts)})"
    )


if __name__ == "__main__":
    main()
