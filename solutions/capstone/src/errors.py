"""The service's refusals: one exception per HTTP status the contract names, handled in one place.

Route code raises these; `app.py` turns each into a JSON response `{"detail", "reason", "request_id"}`,
counts it in `predict_rejections_total{reason}`, and adds headers such as Retry-After.
"""

from __future__ import annotations

__all__ = [
    "DeadlineExceeded",
    "NotReady",
    "Overloaded",
    "RateLimited",
    "ServiceError",
    "TooManyTokens",
    "Unauthorized",
]


class ServiceError(Exception):
    """Base class: an HTTP status, a bounded `reason` label for metrics, a message for the client."""

    status_code = 500
    reason = "error"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class Unauthorized(ServiceError):
    status_code = 401
    reason = "unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class RateLimited(ServiceError):
    status_code = 429
    reason = "rate_limited"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class TooManyTokens(ServiceError):
    status_code = 400
    reason = "too_many_tokens"


class NotReady(ServiceError):
    """The model is not loaded yet, failed to load, or the service is draining."""

    status_code = 503
    reason = "not_ready"

    def __init__(self, detail: str, *, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class Overloaded(ServiceError):
    """The batcher's queue is full: shed load now rather than answer everyone late."""

    status_code = 503
    reason = "queue_full"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class DeadlineExceeded(ServiceError):
    status_code = 504
    reason = "deadline"
