"""Grade one capstone submission: static checks, then the app in a sandbox, then the HTTP contract.

`grade(path)` always returns a complete `GradeReport` with one result per rubric line, whatever the
submission does: a check that cannot run says why (`not_run`), and an unexpected failure of the grader
itself is recorded as `grader_error` instead of being blamed on the student.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from course_utils import _ports
from course_utils.config import get_settings
from course_utils.errors import CourseUtilsError
from course_utils.grading import contract, static_checks
from course_utils.grading.docker_check import check_docker
from course_utils.grading.http_probe import HttpProbe, Reply
from course_utils.grading.report import GradeReport, write_reports
from course_utils.grading.rubric import RUBRIC, CheckResult, check_named
from course_utils.grading.sandbox import Limits, SandboxedApp

__all__ = ["GradeOptions", "GraderSetupError", "grade"]


class GraderSetupError(CourseUtilsError):
    """The grader cannot grade at all (no model folder, not a folder): nothing is the student's fault."""


@dataclass(frozen=True)
class GradeOptions:
    """Time limits and budgets of one grading run; defaults are generous for a 2-core laptop."""

    model_dir: Path | None = None
    startup_timeout_s: float = 30.0
    ready_timeout_s: float = 30.0
    request_timeout_s: float = 5.0
    http_budget_s: float = 90.0
    no_model_window_s: float = 1.5
    p95_budget_ms: float = 500.0
    p95_requests: int = 40
    p95_concurrency: int = 2
    limits: Limits = field(default_factory=Limits)
    docker: bool | None = None
    docker_base_image: str | None = None
    python: str = sys.executable


def grade(
    path: Path | str,
    *,
    out: Path | str | None = None,
    student: str | None = None,
    options: GradeOptions | None = None,
) -> GradeReport:
    """Grade the capstone folder `path`; write results.json, feedback.md and grade.csv to `out` if given.

    >>> report = grade("solutions/capstone")  # doctest: +SKIP
    >>> report.score, report.max_score  # doctest: +SKIP
    (100.0, 100.0)
    """
    options = options or GradeOptions()
    root = Path(path).resolve()
    if not root.is_dir():
        raise GraderSetupError(
            f"Submission {str(path)!r} is not a folder. Pass the capstone folder (with src/app.py)."
        )
    model_dir = (options.model_dir or get_settings().model_dir).resolve()
    if not (model_dir / "model_card.json").is_file():
        raise GraderSetupError(
            f"Model folder {str(model_dir)!r} has no model_card.json, so predictions cannot be checked. "
            "Run `make model`, or pass model_dir=/ set MODEL_DIR to an exported model."
        )
    started = time.monotonic()
    results: dict[str, CheckResult] = {}
    notes: list[str] = []
    error: str | None = None
    try:
        for static in (
            static_checks.check_files,
            static_checks.check_requirements,
            static_checks.check_dockerfile,
            static_checks.check_deploy_doc,
        ):
            result = static(root)
            results[result.check.name] = result
        _run_app_checks(root, model_dir, options, results)
        docker = check_docker(
            root,
            enabled=options.docker,
            model_dir=model_dir,
            base_image=options.docker_base_image,
            timeout_s=options.startup_timeout_s,
        )
        results[docker.check.name] = docker
        if docker.status == "skipped":
            notes.append(f"Bonus Docker check: {docker.detail}")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    complete = [
        results.get(check.name)
        or check.not_run(f"Not checked: the grader failed before this check ({error}).")
        for check in RUBRIC
    ]
    report = GradeReport(
        student=student or root.name,
        submission=root,
        results=complete,
        execution_time_s=time.monotonic() - started,
        notes=notes,
        grader_error=error,
    )
    if out is not None:
        write_reports(report, Path(out))
    return report


def _child_env(model_dir: Path, home: Path, python: str) -> dict[str, str]:
    """A small, explicit environment: nothing of the grader's own environment reaches student code."""
    return {
        "PATH": f"{Path(python).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "NO_PROXY": "*",
        "MODEL_DIR": str(model_dir),
    }


_HTTP_CHECKS = (
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
)


def _run_app_checks(
    root: Path, model_dir: Path, options: GradeOptions, results: dict[str, CheckResult]
) -> None:
    """app_starts and every HTTP check, from one run of the app (plus a short run without a model)."""
    starts = check_named("app_starts")
    if not (root / "src" / "app.py").is_file():
        results["app_starts"] = starts.failed("src/app.py is missing, so there is no app to start.")
        for name in _HTTP_CHECKS:
            results[name] = check_named(name).not_run("Not checked: there is no src/app.py.")
        return
    with tempfile.TemporaryDirectory(prefix="grader-home-") as home:
        env = _child_env(model_dir, Path(home), options.python)
        app = SandboxedApp(
            root / "src",
            port=_ports.free_port(),
            env=env,
            cwd=root,
            limits=options.limits,
            python=options.python,
        )
        with app:
            outcome = app.wait_until_answering(options.startup_timeout_s)
            if not outcome.ok:
                output = _tail(app.output())
                results["app_starts"] = starts.failed(
                    f"The app did not start: {outcome.detail}.\nOutput:\n{output}"
                )
                for name in _HTTP_CHECKS:
                    results[name] = check_named(name).not_run(
                        "Not checked: the app did not start (see above)."
                    )
                return
            results["app_starts"] = starts.passed(f"uvicorn app:app {outcome.detail}.")
            probe = HttpProbe(
                app.url, request_timeout_s=options.request_timeout_s, budget_s=options.http_budget_s
            )
            try:
                ready = _run_http_checks(probe, app, options, results)
            finally:
                probe.close()
        results["ready"] = contract.check_ready_when_loaded(
            ready, _ready_without_model(root, Path(home), options) if ready.status == 200 else ""
        )


def _run_http_checks(
    probe: HttpProbe, app: SandboxedApp, options: GradeOptions, results: dict[str, CheckResult]
) -> Reply:
    results["health"] = contract.check_health(probe)
    ready = contract.wait_for_ready(probe, options.ready_timeout_s)
    for result in contract.check_predict(probe):
        results[result.check.name] = result
    results["predict_validation"] = contract.check_validation(probe)
    results["predict_too_long"] = contract.check_too_long(probe)
    for result in contract.check_metrics(probe):
        results[result.check.name] = result
    results["latency_logging"] = contract.check_latency_logging(app.output, probe.successes["POST /predict"])
    hung = probe.gave_up("/predict")
    if hung:
        results["latency_p95"] = check_named("latency_p95").failed(f"Not measured: {hung}.")
    else:
        results["latency_p95"] = contract.check_p95(
            app.url,
            budget_ms=options.p95_budget_ms,
            n_requests=options.p95_requests,
            concurrency=options.p95_concurrency,
            timeout_s=options.request_timeout_s,
        )
    return ready


def _ready_without_model(root: Path, home: Path, options: GradeOptions) -> str:
    """Start the app with an empty MODEL_DIR; '' if /ready never says 200, else what went wrong."""
    empty = home / "no-model"
    empty.mkdir(exist_ok=True)
    env = _child_env(empty, home, options.python)
    with SandboxedApp(
        root / "src", port=_ports.free_port(), env=env, cwd=root, limits=options.limits, python=options.python
    ) as app:
        outcome = app.wait_until_answering(options.startup_timeout_s)
        if not outcome.ok:
            return ""  # refusing to start without a model never routes traffic to it: readiness holds
        probe = HttpProbe(app.url, request_timeout_s=options.request_timeout_s, budget_s=10.0)
        try:
            deadline = time.monotonic() + options.no_model_window_s
            while time.monotonic() < deadline:
                reply = probe.send("GET", "/ready")
                if reply.status == 200:
                    return (
                        "GET /ready answered 200 while MODEL_DIR pointed at an empty folder (no model could "
                        "be loaded): traffic would be sent to a service that cannot predict."
                    )
                if reply.status is None:
                    break
                time.sleep(0.2)  # observation window poll
        finally:
            probe.close()
    return ""


def _tail(text: str, n_lines: int = 25, n_chars: int = 4000) -> str:
    lines = text.rstrip().splitlines()[-n_lines:]
    return "\n".join(lines)[-n_chars:] or "(no output)"
