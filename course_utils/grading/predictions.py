"""The three prediction checks: response schema, confidence (and no raw model outputs), probe answers.

Why together: they judge the same replies (one request per probe text), each for its own rule, so that
one defect costs one check. An upper-case label fails `predict_schema` only: the confidence is still
judged, and the probes compare labels case-insensitively. Logits in the body fail `predict_confidence`
only. A check is NOT RUN only when nothing it needs came back (no 200 JSON object at all, no confidence
field anywhere, no label that names a class), and then it names `predict_schema`, which says why.

Raw model outputs are found by value, anywhere in the body (nested included), never by key name: a pair of
numbers, or an object keyed by the label names, holding anything but a probability distribution; a number
outside [0, 1] under a label name. Extra probabilities (`"scores": {"negative": 0.1, "positive": 0.9}`) are
fine.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from course_utils.contract import LABELS, confidence_problem
from course_utils.grading.http_probe import HttpProbe, Reply, is_number
from course_utils.grading.model_answers import TOLERANCE, ModelAnswers
from course_utils.grading.probe_set import PROBE_PASS_FRACTION, ProbeSet
from course_utils.grading.rubric import CheckResult, check_named

__all__ = ["SAMPLE_TEXT", "check_predict", "raw_output_problems", "schema_problem"]

SAMPLE_TEXT = "I really enjoyed this, it was great."
#: A probability vector may miss 1 by this much (rounding to a few decimals is fine).
_SUM_TOLERANCE = 0.01


def predict(probe: HttpProbe, text: Any) -> Reply:
    """POST /predict {"text": text}."""
    return probe.send("POST", "/predict", json_body={"text": text})


def schema_problem(reply: Reply) -> str:
    """'' when `reply` is 200 {"label": a class name, "confidence", "model_version": str}, else why not."""
    if reply.status != 200:
        return f"got {reply.describe()}; expected HTTP 200."
    body = reply.body
    if type(body) is not dict:
        return f"returned {reply.text[:160]!r}, which is not a JSON object."
    label, version = body.get("label"), body.get("model_version")
    if type(label) is not str or label not in LABELS:
        return f"returned label {label!r}; expected exactly one of {', '.join(map(repr, LABELS))} (a string)."
    if type(version) is not str or not version.strip():
        return f"returned model_version {version!r}; expected a non-empty string from model_card.json."
    if "confidence" not in body:
        return "returned no confidence field."
    return ""


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, value
    if type(value) is dict:
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif type(value) is list:
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def _is_distribution(values: list[Any]) -> bool:
    return all(0.0 <= v <= 1.0 for v in values) and abs(sum(values) - 1.0) <= _SUM_TOLERANCE


def raw_output_problems(body: Any) -> list[str]:
    """Where `body` holds raw model outputs (judged by value), e.g. 'body.debug.logits = [-3.1, 2.9]'."""
    names = {label.lower() for label in LABELS}
    found = []
    for path, value in _walk(body, "body"):
        if type(value) is list and len(value) == len(LABELS) and all(is_number(v) for v in value):
            # a score per class; integers alone ([1, 2]) are counts or shapes, not model outputs
            if any(type(v) is float for v in value) and not _is_distribution(value):
                found.append(f"{path} = {value!r} is not a probability distribution")
        elif type(value) is dict:
            by_label = {k.lower(): v for k, v in value.items() if k.lower() in names and is_number(v)}
            if len(by_label) == len(names) and not _is_distribution(list(by_label.values())):
                found.append(f"{path} = {value!r} holds per-label numbers that are not probabilities")
            elif len(by_label) < len(names):
                found += [
                    f"{path}.{k} = {v!r} is outside [0, 1]" for k, v in by_label.items() if not 0 <= v <= 1
                ]
    return found


def check_predict(
    probe: HttpProbe, probes: ProbeSet, answers: ModelAnswers
) -> tuple[CheckResult, CheckResult, CheckResult]:
    """Send the sample text and every probe once; judge schema, confidence and answers from the replies.

    `answers` are the grader's model's answers for `probes` (`model_answers.model_answers`).
    """
    sample = predict(probe, SAMPLE_TEXT)
    replies = [predict(probe, p.text) for p in probes.probes] if sample.status is not None else []
    named = [(f"{SAMPLE_TEXT!r}", sample)] + [(probes.describe(i), r) for i, r in enumerate(replies)]
    return (
        _judge_schema(named),
        _judge_confidence(named),
        _judge_probes(replies, probes, answers),
    )


def _judge_schema(named: list[tuple[str, Reply]]) -> CheckResult:
    check = check_named("predict_schema")
    where, first = named[0]
    problem = schema_problem(first)
    if problem:
        return check.failed(f'POST /predict {{"text": {where}}} {problem}')
    # a probe the service fails on is the probes' business; the shape of every 200 answer is ours
    for where, reply in named[1:]:
        problem = schema_problem(reply) if reply.status == 200 else ""
        if problem:
            return check.failed(f"POST /predict with {where} {problem}")
    return check.passed(f"POST /predict -> 200 {first.text[:160]}")


def _objects(named: list[tuple[str, Reply]]) -> list[tuple[str, dict[str, Any]]]:
    return [(where, r.body) for where, r in named if r.status == 200 and type(r.body) is dict]


def _judge_confidence(named: list[tuple[str, Reply]]) -> CheckResult:
    check = check_named("predict_confidence")
    objects = _objects(named)
    with_confidence = [(where, body) for where, body in objects if "confidence" in body]
    if not with_confidence:
        what = "no reply carried a confidence field" if objects else "no reply was a 200 JSON object"
        return check.not_run(f"There is no confidence to judge: {what}.", blocked_by="predict_schema")
    problems = []
    for where, body in objects:
        problems += [f"{where}: {p}" for p in raw_output_problems(body)]
    if problems:
        return check.failed(
            f"Raw model outputs in {len(problems)} place(s) of the replies (judged by value: a vector of "
            f"per-label numbers must be probabilities summing to 1): " + "; ".join(problems[:3])
        )
    bad = [
        f"{where}: {why}"
        for where, body in with_confidence
        if (why := confidence_problem(body["confidence"]))
    ]
    if bad:
        return check.failed(
            f"{len(bad)} of {len(with_confidence)} confidences are wrong: " + "; ".join(bad[:3])
        )
    return check.passed(
        f"All {len(with_confidence)} confidences are probabilities of the returned label, in [0.5, 1]; "
        "no raw model outputs."
    )


def _answer(reply: Reply) -> tuple[str, float | None] | None:
    """(label, confidence or None when invalid) of a 200 reply whose label names a class in any case."""
    body = reply.body
    if reply.status != 200 or type(body) is not dict:
        return None
    label = body.get("label")
    if type(label) is not str or label.lower() not in {name.lower() for name in LABELS}:
        return None
    confidence: Any = body.get("confidence")
    return label, (None if confidence_problem(confidence) else float(confidence))


def _judge_probes(replies: list[Reply], probes: ProbeSet, answers: ModelAnswers) -> CheckResult:
    check = check_named("predict_probes")
    n = len(probes.probes)
    parsed = [_answer(reply) for reply in replies]
    if not replies or all(
        answer is None and reply.status == 200 for answer, reply in zip(parsed, replies, strict=True)
    ):
        why = "no probe was sent" if not replies else "no 200 reply had a label naming a class"
        return check.not_run(f"There are no answers to compare: {why}.", blocked_by="predict_schema")
    # One invalid confidence makes them all suspect (logits in [0.5, 1] look like probabilities): then
    # labels alone are compared, and predict_confidence alone deducts for the confidences.
    trusted = all(answer is None or answer[1] is not None for answer in parsed)
    wrong = []
    for index, (answer, reply) in enumerate(zip(parsed, replies, strict=True)):
        want_label, want_confidence = answers.expected(index)
        want = f"expected {want_label} {want_confidence:.3f}"
        if answer is None:
            wrong.append(f"{probes.describe(index)}: {want}, got {reply.describe()[:80]}")
            continue
        label, confidence = answer if trusted else (answer[0], None)
        if not answers.matches(index, label, confidence):
            got = f"{label} {confidence:.3f}" if confidence is not None else label
            wrong.append(f"{probes.describe(index)}: {want}, got {got}")
    n_right = n - len(wrong)
    needed = math.ceil(PROBE_PASS_FRACTION * n)
    summary = (
        f"{n_right}/{n} of {probes.source} answered as the grader's copy of the model does (same label, "
        f"confidence within {TOLERANCE} of its probability; at least {needed} needed)"
    )
    if not trusted:
        summary += "; labels only, as some confidences are invalid (predict_confidence judges those)"
    if n_right < needed:
        return check.failed(summary + ". Wrong: " + "; ".join(wrong[:4]))
    return check.passed(summary + ".")
