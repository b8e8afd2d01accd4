"""The endpoints of the capstone contract: /health, /ready, /predict, /predict/batch, /metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from errors import TooManyTokens
from inference import TokenLimitError
from metrics import CONTENT_TYPE_LATEST, ServiceMetrics
from schemas import (
    ErrorResponse,
    HealthResponse,
    NotReadyResponse,
    PredictBatchRequest,
    PredictRequest,
    PredictResponse,
    ReadyResponse,
)
from security import authorize
from service import ModelService

__all__ = ["PREDICT_ERRORS", "predict_texts", "router"]

router = APIRouter()

PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "A text is longer than 512 tokens."},
    401: {
        "model": ErrorResponse,
        "description": "API keys are configured and none, or a wrong one, was sent.",
    },
    413: {"model": ErrorResponse, "description": "The request body is larger than MAX_BODY_BYTES."},
    422: {
        "model": ErrorResponse,
        "description": "Invalid body: malformed JSON, a missing, empty or wrong field.",
    },
    429: {"model": ErrorResponse, "description": "Rate limit exceeded; see the Retry-After header."},
    503: {"model": ErrorResponse, "description": "Not ready, draining, or queue full; see Retry-After."},
    504: {
        "model": ErrorResponse,
        "description": "No answer within REQUEST_TIMEOUT_S; nothing was computed late.",
    },
}


@router.get("/health", tags=["probes"], summary="Liveness: the process is up")
async def health(request: Request) -> HealthResponse:
    """Never touches the model, so a slow or broken model cannot make the orchestrator restart the process."""
    service: ModelService = request.app.state.service
    return HealthResponse(model_loaded=service.model_loaded)


@router.get(
    "/ready",
    tags=["probes"],
    summary="Readiness: send traffic here?",
    response_model=ReadyResponse,
    responses={
        503: {"model": NotReadyResponse, "description": "loading, warming, draining, overloaded, failed"}
    },
)
async def ready(request: Request) -> ReadyResponse | JSONResponse:
    """200 only when the model is loaded, verified and warmed up and the queue has room."""
    service: ModelService = request.app.state.service
    readiness = service.readiness()
    if not readiness.ready:
        body = NotReadyResponse(reason=readiness.reason, detail=readiness.detail or "")  # type: ignore[arg-type]
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "1"})
    return ReadyResponse(
        model_version=service.model_version, backend=request.app.state.settings.backend.value
    )


@router.post("/predict", tags=["predict"], summary="Classify one text", responses=PREDICT_ERRORS)
async def predict(
    body: PredictRequest, request: Request, client: Annotated[str, Depends(authorize)]
) -> PredictResponse:
    (prediction,) = await predict_texts(request, [body.text], client=client, field="text")
    return prediction


@router.post("/predict/batch", tags=["predict"], summary="Classify up to 64 texts", responses=PREDICT_ERRORS)
async def predict_batch(
    body: PredictBatchRequest, request: Request, client: Annotated[str, Depends(authorize)]
) -> list[PredictResponse]:
    """The texts go through the same dynamic batcher as single requests; answers keep the input order."""
    return await predict_texts(request, body.texts, client=client, field="texts")


@router.get("/metrics", tags=["monitoring"], summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    service_metrics: ServiceMetrics = request.app.state.metrics
    return Response(service_metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def predict_texts(
    request: Request, texts: Sequence[str], *, client: str, field: str
) -> list[PredictResponse]:
    """Predict through the service; too-long texts become a 400; record timings and drift metrics."""
    service: ModelService = request.app.state.service
    service_metrics: ServiceMetrics = request.app.state.metrics
    request.state.client = client
    with service_metrics.in_flight.track_inprogress():
        completed = await service.predict(texts)

    request.state.queue_ms = round(max(item.queue_s for item in completed) * 1000, 3)
    request.state.compute_ms = round(max(item.compute_s for item in completed) * 1000, 3)
    request.state.batch_size = max(item.batch_size for item in completed)
    responses: list[PredictResponse] = []
    for index, item in enumerate(completed):
        if isinstance(item.value, TokenLimitError):
            where = field if field == "text" else f"{field}[{index}]"
            raise TooManyTokens(f"{where}: {item.value}")
        service_metrics.queue_wait.observe(item.queue_s)
        responses.append(
            PredictResponse(
                label=item.value.label,  # type: ignore[arg-type]  # labels come from the verified card
                confidence=item.value.confidence,
                model_version=service.model_version,
            )
        )
    for response in responses:
        service_metrics.confidence.observe(response.confidence)
        service_metrics.labels.labels(label=response.label).inc()
    return responses
