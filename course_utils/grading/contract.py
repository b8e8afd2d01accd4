"""HTTP checks of the capstone contract against a running submission (docs/contracts.md, DESIGN.md).

Each function sends its own requests through an `HttpProbe` and returns a `CheckResult` whose text says
what was sent, what came back, and why that fails. Values are compared after `json.loads` with exact types
(`type(x) is str`), so only what a real client would see counts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from course_utils.data import LABELS
from course_utils.grading.http_probe import HttpProbe, Reply, is_number
from course_utils.grading.probe_set import PROBE_PASS_FRACTION, PROBES
from course_utils.grading.rubric import CheckResult, check_named

__all__ = [
    "LABELS",
    "check_health",
    "check_latency_logging",
    "check_metrics",
    "check_p95",
    "check_predict",
    "check_ready_when_loaded",
    "check_too_long",
    "check_validation",
    "predict_count",
    "wait_for_ready",
]

SAMPLE_TEXT = "I really enjoyed this, it was great."
_LOGIT_KEYS = ("logits", "logit", "scores", "raw_scores", "raw")


def _predict(probe: HttpProbe, text: Any) -> Reply:
    return probe.send("POST", "/predict", json_body={"text": text})


def check_health(probe: HttpProbe) -> CheckResult:
    """GET /health -> 200 {"status": "ok", "model_loaded": bool}."""
    check = check_named("health")
    reply = probe.send("GET", "/health")
    if reply.status != 200:
        return check.failed(f"GET /health got {reply.describe()}; expected HTTP 200.")
    body = reply.body
    if type(body) is not dict or body.get("status") != "ok" or type(body.get("status")) is not str:
        return check.failed(f'GET /health returned {reply.text[:200]!r}; expected "status": "ok".')
    if type(body.get("model_loaded")) is not bool:
        return check.failed(f"GET /health returned {reply.text[:200]!r}; expected a boolean model_loaded.")
    return check.passed(f"GET /health -> 200 {reply.text[:120]}")


def wait_for_ready(probe: HttpProbe, timeout_s: float) -> Reply:
    """Poll GET /ready until 200 or `timeout_s`; return the last /ready reply.

    Then, within the same time, poll POST /predict while it answers 503: a service whose /ready says 200
    too early loses the `ready` points only, not every prediction check as well.
    """
    deadline = time.monotonic() + timeout_s
    reply = probe.send("GET", "/ready")
    while reply.status != 200 and reply.status is not None and time.monotonic() < deadline:
        time.sleep(0.2)  # readiness poll interval
        reply = probe.send("GET", "/ready")
    while time.monotonic() < deadline and _predict(probe, SAMPLE_TEXT).status == 503:
        time.sleep(0.2)  # still loading although /ready said otherwise
    return reply


def check_ready_when_loaded(ready: Reply, without_model: str) -> CheckResult:
    """/ready is 200 once loaded (`ready`); `without_model` says what went wrong without a model, or ''."""
    check = check_named("ready")
    if ready.status != 200:
        return check.failed(f"GET /ready never answered 200 with a valid model (last: {ready.describe()}).")
    if without_model:
        return check.failed(without_model)
    return check.passed("GET /ready -> 200 with the model, and not 200 with a missing model.")


def check_predict(probe: HttpProbe) -> tuple[CheckResult, CheckResult, CheckResult]:
    """The response schema, the confidence range and the probe-set accuracy, from the same replies."""
    schema, confidence, probes = (
        check_named("predict_schema"),
        check_named("predict_confidence"),
        check_named("predict_probes"),
    )
    first = _predict(probe, SAMPLE_TEXT)
    problem = _schema_problem(first)
    if problem:
        why = f'POST /predict {{"text": {SAMPLE_TEXT!r}}} {problem}'
        return schema.failed(why), confidence.not_run(why), probes.not_run(why)
    replies: list[tuple[str, str | None, Reply]] = [(SAMPLE_TEXT, None, first)]
    replies += [(p.text, p.label, _predict(probe, p.text)) for p in PROBES]
    schema_result = schema.passed(f"POST /predict -> 200 {first.text[:160]}")

    conf_problems = [f"{text[:40]!r}: {why}" for text, _, r in replies if (why := _confidence_problem(r))]
    confidence_result = (
        confidence.failed(f"{len(conf_problems)} of {len(replies)} replies: " + "; ".join(conf_problems[:3]))
        if conf_problems
        else confidence.passed(f"All {len(replies)} confidences are probabilities in [0.5, 1].")
    )

    wrong = []
    for text, label, reply in replies[1:]:
        body = reply.body
        got = body.get("label") if type(body) is dict else None
        if reply.status != 200 or type(got) is not str or got != label:
            wrong.append(
                f"{text[:50]!r} expected {label}, got {got if reply.status == 200 else reply.describe()}"
            )
    n_right = len(PROBES) - len(wrong)
    needed = PROBE_PASS_FRACTION * len(PROBES)
    summary = f"{n_right}/{len(PROBES)} probe texts labelled correctly (at least {needed:.0f} needed)"
    if n_right < needed:
        probes_result = probes.failed(summary + ". Wrong: " + "; ".join(wrong[:4]))
    else:
        probes_result = probes.passed(summary + ".")
    return schema_result, confidence_result, probes_result


def _schema_problem(reply: Reply) -> str:
    if reply.status != 200:
        return f"got {reply.describe()}; expected HTTP 200."
    body = reply.body
    if type(body) is not dict:
        return f"returned {reply.text[:160]!r}, which is not a JSON object."
    label, version = body.get("label"), body.get("model_version")
    if type(label) is not str or label not in LABELS:
        return f'returned label {label!r}; expected exactly "positive" or "negative" (a string).'
    if type(version) is not str or not version.strip():
        return f"returned model_version {version!r}; expected a non-empty string from model_card.json."
    if "confidence" not in body:
        return "returned no confidence field."
    return ""


def _confidence_problem(reply: Reply) -> str:
    body = reply.body
    if reply.status != 200 or type(body) is not dict:
        return f"no JSON object ({reply.describe()})"
    leaked = [key for key in body if key.lower() in _LOGIT_KEYS]
    if leaked:
        return f"the response contains raw model outputs under {leaked}"
    value: Any = body.get("confidence")
    if not is_number(value) or not 0.5 <= value <= 1.0:
        return f"confidence {value!r} is not the probability of the predicted label (a number in [0.5, 1])"
    return ""


_INVALID_BODIES: tuple[tuple[str, Callable[[HttpProbe], Reply]], ...] = (
    ('{"text": ""}', lambda p: _predict(p, "")),
    ('{"text": "   "}', lambda p: _predict(p, "   ")),
    ("{}", lambda p: p.send("POST", "/predict", json_body={})),
    ('{"text": 123}', lambda p: _predict(p, 123)),
    ('{"text": null}', lambda p: _predict(p, None)),
    ('{"text": ["good"]}', lambda p: _predict(p, ["good"])),
    (
        "malformed JSON",
        lambda p: p.send(
            "POST", "/predict", content=b'{"text": "good', headers={"content-type": "application/json"}
        ),
    ),
)


def check_validation(probe: HttpProbe) -> CheckResult:
    """Empty, whitespace, missing, wrong-typed text and malformed JSON each get 422."""
    check = check_named("predict_validation")
    wrong = []
    for label, send in _INVALID_BODIES:
        reply = send(probe)
        if reply.status != 422:
            wrong.append(f"{label} -> {reply.describe()[:80]}")
    if wrong:
        return check.failed(
            f"{len(wrong)} of {len(_INVALID_BODIES)} invalid bodies did not get 422: " + "; ".join(wrong)
        )
    return check.passed(f"All {len(_INVALID_BODIES)} invalid bodies got 422.")


def check_too_long(probe: HttpProbe) -> CheckResult:
    """600 tokens -> 400 with a message about tokens; 300 tokens -> still 200 (no over-eager limit)."""
    check = check_named("predict_too_long")
    long_reply = _predict(probe, "good " * 600)
    if long_reply.status != 400:
        return check.failed(f"A 600-token text got {long_reply.describe()[:120]}; expected HTTP 400.")
    if "token" not in long_reply.text.lower():
        return check.failed(
            f"A 600-token text got HTTP 400 but the message {long_reply.text[:120]!r} does not say "
            "that the text has too many tokens."
        )
    ok_reply = _predict(probe, "good " * 300)
    if ok_reply.status != 200:
        return check.failed(
            f"A 300-token text got {ok_reply.describe()[:120]}; only texts over 512 tokens get 400."
        )
    return check.passed("600 tokens -> 400 with a message; 300 tokens -> 200.")


def _log_lines_with_latency(output: str) -> int:
    count = 0
    for line in output.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            entry = json.loads(line[start:])
        except (ValueError, RecursionError):
            continue
        if type(entry) is dict and is_number(entry.get("latency_ms")) and entry["latency_ms"] >= 0:
            count += 1
    return count


def check_latency_logging(
    read_output: Callable[[], str], n_requests: int, *, wait_s: float = 2.0
) -> CheckResult:
    """A JSON line with a numeric latency_ms per successful /predict the grader sent (at least one line)."""
    check = check_named("latency_logging")
    needed = max(1, n_requests)  # no successful request still needs one logged request: no free points
    deadline = time.monotonic() + wait_s
    count = _log_lines_with_latency(read_output())
    while count < needed and time.monotonic() < deadline:
        time.sleep(0.1)  # log lines arrive through a pipe: give them a moment
        count = _log_lines_with_latency(read_output())
    if count >= needed:
        return check.passed(f"{count} JSON log lines with latency_ms for {n_requests} successful requests.")
    return check.failed(
        f"Found {count} JSON log lines with a numeric latency_ms in stdout/stderr, but the grader made "
        f"{n_requests} successful /predict requests (and many others); one line per request is expected."
    )


def predict_count(probe: HttpProbe) -> tuple[float | None, str]:
    """Sum of every predict_requests_total sample, or None and why /metrics is unusable."""
    reply = probe.send("GET", "/metrics")
    if reply.status != 200:
        return (
            None,
            f"GET /metrics got {reply.describe()[:120]}; expected HTTP 200 with Prometheus text.",
        )
    try:
        families = list(text_string_to_metric_families(reply.text))
    except Exception as exc:
        return None, f"GET /metrics is not valid Prometheus text ({type(exc).__name__}: {exc})."
    by_name = {f.name: f for f in families}
    counter = by_name.get("predict_requests")
    if counter is None or counter.type != "counter":
        found = ", ".join(sorted(by_name)[:8]) or "none"
        return None, f"No counter predict_requests_total in /metrics (families found: {found})."
    histogram = by_name.get("predict_latency_seconds")
    if histogram is None or histogram.type != "histogram":
        return None, "No histogram predict_latency_seconds in /metrics (a Summary or Gauge does not count)."
    total = sum(s.value for s in counter.samples if s.name == "predict_requests_total")
    return float(total), ""


def check_metrics(probe: HttpProbe, n_requests: int = 5) -> tuple[CheckResult, CheckResult]:
    """The required families parse; the counter grows by at least `n_requests` after that many predicts."""
    families, counter = check_named("metrics_families"), check_named("metrics_counter")
    before, why = predict_count(probe)
    if before is None:
        return families.failed(why), counter.not_run("Not checked: " + why)
    ok = sum(_predict(probe, SAMPLE_TEXT).status == 200 for _ in range(n_requests))
    after, why = predict_count(probe)
    if after is None:
        return families.failed(why), counter.not_run("Not checked: " + why)
    family_result = families.passed(
        "predict_requests_total (counter) and predict_latency_seconds (histogram) parse."
    )
    if ok < n_requests:
        return family_result, counter.failed(f"Only {ok} of {n_requests} POST /predict requests succeeded.")
    if after - before < n_requests:
        return family_result, counter.failed(
            f"predict_requests_total went from {before:g} to {after:g} after {n_requests} requests; "
            f"expected an increase of at least {n_requests}."
        )
    return family_result, counter.passed(f"predict_requests_total went from {before:g} to {after:g}.")


def check_p95(
    base_url: str, *, budget_ms: float, n_requests: int, concurrency: int, timeout_s: float
) -> CheckResult:
    """Closed-loop load with the course's load generator; every request must succeed, p95 within budget."""
    from course_utils.bench import run_closed_loop

    check = check_named("latency_p95")
    result = run_closed_loop(
        base_url + "/predict",
        method="POST",
        json={"text": SAMPLE_TEXT},
        concurrency=concurrency,
        n_requests=n_requests,
        timeout_s=timeout_s,
        progress=False,
    )
    where = f"{result.n_requests} requests at concurrency {concurrency}"
    if result.n_ok < n_requests:
        return check.failed(
            f"Only {result.n_ok} of {n_requests} requests succeeded ({where}; "
            f"statuses {result.status_counts}, errors {result.error_counts})."
        )
    if not result.p95_ms <= budget_ms:
        return check.failed(
            f"p95 latency {result.p95_ms:.0f} ms over the {budget_ms:.0f} ms budget ({where})."
        )
    return check.passed(f"p95 latency {result.p95_ms:.1f} ms (budget {budget_ms:.0f} ms; {where}).")
