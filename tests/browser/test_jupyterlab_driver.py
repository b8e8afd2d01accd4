"""The browser driver itself: on a notebook made to go wrong, each check sees what it must see.

One small notebook in this repository's own JupyterLab (seconds, no kit needed): a plot, a tqdm widget, a
text progress bar, a stderr warning, an error, and a cell the error stops. If a selector goes stale with a
new JupyterLab or ipywidgets, this fails instead of the notebook tests passing on nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Browser

from tests.browser.jupyterlab import (
    VIEWPORT,
    Expectations,
    LabServer,
    NotebookRun,
    expectations,
    prepare_notebook,
    run_notebook,
    start_lab,
)

CELLS = [
    "import sys\nimport matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()",
    "from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='widget bar'):\n    pass",
    "bar = tqdm(total=3, desc='stopped early')\nbar.update(1)\nbar.close()",
    "from tqdm.std import tqdm as text_tqdm\nfor _ in text_tqdm(range(3), desc='text bar'):\n    pass",
    "print('a warning', file=sys.stderr)",
    "raise ValueError('boom')",
    "print('never runs: the error stops Run All')",
]


@pytest.fixture(scope="module")
def own_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """This repository's JupyterLab on a scratch folder holding the faulty notebook."""
    root = tmp_path_factory.mktemp("lab-root")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(prepare_notebook(notebook), root / "faulty.ipynb")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel's inline backend
    jupyter = Path(sys.executable).parent / "jupyter"
    with start_lab(jupyter, root, env=env, scratch=tmp_path_factory.mktemp("jupyterlab")) as lab:
        yield lab


@pytest.fixture(scope="module")
def faulty_run(
    own_lab: LabServer, chromium: Browser, tmp_path_factory: pytest.TempPathFactory
) -> NotebookRun:
    context = chromium.new_context(viewport=VIEWPORT)
    try:
        shot = tmp_path_factory.mktemp("shots") / "faulty.png"
        return run_notebook(
            context.new_page(), own_lab, own_lab.root / "faulty.ipynb", timeout_s=120, screenshot=shot
        )
    finally:
        context.close()
        own_lab.shut_down_kernels()


def test_an_error_stops_the_run_and_is_told_from_stderr(faulty_run: NotebookRun) -> None:
    assert faulty_run.finished and faulty_run.code_cells == len(CELLS)
    assert faulty_run.unexecuted == [7]
    assert faulty_run.errors == ["code cell 6: ValueError: boom"]
    assert sorted(number for _, number in faulty_run.slowest) == list(range(1, 8))  # aborted cells too
    assert all(0 <= seconds < 60 for seconds, _ in faulty_run.slowest), faulty_run.slowest
    assert any(line.startswith("code cell 5: a warning") for line in faulty_run.stderr), faulty_run.stderr


def test_plots_widgets_and_text_bars_are_seen(faulty_run: NotebookRun) -> None:
    assert faulty_run.images == 1
    assert faulty_run.progress_widgets == 2 and faulty_run.red_bars == 1
    assert faulty_run.widget_failures == []
    assert len(faulty_run.text_bars) == 1 and "text bar: 100%|" in faulty_run.text_bars[0], (
        faulty_run.text_bars
    )


def test_problems_name_each_fault(faulty_run: NotebookRun) -> None:
    found = faulty_run.problems(Expectations(plots=True, progress_bars=True))
    assert NotebookRun("slow", timeout_s=5).problems(Expectations(plots=False, progress_bars=False)) == [
        "Run All Cells did not finish within 5s"
    ]
    assert found[0].startswith("code cells that did not run") and "[7]" in found[0]
    assert found[1] == "error output in code cell 6: ValueError: boom"
    assert found[2].startswith("1 progress bar(s) ended red")
    assert found[3].startswith("tqdm fell back to text: 'text bar: 100%|")
    assert len(found) == 4, found
    silent = NotebookRun("quiet", finished=True, code_cells=3)
    assert silent.problems(Expectations(plots=True, progress_bars=True)) == [
        "the notebook plots, but no image was rendered",
        "the notebook uses tqdm, but no progress bar was rendered as a widget",
    ]


def test_expectations_come_from_the_source() -> None:
    def notebook(*sources: str) -> nbformat.NotebookNode:
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])

    assert expectations(notebook(*CELLS)).plots and expectations(notebook(*CELLS)).progress_bars
    quiet = expectations(notebook("x = 1", "print(x)"))
    assert not quiet.plots and not quiet.progress_bars
    assert expectations(notebook("df.plot(x='a')")).plots
