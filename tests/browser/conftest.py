"""Fixtures of the browser tests: the student kit set up on its own, JupyterLab on it, and Chromium.

The kit and its venv are the session fixtures `kit` and `kit_env` of tests/kit_support.py (registered in
tests/conftest.py): a built kit in a fresh folder with its own venv and model, as on a student's fresh
clone, set up once for these tests and tests/test_student_kit.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Browser, Error, Page, sync_playwright

from course_utils.config import PROJECT_ROOT
from tests.browser.jupyterlab import VIEWPORT, LabServer, prepare_notebook, start_lab
from tests.kit_support import KitEnv, inject_solutions

#: The notebooks students get, and where the solved copies go in the kit: beside notebooks/, so the
#: notebooks' `../capstone` is the kit's capstone.
RELEASE = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
SOLVED_FOLDER = "solved-in-browser"


@pytest.fixture(scope="module")
def solved(kit_env: KitEnv) -> dict[str, Path]:
    """Every release notebook of the kit, solved, in `SOLVED_FOLDER` of the kit: {file name: path}.

    Solved: the release notebook with each solution cell taken from solutions/ (as the kit test does),
    outputs and execution counts cleared, so a numbered prompt means the cell ran in this test.
    """
    folder = kit_env.root / SOLVED_FOLDER
    folder.mkdir(exist_ok=True)
    paths = {}
    for notebook in RELEASE:
        release = nbformat.read(kit_env.root / "notebooks" / notebook.name, as_version=4)
        solution = nbformat.read(PROJECT_ROOT / "solutions" / notebook.name, as_version=4)
        paths[notebook.name] = folder / notebook.name
        nbformat.write(prepare_notebook(inject_solutions(release, solution)), paths[notebook.name])
    return paths


@pytest.fixture(scope="module")
def lab(kit_env: KitEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """The kit's own `jupyter lab` (its .venv) serving the kit's root, with COURSE_FAST=1.

    The server, and so every kernel, gets the kit's clean environment: no PYTHONPATH, no venv of this
    repository on PATH, so the notebooks import the kit's course_utils.
    """
    jupyter = kit_env.root / ".venv" / "bin" / "jupyter"
    env = {**kit_env.env, "COURSE_FAST": "1"}
    with start_lab(jupyter, kit_env.root, env=env, scratch=tmp_path_factory.mktemp("jupyterlab")) as server:
        yield server


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's chromium driven by Playwright (which cannot download its own browsers here).

    Module-scoped, not session-scoped: Playwright's sync API keeps an asyncio loop marked as running in
    the main thread while it is open, and every later async test (anyio) would then fail with "Cannot run
    the event loop while another loop is running".
    """
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "chromium is not on PATH, and the browser tests (tests/browser/) drive it: Playwright cannot "
            "download its own browsers here. Install Debian's package: `apt-get install chromium` "
            "(.ci/components.sh does it in CI).",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Error as exc:
            pytest.fail(
                f"Playwright could not start {executable!r}: {exc.message.splitlines()[0]}. Check that "
                f"`{executable} --headless --no-sandbox --dump-dom about:blank` works on this machine.",
                pytrace=False,
            )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser, lab: LabServer) -> Iterator[Page]:
    """A fresh page at 1280x900; afterwards every kernel is shut down, so notebooks do not pile up."""
    context = chromium.new_context(viewport=VIEWPORT)
    try:
        yield context.new_page()
    finally:
        context.close()
        lab.shut_down_kernels()
