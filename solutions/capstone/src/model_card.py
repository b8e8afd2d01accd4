"""The exported model folder's `model_card.json`, and checking files against the sha256 sums it lists.

Why verify? A model folder travels (build machine -> image -> cluster) and a truncated copy or a swapped file
produces confident, wrong answers rather than an error. The card lists the sha256 of every file; the service
hashes the exact bytes it loads and refuses to become ready on any difference.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "Calibration",
    "ModelCard",
    "ModelIntegrityError",
    "read_model_card",
    "read_verified_bytes",
    "registry_model_dir",
    "verify_file",
]

CARD_NAME = "model_card.json"


class ModelIntegrityError(Exception):
    """The model folder is missing, incomplete, or a file differs from its sha256 in the card."""


class Calibration(BaseModel):
    """How the model's confidences were calibrated (model_card.json `calibration`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    method: str
    temperature: float = Field(gt=0)
    logits_are_scaled: bool


class ModelCard(BaseModel):
    """The fields of model_card.json the service uses; the rest (metrics, sizes, ...) is kept but unused."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    version: str
    labels: tuple[str, ...] = Field(min_length=2)
    max_tokens: int = Field(default=512, gt=2)
    files: dict[str, str]
    calibration: Calibration | None = None

    @model_validator(mode="after")
    def _logits_scaled_in_the_model(self) -> ModelCard:
        """The service softmaxes the model's logits as they are, so a temperature must already be applied."""
        if self.calibration is not None and not self.calibration.logits_are_scaled:
            raise ValueError(
                f"calibration.temperature {self.calibration.temperature} is not applied inside the model "
                "(logits_are_scaled is false), so the service would return uncalibrated confidences; "
                "re-export with course_utils (`make model`), which puts the temperature into every format"
            )
        return self


def read_model_card(model_dir: Path) -> ModelCard:
    """Read and validate `model_dir/model_card.json`, with a message that says how to fix a problem."""
    path = model_dir / CARD_NAME
    if not model_dir.is_dir():
        raise ModelIntegrityError(
            f"model folder {str(model_dir)!r} does not exist; set MODEL_DIR to an exported model folder "
            "(build one with `make model`)"
        )
    try:
        return ModelCard.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise ModelIntegrityError(f"{str(path)!r} is missing; re-export the model (`make model`)") from exc
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ModelIntegrityError(f"{str(path)!r} is not a valid model card: {exc}") from exc


def read_verified_bytes(model_dir: Path, card: ModelCard, name: str) -> bytes:
    """Return the bytes of `model_dir/name` after checking them against the card's sha256.

    Hashing the same bytes we then load (rather than hashing, then opening the file again) means what was
    verified is exactly what runs.
    """
    expected = card.files.get(name)
    if expected is None:
        raise ModelIntegrityError(
            f"{name!r} is not listed in {CARD_NAME} 'files'; refusing to load an unverified file"
        )
    try:
        data = (model_dir / name).read_bytes()
    except FileNotFoundError as exc:
        raise ModelIntegrityError(
            f"{name!r} is missing from {str(model_dir)!r}; re-export the model"
        ) from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.lower():
        raise ModelIntegrityError(
            f"sha256 mismatch for {name!r}: expected {expected}, got {actual}; "
            "the file is corrupt or was replaced, re-export or re-copy the model folder"
        )
    return data


def verify_file(model_dir: Path, card: ModelCard, name: str) -> None:
    """Check a file that another library will open by path (the PyTorch backend's safetensors)."""
    read_verified_bytes(model_dir, card, name)


def registry_model_dir(registry: Path, name: str, alias: str) -> Path:
    """The folder a model registry's `index.json` names for `name` at `alias` (or at a version string).

    The registry is course_utils.registry's folder layout (docs/contracts.md): `index.json` maps each model's
    aliases to versions, and each version lives in `REGISTRY/NAME/VERSION/`. Promoting or rolling back a
    version there and restarting the service is how a deployment changes its model.
    """
    try:
        model = json.loads((registry / "index.json").read_text(encoding="utf-8"))["models"][name]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(
            f"cannot read model {name!r} from the registry {str(registry)!r} ({type(exc).__name__}: {exc}); "
            "register it with course_utils.registry or unset MODEL_REGISTRY to use MODEL_DIR"
        ) from exc
    version = str(model.get("aliases", {}).get(alias, alias))
    if version not in model.get("versions", {}):
        raise ModelIntegrityError(
            f"the registry has no version or alias {alias!r} of {name!r} "
            f"(aliases: {sorted(model.get('aliases', {}))}); promote a version or fix MODEL_ALIAS"
        )
    return registry / name / version
