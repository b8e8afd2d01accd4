"""A complete mini submission scores full marks; each small break loses exactly its own check's points."""

from __future__ import annotations

from pathlib import Path

import pytest
from submissions import MINI_APP, patched, write_submission

from course_utils.grading import RUBRIC, GradeOptions, GradeReport, grade_all

# variant -> (files to override, the one check it breaks)
_APP = "src__app.py"
VARIANTS: dict[str, tuple[dict[str, str | None], str]] = {
    "raw_logits": (
        {_APP: patched(MINI_APP, '"confidence": 0.9,', '"confidence": 3.7, "logits": [-3.7, 3.7],')},
        "predict_confidence",
    ),
    "no_422": (
        {_APP: patched(MINI_APP, 'raise ValueError("text must not be empty")', "pass")},
        "predict_validation",
    ),
    "no_counter": ({_APP: patched(MINI_APP, "    REQUESTS.inc()\n", "")}, "metrics_counter"),
    "no_logging": (
        {_APP: patched(MINI_APP, "print(json.dumps(entry), flush=True)", "pass")},
        "latency_logging",
    ),
    "ready_always_200": (
        {_APP: patched(MINI_APP, "def ready():\n    if CARD is None:", "def ready():\n    if False:")},
        "ready",
    ),
    "no_token_limit": (
        {_APP: patched(MINI_APP, "if len(words) + 2 > 512:", "if False:")},
        "predict_too_long",
    ),
    "inverted_labels": (
        {_APP: patched(MINI_APP, 'label = "positive" if score >= 0', 'label = "negative" if score >= 0')},
        "predict_probes",
    ),
    "unpinned": ({"requirements.txt": "fastapi>=0.100\nuvicorn\n"}, "requirements_pinned"),
    "root_dockerfile": ({"Dockerfile": None}, "dockerfile_lint"),
    "deploy_without_monitoring": ({"deploy.md": None}, "deploy_doc"),
    "no_dockerignore": ({"dot_dockerignore": None}, "files_present"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory, fast_options: GradeOptions) -> dict[str, GradeReport]:
    from submissions import DEPLOY_MD, DOCKERFILE

    root = tmp_path_factory.mktemp("class")
    write_submission(root / "complete")
    for name, (overrides, _) in VARIANTS.items():
        files = dict(overrides)
        if name == "root_dockerfile":
            files["Dockerfile"] = DOCKERFILE.replace("USER app\n", "")
        if name == "deploy_without_monitoring":
            files["deploy.md"] = DEPLOY_MD.split("## Monitoring")[0]
        write_submission(root / name, **files)
    return {r.student: r for r in grade_all(root, jobs=2, out=root / "_out", options=fast_options)}


def test_complete_submission_scores_full_marks(graded: dict[str, GradeReport]) -> None:
    report = graded["complete"]
    assert report.score == report.max_score == 100, report.to_markdown()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_loses_exactly_its_check(graded: dict[str, GradeReport], variant: str) -> None:
    report = graded[variant]
    broken = VARIANTS[variant][1]
    lost = {r.check.name for r in report.results if r.score < r.max_score}
    expected_points = next(c.points for c in RUBRIC if c.name == broken)
    assert lost == {broken}, report.to_markdown()
    assert report.score == 100 - expected_points
    assert "Fix:" in report.result(broken).output


def test_batch_writes_every_report(
    graded: dict[str, GradeReport], tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = next(Path(r.submission).parent for r in graded.values()) / "_out"
    assert (out / "grades.csv").read_text().count("\n") == len(graded) + 1
    for student in graded:
        assert (out / student / "results.json").is_file()
        assert (out / student / "feedback.md").is_file()
