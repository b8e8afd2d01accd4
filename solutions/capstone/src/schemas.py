"""Request and response bodies: what /docs shows, with examples, and what FastAPI validates (422)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "MAX_BATCH_TEXTS",
    "ErrorResponse",
    "HealthResponse",
    "NotReadyResponse",
    "PredictBatchRequest",
    "PredictRequest",
    "PredictResponse",
    "ReadyResponse",
]

#: Most texts one /predict/batch request may carry; bigger jobs belong in an offline batch pipeline.
MAX_BATCH_TEXTS = 64


def _not_blank(text: str) -> str:
    # The schema's `pattern: \S` is an ECMAScript regex, whose whitespace also includes U+FEFF (a byte
    # order mark); Python's str.strip() keeps it. Strip it too, so the service and its schema agree.
    if not text.replace("\ufeff", "").strip():
        raise ValueError("text must not be empty or only whitespace")
    return text


Text = Annotated[
    str,
    AfterValidator(_not_blank),
    Field(
        description="The text to classify: not empty, at most 512 tokens.",
        examples=["What a great film!"],
        # What `_not_blank` enforces, stated in the schema so clients (and API fuzzers) can see it.
        json_schema_extra={"minLength": 1, "pattern": r"\S"},
    ),
]


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"text": "The acting was wonderful and the plot kept me hooked."}]}
    )

    text: Text


class PredictBatchRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"texts": ["Loved every minute.", "A dull, lifeless sequel."]}]}
    )

    texts: list[Text] = Field(
        min_length=1, max_length=MAX_BATCH_TEXTS, description=f"1 to {MAX_BATCH_TEXTS} texts."
    )


class PredictResponse(BaseModel):
    """A label and the model's confidence in it; never raw logits."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"label": "positive", "confidence": 0.97, "model_version": "1.0.0+3f2a9c1d"}]
        }
    )

    label: Literal["negative", "positive"]
    confidence: float = Field(ge=0.0, le=1.0, description="Softmax probability of `label`.")
    model_version: str = Field(description="`version` from the model's model_card.json.")


class HealthResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok", "model_loaded": True}]})

    status: Literal["ok"] = "ok"
    model_loaded: bool


class ReadyResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ready", "model_version": "1.0.0+3f2a9c1d", "backend": "onnx-int8"}]
        }
    )

    status: Literal["ready"] = "ready"
    model_version: str
    backend: str


class NotReadyResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "not_ready", "reason": "warming", "detail": "model loaded; running warm-up"}
            ]
        }
    )

    status: Literal["not_ready"] = "not_ready"
    reason: Literal["loading", "warming", "draining", "overloaded", "failed"]
    detail: str


class ErrorResponse(BaseModel):
    """Every error body: what went wrong, a bounded reason, and the request id to quote."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "text: text has 731 tokens but the model accepts at most 512",
                    "reason": "too_many_tokens",
                    "request_id": "5f0c9e2a8b7d4c1e9a3b6d2f1e0c4a7b",
                }
            ]
        }
    )

    detail: str | list[dict[str, object]] = Field(
        description="A message, or for 422 one entry per bad field."
    )
    reason: str
    request_id: str
    message: str | None = Field(default=None, description="422 only: every bad field, in one sentence.")
