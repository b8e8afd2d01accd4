"""Open Inference Protocol (KServe v2 / Triton HTTP): the same model, spoken in the ecosystem's protocol.

Why: KServe, Triton and their clients (`tritonclient`, KServe's SDK, load testers such as perf_analyzer)
already speak this protocol. Serving it next to our own /predict lets the service plug into them without a
custom adapter. The model takes one input and gives two outputs:

    input   text        BYTES  [N]   the texts (JSON strings), 1 <= N <= 64
    output  label       BYTES  [N]   "negative" or "positive"
    output  confidence  FP32   [N]   softmax probability of the label

Requests go through the same path as /predict/batch (dynamic batcher, 512-token limit, API keys, rate
limits, metrics). Protocol errors answer `{"error": "..."}` as the protocol specifies; the request's `id`
is echoed in the response.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from errors import TooManyTokens
from routes import PREDICT_ERRORS, predict_texts
from schemas import MAX_BATCH_TEXTS
from security import authorize
from service import ModelService

__all__ = ["router"]

router = APIRouter(prefix="/v2", tags=["open inference protocol"])

INPUT = "text"
OUTPUTS = ("label", "confidence")


class Tensor(BaseModel):
    """A named tensor: datatype, shape and its elements flattened in row-major order."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "42",
                    "inputs": [
                        {
                            "name": "text",
                            "datatype": "BYTES",
                            "shape": [2],
                            "data": ["Loved every minute.", "A dull, lifeless sequel."],
                        }
                    ],
                }
            ]
        }
    )

    id: str | None = None
    inputs: list[Tensor] = Field(min_length=1)
    outputs: list[dict[str, Any]] | None = Field(default=None, description='e.g. [{"name": "label"}]')
    parameters: dict[str, Any] | None = None


class ProtocolError(BaseModel):
    """The protocol's error body."""

    error: str


_UNKNOWN_MODEL: dict[int | str, dict[str, Any]] = {
    404: {"model": ProtocolError, "description": "No model of that name is served here."}
}
_INFER_ERRORS: dict[int | str, dict[str, Any]] = {
    **PREDICT_ERRORS,
    **_UNKNOWN_MODEL,
    400: {
        "model": ProtocolError,
        "description": "Not a valid request for this model, or a text over 512 tokens.",
    },
}


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[Tensor]


def _error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code)


def _service(request: Request) -> ModelService:
    service: ModelService = request.app.state.service
    return service


def _model_name(request: Request) -> str:
    service = _service(request)
    return service.card.name if service.card is not None else "unknown"


@router.get("", summary="Server metadata")
async def server_metadata() -> dict[str, Any]:
    return {"name": "sentiment-service", "version": "1.0.0", "extensions": []}


@router.get("/health/live", summary="Server liveness")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get(
    "/health/ready",
    summary="Server readiness (503 with the reason when not ready)",
    responses={503: {"description": "Not ready: loading, warming, draining, overloaded or failed."}},
)
async def server_ready(request: Request) -> JSONResponse:
    readiness = _service(request).readiness()
    body = {"ready": readiness.ready, "reason": readiness.reason}
    return JSONResponse(body, status_code=200 if readiness.ready else 503)


@router.get("/models/{model_name}", summary="Model metadata", responses=_UNKNOWN_MODEL)
async def model_metadata(model_name: str, request: Request) -> JSONResponse:
    service = _service(request)
    if service.card is None or model_name != service.card.name:
        return _error(404, f"model {model_name!r} is not served here; GET /v2/models/{_model_name(request)}")
    return JSONResponse(
        {
            "name": service.card.name,
            "versions": [service.card.version],
            "platform": "onnxruntime_onnx"
            if "onnx" in request.app.state.settings.backend.value
            else "pytorch",
            "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [-1]}],
            "outputs": [
                {"name": "label", "datatype": "BYTES", "shape": [-1]},
                {"name": "confidence", "datatype": "FP32", "shape": [-1]},
            ],
        }
    )


@router.get(
    "/models/{model_name}/ready",
    summary="Model readiness",
    responses={**_UNKNOWN_MODEL, 503: {"description": "The model is not ready (yet)."}},
)
async def model_ready(model_name: str, request: Request) -> JSONResponse:
    service = _service(request)
    if service.card is not None and model_name != service.card.name:
        return _error(404, f"model {model_name!r} is not served here; use {service.card.name!r}")
    ready = service.readiness().ready and service.card is not None
    return JSONResponse({"name": model_name, "ready": ready}, status_code=200 if ready else 503)


def _texts(body: InferRequest) -> list[str] | str:
    """The input texts, or a message saying what is wrong with the request (protocol error, 400)."""
    if len(body.inputs) != 1 or body.inputs[0].name != INPUT:
        return f"expected exactly one input named {INPUT!r}, got {[t.name for t in body.inputs]}"
    tensor = body.inputs[0]
    if tensor.datatype != "BYTES":
        return f"input {INPUT!r} must have datatype BYTES, got {tensor.datatype!r}"
    if len(tensor.shape) != 1 or tensor.shape[0] != len(tensor.data):
        return f"input {INPUT!r} must have shape [N] for its {len(tensor.data)} elements, got {tensor.shape}"
    if not 1 <= len(tensor.data) <= MAX_BATCH_TEXTS:
        return f"input {INPUT!r} must hold 1 to {MAX_BATCH_TEXTS} texts, got {len(tensor.data)}"
    if not all(isinstance(text, str) and text.strip() for text in tensor.data):
        return f"every element of {INPUT!r} must be a non-empty string"
    unknown = [o.get("name") for o in body.outputs or [] if o.get("name") not in OUTPUTS]
    if unknown:
        return f"unknown outputs {unknown}; this model has {list(OUTPUTS)}"
    return list(tensor.data)


# The body is parsed by hand (below) because protocol clients do not always send a JSON content type;
# the schema is still documented. Its only reference, Tensor, is in the components through InferResponse.
_INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    key: value
                    for key, value in InferRequest.model_json_schema(
                        ref_template="#/components/schemas/{model}"
                    ).items()
                    if key != "$defs"
                }
            }
        },
    }
}


async def _parse(request: Request) -> InferRequest | str:
    """The request body as an InferRequest, or what is wrong with it."""
    raw = await request.body()
    header_length = request.headers.get("inference-header-content-length")
    if header_length is not None and header_length != str(len(raw)):
        return "binary tensor data is not supported: send tensors as JSON (tritonclient: binary_data=False)"
    try:
        return InferRequest.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return f"invalid inference request: {where}: {first['msg']}"


@router.post(
    "/models/{model_name}/infer",
    summary="Inference",
    response_model=InferResponse,
    responses=_INFER_ERRORS,
    openapi_extra=_INFER_BODY,
)
async def infer(
    model_name: str, request: Request, client: Annotated[str, Depends(authorize)]
) -> InferResponse | JSONResponse:
    served = _model_name(request)
    if model_name != served:
        return _error(404, f"model {model_name!r} is not served here; use {served!r}")
    body = await _parse(request)
    if isinstance(body, str):
        return _error(400, body)
    texts = _texts(body)
    if isinstance(texts, str):
        return _error(400, texts)
    try:
        predictions = await predict_texts(request, texts, client=client, field=INPUT)
    except TooManyTokens as exc:  # a protocol client expects the protocol's error body
        request.app.state.metrics.reject(exc.reason)
        return _error(400, exc.detail)
    wanted = [str(o["name"]) for o in body.outputs] if body.outputs else list(OUTPUTS)
    columns = {
        "label": Tensor(
            name="label", datatype="BYTES", shape=[len(texts)], data=[p.label for p in predictions]
        ),
        "confidence": Tensor(
            name="confidence", datatype="FP32", shape=[len(texts)], data=[p.confidence for p in predictions]
        ),
    }
    return InferResponse(
        model_name=served,
        model_version=_service(request).model_version,
        id=body.id,
        outputs=[columns[name] for name in wanted],
    )
