"""The capstone rubric: named checks, their points, and a one-line fix-it for each.

Why a table of data and not points scattered through the checks: the points policy (docs/grading.md), the
reports and the calibration tests all read this one tuple, so a change of weights happens in one place.
Points add up to 100; the Docker check is a bonus on top (never needed for full marks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["GRADER_FAILED", "RUBRIC", "TOTAL_POINTS", "Check", "CheckResult", "Status", "check_named"]

#: passed/failed: the check ran. not_run: a check it depends on failed (the reason is in the output).
#: skipped: ungraded on this machine (only the bonus Docker check, when no daemon answers).
#: refused: not graded because the submission is the reference capstone (`grading.reference_copy`).
Status = Literal["passed", "failed", "not_run", "skipped", "refused"]
#: What every check that could not run says when the grader failed (the error itself heads the report).
GRADER_FAILED = "The grader failed before this check; not your fault (the course staff will regrade)."


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the rubric: what is checked, what it is worth, and how to fix a failure."""

    name: str
    title: str
    points: float
    fix: str
    bonus: bool = False

    def passed(self, detail: str) -> CheckResult:
        """Full points, with what was observed."""
        return CheckResult(self, "passed", self.points, detail)

    def failed(self, why: str) -> CheckResult:
        """No points: `why` says what happened; the report adds the fix-it line."""
        return CheckResult(self, "failed", 0.0, why)

    def not_run(self, why: str, *, blocked_by: str) -> CheckResult:
        """No points because check `blocked_by` failed and this one truly cannot run without it.

        The output names the blocking check and shows no fix line: the fix is the other check's.
        """
        return CheckResult(self, "not_run", 0.0, f"Not run: blocked by `{blocked_by}`. {why}")

    def grader_failed(self) -> CheckResult:
        """No points because the grader itself failed before this check; the report's top says why."""
        return self.not_run(GRADER_FAILED, blocked_by="grader_error")

    def refused(self, why: str) -> CheckResult:
        """No points because the whole submission was refused (`why` says so); no fix line either."""
        return CheckResult(self, "refused", 0.0, why)

    def skipped(self, why: str) -> CheckResult:
        """Ungraded on this machine: zero points out of zero (only used for bonus checks)."""
        return CheckResult(self, "skipped", 0.0, why)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check for one submission."""

    check: Check
    status: Status
    score: float
    detail: str

    @property
    def max_score(self) -> float:
        """Points this check counts towards the maximum: 0 for a bonus (its points are extra credit)."""
        return 0.0 if self.check.bonus else self.check.points

    @property
    def output(self) -> str:
        """Feedback text for the student: what happened, why, and (on a failure) the fix.

        Only a failed check shows its fix: a check that did not run has no problem of its own to fix.
        """
        if self.status != "failed":
            return self.detail
        return f"{self.detail}\nFix: {self.check.fix}"


RUBRIC: tuple[Check, ...] = (
    Check(
        "files_present",
        "Required files present",
        5,
        "Hand in src/app.py, Dockerfile, .dockerignore, requirements.txt and deploy.md at the top level.",
    ),
    Check(
        "requirements_pinned",
        "Requirements pinned exactly",
        5,
        "Pin every line of requirements.txt as name==version (pip freeze shows the versions you use).",
    ),
    Check(
        "app_starts",
        "App imports and starts",
        5,
        "Make `uvicorn app:app --app-dir src --port PORT` start quickly: no blocking work at import, no "
        "hard-coded port, read the model folder from MODEL_DIR.",
    ),
    Check(
        "health",
        "GET /health liveness",
        5,
        'Return 200 {"status": "ok", "model_loaded": true|false} from /health without touching the model.',
    ),
    Check(
        "ready",
        "GET /ready readiness",
        5,
        "Return 200 from /ready only once the model is loaded and warmed up, 503 with a reason before "
        "(and when the model cannot be loaded).",
    ),
    Check(
        "predict_schema",
        "POST /predict response schema",
        10,
        'Return 200 {"label": "positive"|"negative", "confidence": float, "model_version": str}.',
    ),
    Check(
        "predict_confidence",
        "Confidence is the label's probability, no raw model outputs",
        5,
        "Apply softmax and return the probability of the returned label (in [0.5, 1]); return logits "
        "nowhere in the body (extra fields may hold probabilities only).",
    ),
    Check(
        "predict_probes",
        "Answers match the exported model on the grader's probe texts",
        15,
        "Serve the exported model from MODEL_DIR (model.int8.onnx), one text as given, map logit column i "
        "to model_card.json labels[i], and return softmax(logits)[label] as the confidence.",
    ),
    Check(
        "predict_validation",
        "422 on empty, missing or wrong-typed text",
        10,
        "Declare `text: str` in a pydantic model and reject empty/whitespace text with a 422 "
        "(e.g. a field_validator or Field(min_length=1) after strip).",
    ),
    Check(
        "predict_too_long",
        "400 beyond 512 tokens",
        5,
        "Tokenise without truncation, and answer 400 with a clear message when a text has more than 512 "
        "tokens (including [CLS]/[SEP]).",
    ),
    Check(
        "latency_logging",
        "One JSON log line per request with latency_ms",
        5,
        "Add a middleware that logs one JSON object per request (method, path, status, latency_ms, "
        "request_id) to stdout.",
    ),
    Check(
        "metrics_families",
        "/metrics is Prometheus text with the latency histogram",
        5,
        "Serve prometheus_client's output on GET /metrics with a Histogram predict_latency_seconds (seconds, "
        "buckets from 0.001).",
    ),
    Check(
        "metrics_counter",
        "Counter predict_requests_total increases per request",
        5,
        "Declare a Counter predict_requests_total on /metrics and call .inc() once per /predict request.",
    ),
    Check(
        "latency_p95",
        "p95 latency within budget at low concurrency",
        5,
        "Load the model once at startup (not per request) and keep blocking work off the event loop.",
    ),
    Check(
        "dockerfile_lint",
        "Dockerfile passes the course lint",
        5,
        "Fix each Dockerfile finding listed above (pinned base, non-root USER, HEALTHCHECK, no secrets).",
    ),
    Check(
        "deploy_doc",
        "deploy.md covers build, run, health checks and monitoring",
        5,
        "Give deploy.md a section (a # heading) per topic that shows how: the build command, the run "
        "command, what /health and /ready answer, where the metrics are (/metrics).",
    ),
    Check(
        "docker_run",
        "Bonus: image builds and answers /health",
        5,
        "Make `docker build` succeed and the container answer GET /health on its port.",
        bonus=True,
    ),
)

TOTAL_POINTS: float = sum(check.points for check in RUBRIC if not check.bonus)


def check_named(name: str) -> Check:
    """The rubric line called `name`; KeyError listing the valid names otherwise."""
    for check in RUBRIC:
        if check.name == name:
            return check
    raise KeyError(f"No rubric check named {name!r}; valid names: {', '.join(c.name for c in RUBRIC)}.")
