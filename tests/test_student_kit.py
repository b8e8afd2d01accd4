"""The student kit (`course-utils student-kit`): what ships, the leak check, and proof that it stands alone.

Fast tests build the kit (a few seconds) and check what it holds and what the leak check finds: a clean
build passes, and an answer line planted anywhere (re-indented, in a copied file or a notebook) fails it
with the file and line.

The slow tests set the kit up as a student does on a fresh clone, in a folder of its own with its own
venv (`make venv`: python -m venv + pip; `make model` on a copy of our model, see `kit_env`), never with
this repository on `sys.path` (subprocesses run with cwd=kit and an environment without PYTHONPATH or
this repository's venv). Then, inside the kit: `make test` fails on the untouched starter with a summary
and passes on a correct capstone written in another style than the reference; `make serve` serves the
student's capstone and says what it lacks. They print the numbers the course reports: kit files and size,
fingerprints, set-up time and `make test` time. Every release notebook, solved, runs in the kit's own
JupyterLab in a real browser in tests/browser/ (on the same kit set-up: `tests/kit_support.py`).
"""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from course_utils import kit as kit_module
from course_utils.cli import main
from course_utils.config import PROJECT_ROOT
from course_utils.fingerprint import fingerprint, normalise, secret_fingerprints
from course_utils.kit import KitError, KitReport, build_kit, check_leaks, secret_lines
from course_utils.ports import free_port
from course_utils.process import Process
from tests.grading.submissions import write_submission
from tests.kit_support import KitEnv

RELEASE = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
NAIVE_APP = PROJECT_ROOT / "benchmarks" / "apps" / "naive_app.py"


def _answer_lines(notebook: str) -> list[str]:
    """The lines of solution regions of `solutions/src/<notebook>.py` that the leak check looks for."""
    secret = secret_fingerprints(*secret_lines())
    source = (PROJECT_ROOT / "solutions" / "src" / f"{notebook}.py").read_text().splitlines()
    return [line for line in kit_module._regions(source) if fingerprint(line) in secret]


# --- what ships -------------------------------------------------------------------------------------------


def test_kit_holds_what_students_need(kit: KitReport) -> None:
    for name in (
        "README.md",
        "Makefile",
        ".gitignore",
        "requirements.txt",
        "environment.yml",
        "pyproject.toml",
        "capstone/README.md",
        "capstone/src/app.py",
        "capstone/Makefile",
        "capstone/tests/test_service_contract.py",
        "course_utils/grading/grader.py",
        "course_utils/data/sentiment.jsonl",
        "benchmarks/snapshot/serving.json",
    ):
        assert (kit.out / name).is_file(), f"the kit lacks {name}"
    assert sorted(p.name for p in (kit.out / "notebooks").iterdir()) == [p.name for p in RELEASE]
    assert (kit.out / "README.md").read_text() == (PROJECT_ROOT / "tools/student_kit/README.md").read_text()


def test_kit_leaves_out_the_instructor_material(kit: KitReport) -> None:
    files = [p.relative_to(kit.out) for p in kit.out.rglob("*") if p.is_file()]
    assert len(files) == kit.files
    folders = {f.parts[0] for f in files if len(f.parts) > 1}
    assert folders == {"notebooks", "capstone", "course_utils", "benchmarks"}, folders
    names = {part for f in files for part in f.parts}
    assert not names & {"naive_app.py", "model", "__pycache__", "nbgrader_config.py", "solutions"}
    assert not [f for f in files if f.suffix == ".pyc" or ".egg-info" in str(f)]


def test_zip_holds_the_kit_under_its_folder_name(kit: KitReport) -> None:
    assert kit.zip_path is not None
    with zipfile.ZipFile(kit.zip_path) as archive:
        names = archive.namelist()
    assert len(names) == kit.files
    assert all(name.startswith("deployment-kit/") for name in names)
    assert "deployment-kit/Makefile" in names


# --- the leak check ----------------------------------------------------------------------------------------


def test_clean_kit_passes_the_leak_check(kit: KitReport) -> None:
    assert kit.leak_check.ok, kit.leak_check.leaks
    assert kit.leak_check.fingerprints > 1000 and kit.leak_check.files_scanned == kit.files  # all text
    again = check_leaks(kit.out)
    assert again.ok and again.fingerprints == kit.leak_check.fingerprints


def test_a_copy_of_naive_app_is_found_at_its_answer_lines(kit: KitReport, tmp_path: Path) -> None:
    copy = tmp_path / "kit"
    shutil.copytree(kit.out, copy)
    shutil.copy(NAIVE_APP, copy / "benchmarks" / "apps" / "naive_app.py")
    answers = {normalise(line) for line in _answer_lines("02_minimal_api")}
    app_lines = NAIVE_APP.read_text().splitlines()
    numbers = [n for n, line in enumerate(app_lines, 1) if normalise(line) in answers]
    assert numbers, (
        "naive_app.py no longer holds a line of notebook 02's Exercise 2 answer: plant another copy"
    )
    leaks = check_leaks(copy).leaks
    assert {leak.path for leak in leaks} == {"benchmarks/apps/naive_app.py"}
    assert {leak.line_number for leak in leaks} >= set(numbers)


@pytest.mark.parametrize(
    ("target", "notebook"),
    [
        ("course_utils/model.py", "05_optimisation"),
        ("capstone/deploy.md", "04_health_metrics"),
        ("notebooks/03_containerise.ipynb", "03_containerise"),
    ],
)
def test_a_reindented_answer_line_is_found_anywhere(
    kit: KitReport, tmp_path: Path, target: str, notebook: str
) -> None:
    copy = tmp_path / "kit"
    shutil.copytree(kit.out, copy)
    answer = "            " + "   ".join(_answer_lines(notebook)[-1].split())
    path = copy / target
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(f"x = 1\n{answer}"))
        nbformat.write(nb, path)
        expected = sum(len(c.source.splitlines()) for c in nb.cells)  # the last line of the cells' text
    else:
        path.write_text(path.read_text() + f"\n{answer}\n")
        expected = len(path.read_text().splitlines())
    leaks = check_leaks(copy).leaks
    assert [(leak.path, leak.line_number) for leak in leaks] == [(target, expected)], leaks
    assert normalise(leaks[0].line) == normalise(answer)


def test_a_leaking_build_fails_with_file_and_line_and_leaves_no_kit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    leaking = (*kit_module.KIT_CONTENT, ("benchmarks/apps/naive_app.py", "benchmarks/apps/naive_app.py"))
    monkeypatch.setattr(kit_module, "KIT_CONTENT", leaking)
    out = tmp_path / "kit"
    with pytest.raises(KitError, match=r"benchmarks/apps/naive_app\.py:\d+: "):
        build_kit(out)
    assert main(["student-kit", str(out)]) == 1
    assert "The student kit leaks" in capsys.readouterr().err
    assert sorted(tmp_path.iterdir()) == [], "a leaking build left files behind"


def test_a_stale_release_notebook_holding_answers_is_a_leak(kit: KitReport, tmp_path: Path) -> None:
    """The release notebooks ship, so they never vouch for their own lines: a release made from the
    solutions by mistake (answers in notebooks/) fails the check, in the repository as in the kit."""
    repo = tmp_path / "repo"
    for part in ("solutions/src", "solutions/capstone", "solutions/grading", "capstone", "tools/student_kit"):
        shutil.copytree(PROJECT_ROOT / part, repo / part)
    for notebook in (PROJECT_ROOT / "solutions").glob("*.ipynb"):
        shutil.copyfile(notebook, repo / "solutions" / notebook.name)
    shutil.copytree(PROJECT_ROOT / "notebooks", repo / "notebooks")
    stale = "02_minimal_api.ipynb"
    shutil.copyfile(PROJECT_ROOT / "solutions" / stale, repo / "notebooks" / stale)
    copy = tmp_path / "kit"
    shutil.copytree(kit.out, copy)
    shutil.copyfile(repo / "notebooks" / stale, copy / "notebooks" / stale)
    leaks = kit_module.check_leaks(copy, repo=repo).leaks
    assert leaks and {leak.path for leak in leaks} == {f"notebooks/{stale}"}, leaks[:5]


def test_a_hidden_probe_quoted_inside_a_line_is_a_leak(kit: KitReport, tmp_path: Path) -> None:
    """A probe copied into a list of sample texts (say, the public sample) is found, not only whole lines."""
    probe = next(
        text
        for line in (PROJECT_ROOT / "solutions" / "grading" / "probes.jsonl").read_text().splitlines()
        if len(text := json.loads(line)["text"]) >= 30
    )
    copy = tmp_path / "kit"
    shutil.copytree(kit.out, copy)
    target = copy / "course_utils" / "grading" / "probe_set.py"
    target.write_text(target.read_text() + f"\nEXTRA = [\n    {probe!r},\n]\n")
    leaks = kit_module.check_leaks(copy).leaks
    assert [leak.path for leak in leaks] == ["course_utils/grading/probe_set.py"], leaks[:5]


def test_build_refuses_a_full_folder_and_one_it_would_copy_into_itself(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(KitError, match="not empty"):
        build_kit(tmp_path)
    for inside in (PROJECT_ROOT / "notebooks" / "kit", PROJECT_ROOT, PROJECT_ROOT.parent):
        with pytest.raises(KitError, match="would hold or be copied into itself"):
            build_kit(inside)  # never with force: a broken check must not replace the repository


def test_cli_builds_the_kit_and_prints_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["student-kit", str(tmp_path / "kit"), "--zip"]) == 0
    out = capsys.readouterr().out
    assert "leak check passed (" in out and "student kit: " in out and "zip: " in out


# --- the kit on its own: a fresh folder, its own venv ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kit_uses_its_own_library(kit_env: KitEnv) -> None:
    result = kit_env.run(
        [".venv/bin/python", "-c", "import course_utils; print(course_utils.__file__)"], timeout_s=60
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).resolve().is_relative_to(kit_env.root.resolve()), result.stdout
    assert (kit_env.root / "artifacts" / "model" / "model_card.json").is_file()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kit_make_test_fails_on_the_untouched_starter(kit_env: KitEnv) -> None:
    started = time.monotonic()
    # The contract tests wait READY_TIMEOUT_S (60 s) for a /ready that the starter never answers with 200.
    result = kit_env.run(["make", "test"], timeout_s=900, READY_TIMEOUT_S="10")
    print(f"\nkit make test (starter): exit {result.returncode} in {time.monotonic() - started:.0f}s")
    assert result.returncode != 0, result.stdout[-3000:]
    assert "contract tests: FAILED" in result.stdout, result.stdout[-3000:]
    assert "self-grader: " in result.stdout and "points lost on: " in result.stdout
    report = json.loads((kit_env.root / "build" / "grade" / "results.json").read_text())
    assert report["score"] <= 20, report["score"]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kit_make_test_passes_with_a_correct_capstone(kit_env: KitEnv, tmp_path: Path) -> None:
    capstone = tmp_path / "capstone"
    shutil.copytree(kit_env.root / "capstone", capstone)
    write_submission(capstone)  # a correct service in another style than the reference
    started = time.monotonic()
    result = kit_env.run(["make", "test", f"CAPSTONE={capstone}"], timeout_s=900)
    print(
        f"\nkit make test (correct capstone): exit {result.returncode} in {time.monotonic() - started:.0f}s"
    )
    assert result.returncode == 0, f"{result.stdout[-5000:]}\n{result.stderr[-2000:]}"
    assert "contract tests: passed" in result.stdout
    report = json.loads((kit_env.root / "build" / "grade" / "results.json").read_text())
    assert report["score"] == 100, result.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kit_make_serve_serves_the_students_capstone(kit_env: KitEnv) -> None:
    port = free_port()
    env = {**kit_env.env, "COURSE_PORT": str(port)}
    with Process(["make", "serve"], cwd=kit_env.root, env=env, label="make serve (kit)") as server:
        server.wait_ready(f"http://127.0.0.1:{port}/health", timeout_s=180)
        output = server.output()
    assert "Not there yet: POST /predict, POST /predict/batch, GET /metrics" in output, output
    assert f"Serving capstone/src with MODEL_DIR={kit_env.root}" in output, output
