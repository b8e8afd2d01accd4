"""Service settings, read from environment variables once, when the app is created.

Every knob of the service lives here so `deploy.md` can document them in one table and tests can build an
app with explicit values (`create_app(ServiceSettings(max_batch_size=1))`) instead of patching globals.
Names are the environment variables, upper-cased: `MODEL_DIR`, `BACKEND`, `MAX_BATCH_SIZE`, ...
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from model_card import registry_model_dir

__all__ = ["Backend", "ServiceSettings"]


class Backend(StrEnum):
    """Which runtime computes the logits; ONNX Runtime INT8 is the fastest on CPU, so it is the default."""

    ONNX_INT8 = "onnx-int8"
    ONNX_FP32 = "onnx-fp32"
    TORCH = "torch"


class ServiceSettings(BaseSettings):
    """Configuration of the sentiment service; each field is an environment variable of the same name."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # Model ------------------------------------------------------------------------------------------------
    model_dir: Path = Field(
        default=Path("model"),
        description="Exported model folder (model_card.json, tokenizer.json, ONNX/safetensors files).",
    )
    model_registry: Path | None = Field(
        default=None,
        description="A course_utils model registry; when set, the model is MODEL_NAME at MODEL_ALIAS in it.",
    )
    model_name: str = Field(
        default="minilm-sentiment", description="Registered model name (with MODEL_REGISTRY)."
    )
    model_alias: str = Field(
        default="production", description="Registry alias or version to serve (with MODEL_REGISTRY)."
    )
    backend: Backend = Field(default=Backend.ONNX_INT8, description="onnx-int8, onnx-fp32 or torch.")
    ort_threads: int = Field(
        default=0,
        ge=0,
        description="ONNX Runtime threads per inference worker; 0 = (cores - 1) / workers, at least 1.",
    )
    inference_workers: int = Field(
        default=3,
        ge=1,
        le=64,
        description="Batches computed at once, each in its own thread (3 was best on 2 cores: make bench).",
    )

    workers: int = Field(
        default=1,
        ge=1,
        le=32,
        description="uvicorn worker processes, started by `python src/serve.py`; above 1 they share their "
        "metrics through prometheus_client's multiprocess mode.",
    )
    prometheus_multiproc_dir: Path | None = Field(
        default=None,
        description="Set by serve.py when WORKERS > 1: a fresh folder per start where every worker writes "
        "its metrics. Not to be set by hand.",
    )

    # Dynamic batching -------------------------------------------------------------------------------------
    max_batch_size: int = Field(default=16, ge=1, le=256, description="Largest batch; 1 disables batching.")
    max_wait_ms: float = Field(
        default=2.0, ge=0, le=10_000, description="How long the first request of a batch waits for company."
    )
    adaptive_wait: bool = Field(
        default=True,
        description="Skip the wait when, at the recent arrival rate, no other request is due within it.",
    )
    max_queue: int = Field(
        default=256, ge=1, description="Requests allowed to wait; beyond this, 503 with Retry-After."
    )
    request_timeout_s: float = Field(
        default=10.0, gt=0, description="Per-request deadline; a request still waiting after it gets 504."
    )
    retry_after_s: int = Field(default=1, ge=1, description="Retry-After value sent with 503 (queue full).")

    # Limits and security ----------------------------------------------------------------------------------
    max_body_bytes: int = Field(default=262_144, ge=1, description="Request bodies above this get 413.")
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        repr=False,  # secrets never appear in logs or tracebacks
        description="Comma-separated API keys; when set, /predict* require X-API-Key or a Bearer token.",
    )
    rate_limit_per_s: float = Field(
        default=0.0, ge=0, description="Sustained requests per second per API key (or client); 0 = off."
    )
    rate_limit_burst: int = Field(
        default=20, ge=1, description="Token-bucket size: requests allowed at once."
    )

    # Operations -------------------------------------------------------------------------------------------
    drain_delay_s: float = Field(
        default=0.0,
        ge=0,
        le=120,
        description="After SIGTERM, keep serving this long with /ready=503 so load balancers stop routing.",
    )
    log_level: str = Field(default="INFO", description="Level of the JSON logs (DEBUG, INFO, WARNING...).")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_api_keys(cls, value: object) -> object:
        """Accept `API_KEYS="key-a,key-b"` from the environment; blanks are ignored."""
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    def threads_per_worker(self) -> int:
        """ORT_THREADS, or the cores left after one for HTTP, shared among the inference workers of every
        uvicorn worker process.

        Why not ONNX Runtime's default (a thread per core)? An operator waits for all its threads, so with
        more compute threads than cores one descheduled thread stalls the whole batch (measured on 2 cores).
        """
        if self.ort_threads:
            return self.ort_threads
        return max(1, ((os.cpu_count() or 1) - 1) // (self.inference_workers * self.workers))

    def model_folder(self) -> Path:
        """MODEL_DIR, or the registry's folder for MODEL_NAME at MODEL_ALIAS when MODEL_REGISTRY is set."""
        if self.model_registry is None:
            return self.model_dir
        return registry_model_dir(self.model_registry, self.model_name, self.model_alias)

    @field_validator("log_level")
    @classmethod
    def _upper_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"LOG_LEVEL={value!r} is not a logging level; use DEBUG, INFO, WARNING or ERROR")
        return level
