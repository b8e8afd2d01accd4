"""Grader throughput benchmark: a synthetic class graded by `course-utils grade-all`, checked one at a time.

    .venv/bin/python -m benchmarks.grading [--n 200] [--jobs N] [--model-dir DIR] [--public-probes]

Builds a class of `--n` submissions in a temporary folder from the grader's own test helpers
(`tests/grading/submissions.py`): 50% correct (the reference, `MINI_APP`, every wheat), 30% partial
(every chaff, plus half-finished apps: readiness never flipped, a model file name typo, no /metrics and
unpinned requirements) and 20% untouched or crashing (the starter, a crash at import, a crash in the
lifespan). Variants are dealt round-robin within each share, and students are shuffled with a fixed seed,
so the class interleaves them as real names would.

Then it grades the class with the real command line (`python -m course_utils.cli grade-all CLASS --jobs N
--out OUT --no-docker --allow-reference`, in its own process, as an instructor runs it), and grades each
distinct variant of the class alone, one after the other (`grade-all --jobs 1` on a folder holding one
copy of each). Every student's points, check by check, must equal those of their variant graded alone:
that proves "every score identical to grading one at a time" for every submission, at the cost of one
extra grading per variant instead of per student. `--allow-reference` is needed because the reference
is one of the correct variants (without it a copy is refused in a few milliseconds); it turns off only
that copy check (~10 ms per submission).

Prints submissions per minute, p50/p95 seconds per submission (the `seconds` column of grades.csv: one
job's wall time, waits on a busy machine included), the wall time, and each target with MET or MISSED.
For `--n` other than 200 the 10-minute target is judged on the projection n=200 at the measured rate,
and says so.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course_utils.config import PROJECT_ROOT
from course_utils.grading.batch import default_jobs
from course_utils.grading.rubric import RUBRIC
from tests.grading.submissions import (
    CHAFFS,
    MINI_APP,
    REFERENCE,
    STARTER,
    WHEATS,
    copy_capstone,
    patched,
    write_submission,
)

#: The issue's class: 200 students on a 2-core machine in at most 10 minutes.
TARGET_CLASS = 200
TARGET_MINUTES = 10.0
SHARES = (("correct", 0.5), ("partial", 0.3), ("untouched_or_crashing", 0.2))
SEED = 19

Builder = Callable[[Path], Path]


def _mini(source: str, **files: str | None) -> Builder:
    return lambda folder: write_submission(folder, source, **files)


def _at_import(code: str) -> str:
    anchor = "from pydantic import BaseModel, field_validator\n"
    return patched(MINI_APP, anchor, anchor + code + "\n")


_UNPINNED = "fastapi\nuvicorn\nprometheus_client\nonnxruntime\ntokenizers\nnumpy\n"
_METRICS_ROUTE = (
    '@app.get("/metrics")\ndef metrics():\n'
    "    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)\n"
)

#: Variants by share, each a name and how to write it into a folder.
VARIANTS: dict[str, list[tuple[str, Builder]]] = {
    "correct": [
        ("mini", _mini(MINI_APP)),
        ("reference", lambda folder: copy_capstone(REFERENCE, folder)),
        *((f"wheat-{name}", _mini(source)) for name, source in WHEATS.items()),
    ],
    "partial": [
        (
            "ready-never-200",
            _mini(patched(MINI_APP, 'return {"ready": True}', "return JSONResponse({}, status_code=503)")),
        ),
        ("model-file-typo", _mini(patched(MINI_APP, '"model.int8.onnx"', '"model.int8.onx"'))),
        (
            "no-metrics-unpinned",
            _mini(patched(MINI_APP, _METRICS_ROUTE, ""), **{"requirements.txt": _UNPINNED}),
        ),
        *((f"chaff-{name}", _mini(source)) for name, (source, _lost) in CHAFFS.items()),
    ],
    "untouched_or_crashing": [
        ("starter", lambda folder: copy_capstone(STARTER, folder)),
        ("crash-at-import", _mini(_at_import("raise RuntimeError('model file not found')"))),
        (
            "crash-in-lifespan",
            _mini(patched(MINI_APP, 'STATE["model"] = load_model()\n', "raise RuntimeError('no model')\n")),
        ),
    ],
}


def class_plan(n: int) -> dict[str, str]:
    """Student folder name -> variant name: the shares of SHARES, variants dealt round-robin, shuffled."""
    counts = [round(n * share) for _name, share in SHARES[:-1]]
    counts.append(n - sum(counts))
    variants = []
    for (group, _share), count in zip(SHARES, counts, strict=True):
        names = [name for name, _build in VARIANTS[group]]
        variants += [names[i % len(names)] for i in range(count)]
    random.Random(SEED).shuffle(variants)
    return {f"student{i:03d}": variant for i, variant in enumerate(variants)}


def build(plan: dict[str, str], class_dir: Path, alone_dir: Path) -> None:
    """Write every student's folder, and one folder per distinct variant for grading alone."""
    builders = {name: build for group in VARIANTS.values() for name, build in group}
    for student, variant in plan.items():
        builders[variant](class_dir / student)
    for variant in sorted(set(plan.values())):
        builders[variant](alone_dir / variant)


def grade_all(class_dir: Path, out: Path, jobs: int, extra: Sequence[str]) -> float:
    """Run `course-utils grade-all` in its own process; return its wall time in seconds."""
    command = [sys.executable, "-m", "course_utils.cli", "grade-all", str(class_dir), "--jobs", str(jobs)]
    command += ["--out", str(out), "--no-docker", "--allow-reference", *extra]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd=PROJECT_ROOT)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(
            f"grade-all exited with {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return seconds


def read_grades(path: Path) -> dict[str, dict[str, str]]:
    """grades.csv as student -> the points of every check and the score (and `seconds`)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def points(row: dict[str, str]) -> dict[str, str]:
    """What must be identical: the score and every check's points (never the time taken)."""
    return {key: row[key] for key in ("score", "grader_error", "refused", *(c.name for c in RUBRIC))}


@dataclass(frozen=True)
class Target:
    name: str
    met: bool
    detail: str


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=TARGET_CLASS, help=f"class size (default {TARGET_CLASS})")
    parser.add_argument(
        "--jobs", type=int, default=None, help=f"grade-all --jobs (default: its own, {default_jobs()} here)"
    )
    parser.add_argument("--model-dir", help="exported model to grade against (default: MODEL_DIR)")
    parser.add_argument(
        "--public-probes", action="store_true", help="check predictions on the public sample probes"
    )
    parser.add_argument("--keep", help="keep the class, the reports and grades.csv in this folder")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    extra = [*(["--model-dir", args.model_dir] if args.model_dir else [])]
    extra += ["--public-probes"] if args.public_probes else []
    jobs = args.jobs or default_jobs()
    plan = class_plan(args.n)
    root = Path(args.keep or tempfile.mkdtemp(prefix="grading-bench-"))
    try:
        return run(plan, root, jobs, extra)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def run(plan: dict[str, str], root: Path, jobs: int, extra: Sequence[str]) -> int:
    """Build, grade the class, grade each variant alone, compare, print; 0 when every target is met."""
    class_dir, alone_dir = root / "class", root / "alone"
    build(plan, class_dir, alone_dir)
    n, distinct = len(plan), len(set(plan.values()))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"class of {n} ({distinct} variants), --jobs {jobs}, {os.cpu_count()} CPUs, load {load:.2f}")
    wall_s = grade_all(class_dir, root / "out-class", jobs, extra)
    alone_s = grade_all(alone_dir, root / "out-alone", 1, extra)
    graded = read_grades(root / "out-class" / "grades.csv")
    alone = read_grades(root / "out-alone" / "grades.csv")
    mismatches = [
        f"{student} ({variant}): {points(graded[student])} alone: {points(alone[variant])}"
        for student, variant in plan.items()
        if points(graded[student]) != points(alone[variant])
    ]
    seconds = [float(row["seconds"]) for row in graded.values()]
    rate = n / wall_s * 60
    projected_min = TARGET_CLASS / rate
    p50, p95 = (float(q) for q in np.percentile(seconds, [50, 95]))
    print(f"submissions/minute: {rate:.1f}")
    print(f"per submission: p50 {p50:.1f} s, p95 {p95:.1f} s, max {max(seconds):.1f} s")
    print(f"wall time: {wall_s:.1f} s for {n} ({alone_s:.1f} s for the {distinct} variants alone, --jobs 1)")
    by_variant: dict[str, list[float]] = {}
    for student, variant in sorted(plan.items(), key=lambda item: item[1]):
        by_variant.setdefault(variant, []).append(float(graded[student]["seconds"]))
    medians = (f"{variant} {statistics.median(s):.1f}" for variant, s in by_variant.items())
    print("median seconds by variant: " + ", ".join(medians))
    where = "measured" if n == TARGET_CLASS else f"projected from n={n} at the measured rate"
    targets = [
        Target(
            f"{TARGET_CLASS} graded in at most {TARGET_MINUTES:g} minutes",
            projected_min <= TARGET_MINUTES,
            f"{projected_min:.1f} min ({where})",
        ),
        Target(
            "every score identical to grading one at a time",
            not mismatches,
            f"{n - len(mismatches)} of {n} students match their variant graded alone",
        ),
    ]
    for target in targets:
        print(f"{'MET   ' if target.met else 'MISSED'} {target.name}: {target.detail}")
    for line in mismatches[:10]:
        print(f"  mismatch: {line}")
    return 0 if all(t.met for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
