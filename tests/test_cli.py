"""`course-utils`: the doctor never crashes, reports every check with a fix, and usage errors exit 2."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from course_utils import cli


def test_doctor_reports_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["doctor"])
    out = capsys.readouterr().out
    for name in ("python", "packages", "base model", "exported model", "port", "docker"):
        assert f"  {name}" in out, f"doctor did not report {name!r}:\n{out}"
    checks = {c.name: c for c in cli.doctor_checks()}
    assert checks["python"].ok and checks["packages"].ok and checks["base model"].ok, out
    assert code == (0 if all(c.ok for n, c in checks.items() if n != "docker") else 1)


def test_doctor_explains_a_taken_port(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("COURSE_PORT", str(busy.getsockname()[1]))
        check = {c.name: c for c in cli.doctor_checks()}["port"]
    assert not check.ok and "taken" in check.detail and "COURSE_PORT" in check.fix


def test_doctor_turns_a_crashing_check_into_a_failed_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> cli.Check:
        raise OSError("disk on fire")

    monkeypatch.setattr(cli, "_check_port", boom)
    check = {c.name: c for c in cli.doctor_checks()}["port"]
    assert not check.ok and "disk on fire" in check.detail


def test_doctor_flags_a_missing_model(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    check = {c.name: c for c in cli.doctor_checks()}["exported model"]
    assert not check.ok and check.fix == "Run `make model`."


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2


def test_library_errors_exit_1_with_the_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from course_utils import export
    from course_utils.errors import ModelNotBuiltError

    def fail(*args: object, **kwargs: object) -> None:
        raise ModelNotBuiltError("nothing here; run `make model`")

    monkeypatch.setattr(export, "build_model", fail)
    assert cli.main(["build-model", "--out", str(tmp_path)]) == 1
    assert "error: nothing here" in capsys.readouterr().err


def test_grade_command_reports_an_empty_submission(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    submission = tmp_path / "student"
    submission.mkdir()
    assert cli.main(["grade", str(submission), "--no-docker", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "deploy.md is missing" in out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["score"] == 0 and results["tests"]
