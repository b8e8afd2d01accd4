"""Fixtures for the capstone tests: the exported model folder and real uvicorn processes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from capstone_support import SOLUTION_SRC, UvicornProcess

from course_utils.config import get_settings


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The exported model (`make test` builds it first); a missing folder fails the test, never skips it."""
    folder = get_settings().model_dir
    if not (folder / "model_card.json").is_file():
        message = f"no exported model at {str(folder)!r}: run `make model` (or set MODEL_DIR)"
        pytest.fail(message, pytrace=False)
    return folder


@pytest.fixture
def broken_model_dir(model_dir: Path, tmp_path: Path) -> Callable[..., Path]:
    """Returns `make(wrong_sha=None, missing=None)`: a copy of the model folder (symlinks) whose card lists a
    wrong sha256 for `wrong_sha`, or which lacks the file `missing`."""

    def make(*, wrong_sha: str | None = None, missing: str | None = None) -> Path:
        folder = tmp_path / "model"
        folder.mkdir()
        card = json.loads((model_dir / "model_card.json").read_text())
        for item in model_dir.iterdir():
            if item.name not in ("model_card.json", missing):
                (folder / item.name).symlink_to(item.resolve())
        if wrong_sha is not None:
            card["files"][wrong_sha] = "0" * 64
        (folder / "model_card.json").write_text(json.dumps(card))
        return folder

    return make


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., UvicornProcess]]:
    """Returns `start(env, src_dir=..., ready=True, command=None)`; every server started is terminated in
    `finally`. `command` replaces `uvicorn app:app --app-dir SRC` (e.g. the multi-worker launcher)."""
    started: list[UvicornProcess] = []

    def start(
        env: dict[str, str],
        *,
        src_dir: Path = SOLUTION_SRC,
        ready: bool = True,
        command: Sequence[str] | None = None,
    ) -> UvicornProcess:
        log_path = tmp_path_factory.mktemp("uvicorn") / "server.log"
        server = UvicornProcess(src_dir, env, log_path, command=command)
        started.append(server)
        server.wait_until("/health")
        if ready:
            server.wait_until("/ready")
        return server

    try:
        yield start
    finally:
        for server in started:
            server.terminate()
