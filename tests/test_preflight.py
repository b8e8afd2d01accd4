"""`course-utils serve`'s preflight: what a capstone app lacks is said before serving, not as a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from course_utils.cli import main
from course_utils.config import PROJECT_ROOT
from course_utils.preflight import AppImportError, preflight

STARTER_SRC = PROJECT_ROOT / "capstone" / "src"
ENV = dict(os.environ)


def _app(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(source)
    return folder


def test_the_starter_lacks_everything_but_health_and_ready() -> None:
    result = preflight(STARTER_SRC, env=ENV)
    assert result.present == ("GET /health", "GET /ready")
    assert result.missing == ("POST /predict", "POST /predict/batch", "GET /metrics")
    assert "Not there yet: POST /predict, POST /predict/batch, GET /metrics" in result.summary()


def test_a_complete_app_lacks_nothing(tmp_path: Path) -> None:
    routes = "\n".join(
        f"@app.{method}({path!r})\ndef r{i}(): return {{}}"
        for i, (method, path) in enumerate(
            [("get", "/health"), ("get", "/ready"), ("post", "/predict"), ("post", "/predict/batch")]
        )
    )
    source = (
        f"from fastapi import FastAPI\napp = FastAPI()\n{routes}\n@app.get('/metrics')\ndef m(): return ''\n"
    )
    result = preflight(_app(tmp_path, source), env=ENV)
    assert result.missing == ()
    assert result.summary() == "All 5 endpoints of the contract are there."


def test_an_unfinished_module_is_named_with_the_fix(tmp_path: Path) -> None:
    source = "from fastapi import FastAPI\napp = FastAPI()\n\ndef load():\n    raise NotImplementedError()\n"
    source += "load()\n"
    with pytest.raises(AppImportError) as caught:
        preflight(_app(tmp_path, source), env=ENV)
    message = str(caught.value)
    assert "cannot be imported" in message and "NotImplementedError" in message
    assert "a `raise NotImplementedError` is still in your code" in message


def test_an_app_without_app_object_and_a_folder_without_app_py(tmp_path: Path) -> None:
    with pytest.raises(AppImportError, match="defines no `app`"):
        preflight(_app(tmp_path / "a", "x = 1\n"), env=ENV)
    with pytest.raises(AppImportError, match=r"No app\.py in"):
        preflight(tmp_path / "empty", env=ENV)


def test_serve_without_a_model_says_make_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "no-model"))
    assert main(["serve", "--app-dir", str(STARTER_SRC)]) == 1
    assert "no exported model in MODEL_DIR=" in capsys.readouterr().err


def test_serve_refuses_an_app_that_cannot_be_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model_card.json").write_text("{}")
    monkeypatch.setenv("MODEL_DIR", str(model))
    app_dir = _app(tmp_path / "src", "raise NotImplementedError('load the model')\n")
    assert main(["serve", "--app-dir", str(app_dir)]) == 1
    assert "NotImplementedError: load the model" in capsys.readouterr().err


def test_serve_defaults_to_the_reference_here() -> None:
    from course_utils.cli import _default_app_dir
    from course_utils.config import REFERENCE_SRC

    assert _default_app_dir() == REFERENCE_SRC  # in the student kit (no solutions/): capstone/src
