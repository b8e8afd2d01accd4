"""Benchmark (not a test): the capstone grader under Gradescope's limits, time and peak memory.

    .venv/bin/python -m benchmarks.gradescope [--runs 3] [--memory 768m] [--cpus 0.5]

Gradescope builds an image from the autograder zip (setup.sh) and grades each submission in a fresh
container with /autograder/run_autograder, by default under 768 MB and half a vCPU
(https://gradescope-autograders.readthedocs.io/en/latest/specs/). This builds the course's bundle into such
an image from the local base image (no registry is reachable here), then grades two correct capstones, the
untouched starter and a submission that crashes at import, each `--runs` times, and prints the median and
range of the wall time and of the container's peak memory.

Targets (issue: "a correct capstone graded in at most 2 minutes, with nothing killed for memory"), each
printed MET or MISSED:
- a correct capstone graded in at most 120 s (the slower median of the two correct ones: a service written
  in another style, and the reference graded by the dry-run bundle, which the student bundle refuses);
- no run OOM-killed, and the same score in every run of a submission.

Peak memory is the memory cgroup's high-water mark (cgroup v1 `max_usage`, sampled by Docker's stats about
once a second; cgroup v2 reports no high-water mark, so its largest sampled usage). It counts the page
cache too, as the limit does, so it is an upper bound on what the processes themselves held.
`tests/grading/test_gradescope_bundle.py` builds its images and runs its containers with the same functions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course_utils.docker_tools import build_image, docker_client
from course_utils.grading.gradescope import build_bundle

BASE_IMAGE = "course-base:bookworm"
IMAGE = "course-gradescope"
MEMORY = "768m"  # Gradescope's documented default
CPUS = 0.5  # Gradescope's documented default
CORRECT_SECONDS_TARGET = 120.0
OOM_EXIT_CODE = 137

# The image exactly as Gradescope makes it: the zip in /autograder/source, run_autograder copied beside it,
# setup.sh run once at build time.
_DOCKERFILE = (
    "FROM {base}\n"
    "COPY source /autograder/source\n"
    "RUN mkdir -p /autograder/results /autograder/submission"
    " && cp /autograder/source/run_autograder /autograder/run_autograder"
    " && chmod +x /autograder/run_autograder"
    " && bash /autograder/source/setup.sh\n"
    "WORKDIR /autograder\n"
)


@dataclass(frozen=True)
class ContainerRun:
    """One submission graded in a fresh container."""

    exit_code: int
    oom_killed: bool
    seconds: float
    #: The container's peak memory in bytes (None: the daemon reported no memory statistics).
    peak_bytes: int | None
    #: results.json as written ("" when run_autograder wrote none).
    raw_results: str
    log: str

    @property
    def results(self) -> dict[str, Any]:
        """results.json, parsed."""
        parsed: dict[str, Any] = json.loads(self.raw_results)
        return parsed


@contextmanager
def gradescope_images(work: Path, *, base_image: str = BASE_IMAGE) -> Iterator[dict[str, str]]:
    """Build the student bundle's image and the dry-run bundle's image; remove both at exit.

    The dry-run bundle differs only in gradescope.json (`allow_reference`), so its image is the student
    image with that file copied over instead of a second pip install of the same pins. Yields
    {"normal": tag, "dry_run": tag}.
    """
    normal = build_bundle(work / "autograder.zip")
    dry_run = build_bundle(work / "dry-run.zip", allow_reference=True)
    with zipfile.ZipFile(normal.path) as a, zipfile.ZipFile(dry_run.path) as b:
        if a.namelist() != b.namelist():
            raise RuntimeError(
                "the dry-run bundle must differ from the student bundle only in gradescope.json"
            )
        a.extractall(work / "context" / "source")
        b.extractall(work / "dry-run" / "source")
    for context in (work / "context", work / "dry-run"):
        for script in ("setup.sh", "run_autograder"):  # extractall drops modes; Gradescope's unzip keeps them
            (context / "source" / script).chmod(0o755)
    (work / "context" / "Dockerfile").write_text(_DOCKERFILE.format(base=base_image))
    tag = f"{IMAGE}:{uuid.uuid4().hex[:8]}"
    (work / "dry-run" / "Dockerfile").write_text(
        f"FROM {tag}\nCOPY source/gradescope.json /autograder/source/gradescope.json\n"
    )
    client = docker_client()
    try:
        started = time.monotonic()
        build_image(work / "context", tag=tag, progress=False, client=client)
        build_s = time.monotonic() - started
        build_image(work / "dry-run", tag=f"{tag}-dry-run", progress=False, client=client)
        print(f"[gradescope] bundle {normal.size_bytes / 1e6:.1f} MB; image build (setup.sh) {build_s:.0f} s")
        yield {"normal": tag, "dry_run": f"{tag}-dry-run"}
    finally:
        for name in (f"{tag}-dry-run", tag):
            with contextlib.suppress(Exception):  # never built (the build failed): nothing to remove
                client.images.remove(name, force=True)
        client.close()


def _watch_peak(container: Any, peak: list[int]) -> None:
    """Record the container's memory high-water mark in `peak` until its stats stream ends (it exits)."""
    try:
        for sample in container.stats(stream=True, decode=True):
            memory = sample.get("memory_stats") or {}
            value = memory.get("max_usage") or memory.get("usage")
            if value:
                peak[0] = max(peak[0], int(value))
    except Exception:  # the container is gone: the last sample stands
        return


def grade_in_container(
    image: str, submission: Path, results: Path, *, memory: str = MEMORY, cpus: float = CPUS
) -> ContainerRun:
    """run_autograder on `submission` in a fresh container under Gradescope's limits, host networking.

    `results` (an empty folder) receives results.json. The container is always removed.
    """
    import docker

    results.mkdir(parents=True, exist_ok=True)
    client = docker.from_env(timeout=900)
    peak = [0]
    started = time.monotonic()
    container = client.containers.run(
        image,
        ["/autograder/run_autograder"],
        name=f"course-gradescope-{uuid.uuid4().hex[:8]}",
        volumes={
            str(submission): {"bind": "/autograder/submission", "mode": "rw"},
            str(results): {"bind": "/autograder/results", "mode": "rw"},
        },
        working_dir="/autograder",
        mem_limit=memory,
        memswap_limit=memory,  # no swap beyond the limit, as on Gradescope
        nano_cpus=int(cpus * 1e9),
        network_mode="host",
        detach=True,
    )
    watcher = threading.Thread(target=_watch_peak, args=(container, peak), daemon=True)
    watcher.start()
    try:
        exit_code = container.wait(timeout=600)["StatusCode"]
        seconds = time.monotonic() - started
        container.reload()
        oom_killed = bool(container.attrs["State"].get("OOMKilled")) or exit_code == OOM_EXIT_CODE
        log = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
        client.close()
    watcher.join(timeout=5)
    path = results / "results.json"
    raw = path.read_text(encoding="utf-8") if path.exists() else ""
    return ContainerRun(exit_code, oom_killed, seconds, peak[0] or None, raw, log)


def _span(values: list[float], fmt: str) -> str:
    """`median (min–max)` of `values`, each formatted with `fmt`."""
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per submission (default 3)")
    parser.add_argument("--memory", default=MEMORY, help=f"container memory limit (default {MEMORY})")
    parser.add_argument("--cpus", type=float, default=CPUS, help=f"container CPUs (default {CPUS})")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    # The test helpers write the submissions, so the benchmark grades what the tests grade.
    from tests.grading.submissions import MINI_APP, REFERENCE, STARTER, write_submission

    def copy(source: Path) -> Callable[[Path], Path]:
        ignore = shutil.ignore_patterns("__pycache__", ".*_cache", "model")
        return lambda dest: Path(shutil.copytree(source, dest, ignore=ignore))

    # name -> (image, how to write the submission). The reference is graded by the dry-run bundle, which
    # grades it instead of refusing it as a copy: the heaviest correct service the course has.
    makers: dict[str, tuple[str, Callable[[Path], Path]]] = {
        "correct (another style)": ("normal", lambda dest: write_submission(dest, MINI_APP)),
        "correct (the reference, dry run)": ("dry_run", copy(REFERENCE)),
        "untouched starter": ("normal", copy(STARTER)),
        "crashes at import": ("normal", lambda dest: write_submission(dest, 'raise RuntimeError("boom")\n')),
    }
    rows: dict[str, list[ContainerRun]] = {name: [] for name in makers}
    with tempfile.TemporaryDirectory(prefix="gradescope-bench-") as tmp:
        work = Path(tmp)
        with gradescope_images(work / "image") as images:
            for run in range(args.runs):  # interleaved, so a busy moment weighs on every submission alike
                for i, (name, (image, make)) in enumerate(makers.items()):
                    folder = work / f"run{run}-{i}"
                    result = grade_in_container(
                        images[image],
                        make(folder / "submission"),
                        folder / "results",
                        memory=args.memory,
                        cpus=args.cpus,
                    )
                    rows[name].append(result)
                    score = result.results.get("score") if result.raw_results else None
                    peak = f"{result.peak_bytes / 2**20:.0f} MiB" if result.peak_bytes else "not reported"
                    print(
                        f"run {run + 1}, {name}: score {score}, {result.seconds:.1f} s, peak {peak}, "
                        f"exit {result.exit_code}",
                        flush=True,
                    )

    print(
        f"\nGraded in a container under --memory {args.memory} --cpus {args.cpus}, {args.runs} runs each:\n"
    )
    print("| submission | score | seconds, median (range) | peak MiB, median (range) | OOM-killed |")
    print("|---|---|---|---|---|")
    for name, runs in rows.items():
        scores = sorted({r.results.get("score") if r.raw_results else None for r in runs}, key=str)
        peaks = [r.peak_bytes / 2**20 for r in runs if r.peak_bytes]
        peak = _span(peaks, ".0f") if peaks else "not reported"
        oom = sum(r.oom_killed for r in runs)
        print(
            f"| {name} | {', '.join(map(str, scores))} | {_span([r.seconds for r in runs], '.1f')} | "
            f"{peak} | {oom} of {len(runs)} |"
        )

    correct_s = max(statistics.median(r.seconds for r in runs) for n, runs in rows.items() if "correct" in n)
    killed = sum(r.oom_killed for runs in rows.values() for r in runs)
    stable = all(len({r.raw_results and r.results.get("score") for r in runs}) == 1 for runs in rows.values())
    limit = CORRECT_SECONDS_TARGET
    within = f"a correct capstone graded in at most {limit:.0f} s (the slower median: {correct_s:.1f} s)"
    targets = {
        within: correct_s <= limit,
        f"nothing killed for memory ({killed} OOM-killed)": killed == 0,
        "the same score in every run of a submission": stable,
    }
    print()
    for target, met in targets.items():
        print(f"{'MET' if met else 'MISSED':>6}  {target}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
