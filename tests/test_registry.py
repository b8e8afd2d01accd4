"""The file-based registry: immutable versions with lineage, promote/rollback history, verified resolve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from course_utils._hashing import sha256_file
from course_utils.errors import ModelIntegrityError
from course_utils.registry import ModelRegistry, RegistryError


def _exported(folder: Path, version: str, accuracy: float = 0.95) -> Path:
    """A small folder shaped like an export (files listed with their sha256 in model_card.json)."""
    folder.mkdir(parents=True)
    (folder / "model.int8.onnx").write_bytes(f"weights of {version}".encode())
    (folder / "tokenizer.json").write_text("{}")
    card = {
        "name": "minilm-sentiment",
        "version": version,
        "files": {p.name: sha256_file(p) for p in folder.iterdir()},
        "metrics": {"onnx_int8": {"test_accuracy": accuracy}},
        "dataset_sha256": "d" * 64,
        "base_model": {"sha256": "b" * 64},
        "build_key": version,
    }
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry")


def test_register_records_lineage_and_metrics(registry: ModelRegistry, tmp_path: Path) -> None:
    v1 = registry.register(_exported(tmp_path / "a", "1.0.0+aaaa"), code_commit="abc123")
    assert v1.path.is_dir() and (v1.path / "model_card.json").is_file()
    assert v1.lineage == {
        "dataset_sha256": "d" * 64,
        "base_model_sha256": "b" * 64,
        "build_key": "1.0.0+aaaa",
        "code_commit": "abc123",
    }
    assert v1.metrics["onnx_int8"]["test_accuracy"] == 0.95
    assert [v.version for v in registry.versions("minilm-sentiment")] == ["1.0.0+aaaa"]


def test_versions_are_immutable(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.register(_exported(tmp_path / "a", "1.0.0+aaaa"))
    with pytest.raises(RegistryError, match="already registered"):
        registry.register(_exported(tmp_path / "b", "1.0.0+aaaa"))


def test_a_corrupted_export_is_refused(registry: ModelRegistry, tmp_path: Path) -> None:
    folder = _exported(tmp_path / "a", "1.0.0+aaaa")
    (folder / "model.int8.onnx").write_bytes(b"tampered")
    with pytest.raises(ModelIntegrityError):
        registry.register(folder)
    assert not (registry.root / "minilm-sentiment" / "1.0.0+aaaa").exists()


def test_promote_then_rollback(registry: ModelRegistry, tmp_path: Path) -> None:
    v1 = registry.register(_exported(tmp_path / "a", "1.0.0+aaaa"))
    v2 = registry.register(_exported(tmp_path / "b", "1.0.0+bbbb", accuracy=0.97))
    registry.promote(v1.name, v1.version)
    registry.promote(v2.name, v2.version)
    assert registry.get(v1.name, "production").version == v2.version
    assert registry.rollback(v1.name).version == v1.version
    assert registry.resolve(v1.name, "production") == v1.path
    moves = [(m["from"], m["to"]) for m in registry.history(v1.name)]
    assert moves == [(None, v1.version), (v1.version, v2.version), (v2.version, v1.version)]
    rows = {r["version"]: r for r in registry.describe(v1.name)}
    assert rows[v1.version]["aliases"] == ["production"] and rows[v2.version]["aliases"] == []


def test_clear_errors_for_unknown_names(registry: ModelRegistry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="No model 'nope'"):
        registry.versions("nope")
    v1 = registry.register(_exported(tmp_path / "a", "1.0.0+aaaa"))
    with pytest.raises(RegistryError, match="no version or alias 'staging'"):
        registry.get(v1.name, "staging")
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback(v1.name)
    with pytest.raises(RegistryError, match="not registered"):
        registry.promote(v1.name, "9.9.9")


def test_resolve_refuses_a_version_tampered_after_registration(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    v1 = registry.register(_exported(tmp_path / "a", "1.0.0+aaaa"))
    registry.promote(v1.name, v1.version)
    (v1.path / "model.int8.onnx").write_bytes(b"swapped in place")
    with pytest.raises(ModelIntegrityError):
        registry.resolve(v1.name)


def test_index_is_never_left_half_written(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.register(_exported(tmp_path / "a", "1.0.0+aaaa"))
    leftovers = [p.name for p in registry.root.iterdir() if p.name.startswith(".")]
    assert leftovers == [] and json.loads((registry.root / "index.json").read_text())["models"]
