"""The reference service picks its model from a course_utils registry: promote and rollback change it."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

from app import create_app
from capstone_support import wait_ready
from fastapi.testclient import TestClient
from settings import ServiceSettings

from course_utils.registry import ModelRegistry


def _served_version(registry: Path, alias: str = "production") -> str:
    settings = ServiceSettings(model_registry=registry, model_alias=alias)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        wait_ready(client)
        answer = client.post("/predict", json={"text": "A wonderful film."})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["model_version"])


def test_the_service_serves_the_promoted_version_and_follows_a_rollback(
    model_dir: Path, tmp_path: Path
) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    v1 = registry.register(model_dir)
    candidate = tmp_path / "candidate"
    shutil.copytree(model_dir, candidate)
    card = json.loads((candidate / "model_card.json").read_text())
    card["version"] = "2.0.0+candidate"  # same weights, a new release: enough to tell them apart
    (candidate / "model_card.json").write_text(json.dumps(card))
    v2 = registry.register(candidate)

    registry.promote(v1.name, v1.version)
    registry.promote(v2.name, v2.version)
    assert _served_version(registry.root) == v2.version
    registry.rollback(v1.name)
    assert _served_version(registry.root) == v1.version
    assert _served_version(registry.root, alias=v2.version) == v2.version  # an exact version works too


def test_an_unknown_alias_keeps_the_service_unready_with_the_reason(model_dir: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    registry.register(model_dir)
    settings = ServiceSettings(model_registry=registry.root, model_alias="staging")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for _ in range(500):
            ready = client.get("/ready")
            if ready.json()["reason"] != "loading":
                break
            threading.Event().wait(0.01)
        assert ready.status_code == 503 and ready.json()["reason"] == "failed"
        assert "no version or alias 'staging'" in ready.json()["detail"]
