"""API keys and per-client rate limits for the prediction endpoints.

Both are optional: with no `API_KEYS` every caller is anonymous, and with `RATE_LIMIT_PER_S=0` nobody is
limited. /health, /ready and /metrics never depend on this module, so probes and Prometheus keep working.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from errors import RateLimited, Unauthorized

__all__ = ["Guard", "RateLimiter", "TokenBucket", "authorize"]


class TokenBucket:
    """Allows `burst` requests at once and `rate_per_s` sustained: each request takes one token, tokens
    flow back at `rate_per_s` up to `burst`."""

    def __init__(self, rate_per_s: float, burst: int, *, now: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float) -> float:
        """Take a token; return 0.0 on success, else the seconds until one is available."""
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate_per_s


class RateLimiter:
    """One token bucket per client; the least recently seen clients are forgotten beyond `max_clients`,
    so memory stays bounded even when clients are identified by IP address."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s={rate_per_s!r} must be > 0; disable the limiter instead of using 0")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def check(self, client: str) -> float:
        """0.0 if `client` may proceed, else the seconds it should wait (for Retry-After)."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = TokenBucket(self.rate_per_s, self.burst, now=now)
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
        return bucket.take(now)


class Guard:
    """Decides who may call /predict*: checks the API key (if keys are configured), then the rate limit."""

    def __init__(self, api_keys: Sequence[str], limiter: RateLimiter | None) -> None:
        self._keys = [key.encode() for key in api_keys]
        self._limiter = limiter

    @property
    def requires_key(self) -> bool:
        return bool(self._keys)

    def check(self, presented_key: str | None, client_host: str) -> str:
        """Return the client id used for rate limiting; raise Unauthorized (401) or RateLimited (429)."""
        if self._keys:
            if not presented_key:
                raise Unauthorized(
                    "missing API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'"
                )
            if not self._is_valid(presented_key):
                raise Unauthorized("invalid API key")
            # Identify the client by a hash prefix: the key itself must never reach logs or memory dumps.
            client = "key:" + hashlib.sha256(presented_key.encode()).hexdigest()[:12]
        else:
            client = "ip:" + client_host
        if self._limiter is not None:
            wait_s = self._limiter.check(client)
            if wait_s > 0:
                retry_after_s = max(1, math.ceil(wait_s))
                raise RateLimited(
                    f"rate limit of {self._limiter.rate_per_s:g} requests/s "
                    f"(burst {self._limiter.burst}) exceeded; retry in {retry_after_s} s",
                    retry_after_s=retry_after_s,
                )
        return client

    def _is_valid(self, presented_key: str) -> bool:
        presented = presented_key.encode()
        # compare_digest takes the same time whether the first or the last byte differs (no timing leak);
        # check every key, so the time does not reveal which one matched either.
        matches = [hmac.compare_digest(presented, key) for key in self._keys]
        return any(matches)


# Declared as FastAPI security schemes so /docs shows an "Authorize" button for both ways of sending a key.
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key (if API_KEYS is set)")
_bearer = HTTPBearer(auto_error=False, description="The same API key, as 'Authorization: Bearer <key>'")


async def authorize(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> str:
    """FastAPI dependency of the prediction routes: returns the client id or raises 401/429."""
    guard: Guard = request.app.state.guard
    presented = api_key or (bearer.credentials if bearer is not None else None)
    client_host = request.client.host if request.client is not None else "unknown"
    return guard.check(presented, client_host)
