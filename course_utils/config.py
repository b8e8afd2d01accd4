"""Settings: the one place course_utils reads environment variables.

Read once per call of `get_settings()` (never at import), so a notebook or test can change the environment
and ask again. Precedence: environment > default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PROJECT_ROOT", "REFERENCE_SRC", "Settings", "get_settings"]

#: The repository root when course_utils is installed in editable mode (the course's normal setup).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The reference capstone's app folder (`uvicorn app:app --app-dir REFERENCE_SRC`), served by `make serve`.
REFERENCE_SRC = PROJECT_ROOT / "solutions" / "capstone" / "src"


class Settings(BaseSettings):
    """Course-wide defaults; every option of the library that has a default takes it from here."""

    model_config = SettingsConfigDict(env_prefix="COURSE_", extra="ignore")

    model_dir: Path = Field(
        default=PROJECT_ROOT / "artifacts" / "model",
        validation_alias=AliasChoices("MODEL_DIR", "COURSE_MODEL_DIR"),
        description="Folder of the exported default model (ONNX, safetensors, tokenizer, model_card.json).",
    )
    host: str = Field(default="127.0.0.1", description="Interface servers bind to; loopback by default.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port of `make serve`.")
    server_start_timeout_s: float = Field(default=30.0, gt=0, description="Bounded wait for readiness.")
    server_stop_timeout_s: float = Field(default=10.0, gt=0, description="Graceful stop before forcing.")
    fast: bool = Field(
        default=False,
        description="COURSE_FAST=1 shrinks heavy loops (CI, autograding) without changing what is taught.",
    )
    seed: int = Field(default=1234, description="Seed for Python, NumPy and torch in training.")
    docker_network: Literal["auto", "host", "bridge"] = Field(
        default="auto",
        description=(
            "How `run_container` reaches a container: `host` shares this machine's network (Linux with a "
            "local, rootful daemon), `bridge` publishes the port on 127.0.0.1 (Docker Desktop, remote or "
            "rootless daemons); `auto` picks by the daemon (course_utils.docker_tools.container_network)."
        ),
    )


def get_settings() -> Settings:
    """Read the environment now and return fresh settings."""
    return Settings()
