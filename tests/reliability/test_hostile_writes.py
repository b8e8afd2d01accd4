"""A hostile submission that writes outside its folder (the cases tests/grading/test_hostile.py lacks).

The submission is the grader's mini app (fully correct) plus code at import that writes files: into `~`, into
the temporary folder, next to its own folder (`..`), at an absolute path elsewhere on the machine, into the
grader's model folder (MODEL_DIR), next to its original folder (COURSE_GRADER_SUBMISSION names it) and into
the world-writable /tmp. What the grader does about each:

- `~` and the temporary folder: each run gets a fresh HOME and TMPDIR that is deleted afterwards, so these
  writes never reach the grader's own home or temporary folder.
- `..`, an absolute path, MODEL_DIR, the original folder: the grader (root) runs the submission as a
  sandbox uid of its own that owns nothing but that HOME, on read-only copies of the submission and the
  model, so the kernel refuses these writes (`course_utils.grading.isolation`).
- /tmp itself is world-writable, so that write succeeds; the grader removes what the uid left there.

Isolation needs a root grader whose Python the sandbox uid can run: elsewhere (a laptop) these tests skip,
and in CI they fail. The writes cost no points: the grader grades behaviour over HTTP (documented too).
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

from submissions import MINI_APP, patched, require_isolation, write_fake_model, write_submission

from course_utils.grading import GradeOptions, GradeReport, grade

pytestmark = pytest.mark.slow

MARK = f"hostile-{uuid.uuid4().hex[:12]}"
_PREVENTED = ("parent", "absolute", "model", "original")


def _writer(outside: Path) -> str:
    """Code run at import: each write in its own try, so a refused write does not stop the app."""
    targets = {
        "home": "os.path.expanduser('~')",
        "tmp": "tempfile.gettempdir()",
        "parent": "'..'",
        "absolute": repr(str(outside)),
        "model": "os.environ['MODEL_DIR']",
        "original": "os.environ['COURSE_GRADER_SUBMISSION']",
        "shared_tmp": "'/tmp'",
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
    require_isolation()
    root = tmp_path_factory.mktemp("writes-outside")
    model = write_fake_model(root / "grader-model")  # its own copy: the submission writes into it
    outside = root / "grader-machine"  # stands for any folder of the grading machine
    outside.mkdir(mode=0o755)
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
        "original": submission / f"{MARK}-original.txt",
        "shared_tmp": Path("/tmp") / f"{MARK}-shared_tmp.txt",
    }
    yield report, where
    for path in where.values():  # in case the grader failed to prevent or sweep one of them
        path.unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)


def test_the_writing_submission_is_graded_normally(planted: tuple[GradeReport, dict[str, Path]]) -> None:
    report, _ = planted
    assert report.grader_error is None
    assert report.score == 100, report.to_markdown()
    assert not any("isolation" in note for note in report.notes), report.notes


def test_writes_to_home_and_tmp_land_in_the_throwaway_sandbox(
    planted: tuple[GradeReport, dict[str, Path]],
) -> None:
    _, where = planted
    assert not where["home"].exists(), "the submission wrote into the grader's real HOME"
    assert not where["tmp"].exists(), "the submission wrote into the grader's real temporary folder"
    temp = Path(tempfile.gettempdir())
    leftovers = [*temp.glob(f"grader-home-*/{MARK}*"), *temp.glob(f"course-grader/run-*/**/{MARK}*")]
    assert leftovers == [], f"the sandbox HOME outlived the grading run: {leftovers}"


def test_writes_outside_the_sandbox_are_prevented(planted: tuple[GradeReport, dict[str, Path]]) -> None:
    _, where = planted
    reached = [name for name in _PREVENTED if where[name].exists()]
    assert reached == [], f"the submission wrote outside its sandbox: {reached}"


def test_what_the_sandbox_uid_left_in_the_shared_tmp_is_swept(
    planted: tuple[GradeReport, dict[str, Path]],
) -> None:
    _, where = planted
    assert not where["shared_tmp"].exists(), "the file the sandbox uid wrote to /tmp outlived the run"
