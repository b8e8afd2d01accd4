"""The notebook build's rules: pairing, stable cell ids, points declared once, metadata kept, sources linted.

These tests work on temporary copies of the jupytext sources in `solutions/src/` and never run nbgrader or a
kernel (tests/test_notebooks.py does), so they take seconds.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.config import load_jupytext_config
from jupytext.paired_paths import paired_paths

from course_utils.config import PROJECT_ROOT
from tools import build_notebooks  # the repository root is on sys.path (pytest's `pythonpath`)
from tools.build_notebooks import NotebookSourceError, cell_ids, read_source

#: A notebook with an intro totals line and three exercises, the first 2 points, the second 3.
NAME = "02_minimal_api"
SOURCE = build_notebooks.SOURCES / f"{NAME}.py"
EX2_TESTS = '"grade_id": "ex2-predict-endpoint-tests", "locked": true, "points": 3,'


def _copy(tmp_path: Path, text: str | None = None) -> Path:
    """A copy of the source in tmp_path/solutions/src/, with `text` instead of its own when given."""
    target = tmp_path / "solutions" / "src" / SOURCE.name
    target.parent.mkdir(parents=True)
    target.write_text(SOURCE.read_text(encoding="utf-8") if text is None else text, encoding="utf-8")
    return target


def _edited(old: str, new: str) -> str:
    text = SOURCE.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{SOURCE.name} no longer holds {old!r} once: update this test"
    return text.replace(old, new)


def test_jupytext_toml_pairs_only_the_solution_notebooks() -> None:
    config = load_jupytext_config(str(PROJECT_ROOT))
    assert config is not None, "jupytext.toml is missing at the repository root"
    notebook = str(build_notebooks.SOLUTIONS / f"{NAME}.ipynb")
    formats = config.default_formats(notebook)
    assert formats, f"jupytext.toml does not pair {notebook}"
    paths = [path for path, _ in paired_paths(notebook, ".ipynb", formats)]
    assert paths == [notebook, str(SOURCE)]
    assert config.default_formats(str(build_notebooks.RELEASE / f"{NAME}.ipynb")) is None, (
        "the release in notebooks/ must not be paired: it is generated"
    )


def test_ids_are_grade_ids_or_content_hashes() -> None:
    nb = read_source(SOURCE)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id:
            assert cell.id == grade_id
        else:
            assert len(cell.id) == 8 and int(cell.id, 16) >= 0, f"not a short hash: {cell.id!r}"
    assert len({cell.id for cell in nb.cells}) == len(nb.cells)


def test_inserting_a_cell_leaves_the_other_ids_alone(tmp_path: Path) -> None:
    before = read_source(_copy(tmp_path)).cells
    new_cell = "# %% [markdown]\n# A new paragraph.\n\n# %%\nprint('a new cell')\n\n"
    marker = "# %% [markdown]\n# ## 2. The contract"
    after = read_source(_copy(tmp_path / "edited", _edited(marker, new_cell + marker))).cells
    assert len(after) == len(before) + 2
    old_ids = [cell.id for cell in before]
    kept = [cell.id for cell in after if cell.id in old_ids]
    assert kept == old_ids, "an inserted cell changed the id of another cell"


def test_identical_cells_get_numbered_ids() -> None:
    cells = [nbformat.v4.new_markdown_cell("Same."), nbformat.v4.new_code_cell("x = 1")]
    cells += [nbformat.v4.new_markdown_cell("Same."), nbformat.v4.new_markdown_cell("Same.")]
    ids = cell_ids(cells)
    assert ids[2:] == [f"{ids[0]}-2", f"{ids[0]}-3"]
    assert ids[0] != ids[1] and cell_ids(cells) == ids


def test_a_points_mismatch_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _copy(tmp_path, _edited(EX2_TESTS, EX2_TESTS.replace('"points": 3', '"points": 2')))
    monkeypatch.setattr(build_notebooks, "SOURCES", source.parent)
    monkeypatch.setattr(build_notebooks, "SOLUTIONS", source.parent.parent)
    assert build_notebooks.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert f"{NAME}.py: Exercise 2 says 3 points in its heading" in err
    assert "(ex2-predict-endpoint-tests) declare 2 points" in err
    assert "the introduction says 7 points, but the graded cells declare 6 points" in err


def test_the_number_of_exercises_is_checked(tmp_path: Path) -> None:
    text = _edited("**Graded.** 3 exercises, 7 points.", "**Graded.** 4 exercises, 7 points.")
    with pytest.raises(NotebookSourceError, match="introduction says 4 exercises, but the notebook has 3"):
        read_source(_copy(tmp_path, text))


def test_a_graded_cell_needs_a_heading(tmp_path: Path) -> None:
    text = _edited('"grade_id": "ex3-latency-summary-tests"', '"grade_id": "ex9-latency-summary-tests"')
    with pytest.raises(NotebookSourceError, match=r"'ex9-latency-summary-tests' \(2 points\) belongs to no"):
        read_source(_copy(tmp_path, text))


def test_a_header_without_the_metadata_filter_fails(tmp_path: Path) -> None:
    text = _edited("#     cell_metadata_filter: all\n", "")
    with pytest.raises(NotebookSourceError, match="lacks 'cell_metadata_filter: all'"):
        read_source(_copy(tmp_path, text))


def test_an_indented_cell_marker_fails(tmp_path: Path) -> None:
    anchor = "class PredictRequest(BaseModel):\n"
    text = _edited(anchor, anchor + "    # %%\n")
    with pytest.raises(NotebookSourceError, match=r"02_minimal_api.py:\d+: an indented '# %%' line"):
        read_source(_copy(tmp_path, text))


def test_metadata_added_in_jupyter_is_saved_in_the_source(tmp_path: Path) -> None:
    """What JupyterLab does: open the built notebook, mark a cell read-only (nbgrader toolbar), save."""
    source = _copy(tmp_path)
    shutil.copy(PROJECT_ROOT / "jupytext.toml", tmp_path / "jupytext.toml")
    notebook = tmp_path / "solutions" / f"{NAME}.ipynb"
    notebook.write_text(build_notebooks.source_notebooks(source.parent)[notebook.name], encoding="utf-8")
    later = time.time() + 600  # as after a build or a checkout: the notebook is newer than its source
    os.utime(notebook, (later, later))
    locked = {"grade": False, "grade_id": "setup-imports", "locked": True, "schema_version": 3}
    locked |= {"solution": False, "task": False}

    async def edit_in_jupyter() -> None:
        manager = jupytext.AsyncTextFileContentsManager(root_dir=str(tmp_path))
        path = f"solutions/{notebook.name}"
        nb = (await manager.get(path))["content"]
        setup = next(cell for cell in nb.cells if cell.source.startswith("import time"))
        setup.metadata["nbgrader"] = locked
        await manager.save({"type": "notebook", "content": nb}, path)

    asyncio.run(edit_in_jupyter())
    assert "# %% nbgrader=" + '{"grade": false, "grade_id": "setup-imports"' in source.read_text()
    cell = next(c for c in read_source(source).cells if c.source.startswith("import time"))
    assert cell.metadata["nbgrader"] == locked and cell.id == "setup-imports"


def test_a_notebook_created_in_jupyter_gets_a_source_the_build_accepts(tmp_path: Path) -> None:
    shutil.copy(PROJECT_ROOT / "jupytext.toml", tmp_path / "jupytext.toml")
    (tmp_path / "solutions" / "src").mkdir(parents=True)
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": read_source(SOURCE).metadata.kernelspec})
    nb.cells = [nbformat.v4.new_markdown_cell("# 08 · New"), nbformat.v4.new_code_cell("x = 1")]
    manager = jupytext.AsyncTextFileContentsManager(root_dir=str(tmp_path))
    asyncio.run(manager.save({"type": "notebook", "content": nb}, "solutions/08_new.ipynb"))
    source = tmp_path / "solutions" / "src" / "08_new.py"
    assert "#     cell_metadata_filter: all\n" in source.read_text()
    assert [cell.source for cell in read_source(source).cells] == ["# 08 · New", "x = 1"]


def test_the_sources_are_ruff_clean() -> None:
    result = subprocess.run(
        [str(build_notebooks.BIN / "ruff"), "check", "--no-cache", str(build_notebooks.SOURCES)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"ruff check solutions/src:\n{result.stdout}{result.stderr}"
