"""JupyterLab in a real browser: start a server on loopback, open a notebook, run it through the UI, read it.

What a student sees is what JupyterLab renders, not what nbval records: a plot that never reaches the page,
a progress bar that falls back to text because the widget manager is missing, or an error buried in a
long notebook. So `run_notebook` drives the UI the way a student does (open the notebook, Run > Run All
Cells, File > Save Notebook) and reports what the page shows.

Why the notebook is saved and read back: JupyterLab 4.6 renders an error output exactly like a stderr
stream (`OutputModel` turns the error into an `application/vnd.jupyter.stderr` bundle, and no renderer
exists for `application/vnd.jupyter.error`), so both carry `data-mime-type="application/vnd.jupyter.stderr"`
and no DOM class tells them apart. The notebook the UI saves does: its outputs keep `output_type: error`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import nbformat
from playwright.sync_api import Page, ViewportSize

from course_utils.ports import free_port
from course_utils.process import Process

__all__ = [
    "VIEWPORT",
    "Expectations",
    "LabServer",
    "NotebookRun",
    "expectations",
    "prepare_notebook",
    "run_notebook",
    "start_lab",
]

LAB_START_TIMEOUT_S = 180.0  # a cold JupyterLab on a busy 2-core machine takes 10-30 s
KERNEL_START_TIMEOUT_S = 120.0
#: How long the kernel must stay idle with no cell queued before a run counts as finished (Run All sends
#: one request per cell, so the kernel is briefly idle between cells; queued cells show `[*]:` meanwhile).
SETTLE_S = 3.0
POLL_S = 1.0
#: The page size of every run and so of the screenshots (a laptop screen; PNGs of ~100-200 kB).
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}

# Selectors (JupyterLab 4.6, ipywidgets 8), with why each one:
#: A code cell's prompt: `[12]:` once run, `[*]:` while queued or running, `[ ]:` never run or aborted.
PROMPT = ".jp-Notebook .jp-CodeCell .jp-InputArea-prompt"
#: The kernel status in the notebook toolbar; `data-status` is idle/busy/initializing/... It already says
#: "idle" while the toolbar's kernel name still says "No Kernel", so a ready kernel needs both.
KERNEL_STATUS = ".jp-Notebook-ExecutionIndicator"
KERNEL_NAME = ".jp-Toolbar-kernelName"
#: Rendered images: matplotlib's inline backend sends image/png (RenderedImage); SVG for completeness.
IMAGE = ".jp-OutputArea-output.jp-RenderedImage img, .jp-OutputArea-output.jp-RenderedSVG svg"
#: tqdm.auto with ipywidgets renders an HBox (label, FloatProgress, counts); ipywidgets 8 gives the
#: FloatProgress view `widget-hprogress` (there is no `widget-progress` class in 8). A `leave=False` bar is
#: closed when done and leaves an empty, hidden output.
PROGRESS_WIDGET = ".jp-OutputArea-output .jupyter-widgets.widget-hprogress"
#: A bar that tqdm closed before its total: ipywidgets draws it red (`bar_style="danger"`), which reads as
#: a failure even when the work succeeded.
RED_BAR = f"{PROGRESS_WIDGET} .progress-bar-danger"
#: Text outputs (stdout, stderr, errors and text/plain results all render as RenderedText).
TEXT_OUTPUT = ".jp-OutputArea-output.jp-RenderedText"
#: What a widget that failed to render shows instead (ipywidgets' manager missing or a model lost).
WIDGET_FAILURES = ("Error displaying widget", "Loading widget...")
#: tqdm's text fallbacks: the warning when ipywidgets is missing, and a bar drawn in text (`45%|████▌ |`).
TEXT_BAR = re.compile(r"IProgress not found|\d+%\|[\u2588\u2589\u258a\u258b\u258c\u258d\u258e\u258f #]*\|")
#: Source that plots: matplotlib, pandas `.plot(`, or an explicit display of an image.
PLOTS = re.compile(r"\bplt\.|\.plot\(|\bmatplotlib\b|display\(\s*Image\(")


@dataclass(frozen=True, slots=True)
class LabServer:
    """A running JupyterLab: where it listens and the token that opens it."""

    base_url: str
    token: str
    root: Path
    process: Process

    def url(self, path: str, *query: str) -> str:
        """`path` under the server, with the token (opens the UI without a login page) and `query`."""
        return f"{self.base_url}/{path.lstrip('/')}?{'&'.join((*query, f'token={self.token}'))}"

    def shut_down_kernels(self) -> None:
        """Shut down every session's kernel (REST API), so one notebook's servers and memory are gone."""
        headers = {"Authorization": f"token {self.token}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30, trust_env=False) as client:
            for session in client.get("/api/sessions").raise_for_status().json():
                client.delete(f"/api/sessions/{session['id']}").raise_for_status()


#: JupyterLab user settings for the runs: no news toast over the notebook and no update check (the machine
#: is offline and the screenshots are kept); per-cell timing in the saved notebook, to name slow cells.
LAB_SETTINGS = {
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "notebook-extension/tracker": {"recordTiming": True},
}


def _write_lab_settings(settings_dir: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@contextmanager
def start_lab(jupyter: Path, root: Path, *, env: Mapping[str, str], scratch: Path) -> Iterator[LabServer]:
    """`jupyter lab` on 127.0.0.1 (a free port, a token, no browser) serving `root`; stopped on exit.

    Settings, workspaces, runtime files and config live in `scratch`, so neither this machine's Jupyter
    config nor a workspace saved earlier changes what the test sees. `env` is the whole environment of
    the server and so of its kernels (COURSE_FAST=1 goes there).
    """
    token = secrets.token_hex(16)
    port = free_port()
    dirs = {
        "JUPYTERLAB_SETTINGS_DIR": scratch / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": scratch / "lab-workspaces",
        "JUPYTER_RUNTIME_DIR": scratch / "runtime",
        "JUPYTER_CONFIG_DIR": scratch / "config",
    }
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    _write_lab_settings(dirs["JUPYTERLAB_SETTINGS_DIR"])
    args = [
        str(jupyter),
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    process = Process(
        args,
        cwd=root,
        env={**env, **{name: str(path) for name, path in dirs.items()}},
        output=scratch / "jupyterlab.log",
        label="jupyter lab",
        stop_timeout_s=20,
    )
    base_url = f"http://127.0.0.1:{port}"
    with process:
        process.wait_ready(f"{base_url}/api/status?token={token}", timeout_s=LAB_START_TIMEOUT_S)
        yield LabServer(base_url, token, root, process)


def prepare_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with no outputs and no execution counts, so a numbered prompt means "ran in this test"."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return notebook


@dataclass(frozen=True, slots=True)
class Expectations:
    """What a notebook's own source says the page must show."""

    plots: bool
    progress_bars: bool


def expectations(notebook: nbformat.NotebookNode) -> Expectations:
    """From the code cells: does it plot (matplotlib, `.plot(`), does it use tqdm progress bars."""
    source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    return Expectations(plots=bool(PLOTS.search(source)), progress_bars="tqdm" in source)


@dataclass(slots=True)
class NotebookRun:
    """What one notebook showed in JupyterLab after Run All Cells."""

    name: str
    seconds: float = 0.0
    code_cells: int = 0
    unexecuted: list[int] = field(default_factory=list)  # 1-based positions among code cells
    errors: list[str] = field(default_factory=list)  # "cell N: ename: evalue", from the saved notebook
    stderr: list[str] = field(default_factory=list)  # stderr streams (warnings): reported, never failed
    images: int = 0
    progress_widgets: int = 0
    red_bars: int = 0
    slowest: list[tuple[float, int]] = field(default_factory=list)  # (seconds, code cell), slowest first
    widget_failures: list[str] = field(default_factory=list)
    text_bars: list[str] = field(default_factory=list)
    finished: bool = False
    timeout_s: float = 0.0

    def slowest_cells(self, n: int = 3) -> str:
        """The `n` slowest code cells, e.g. "cell 31 142s, cell 12 40s" (from JupyterLab's cell timing)."""
        return ", ".join(f"cell {number} {seconds:.0f}s" for seconds, number in self.slowest[:n])

    def problems(self, expected: Expectations) -> list[str]:
        """What the student would see go wrong, one line each (empty: the notebook is fine)."""
        found = []
        if not self.finished:
            found.append(f"Run All Cells did not finish within {self.timeout_s:.0f}s")
        if self.unexecuted:
            found.append(f"code cells that did not run (by position among code cells): {self.unexecuted}")
        found += [f"error output in {error}" for error in self.errors]
        if expected.plots and not self.images:
            found.append("the notebook plots, but no image was rendered")
        if expected.progress_bars and not self.progress_widgets:
            found.append("the notebook uses tqdm, but no progress bar was rendered as a widget")
        if self.red_bars:
            found.append(
                f"{self.red_bars} progress bar(s) ended red: tqdm closed them before their total, which "
                "looks like a failure to a student (update the bar to its total before closing it)"
            )
        found += [f"a widget failed to render: {failure!r}" for failure in self.widget_failures]
        found += [f"tqdm fell back to text: {line!r}" for line in self.text_bars]
        return found

    def summary(self) -> str:
        return (
            f"{self.name}: {self.seconds:.0f}s, {self.code_cells - len(self.unexecuted)}/{self.code_cells} "
            f"code cells run, {len(self.errors)} errors, {self.images} images, "
            f"{self.progress_widgets} progress widgets ({self.red_bars} red), {len(self.stderr)} stderr"
        )


def _menu(page: Page, menu: str, item: str) -> None:
    """Click `menu` in the main menu bar, then `item` in it (what a student does with the mouse)."""
    page.locator("#jp-MainMenu").get_by_role("menuitem", name=menu, exact=True).click()
    page.locator(".lm-Menu").get_by_role("menuitem", name=item).first.click()


def _wait_kernel(page: Page) -> None:
    """Wait until the notebook's kernel is started and idle (Run All before that runs nothing)."""
    page.wait_for_function(
        """([status, name]) => {
            const kernel = document.querySelector(name)?.textContent.trim() ?? "";
            const idle = document.querySelector(status)?.dataset.status === "idle";
            return idle && kernel !== "" && !kernel.startsWith("No Kernel");
        }""",
        arg=[KERNEL_STATUS, KERNEL_NAME],
        timeout=KERNEL_START_TIMEOUT_S * 1000,
        polling=250,
    )


def _state(page: Page) -> dict[str, object]:
    """The prompts of every code cell and the kernel status, read from the page in one go."""
    state: dict[str, object] = page.evaluate(
        """([prompt, status]) => ({
            prompts: Array.from(document.querySelectorAll(prompt), node => node.textContent.trim()),
            status: document.querySelector(status)?.dataset.status ?? null,
        })""",
        [PROMPT, KERNEL_STATUS],
    )
    return state


def _wait_finished(page: Page, timeout_s: float) -> tuple[bool, list[str]]:
    """Wait until no cell is queued or running and the kernel is idle for `SETTLE_S`; (finished, prompts).

    Finished also covers a run that an error stopped: the kernel aborts the queued cells, whose prompts go
    back to `[ ]:`; the caller tells the two apart by the prompts.
    """
    deadline = time.monotonic() + timeout_s
    quiet_since: float | None = None
    prompts: list[str] = []
    while time.monotonic() < deadline:
        state = _state(page)
        prompts = list(state["prompts"])  # type: ignore[call-overload]
        quiet = state["status"] == "idle" and not any("*" in p for p in prompts)
        if not quiet:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= SETTLE_S:
            return True, prompts
        page.wait_for_timeout(POLL_S * 1000)
    return False, prompts


def _save(page: Page, timeout_s: float = 60) -> None:
    """File > Save Notebook, then wait until the tab drops its unsaved-changes mark."""
    _menu(page, "File", "Save Notebook")
    page.locator(".jp-mod-current.jp-mod-dirty").wait_for(state="detached", timeout=timeout_s * 1000)


def _read_outputs(path: Path, run: NotebookRun) -> None:
    """Errors, stderr streams and cell times from the notebook JupyterLab saved (see the module docstring)."""
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for number, cell in enumerate(code, 1):
        timing = cell.metadata.get("execution", {})
        if "iopub.status.busy" in timing and "shell.execute_reply" in timing:
            seconds = _instant(timing["shell.execute_reply"]) - _instant(timing["iopub.status.busy"])
            run.slowest.append((seconds, number))
        for output in cell.outputs:
            if output.output_type == "error":
                run.errors.append(f"code cell {number}: {output.ename}: {output.evalue}")
            elif output.output_type == "stream" and output.name == "stderr":
                run.stderr.append(f"code cell {number}: {output.text.strip()[:300]}")


def _instant(timestamp: str) -> float:
    """Seconds since the epoch of an ISO timestamp as JupyterLab records it (`...Z`)."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _read_page(page: Page, run: NotebookRun) -> None:
    """Images, progress widgets (red ones too), widget failures and text progress bars as rendered."""
    run.images = page.evaluate(
        "selector => Array.from(document.querySelectorAll(selector))"
        ".filter(node => node.tagName !== 'IMG' || (node.complete && node.naturalWidth > 0)).length",
        IMAGE,
    )
    run.progress_widgets = page.locator(PROGRESS_WIDGET).count()
    run.red_bars = page.locator(RED_BAR).count()
    texts: list[str] = page.evaluate(
        "selector => Array.from(document.querySelectorAll(selector), node => node.textContent)",
        ".jp-OutputArea-output",
    )
    for text in texts:
        run.widget_failures += [line for line in text.splitlines() if line.startswith(WIDGET_FAILURES)]
    for text in page.locator(TEXT_OUTPUT).all_text_contents():
        run.text_bars += [line.strip()[:160] for line in text.splitlines() if TEXT_BAR.search(line)]


def _screenshot(page: Page, path: Path) -> None:
    """The viewport (1280x900), scrolled to the first plot, else the first progress bar, else the top."""
    for selector, block in ((IMAGE, "end"), (PROGRESS_WIDGET, "center"), (".jp-Notebook .jp-Cell", "start")):
        target = page.locator(selector).first
        if target.count():  # a plot at the bottom of the page shows whole, with its code above it
            # Twice: cells off screen are skipped by `content-visibility` with estimated heights, so the
            # first scroll lands near the target and renders the cells around it; the second is exact.
            for _ in range(2):
                target.evaluate("(node, block) => node.scrollIntoView({block})", block)
                page.wait_for_timeout(300)
            break
    page.mouse.move(0, 0)  # no hover tooltip over the notebook
    page.wait_for_timeout(500)  # let scrolling and lazy images settle
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, type="png")


def run_notebook(
    page: Page, lab: LabServer, notebook: Path, *, timeout_s: float, screenshot: Path
) -> NotebookRun:
    """Open `notebook` (under lab.root) in JupyterLab, Run All Cells, save it, read what the page shows."""
    run = NotebookRun(notebook.stem, timeout_s=timeout_s)
    relative = notebook.relative_to(lab.root).as_posix()
    # `reset`: a fresh workspace, or JupyterLab reopens the notebooks of earlier tests (and their kernels)
    page.goto(lab.url(f"lab/tree/{relative}", "reset"))
    _wait_kernel(page)
    open_notebooks = page.locator(".jp-NotebookPanel").count()
    assert open_notebooks == 1, f"JupyterLab shows {open_notebooks} notebooks, expected only {relative}"
    # The notebook gets the width: collapse the file browser (a click on its active tab, as by hand).
    # JupyterLab remembers the layout, so only the first notebook finds it open.
    file_browser_tab = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if file_browser_tab.count():
        file_browser_tab.click()
    started = time.monotonic()
    _menu(page, "Run", "Run All Cells")
    run.finished, prompts = _wait_finished(page, timeout_s)
    run.seconds = time.monotonic() - started
    run.code_cells = len(prompts)
    run.unexecuted = [n for n, prompt in enumerate(prompts, 1) if not re.fullmatch(r"\[\d+\]:", prompt)]
    _read_page(page, run)
    _save(page)  # also after a timeout: the saved outputs say what went wrong
    _read_outputs(notebook, run)
    run.slowest.sort(reverse=True)
    _screenshot(page, screenshot)
    return run
