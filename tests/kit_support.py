"""The student kit set up as on a student's fresh clone, shared by the kit tests and the browser tests.

`kit` builds the kit once per test session; `kit_env` copies it into a fresh folder and sets it up there
with its own venv and model (`make venv`, `make model`), never with this repository on `sys.path`. Both
are session-scoped and registered in tests/conftest.py, so tests/test_student_kit.py and tests/browser/
share one set-up (a venv install takes minutes). `inject_solutions` fills a release notebook's answer
cells from the solutions, as a student who solved everything would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from course_utils.config import PROJECT_ROOT
from course_utils.export import build_key
from course_utils.kit import KitReport, build_kit
from course_utils.training import TrainConfig

__all__ = ["KitEnv", "clean_env", "inject_solutions", "kit", "kit_env"]


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> KitReport:
    """The kit, built once per session (with its zip), and its leak check's summary printed."""
    report = build_kit(tmp_path_factory.mktemp("kit") / "deployment-kit", make_zip=True)
    assert report.zip_path is not None
    print(
        f"\nkit: {report.files} files, {report.size_bytes / 1e6:.2f} MB "
        f"(zip {report.zip_path.stat().st_size / 1e6:.2f} MB); {report.leak_check.summary()}"
    )
    return report


@dataclass
class KitEnv:
    """A built kit set up as on a fresh clone: `root` with its own .venv and model."""

    root: Path
    env: dict[str, str]
    setup_s: float

    def run(self, args: list[str], *, timeout_s: float, **extra: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                args,
                cwd=self.root,
                env={**self.env, **extra},
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{' '.join(args)} did not finish within {timeout_s:.0f}s:\n{exc.stdout!r}")


def clean_env() -> dict[str, str]:
    """This machine's environment without this repository: no PYTHONPATH, no venv of ours on PATH."""
    keep = ("HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "CI", "DOCKER_HOST")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}
    path = [
        p for p in os.environ["PATH"].split(os.pathsep) if not Path(p).resolve().is_relative_to(PROJECT_ROOT)
    ]
    return {**env, "PATH": os.pathsep.join(path)}


@pytest.fixture(scope="session")
def kit_env(kit: KitReport, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitEnv]:
    """The kit in a fresh folder: `make venv` for real, then `make model` on a copy of our model.

    Why a copy: `make model` fine-tunes for 2-4 minutes on a quiet 2-core machine (much longer when it is
    busy), with the same code and pins as `make model` here, which CI runs on a fresh clone. The build key
    covers that code, the data, the base weights and the pins, so the kit's `make model` accepting the copy
    as current shows the kit builds this very model; a missing input would change the key and rebuild.
    """
    root = tmp_path_factory.mktemp("fresh") / "kit"
    shutil.copytree(kit.out, root)  # the tests below change files: keep the built kit as it was
    setup = KitEnv(root, clean_env(), 0.0)
    started = time.monotonic()
    venv = setup.run(["make", "venv"], timeout_s=1500)
    assert venv.returncode == 0, f"make venv failed:\n{venv.stdout[-4000:]}\n{venv.stderr[-4000:]}"
    venv_s = time.monotonic() - started
    ours = PROJECT_ROOT / "artifacts" / "model"
    assert json.loads((ours / "model_card.json").read_text())["build_key"] == build_key(TrainConfig()), (
        f"{ours} is older than the code that builds it: run `make model` (make test does it first)"
    )
    card = root / "artifacts" / "model" / "model_card.json"
    shutil.copytree(ours, card.parent)
    copied = card.read_bytes()
    model = setup.run(["make", "model"], timeout_s=900)
    assert model.returncode == 0, f"make model failed:\n{model.stdout[-4000:]}\n{model.stderr[-4000:]}"
    assert card.read_bytes() == copied, "the kit rebuilt the model: an input of its build key differs"
    setup.setup_s = time.monotonic() - started
    print(f"\nkit set-up: make venv {venv_s:.0f}s, make model (cached) {setup.setup_s - venv_s:.0f}s")
    yield setup


def inject_solutions(
    release: nbformat.NotebookNode, solution: nbformat.NotebookNode
) -> nbformat.NotebookNode:
    """The release notebook, each solution cell's source taken from the solution notebook (by grade_id)."""
    answers = {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in solution.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }
    injected = 0
    for cell in release.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            assert grade_id in answers, f"release cell {grade_id!r} has no solution cell of that grade_id"
            cell.source = answers[grade_id]
            injected += 1
    assert injected, "no solution cell was injected"
    return release
