"""Calibration on the real course material: the reference scores full marks, the untouched starter at most
20%, and each broken copy of the reference loses exactly the points of the one check it breaks.

Then Examplar's wheats and chaffs (tests/grading/submissions.py), graded against the course model and the
hidden probes, as the instructor grades: correct services in other styles (mounted metrics app, on_event
startup, sync and async handlers, logging-module JSON, extra probability fields) score 100; plausible wrong
ones (no model, a constant answer, an upper-case label, a misnamed histogram, nested logits, a counter never
incremented) each lose exactly their own check, and only that check shows a fix line.

Broken variants are made here, from the reference, by copying it to a temporary folder and applying one
small textual patch; a patch whose target text is gone fails the test (so the variants cannot silently
stop testing anything when the reference changes). They are copies of the reference by construction, so
they are graded with `allow_reference=True` (as the instructor's dry run is); everything else is graded
with the instructor's defaults, where a copy of the reference, plain or disguised, is refused (0 points)
and the starter and every wheat are not.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest
from submissions import (
    _RESPONSE,
    CHAFFS,
    MINI_APP,
    REFERENCE,
    STARTER,
    WHEATS,
    copy_capstone,
    patched,
    reformatted_reference,
    write_submission,
)

from course_utils.config import get_settings
from course_utils.grading import RUBRIC, GradeOptions, GradeReport, grade_all
from course_utils.grading.predictions import SAMPLE_TEXT

Patch = tuple[str, Callable[[str], str]]


def _replace(old: str, new: str) -> Callable[[str], str]:
    return lambda text: patched(text, old, new)


def _drop_lines_with(needle: str) -> Callable[[str], str]:
    def drop(text: str) -> str:
        assert needle in text, f"{needle!r} not in the file: the variant would not change anything"
        return "".join(line for line in text.splitlines(keepends=True) if needle not in line)

    return drop


def _cut_between(start: str, end: str) -> Callable[[str], str]:
    """Drop a whole section: from `start` up to (not including) `end`."""

    def cut(text: str) -> str:
        assert start in text and end in text, f"{start!r} or {end!r} not in the file: nothing would change"
        return text[: text.index(start)] + text[text.index(end) :]

    return cut


# variant -> (patches, the one check it must break)
VARIANTS: dict[str, tuple[list[Patch], str]] = {
    "raw_logits": (
        [
            (
                "src/inference.py",
                _replace(
                    "_softmax(self._backend.logits(input_ids, attention_mask))",
                    "self._backend.logits(input_ids, attention_mask)",
                ),
            ),
            (
                "src/schemas.py",
                _replace("confidence: float = Field(ge=0.0, le=1.0, ", "confidence: float = Field("),
            ),
        ],
        "predict_confidence",
    ),
    "no_422_for_blank_text": (
        [
            (
                "src/schemas.py",
                _replace(
                    'if not text.replace("\\ufeff", "").strip():\n        raise ValueError',
                    "if False:\n        raise ValueError",
                ),
            )
        ],
        "predict_validation",
    ),
    "no_counter_increment": (
        [
            (
                "src/middleware.py",
                _replace(
                    "predict_requests.labels(endpoint=route, status=str(status)).inc()",
                    "predict_requests.labels(endpoint=route, status=str(status))",
                ),
            )
        ],
        "metrics_counter",
    ),
    "no_latency_logging": (
        [("src/middleware.py", _replace('access_logger.info("request", extra={"fields": fields})', "pass"))],
        "latency_logging",
    ),
    "ready_always_200": ([("src/routes.py", _replace("if not readiness.ready:", "if False:"))], "ready"),
    "unpinned_requirements": (
        [("requirements.txt", _replace("fastapi==", "fastapi>="))],
        "requirements_pinned",
    ),
    "dockerfile_runs_as_root": ([("Dockerfile", _drop_lines_with("USER "))], "dockerfile_lint"),
    "deploy_without_monitoring": ([("deploy.md", _cut_between("## Monitoring", "## Scale"))], "deploy_doc"),
    "wrong_label_order": (
        [("src/inference.py", _replace("self._labels[best[row]]", "self._labels[1 - best[row]]"))],
        "predict_probes",
    ),
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GradeReport]:
    model_dir = get_settings().model_dir
    # Never a skip: without a model the grader cannot be calibrated, and `make test` builds it first.
    assert (model_dir / "model_card.json").is_file(), f"no exported model in {model_dir}: run `make model`"
    base = tmp_path_factory.mktemp("calibration")
    allowed, root = base / "reference_allowed", base / "checked"
    copy_capstone(REFERENCE, allowed / "reference")
    for name, (patches, _) in VARIANTS.items():
        copy_capstone(REFERENCE, allowed / name)
        for relpath, transform in patches:
            path = allowed / name / relpath
            path.write_text(transform(path.read_text()))
    copy_capstone(STARTER, root / "starter")
    copy_capstone(REFERENCE, root / "reference_copy")
    reformatted_reference(root / "reference_reformatted")
    write_submission(root / "mini_app", MINI_APP)
    for name, source in WHEATS.items():
        write_submission(root / f"wheat_{name}", source)
    for name, (source, _) in CHAFFS.items():
        write_submission(root / f"chaff_{name}", source)
    # Echoes every probe as its label (the sample text gets a proper answer, so the probes are judged): the
    # grader quotes what came back, so this is how a hidden text could leak into feedback.
    echo = f'"label": label if body.text == {SAMPLE_TEXT!r} else body.text,'
    write_submission(
        root / "echo_input", patched(MINI_APP, _RESPONSE, _RESPONSE.replace('"label": label,', echo))
    )
    options = GradeOptions(model_dir=model_dir, docker=False, ready_timeout_s=10.0)
    assert options.probes_file is not None, "the instructor's grader must default to the hidden probes"
    assert options.reference_dir == REFERENCE and not options.allow_reference, "the instructor's defaults"
    reports = grade_all(root, jobs=2, out=base / "out", options=options)
    dry_run = replace(options, allow_reference=True)
    reports += grade_all(allowed, jobs=2, out=base / "out_allowed", options=dry_run)
    return {r.student: r for r in reports}


def test_reference_scores_full_marks(calibrated: dict[str, GradeReport]) -> None:
    report = calibrated["reference"]
    assert report.score == report.max_score == 100, report.to_markdown()


@pytest.mark.parametrize("name", ["reference_copy", "reference_reformatted"])
def test_the_reference_handed_in_is_refused(calibrated: dict[str, GradeReport], name: str) -> None:
    report = calibrated[name]
    assert report.score == 0 and report.grader_error is None, report.to_markdown()
    assert report.refusal is not None and "matches the reference capstone in" in report.refusal
    assert {r.status for r in report.results} == {"refused"}


def test_untouched_starter_scores_at_most_20_percent(calibrated: dict[str, GradeReport]) -> None:
    report = calibrated["starter"]
    assert report.grader_error is None and report.refusal is None
    assert report.score <= 20, report.to_markdown()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_broken_reference_loses_exactly_its_check(calibrated: dict[str, GradeReport], variant: str) -> None:
    report = calibrated[variant]
    broken = VARIANTS[variant][1]
    lost = {r.check.name for r in report.results if r.score < r.max_score}
    reference_lost = {r.check.name for r in calibrated["reference"].results if r.score < r.max_score}
    assert lost - reference_lost == {broken}, report.to_markdown()
    points = next(c.points for c in RUBRIC if c.name == broken)
    assert report.score == calibrated["reference"].score - points


@pytest.mark.parametrize("name", ["mini_app", *(f"wheat_{name}" for name in sorted(WHEATS))])
def test_correct_service_in_another_style_scores_full_marks(
    calibrated: dict[str, GradeReport], name: str
) -> None:
    report = calibrated[name]
    assert report.score == report.max_score == 100, report.to_markdown()
    assert "Fix:" not in report.to_markdown()


@pytest.mark.parametrize("name", sorted(CHAFFS))
def test_wrong_service_loses_exactly_its_own_check(calibrated: dict[str, GradeReport], name: str) -> None:
    report = calibrated[f"chaff_{name}"]
    broken = CHAFFS[name][1]
    lost = {r.check.name: r.status for r in report.results if r.score < r.max_score}
    assert lost == {broken: "failed"}, report.to_markdown()
    assert report.score == 100 - next(c.points for c in RUBRIC if c.name == broken)
    assert report.to_markdown().count("Fix:") == 1, "no fix line for a problem the student does not have"


def test_hidden_probe_texts_never_reach_the_report(calibrated: dict[str, GradeReport]) -> None:
    from course_utils.grading.probe_set import default_probes_file, load_probes

    probes = load_probes(default_probes_file())
    for name in ("chaff_keyword_list", "echo_input"):
        report = calibrated[name]
        text = report.to_markdown() + str(report.to_gradescope())
        assert "hidden probe" in text, (name, text)
        leaked = [p.text for p in probes.probes if p.text[:12] in text or json.dumps(p.text)[1:13] in text]
        assert leaked == [], (name, leaked)


def test_redaction_cuts_a_hidden_text_however_it_is_quoted() -> None:
    from course_utils.grading.probe_set import default_probes_file, load_probes

    probes = load_probes(default_probes_file())
    text = probes.probes[0].text
    for quoted in (text, repr(text), json.dumps(text), f"got {json.dumps(text)[:40]}..."):
        assert text[:12] not in probes.redact(f"returned label {quoted}"), quoted
    assert probes.redact("returned label 'POSITIVE'") == "returned label 'POSITIVE'"
