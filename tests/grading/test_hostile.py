"""Hostile submissions: each is graded correctly within its time limit, and a batch of them finishes.

The grader never imports student code; these apps hang, crash, fork, flood their output, grab ports, lie
about equality, or write to stderr, and the grader must still produce a complete, fair report.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from submissions import MINI_APP, patched, write_submission

from course_utils import ports
from course_utils.grading import GradeOptions, GradeReport, grade_all

_IMPORTS = "from pydantic import BaseModel, field_validator\n"


def _at_import(code: str) -> str:
    """The mini app with `code` run at import, after its own imports."""
    return patched(MINI_APP, _IMPORTS, _IMPORTS + code + "\n")


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    """A port another process (this test) already listens on."""
    sock = ports.bind_socket("127.0.0.1", 0)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def hostile(hostile_root: Path, fast_options: GradeOptions, busy_port: int) -> dict[str, GradeReport]:
    root = hostile_root
    fixed_free_port = ports.free_port()
    apps = {
        "hang_at_import": _at_import("while True:\n    pass"),
        "crash_at_import": _at_import("raise RuntimeError('model file not found')"),
        "forks": _at_import(
            "import os, time\n"
            "for _ in range(20):\n"
            "    if os.fork() == 0:\n"
            "        os.setsid()\n"
            "        time.sleep(600)\n"
            "        os._exit(0)"
        ),
        "huge_output": _at_import(
            "import sys\nfor _ in range(20000):\n    sys.stdout.write('x' * 2000 + '\\n')"
        ),
        "busy_fixed_port": _at_import(
            f"import uvicorn\nuvicorn.run('app:app', host='127.0.0.1', port={busy_port})"
        ),
        "ignores_port": _at_import(
            "import socket\n"
            "_sock = socket.socket()\n"
            f"_sock.bind(('127.0.0.1', {fixed_free_port}))\n"
            "_sock.listen()\n"
            "import time\n"
            "time.sleep(600)"
        ),
        "always_equal": patched(
            _at_import(
                "class Label(str):\n"
                "    def __eq__(self, other):\n"
                "        return True\n"
                "    __hash__ = str.__hash__"
            ),
            'label = "positive" if score >= 0 else "negative"',
            'label = Label("positive")',
        ),
        "stderr_noise": _at_import(
            "import sys, warnings\n"
            "warnings.warn('pydantic is old', DeprecationWarning)\n"
            "print('WARNING: something noisy on stderr', file=sys.stderr)"
        ),
        "hang_at_request": patched(
            MINI_APP,
            "def predict(body: PredictIn):\n",
            "def predict(body: PredictIn):\n    time.sleep(600)\n",
        ),
    }
    for name, source in apps.items():
        write_submission(root / name, app_source=source)
    started = time.monotonic()
    reports = {r.student: r for r in grade_all(root, jobs=2, out=root / "_out", options=fast_options)}
    reports["_batch_seconds"] = time.monotonic() - started  # type: ignore[assignment]
    return reports


def _lost(report: GradeReport) -> set[str]:
    return {r.check.name for r in report.results if r.score < r.max_score}


_HTTP = {
    "app_starts",
    "health",
    "ready",
    "predict_schema",
    "predict_confidence",
    "predict_probes",
    "predict_validation",
    "predict_too_long",
    "latency_logging",
    "metrics_families",
    "metrics_counter",
    "latency_p95",
}


@pytest.mark.parametrize("name", ["hang_at_import", "crash_at_import", "busy_fixed_port", "ignores_port"])
def test_app_that_never_serves_loses_the_http_checks_only(hostile: dict[str, GradeReport], name: str) -> None:
    report = hostile[name]
    assert _lost(report) == _HTTP, report.to_markdown()
    assert report.score == 20  # the four file checks
    assert report.grader_error is None
    assert report.execution_time_s < 20


def test_messages_say_what_happened(hostile: dict[str, GradeReport], busy_port: int) -> None:
    assert "blocks" in hostile["hang_at_import"].result("app_starts").detail
    assert "model file not found" in hostile["crash_at_import"].result("app_starts").detail
    assert "exited with code" in hostile["busy_fixed_port"].result("app_starts").detail
    assert "ignores --port" in hostile["ignores_port"].result("app_starts").detail


@pytest.mark.parametrize("name", ["forks", "huge_output", "stderr_noise"])
def test_noisy_but_correct_apps_get_full_marks(hostile: dict[str, GradeReport], name: str) -> None:
    report = hostile[name]
    assert report.score == 100, report.to_markdown()


def test_no_process_of_any_submission_survives(hostile: dict[str, GradeReport], hostile_root: Path) -> None:
    """Forked, setsid-ed children included (other graders may run on this machine: look only at ours).

    Ours: the command line names a submission folder (without isolation), or the environment does
    (COURSE_GRADER_SUBMISSION; with isolation the command line names the staged copy).
    """
    survivors = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            origin = proc.environ().get("COURSE_GRADER_SUBMISSION", "")
            if origin.startswith(str(hostile_root)) or any(
                str(hostile_root) in part for part in proc.info["cmdline"] or []
            ):
                survivors.append(proc)
    assert survivors == []


def test_equality_tricks_do_not_fool_the_grader(hostile: dict[str, GradeReport]) -> None:
    report = hostile["always_equal"]
    assert _lost(report) == {"predict_probes"}, report.to_markdown()
    assert "10/20" in report.result("predict_probes").detail


def test_hang_at_request_is_bounded(hostile: dict[str, GradeReport]) -> None:
    report = hostile["hang_at_request"]
    assert {"predict_schema", "predict_probes", "latency_p95", "metrics_counter"} <= _lost(report)
    assert "health" not in _lost(report)
    assert report.execution_time_s < 30, report.execution_time_s


def test_the_batch_finishes_in_bounded_time(hostile: dict[str, GradeReport]) -> None:
    assert float(hostile["_batch_seconds"]) < 90  # type: ignore[arg-type]
    outs = [r for k, r in hostile.items() if not k.startswith("_")]
    assert all(r.grader_error is None for r in outs)
    assert all(len(r.results) == 17 for r in outs)
