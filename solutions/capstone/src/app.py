"""The sentiment service: a fine-tuned MiniLM behind FastAPI (reference solution of the capstone).

Run it with `MODEL_DIR=artifacts/model uvicorn app:app --app-dir src`, or with several worker processes as
`WORKERS=2 python src/serve.py` (serve.py sets up the shared metrics first). `create_app()` builds a complete,
independent app (own settings, metrics registry, model service), so tests can build several with different
settings; importing this module builds one from the environment but loads nothing: the model is loaded in
the lifespan, in the background, and /ready says 200 once it is verified and warmed up.

Where things live:
    settings.py      every environment variable            routes.py     the endpoints
    service.py       load -> warm up -> serve -> drain      batching.py   the dynamic batcher
    inference.py     tokenizer + ONNX Runtime / PyTorch     model_card.py sha256 checks of the model files
    security.py      API keys, rate limits                  metrics.py    Prometheus metrics
    middleware.py    request id, JSON access log, 500s      shutdown.py   SIGTERM -> draining
    errors.py        refusals -> HTTP statuses              schemas.py    request/response bodies
    oip.py           Open Inference Protocol (KServe v2) endpoints
    serve.py         WORKERS uvicorn processes with shared (multiprocess) metrics
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import oip
from errors import ServiceError
from logging_json import configure_logging
from metrics import ServiceMetrics
from middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from routes import router
from security import Guard, RateLimiter
from service import ModelService
from settings import ServiceSettings
from shutdown import drain_on_sigterm

__all__ = ["app", "create_app"]

DESCRIPTION = """
Classifies English text as `positive` or `negative` with a fine-tuned MiniLM (ONNX Runtime, INT8 by default).

* `POST /predict` and `POST /predict/batch` answer a label, its confidence and the model version.
* `GET /health` (liveness) and `GET /ready` (readiness) are for orchestrators; `GET /metrics` for Prometheus.
* `/v2/...` speaks the Open Inference Protocol (KServe v2), for KServe/Triton clients.
* If the server has API keys configured, send one as `X-API-Key` or `Authorization: Bearer`.
"""


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the app; `settings=None` reads them from the environment now. Loads nothing yet."""
    settings = settings if settings is not None else ServiceSettings()
    metrics = ServiceMetrics(multiprocess_dir=settings.prometheus_multiproc_dir, max_queue=settings.max_queue)
    service = ModelService(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        service.start()  # background: the server answers /health and /ready while the model loads
        try:
            with drain_on_sigterm(service.begin_draining, delay_s=settings.drain_delay_s):
                yield
        finally:
            await service.stop()  # runs after uvicorn has finished the in-flight requests
            metrics.close()

    app = FastAPI(
        title="Sentiment service",
        summary="Capstone reference: a fine-tuned MiniLM sentiment classifier.",
        description=DESCRIPTION,
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.service = service
    limiter = (
        RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
        if settings.rate_limit_per_s > 0
        else None
    )
    app.state.guard = Guard(settings.api_keys, limiter)

    # The last one added is the outermost: request context first, so even a 413 gets a request id and a log.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.add_exception_handler(ServiceError, _service_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.include_router(router)
    app.include_router(oip.router)
    return app


def _error_body(request: Request, detail: object, reason: str) -> dict[str, object]:
    return {"detail": detail, "reason": reason, "request_id": getattr(request.state, "request_id", "")}


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    """The refusals of errors.py: 400, 401, 429, 503, 504 with a message and headers such as Retry-After."""
    request.app.state.metrics.reject(exc.reason)
    return JSONResponse(
        _error_body(request, exc.detail, exc.reason), status_code=exc.status_code, headers=exc.headers
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each bad field; malformed JSON lands here too. Inputs are not echoed back."""
    request.app.state.metrics.reject("invalid")
    errors = []
    for error in exc.errors():
        loc, msg = list(error["loc"]), error["msg"]
        if error["type"] == "json_invalid":  # loc is ("body", character position)
            msg = f"malformed JSON at character {loc[-1]}: {error.get('ctx', {}).get('error', msg)}"
            loc = ["body"]
        errors.append({"loc": loc, "msg": msg, "type": error["type"]})
    summary = "; ".join(_describe(error) for error in errors)
    body = _error_body(request, errors, "invalid")
    body["message"] = f"invalid request: {summary}"
    return JSONResponse(body, status_code=422)


def _describe(error: dict[str, object]) -> str:
    """("body", "texts", 2) + message -> "texts[2]: message", the way a client would name the field."""
    loc = [part for part in error["loc"] if part != "body"]  # type: ignore[attr-defined]
    name = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    return f"{name or 'body'}: {error['msg']}"


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Framework errors (404, 405, 413 body too large) in the same JSON shape as ours."""
    reason = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
        exc.status_code, "http_error"
    )
    if exc.status_code == 413:
        request.app.state.metrics.reject("too_large")
    return JSONResponse(
        _error_body(request, exc.detail, reason), status_code=exc.status_code, headers=exc.headers
    )


app = create_app()
