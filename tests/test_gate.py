"""The evaluation gate passes the default model and fails, naming the check, on each kind of shortfall."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from course_utils import cli
from course_utils.config import get_settings
from course_utils.data import load_sentiment
from course_utils.gate import GateCheck, GateThresholds, run_gate, validate_data


@pytest.fixture(scope="module")
def model_dir() -> Path:
    folder = get_settings().model_dir
    assert (folder / "model_card.json").is_file(), f"{folder} is not built: run `make model` (make test does)"
    return folder


def _copy(model_dir: Path, target: Path, *, real: tuple[str, ...] = ("model_card.json",)) -> Path:
    """Symlinks to the model's files, with real copies of the ones a test will change."""
    target.mkdir()
    for path in model_dir.iterdir():
        if path.name in real:
            shutil.copy2(path, target / path.name)
        else:
            (target / path.name).symlink_to(path)
    return target


def _failed(checks: list[GateCheck]) -> set[str]:
    return {c.name for c in checks if not c.ok}


def test_the_default_model_passes(model_dir: Path) -> None:
    checks = run_gate(model_dir)
    assert not _failed(checks), [c for c in checks if not c.ok]
    assert len(checks) >= 15


def test_a_stricter_threshold_fails_exactly_the_accuracy_rows(model_dir: Path) -> None:
    failed = _failed(run_gate(model_dir, GateThresholds(min_accuracy=0.999)))
    assert failed and all(name.endswith("accuracy") for name in failed)


def test_an_edited_card_is_caught_by_hash_and_reevaluation(model_dir: Path, tmp_path: Path) -> None:
    folder = _copy(model_dir, tmp_path / "m")
    card = json.loads((folder / "model_card.json").read_text())
    card["metrics"]["onnx_int8"]["test_accuracy"] = 0.9999  # a claim the weights do not support
    (folder / "model_card.json").write_text(json.dumps(card))
    assert "ONNX INT8 re-evaluated" in _failed(run_gate(folder))


def test_a_changed_file_and_an_unlisted_file_fail(model_dir: Path, tmp_path: Path) -> None:
    folder = _copy(model_dir, tmp_path / "m", real=("model_card.json", "config.json"))
    (folder / "config.json").write_text("{}")
    (folder / "notes.txt").write_text("not part of the release")
    failed = _failed(run_gate(folder))
    assert {"file hashes", "no unlisted files"} <= failed


def test_bad_parity_fails(model_dir: Path, tmp_path: Path) -> None:
    folder = _copy(model_dir, tmp_path / "m")
    card = json.loads((folder / "model_card.json").read_text())
    card["parity"]["onnx_int8_vs_torch_fp32"]["label_agreement"] = 0.5
    (folder / "model_card.json").write_text(json.dumps(card))
    assert "ONNX INT8 label agreement" in _failed(run_gate(folder))


def test_a_missing_card_is_one_failed_row_not_a_crash(tmp_path: Path) -> None:
    checks = run_gate(tmp_path)
    assert len(checks) == 1 and not checks[0].ok and "make model" in checks[0].detail


def test_data_validation_catches_schema_balance_and_length_shift() -> None:
    data = load_sentiment("all")
    assert not _failed(validate_data(data))
    broken = [replace(data[0], label="neutral"), replace(data[1], id=data[2].id), *data[2:]]
    assert "data schema" in _failed(validate_data(broken))
    unbalanced = [e for e in data if not (e.split == "test" and e.label == "negative")]
    assert "test label balance" in _failed(validate_data(unbalanced))
    longer = [replace(e, text=e.text + " and more" * 20) if e.split == "val" else e for e in data]
    assert "val length vs train (PSI)" in _failed(validate_data(longer))


def test_cli_exit_codes(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["gate", str(model_dir)]) == 0
    assert "gate passed" in capsys.readouterr().out
    assert cli.main(["gate", str(model_dir), "--min-accuracy", "0.999"]) == 1
    out = capsys.readouterr().out
    assert "gate FAILED" in out and "FAIL" in out
