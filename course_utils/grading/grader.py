"""Grade one capstone submission: static checks, then the app in a sandbox, then the HTTP contract.

`grade(path)` always returns a complete `GradeReport` with one result per rubric line, whatever the
submission does: a check that cannot run says why (`not_run`), and an unexpected failure of the grader
itself is recorded as `grader_error` instead of being blamed on the student. A submission that is the
reference capstone handed in again is refused before anything runs (`reference_copy`): every line
`refused`, 0 points, and the report says why.

The app runs in an `isolation.workspace`: as a sandbox uid of its own on read-only copies of the
submission and model when the grader is root, else as the grader's user (and the report says so).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from course_utils import ports
from course_utils.config import get_settings
from course_utils.errors import CourseUtilsError
from course_utils.grading import contract, predictions, readiness, static_checks
from course_utils.grading.docker_check import check_docker
from course_utils.grading.http_probe import HttpProbe
from course_utils.grading.isolation import DEFAULT_FIRST_UID, DEFAULT_SLOTS, Workspace, workspace
from course_utils.grading.model_answers import ModelAnswers, model_answers
from course_utils.grading.probe_set import ProbeSet, default_probes_file, load_probes
from course_utils.grading.reference_copy import default_reference_dir, match_reference
from course_utils.grading.report import GradeReport, write_reports
from course_utils.grading.rubric import RUBRIC, CheckResult, check_named
from course_utils.grading.sandbox import Limits, SandboxedApp

__all__ = ["GradeOptions", "GraderSetupError", "grade"]


class GraderSetupError(CourseUtilsError):
    """The grader cannot grade at all (no model folder, not a folder): nothing is the student's fault."""


@dataclass(frozen=True)
class GradeOptions:
    """Time limits, budgets and isolation of one grading run; defaults are generous for a 2-core laptop.

    `isolation`: None (default) runs the app as a sandbox uid when the grader is root and that uid can run
    `python`, else as the grader's user with a note in the report; True makes a missing isolation a grader
    error; False turns it off. Sandbox uids are `sandbox_uid .. sandbox_uid + sandbox_slots - 1` (gid =
    uid, no account needed, none may have one); concurrent jobs on the machine get distinct uids, so
    `sandbox_slots` bounds how many submissions are graded at once.

    `ready_idle_s`: the grader waits up to `ready_timeout_s` for `/ready` to say 200, but stops earlier once
    the app's processes have used almost no CPU for `ready_idle_s` seconds (nothing is loading, so nothing
    will change: `readiness.py`); 0 always waits the whole `ready_timeout_s`.

    `p95_attempts`: load runs of the `latency_p95` check; a failed run is measured again, so a correct
    service stalled by a busy machine (a class graded in parallel) keeps its points.

    `probes_file`: the hidden probe texts (JSON lines); by default `solutions/grading/probes.jsonl` when
    this is the instructor's repository. None sends the public sample (a student's self-grading).

    `reference_dir`: the reference capstone; a submission holding most of its answer lines is refused
    (`reference_copy`). By default `solutions/capstone` when this is the instructor's repository, else None
    (the student kit's self-grader has no reference, so no check). Grading `reference_dir` itself is always
    allowed (`course-utils grade solutions/capstone`, the instructor's dry run); `allow_reference=True`
    allows a copy of it too (e.g. a Gradescope dry-run bundle whose submission is the reference).
    """

    model_dir: Path | None = None
    startup_timeout_s: float = 30.0
    ready_timeout_s: float = 30.0
    ready_idle_s: float = 3.0
    request_timeout_s: float = 5.0
    http_budget_s: float = 90.0
    no_model_window_s: float = 1.5
    p95_budget_ms: float = 500.0
    p95_requests: int = 40
    p95_concurrency: int = 2
    p95_attempts: int = 2
    limits: Limits = field(default_factory=Limits)
    docker: bool | None = None
    docker_base_image: str | None = None
    python: str = sys.executable
    isolation: bool | None = None
    sandbox_uid: int = DEFAULT_FIRST_UID
    sandbox_slots: int = DEFAULT_SLOTS
    probes_file: Path | None = field(default_factory=default_probes_file)
    reference_dir: Path | None = field(default_factory=default_reference_dir)
    allow_reference: bool = False

    def __post_init__(self) -> None:
        if self.sandbox_uid < 1000 or self.sandbox_slots < 1:
            raise ValueError(
                f"sandbox_uid={self.sandbox_uid!r}, sandbox_slots={self.sandbox_slots!r}: pass a first uid "
                f"of at least 1000 that no account uses (default {DEFAULT_FIRST_UID}) and at least one slot."
            )


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
    try:
        refusal = _reference_refusal(Path(path), root, options)
    except Exception as exc:  # a crash of this check is the grader's fault, never the student's
        failure = f"checking for a copy of the reference: {type(exc).__name__}: {exc}"
        seconds = time.monotonic() - started
        return _finish(GradeReport.grader_failed(student or root.name, root, failure, seconds), out)
    if refusal is not None:
        return _finish(_refused(root, student, started, refusal), out)
    probes = load_probes(options.probes_file)
    try:
        answers = model_answers(model_dir, tuple(probe.text for probe in probes.probes))
    except CourseUtilsError as exc:
        raise GraderSetupError(f"The grader cannot compute its model's answers: {exc}") from exc
    results: dict[str, CheckResult] = {}
    notes: list[str] = []
    if not probes.hidden:
        notes.append(
            f"Predictions were checked on {probes.source}: a self-grading run. The course grades on hidden "
            "probe texts with the same rule (answer as the exported model does)."
        )
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
        _run_app_checks(root, model_dir, options, (probes, answers), results, notes)
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
    complete = [results.get(check.name) or check.grader_failed() for check in RUBRIC]
    # Feedback quotes what the app sent back, and an app may echo a hidden probe: cut those texts out.
    report = GradeReport(
        student=student or root.name,
        submission=root,
        results=[replace(result, detail=probes.redact(result.detail)) for result in complete],
        execution_time_s=time.monotonic() - started,
        notes=[probes.redact(note) for note in notes],
        grader_error=probes.redact(error) if error else error,
    )
    return _finish(report, out)


def _finish(report: GradeReport, out: Path | str | None) -> GradeReport:
    if out is not None:
        write_reports(report, Path(out))
    return report


def _reference_refusal(given: Path, root: Path, options: GradeOptions) -> str | None:
    """The refusal message when `root` (the resolved `given` path) is a copy of the reference, else None.

    Never with `allow_reference`, nor for the reference folder itself (the instructor's dry run). "Itself"
    is judged on the path as given, made absolute without following symlinks: a submission that is a
    symlink to the reference resolves to it, but is still a copy handed in.
    """
    reference = options.reference_dir
    if reference is None or options.allow_reference:
        return None
    if Path(os.path.abspath(given)) in (Path(os.path.abspath(reference)), reference.resolve()):
        return None
    match = match_reference(root, reference.resolve())
    return match.message() if match.refused else None


def _refused(root: Path, student: str | None, started: float, refusal: str) -> GradeReport:
    """A complete report in which nothing ran: the submission is the reference handed in."""
    why = "Not graded: this submission is the reference capstone (see 'Not graded' above)."
    return GradeReport(
        student=student or root.name,
        submission=root,
        results=[check.refused(why) for check in RUBRIC],
        execution_time_s=time.monotonic() - started,
        refusal=refusal,
    )


def _child_env(model_dir: Path, home: Path, python: str, submission: Path) -> dict[str, str]:
    """A small, explicit environment: nothing of the grader's own environment reaches student code.

    COURSE_GRADER_SUBMISSION names the original folder, so a stray process can be traced (`ps eww`).
    """
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
        "COURSE_GRADER_SUBMISSION": str(submission),
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
    root: Path,
    model_dir: Path,
    options: GradeOptions,
    expected: tuple[ProbeSet, ModelAnswers],
    results: dict[str, CheckResult],
    notes: list[str],
) -> None:
    """app_starts and every HTTP check, from one run of the app (plus a short run without a model)."""
    starts = check_named("app_starts")
    if not (root / "src" / "app.py").is_file():
        results["app_starts"] = starts.failed("src/app.py is missing, so there is no app to start.")
        for name in _HTTP_CHECKS:
            results[name] = check_named(name).not_run("There is no src/app.py.", blocked_by="app_starts")
        return
    with workspace(
        root,
        model_dir,
        python=options.python,
        isolation=options.isolation,
        first_uid=options.sandbox_uid,
        slots=options.sandbox_slots,
    ) as space:
        if space.note:
            notes.append(space.note)
        with _sandboxed_app(root, space, space.model_dir, options) as app:
            if app.note:  # e.g. no resource limits on this OS: the report says what was not applied
                notes.append(app.note)
            outcome = app.wait_until_answering(options.startup_timeout_s)
            if not outcome.ok:
                output = _tail(app.output())
                results["app_starts"] = starts.failed(
                    f"The app did not start: {outcome.detail}.\nOutput:\n{output}"
                )
                for name in _HTTP_CHECKS:
                    results[name] = check_named(name).not_run(
                        "The app did not start (see app_starts).", blocked_by="app_starts"
                    )
                return
            results["app_starts"] = starts.passed(f"uvicorn app:app {outcome.detail}.")
            probe = HttpProbe(
                app.url, request_timeout_s=options.request_timeout_s, budget_s=options.http_budget_s
            )
            try:
                ready = _run_http_checks(probe, app, options, expected, results)
            finally:
                probe.close()
        results["ready"] = readiness.check_ready_when_loaded(
            ready, _ready_without_model(root, space, options) if ready.reply.status == 200 else ""
        )


def _sandboxed_app(root: Path, space: Workspace, model_dir: Path, options: GradeOptions) -> SandboxedApp:
    """The submission's app in `space` (as its sandbox user, if any) with MODEL_DIR=`model_dir`."""
    return SandboxedApp(
        space.app_dir,
        port=ports.free_port(),
        env=_child_env(model_dir, space.home, options.python, root),
        cwd=space.cwd,
        limits=options.limits,
        python=options.python,
        user=space.user,
    )


def _run_http_checks(
    probe: HttpProbe,
    app: SandboxedApp,
    options: GradeOptions,
    expected: tuple[ProbeSet, ModelAnswers],
    results: dict[str, CheckResult],
) -> readiness.ReadyWait:
    results["health"] = contract.check_health(probe)
    ready = readiness.wait_for_ready(
        probe, options.ready_timeout_s, cpu=app.cpu_times, idle_s=options.ready_idle_s
    )
    for result in predictions.check_predict(probe, *expected):
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
            attempts=options.p95_attempts,
        )
    return ready


def _ready_without_model(root: Path, space: Workspace, options: GradeOptions) -> str:
    """Start the app with an empty MODEL_DIR; '' if /ready never says 200, else what went wrong."""
    with _sandboxed_app(root, space, space.empty_model_dir, options) as app:
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
