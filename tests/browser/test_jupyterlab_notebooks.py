"""Every release notebook of the student kit, solved, run in JupyterLab in Chromium as a student runs it.

For each notebook: open it in the kit's own JupyterLab, Run > Run All Cells, wait until every code cell
has run and the kernel is idle, save it (File > Save Notebook), then check what the page shows:

- every code cell ran, and no output is an error (read from the saved notebook: JupyterLab 4.6 renders
  errors and stderr alike, see tests/browser/jupyterlab.py); stderr warnings are printed, not failed;
- a notebook whose code plots shows at least one rendered image;
- a notebook that uses tqdm shows progress bars as widgets, and no output holds tqdm's text fallback
  (`IProgress not found`, a bar drawn in text) or a widget that failed to render.

A screenshot of each notebook (the viewport at 1280x900, scrolled to its first plot) goes to
build/screenshots/; `make screenshots` runs these tests with SCREENSHOTS_DIR=docs/screenshots to refresh
the committed ones the README shows students (a plain `make test` leaves tracked files alone). The time of
each notebook is printed (`-s`).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Page

from course_utils.config import PROJECT_ROOT
from tests.browser.jupyterlab import LabServer, expectations, run_notebook

RELEASE = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
SCREENSHOTS = PROJECT_ROOT / os.environ.get("SCREENSHOTS_DIR", "build/screenshots")
#: Bounds on Run All Cells under COURSE_FAST=1, generous so that only a hang fails on time. Seen on a
#: 2-core machine at load 10: 26-83 s for 01-04 and 07, 129 s for 06, 478 s for 05.
RUN_TIMEOUT_S = {"05_optimisation": 900.0, "06_scale_operate": 900.0}
DEFAULT_RUN_TIMEOUT_S = 420.0


@pytest.mark.slow
@pytest.mark.timeout(3600)  # the first test also sets the kit up (venv + model); runs are bounded below
@pytest.mark.parametrize("notebook", RELEASE, ids=lambda path: path.stem)
def test_notebook_runs_in_jupyterlab(
    lab: LabServer, solved: dict[str, Path], page: Page, notebook: Path
) -> None:
    path = solved[notebook.name]
    expected = expectations(nbformat.read(path, as_version=4))
    timeout_s = RUN_TIMEOUT_S.get(notebook.stem, DEFAULT_RUN_TIMEOUT_S)
    screenshot = SCREENSHOTS / f"{notebook.stem}.png"
    run = run_notebook(page, lab, path, timeout_s=timeout_s, screenshot=screenshot)
    print(f"\n{run.summary()}; slowest: {run.slowest_cells()}")
    print(f"  screenshot {screenshot} ({screenshot.stat().st_size / 1000:.0f} kB)")
    for warning in run.stderr:
        print(f"  stderr (reported, not failed) {warning}")
    found = run.problems(expected)
    assert not found, (
        f"{notebook.name} in JupyterLab (solved copy {path}, screenshot {screenshot}):\n  "
        + "\n  ".join(found)
    )
