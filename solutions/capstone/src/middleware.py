"""Per-request plumbing as plain ASGI middleware: request id, JSON access log, HTTP metrics, last-resort 500.

Plain ASGI (rather than `BaseHTTPMiddleware`) because it sees every request, including the ones that crash,
and adds no extra task per request.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metrics import ServiceMetrics

__all__ = ["REQUEST_ID_HEADER", "BodySizeLimitMiddleware", "BodyTooLarge", "RequestContextMiddleware"]

REQUEST_ID_HEADER = "X-Request-ID"
# A client-supplied id is echoed in logs and headers, so accept only short, harmless ones.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

access_logger = logging.getLogger("capstone.access")


class RequestContextMiddleware:
    """For every HTTP request: a request id (X-Request-ID in, or a new one; echoed in the response),
    `http_requests_total` and duration by route template, one JSON log line, and a JSON 500 with the request
    id if the app raises, so the client can quote it and the process stays up.

    Handlers may set `request.state.queue_ms` / `compute_ms`; they are added to the log line.
    """

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            access_logger.exception(
                "unhandled error", extra={"fields": {"request_id": request_id, "path": scope["path"]}}
            )
            self.metrics.reject("error")
            if response_started:
                raise  # Too late for a 500: the server closes the connection.
            await _send_json_500(send_with_request_id, request_id)
        finally:
            self._record(scope, state, status, time.perf_counter() - started, request_id)

    def _record(
        self, scope: Scope, state: dict[str, object], status: int, seconds: float, request_id: str
    ) -> None:
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
        route = _route_template(scope)
        self.metrics.http_requests.labels(method=method, route=route, status=str(status)).inc()
        self.metrics.http_latency.labels(method=method, route=route).observe(seconds)
        if route.startswith("/predict"):
            self.metrics.predict_requests.labels(endpoint=route, status=str(status)).inc()
            self.metrics.predict_latency.labels(endpoint=route).observe(seconds)

        fields: dict[str, object] = {
            "method": scope["method"],
            "path": scope["path"],
            "route": route,
            "status": status,
            "latency_ms": round(seconds * 1000, 3),
            "request_id": request_id,
        }
        for key in ("queue_ms", "compute_ms", "batch_size", "client"):
            if key in state:
                fields[key] = state[key]
        access_logger.info("request", extra={"fields": fields})


class BodyTooLarge(HTTPException):
    """Raised from `receive()`; FastAPI re-raises HTTPExceptions from body reading, so the app's HTTPException
    handler turns it into the usual JSON error (with the request id)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body larger than {max_bytes} bytes; send fewer or shorter texts")


class BodySizeLimitMiddleware:
    """413 for request bodies over `max_bytes`, before reading them: a Content-Length over the limit fails
    on the first `receive()`, and a body without one (chunked) fails as soon as the bytes read pass the limit.

    Why both: Content-Length is cheap to check but optional; counting the stream is what bounds memory.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        too_large_declared = declared.isdigit() and int(declared) > self.max_bytes
        received = 0

        async def receive_with_limit() -> Message:
            nonlocal received
            if too_large_declared:
                raise BodyTooLarge(self.max_bytes)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, receive_with_limit, send)


def _request_id(scope: Scope) -> str:
    supplied = Headers(scope=scope).get(REQUEST_ID_HEADER)
    if supplied and _VALID_REQUEST_ID.match(supplied):
        return supplied
    return uuid.uuid4().hex


def _route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label values); "unmatched" for 404s."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


async def _send_json_500(send: Send, request_id: str) -> None:
    body = json.dumps(
        {
            "detail": "internal server error; quote the request_id when reporting it",
            "reason": "error",
            "request_id": request_id,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
