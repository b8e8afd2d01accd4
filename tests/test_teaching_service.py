"""The teaching service of notebook 06: right answers, real batching over HTTP, and no capstone answer.

It must serve what notebook 06 measures (predictions through the batcher, the batch totals on /stats), be
started from the library alone (the student kit has no reference capstone), and score low when handed in
as a capstone: it is teaching material, not the contract's answer.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from course_utils.batching import QueueFullError
from course_utils.config import PROJECT_ROOT, get_settings
from course_utils.data import load_out_of_domain, load_sentiment
from course_utils.errors import ModelNotBuiltError
from course_utils.grading import GradeOptions, grade
from course_utils.server import ServerProcess
from course_utils.teaching_service import OnnxSentiment, ServiceOptions, create_app

MODEL_DIR = get_settings().model_dir
TEXTS = [e.text for e in load_sentiment("test")[:16] + load_out_of_domain()[:8]]


def test_answers_match_the_course_model_helpers() -> None:
    """Same labels and confidences as course_utils.model's encode + ONNX + softmax, long texts included."""
    from course_utils.export import onnx_session
    from course_utils.model import LABELS, encode, load_tokenizer, softmax

    texts = [*TEXTS, "great " * 700]  # cut at 512 tokens, [SEP] kept last, in both
    expected = softmax(
        onnx_session(MODEL_DIR / "model.onnx").run(["logits"], encode(load_tokenizer(MODEL_DIR), texts))[0]
    )
    got = OnnxSentiment(MODEL_DIR, backend="onnx-fp32")(texts)
    assert [label for label, _ in got] == [LABELS[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose([c for _, c in got], expected.max(axis=1), atol=1e-5)


def test_a_missing_model_or_backend_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelNotBuiltError, match="make model"):
        OnnxSentiment(tmp_path, backend="onnx-int8")
    with pytest.raises(ValueError, match="onnx-fp32"):
        OnnxSentiment(MODEL_DIR, backend="torch")


async def _concurrent_predictions(url: str, texts: list[str]) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        replies = await asyncio.gather(*(client.post("/predict", json={"text": t}) for t in texts))
    assert {r.status_code for r in replies} == {200}, [r.text for r in replies if r.status_code != 200]
    return [r.json() for r in replies]


def test_the_command_line_service_batches_concurrent_requests() -> None:
    """Started as notebook 06 starts it: its own process, from the library, ready when /stats answers."""
    server = ServerProcess(
        command=[sys.executable, "-m", "course_utils.teaching_service"],
        extra_args=["--backend", "onnx-fp32", "--max-batch-size", "8", "--max-wait-ms", "50"],
        env={"MODEL_DIR": str(MODEL_DIR)},
        health_path="/stats",
        start_timeout_s=90,
    )
    with server:
        answers = asyncio.run(_concurrent_predictions(server.url, TEXTS))
        stats = httpx.get(f"{server.url}/stats", timeout=5).json()
    expected = OnnxSentiment(MODEL_DIR, backend="onnx-fp32")(TEXTS)  # INT8 depends on the padding
    assert [a["label"] for a in answers] == [label for label, _ in expected]
    np.testing.assert_allclose([a["confidence"] for a in answers], [c for _, c in expected], atol=1e-5)
    assert set(answers[0]) == {"label", "confidence"}
    assert stats["requests"] == len(TEXTS)
    assert stats["batches"] < len(TEXTS), f"24 concurrent requests were never batched: {stats}"
    assert max(map(int, stats["batch_sizes"])) <= 8
    assert stats["max_batch_size"] == 8 and stats["backend"] == "onnx-fp32"


def test_a_full_queue_is_a_503_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(create_app(ServiceOptions(model_dir=MODEL_DIR))) as client:

        async def refuse(text: str) -> None:
            raise QueueFullError("256 requests are waiting (max_queue=256): retry in a moment")

        monkeypatch.setattr(client.app.state.batcher, "submit", refuse)  # type: ignore[attr-defined]
        reply = client.post("/predict", json={"text": "fine"})
    assert reply.status_code == 503
    assert "max_queue=256" in reply.json()["detail"]


def test_notebook_06_needs_nothing_from_solutions() -> None:
    """The student kit has no solutions/ folder: the notebook's code must not reach into it."""
    source = (PROJECT_ROOT / "solutions" / "src" / "06_scale_operate.py").read_text(encoding="utf-8")
    for needle in ("solutions", "REFERENCE_SRC", "reference_threads_per_worker", "capstone/src"):
        assert needle not in source, f"notebook 06 mentions {needle!r}, which the student kit does not have"


@pytest.mark.slow
def test_handed_in_as_a_capstone_it_scores_low(tmp_path: Path) -> None:
    """The most favourable hand-in: the service as src/app.py with its app built at import, beside the
    starter's Dockerfile, requirements and deploy.md. It fails the contract: no /health or /ready, no
    input limits, no metrics, no JSON logs, no model_version."""
    submission = tmp_path / "capstone"
    starter_only = shutil.ignore_patterns("src", ".ruff_cache")
    shutil.copytree(PROJECT_ROOT / "capstone", submission, ignore=starter_only)
    (submission / "src").mkdir()
    module = (PROJECT_ROOT / "course_utils" / "teaching_service.py").read_text(encoding="utf-8")
    (submission / "src" / "app.py").write_text(module + "\napp = create_app()\n", encoding="utf-8")
    report = grade(submission, options=GradeOptions(model_dir=MODEL_DIR, docker=False, probes_file=None))
    passed = {r.check.name for r in report.results if r.status == "passed"}
    summary = f"{report.score}/{report.max_score}, passed {sorted(passed)}"
    print(f"teaching service graded as a capstone: {summary}")
    assert "app_starts" in passed, "the hand-in must really run, or the low score proves nothing"
    assert report.score <= 40, f"the teaching service scores too high as a capstone: {summary}"
    assert not passed & {"health", "ready", "predict_schema", "predict_validation", "metrics_families"}
