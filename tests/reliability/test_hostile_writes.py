"""A hostile submission that writes outside its folder (the cases tests/grading/test_hostile.py lacks).

The submission is the grader's mini app (fully correct) plus code at import that writes files: into `~`, into
the temporary folder, next to its own folder (`..`), at an absolute path elsewhere on the machine, and into
the grader's model folder (MODEL_DIR). What the grader prevents, and what it cannot:

- `~` and the temporary folder: the grader gives each run a fresh HOME and TMPDIR (a temporary folder it
  deletes afterwards), so these writes never reach the grader's own home or /tmp. Tested below.
- Any other path the grading user may write to: NOT prevented. The grader runs student code as its own
  user (root in CI) with resource limits but without a filesystem namespace, a read-only bind mount or a
  separate user, so a file written by absolute path, next to the submission, or into MODEL_DIR stays.
  Documented by a strict xfail below (it fails, i.e. alerts, the day the grader gains that isolation),
  and in docs/reliability.md with the mitigation: grade untrusted code as an unprivileged user in a
  throwaway container (`docker run --network=none --read-only` with the submission mounted).

The writes cost no points: the grader grades behaviour over HTTP and cannot see them (documented too).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "grading"))  # the grader tests' helpers

from submissions import MINI_APP, patched, write_fake_model, write_submission

from course_utils.grading import GradeOptions, GradeReport, grade

pytestmark = pytest.mark.slow

MARK = f"hostile-{uuid.uuid4().hex[:12]}"


def _writer(outside: Path) -> str:
    """Code run at import: each write in its own try, so a refused write does not stop the app."""
    targets = {
        "home": "os.path.expanduser('~')",
        "tmp": "tempfile.gettempdir()",
        "parent": "'..'",
        "absolute": repr(str(outside)),
        "model": "os.environ['MODEL_DIR']",
    }
    lines = ["import os, tempfile"]
    for name, folder in targets.items():
        lines.append(
            f"try:\n    open(os.path.join({folder}, '{MARK}-{name}.txt'), 'w').write('planted')\n"
            "except OSError:\n    pass"
        )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GradeReport, dict[str, Path]]]:
    root = tmp_path_factory.mktemp("writes-outside")
    model = write_fake_model(root / "grader-model")  # its own copy: the submission writes into it
    outside = root / "grader-machine"  # stands for any folder of the grading machine
    outside.mkdir()
    imports = "from pydantic import BaseModel, field_validator\n"
    source = patched(MINI_APP, imports, imports + _writer(outside) + "\n")
    submission = write_submission(root / "class" / "student", app_source=source)
    options = GradeOptions(
        model_dir=model,
        docker=False,
        startup_timeout_s=8.0,
        ready_timeout_s=8.0,
        request_timeout_s=2.0,
        http_budget_s=30.0,
        p95_requests=20,
    )
    report = grade(submission, options=options)
    where = {
        "home": Path.home() / f"{MARK}-home.txt",
        "tmp": Path(tempfile.gettempdir()) / f"{MARK}-tmp.txt",
        "parent": submission.parent / f"{MARK}-parent.txt",
        "absolute": outside / f"{MARK}-absolute.txt",
        "model": model / f"{MARK}-model.txt",
    }
    yield report, where
    for path in where.values():  # what the grader could not prevent, removed by the test
        path.unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)


def test_the_writing_submission_is_graded_normally(planted: tuple[GradeReport, dict[str, Path]]) -> None:
    report, _ = planted
    assert report.grader_error is None
    assert report.score == 100, report.to_markdown()


def test_writes_to_home_and_tmp_land_in_the_throwaway_sandbox(
    planted: tuple[GradeReport, dict[str, Path]],
) -> None:
    _, where = planted
    assert not where["home"].exists(), "the submission wrote into the grader's real HOME"
    assert not where["tmp"].exists(), "the submission wrote into the grader's real temporary folder"
    leftovers = list(Path(tempfile.gettempdir()).glob(f"grader-home-*/{MARK}*"))
    assert leftovers == [], f"the sandbox HOME outlived the grading run: {leftovers}"


@pytest.mark.xfail(
    strict=True,
    reason="known gap: the grader has no filesystem isolation; a submission can write wherever the grading "
    "user may (see the module docstring and docs/reliability.md)",
)
def test_writes_outside_the_sandbox_are_prevented(planted: tuple[GradeReport, dict[str, Path]]) -> None:
    _, where = planted
    reached = [name for name in ("parent", "absolute", "model") if where[name].exists()]
    assert reached == [], f"the submission wrote outside its folder: {reached}"
