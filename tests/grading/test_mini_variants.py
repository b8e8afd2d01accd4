"""A complete mini submission scores full marks; each small break loses exactly its own check's points.

Graded against the tiny model of `write_fake_model` (fast); `test_calibration.py` grades the same wheats and
chaffs against the course model and its hidden probes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from submissions import (
    CHAFFS,
    DEPLOY_MD,
    DEPLOY_MD_OTHER_WORDS,
    DOCKERFILE,
    MINI_APP,
    WHEATS,
    patched,
    write_submission,
)

from course_utils.grading import RUBRIC, GradeOptions, GradeReport, grade_all

# variant -> (files to override, the one check it breaks)
_APP = "src__app.py"
VARIANTS: dict[str, tuple[dict[str, str | None], str]] = {
    "no_422": (
        {_APP: patched(MINI_APP, 'raise ValueError("text must not be empty")', "pass")},
        "predict_validation",
    ),
    "no_logging": (
        {_APP: patched(MINI_APP, "print(json.dumps(entry), flush=True)", "pass")},
        "latency_logging",
    ),
    "ready_always_200": (
        {
            _APP: patched(
                MINI_APP, 'def ready():\n    if STATE.get("model") is None:', "def ready():\n    if False:"
            )
        },
        "ready",
    ),
    "no_token_limit": ({_APP: patched(MINI_APP, "if len(ids) > 512:", "if False:")}, "predict_too_long"),
    "inverted_labels": (
        {_APP: patched(MINI_APP, 'label = "positive" if score >= 0', 'label = "negative" if score >= 0')},
        "predict_probes",
    ),
    "default_buckets": (
        {_APP: patched(MINI_APP, "buckets=(0.001, 0.005,", "buckets=(0.005,")},
        "metrics_families",
    ),
    "unpinned": ({"requirements.txt": "fastapi>=0.100\nuvicorn\n"}, "requirements_pinned"),
    "root_dockerfile": ({"Dockerfile": DOCKERFILE.replace("USER app\n", "")}, "dockerfile_lint"),
    "deploy_without_monitoring": ({"deploy.md": DEPLOY_MD.split("## Monitoring")[0]}, "deploy_doc"),
    "no_dockerignore": ({"dot_dockerignore": None}, "files_present"),
    **{f"chaff_{name}": ({_APP: source}, check) for name, (source, check) in CHAFFS.items()},
}
FULL_MARKS = {"complete": {}, **{f"wheat_{name}": {_APP: source} for name, source in WHEATS.items()}}
FULL_MARKS["wheat_deploy_in_other_words"] = {"deploy.md": DEPLOY_MD_OTHER_WORDS}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory, fast_options: GradeOptions) -> dict[str, GradeReport]:
    root = tmp_path_factory.mktemp("class")
    for name, files in {**FULL_MARKS, **{k: v[0] for k, v in VARIANTS.items()}}.items():
        write_submission(root / name, **files)
    return {r.student: r for r in grade_all(root, jobs=2, out=root / "_out", options=fast_options)}


@pytest.mark.parametrize("name", sorted(FULL_MARKS))
def test_correct_submission_in_any_style_scores_full_marks(graded: dict[str, GradeReport], name: str) -> None:
    report = graded[name]
    assert report.score == report.max_score == 100, report.to_markdown()
    assert "Fix:" not in report.to_markdown()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_loses_exactly_its_check(graded: dict[str, GradeReport], variant: str) -> None:
    report = graded[variant]
    broken = VARIANTS[variant][1]
    lost = {r.check.name for r in report.results if r.score < r.max_score}
    expected_points = next(c.points for c in RUBRIC if c.name == broken)
    assert lost == {broken}, report.to_markdown()
    assert report.score == 100 - expected_points
    assert report.result(broken).status == "failed"
    assert report.to_markdown().count("Fix:") == 1, "only the broken check may show a fix line"


def test_batch_writes_every_report(graded: dict[str, GradeReport]) -> None:
    out = next(Path(r.submission).parent for r in graded.values()) / "_out"
    assert (out / "grades.csv").read_text().count("\n") == len(graded) + 1
    for student in graded:
        assert (out / student / "results.json").is_file()
        assert (out / student / "feedback.md").is_file()
