"""A tiny file-based model registry: versions, metadata, lineage, and movable aliases.

Why a registry at all: "which model is in production, what was it trained on, and what do we roll back
to?" must have one answer that tools (the canary exercise, the reference service) can read. MLflow and
friends answer it with a server; this one answers it with a folder, so it works offline and is easy to read:

    ROOT/index.json                     versions, metadata, aliases and the alias history
    ROOT/NAME/VERSION/...               a verified copy of an exported model folder (docs/contracts.md)

Every version records its lineage (dataset sha256, base model sha256, code commit) and metrics from its
model card. Aliases such as "production" point at a version; `promote` moves one and `rollback` moves it
back to where it was before, both recorded in the history. index.json is replaced atomically, so a crash
never leaves it half-written. The service reads the same index (see docs/contracts.md) to pick its model.

Example:
    >>> registry = ModelRegistry(tmp_path / "registry")                         # doctest: +SKIP
    >>> v1 = registry.register(model_dir)                                       # doctest: +SKIP
    >>> registry.promote(v1.name, v1.version)                                   # doctest: +SKIP
    >>> registry.resolve(v1.name, "production")                                 # doctest: +SKIP
    PosixPath('.../registry/minilm-sentiment/1.0.0+9bad31ae')
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from course_utils.config import PROJECT_ROOT
from course_utils.errors import CourseUtilsError
from course_utils.model import verify_model_dir

__all__ = ["ModelRegistry", "ModelVersion", "RegistryError"]

INDEX = "index.json"


class RegistryError(CourseUtilsError):
    """A registry operation that cannot be done: unknown model, version or alias, or a duplicate."""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version: where its files are and what it is."""

    name: str
    version: str
    path: Path
    registered_at: str
    metrics: dict[str, Any]
    lineage: dict[str, str | None]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _git_commit(folder: Path) -> str | None:
    """The code commit the model was built from, when the project is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


class ModelRegistry:
    """The registry rooted at `root` (created on first use)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- reading -------------------------------------------------------------------------------------
    def _index(self) -> dict[str, Any]:
        path = self.root / INDEX
        if not path.is_file():
            return {"models": {}}
        index: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return index

    def _model(self, index: dict[str, Any], name: str) -> dict[str, Any]:
        try:
            model: dict[str, Any] = index["models"][name]
        except KeyError:
            known = sorted(index["models"]) or ["(none yet)"]
            raise RegistryError(
                f"No model {name!r} in the registry at {str(self.root)!r}; registered: {', '.join(known)}. "
                "Register one with ModelRegistry.register(model_dir)."
            ) from None
        return model

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of `name`, oldest first."""
        model = self._model(self._index(), name)
        return [self._version(name, version, entry) for version, entry in model["versions"].items()]

    def _version(self, name: str, version: str, entry: dict[str, Any]) -> ModelVersion:
        return ModelVersion(
            name=name,
            version=version,
            path=self.root / name / version,
            registered_at=entry["registered_at"],
            metrics=entry["metrics"],
            lineage=entry["lineage"],
        )

    def get(self, name: str, ref: str) -> ModelVersion:
        """A version by its version string or by an alias ("production", "staging", ...)."""
        model = self._model(self._index(), name)
        version = model["aliases"].get(ref, ref)
        if version not in model["versions"]:
            raise RegistryError(
                f"{name!r} has no version or alias {ref!r}; versions: {', '.join(model['versions'])}; "
                f"aliases: {', '.join(sorted(model['aliases'])) or '(none)'}."
            )
        return self._version(name, version, model["versions"][version])

    def resolve(self, name: str, ref: str = "production") -> Path:
        """The folder of `name` at `ref`, verified against its card's sha256s before it is handed out."""
        path = self.get(name, ref).path
        verify_model_dir(path)
        return path

    def history(self, name: str) -> list[dict[str, str | None]]:
        """Every alias move of `name`, oldest first."""
        history: list[dict[str, str | None]] = self._model(self._index(), name)["history"]
        return history

    # -- writing -------------------------------------------------------------------------------------
    def _write(self, index: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=".index-", dir=self.root)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(index, out, indent=2)
            out.write("\n")
        os.replace(tmp, self.root / INDEX)

    def register(self, model_dir: Path, *, code_commit: str | None = None) -> ModelVersion:
        """Copy a verified exported folder in as a new version (name and version from its model card)."""
        card = verify_model_dir(model_dir)
        name, version = str(card["name"]), str(card["version"])
        index = self._index()
        model = index["models"].setdefault(name, {"versions": {}, "aliases": {}, "history": []})
        if version in model["versions"]:
            raise RegistryError(
                f"{name!r} {version!r} is already registered; versions are immutable. Rebuild the model "
                "(its version changes with its inputs) or promote the existing version."
            )
        target = self.root / name / version
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
        try:  # copy next to the target, then rename: a crash never leaves a half-copied version
            shutil.copytree(model_dir, staging, dirs_exist_ok=True)
            staging.chmod(0o755)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        model["versions"][version] = {
            "registered_at": _now(),
            "metrics": card.get("metrics", {}),
            "lineage": {
                "dataset_sha256": card.get("dataset_sha256"),
                "base_model_sha256": card.get("base_model", {}).get("sha256"),
                "build_key": card.get("build_key"),
                "code_commit": code_commit or _git_commit(PROJECT_ROOT),
            },
        }
        self._write(index)
        return self.get(name, version)

    def promote(self, name: str, version: str, alias: str = "production") -> ModelVersion:
        """Point `alias` at `version` (recorded, so it can be rolled back)."""
        index = self._index()
        model = self._model(index, name)
        if version not in model["versions"]:
            raise RegistryError(
                f"Cannot promote {name!r} {version!r}: not registered ({', '.join(model['versions'])})."
            )
        model["history"].append(
            {"alias": alias, "from": model["aliases"].get(alias), "to": version, "at": _now()}
        )
        model["aliases"][alias] = version
        self._write(index)
        return self.get(name, version)

    def rollback(self, name: str, alias: str = "production") -> ModelVersion:
        """Move `alias` back to the version it pointed at before its last move."""
        index = self._index()
        model = self._model(index, name)
        moves = [move for move in model["history"] if move["alias"] == alias]
        if not moves or moves[-1]["from"] is None:
            raise RegistryError(f"{name!r} alias {alias!r} has no earlier version to roll back to.")
        previous = moves[-1]["from"]
        model["history"].append(
            {"alias": alias, "from": model["aliases"][alias], "to": previous, "at": _now()}
        )
        model["aliases"][alias] = previous
        self._write(index)
        return self.get(name, previous)

    def describe(self, name: str) -> list[dict[str, Any]]:
        """One row per version (for a table): version, aliases, test accuracy, lineage."""
        model = self._model(self._index(), name)
        rows = []
        for version in self.versions(name):
            aliases = sorted(a for a, v in model["aliases"].items() if v == version.version)
            test = version.metrics.get("onnx_int8", {}).get("test_accuracy")
            rows.append({**asdict(version), "aliases": aliases, "onnx_int8_test_accuracy": test})
        return rows
