"""A defensive HTTP client for grading: never raises, caps bodies, gives up on a hung server.

Why not plain httpx calls: a submission may hang (every request would then cost a full timeout), answer
with gigabytes, or send invalid JSON. `HttpProbe.send` turns all of that into a `Reply` value; after two
timeouts in a row on one path it stops sending to that path (other endpoints are still graded), and once
the time budget is spent it stops sending at all, saying why in every later reply: a hung submission
costs seconds, not minutes. A redirect to the same host and port is followed (at most
`MAX_REDIRECTS`), as Prometheus and browsers do: `app.mount("/metrics", make_asgi_app())` answers
`GET /metrics` with 307 to `/metrics/`. A redirect anywhere else is not followed: the grader only talks to
the submission. Bodies are parsed with `json.loads` into plain values:
nothing from the submission's own objects survives the wire, so a lying `__eq__` cannot reach the grader.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["MAX_REDIRECTS", "NOT_JSON", "HttpProbe", "Reply", "is_number"]

#: `Reply.body` when the body is not valid JSON.
NOT_JSON: Any = object()
_MAX_BODY_BYTES = 1024 * 1024
#: Same-host redirects followed per request.
MAX_REDIRECTS = 5


def is_number(value: Any) -> bool:
    """True for a finite JSON number (int or float, exactly; bool is not a number here)."""
    return type(value) in (int, float) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back: a status and a parsed body, or the reason there was no answer."""

    status: int | None
    body: Any = field(default=None, repr=False)
    text: str = field(default="", repr=False)
    error: str | None = None
    seconds: float = 0.0

    def describe(self) -> str:
        """One short phrase for feedback, e.g. 'HTTP 500: Internal Server Error' or 'timed out after 5s'."""
        if self.status is None:
            return f"no answer ({self.error or 'connection failed'})"
        snippet = " ".join(self.text.split())[:160]
        return f"HTTP {self.status}: {snippet}" if snippet else f"HTTP {self.status} with an empty body"


class HttpProbe:
    """Sends the grader's requests to one running submission within a time budget."""

    def __init__(self, base_url: str, *, request_timeout_s: float, budget_s: float) -> None:
        self.base_url = base_url
        self.request_timeout_s = request_timeout_s
        self.deadline = time.monotonic() + budget_s
        self.budget_s = budget_s
        self._timeouts_in_a_row: Counter[str] = Counter()
        self._budget_spent: str | None = None
        self._gave_up_on: dict[str, str] = {}
        #: 2xx answers by "METHOD /path", e.g. for the one-log-line-per-request check.
        self.successes: Counter[str] = Counter()
        self._client = httpx.Client(timeout=request_timeout_s, trust_env=False, follow_redirects=False)

    def gave_up(self, path: str) -> str | None:
        """Why requests to `path` are no longer sent (time budget spent, or it hung twice), else None."""
        return self._budget_spent or self._gave_up_on.get(path)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request; every failure becomes a `Reply` with `status=None` and an `error`."""
        if self._budget_spent is None and time.monotonic() > self.deadline:
            self._budget_spent = f"the grader's time budget of {self.budget_s:.0f}s for HTTP checks was spent"
        why = self.gave_up(path)
        if why is not None:
            return Reply(None, error=f"not sent: {why}")
        t0 = time.monotonic()
        try:
            request = self._client.build_request(
                method, self.base_url + path, json=json_body, content=content, headers=headers
            )
            status, raw, refused = self._exchange(request)
        except httpx.TimeoutException:
            self._timeouts_in_a_row[path] += 1
            if self._timeouts_in_a_row[path] >= 2:  # a hung endpoint: stop waiting on it, test the others
                self._gave_up_on[path] = (
                    f"two requests to {path} in a row timed out after {self.request_timeout_s:.0f}s each"
                )
            return Reply(
                None, error=f"timed out after {self.request_timeout_s:.0f}s", seconds=time.monotonic() - t0
            )
        except httpx.HTTPError as exc:
            return Reply(None, error=f"request failed: {type(exc).__name__}", seconds=time.monotonic() - t0)
        self._timeouts_in_a_row[path] = 0
        if refused:
            return Reply(status, NOT_JSON, refused, seconds=time.monotonic() - t0)
        if 200 <= status < 300:
            self.successes[f"{method} {path}"] += 1
        text = raw[:_MAX_BODY_BYTES].decode("utf-8", errors="replace")
        return Reply(status, _parse_json(text), text, seconds=time.monotonic() - t0)

    def _exchange(self, request: httpx.Request) -> tuple[int, bytearray, str]:
        """Status and (capped) body of `request`, after same-host redirects; or why a redirect was refused."""
        origin = httpx.URL(self.base_url)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._client.send(request, stream=True)
            try:
                raw = bytearray()
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) > _MAX_BODY_BYTES:
                        break
            finally:
                response.close()
            follow = response.next_request  # httpx builds it as a browser would (303 -> GET, ...)
            if follow is None:
                return response.status_code, raw, ""
            if (follow.url.scheme, follow.url.host, follow.url.port) != (
                origin.scheme,
                origin.host,
                origin.port,
            ):
                return (
                    response.status_code,
                    raw,
                    f"HTTP {response.status_code} redirect to {str(follow.url)[:120]!r}, another host: the "
                    "grader only follows redirects within the service",
                )
            request = follow
        return response.status_code, raw, f"more than {MAX_REDIRECTS} redirects in a row (a redirect loop?)"


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return NOT_JSON
