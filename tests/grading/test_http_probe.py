"""The grader's client follows redirects within the service (as Prometheus does), never to another host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, RedirectResponse

from course_utils.grading.http_probe import HttpProbe
from course_utils.server import BackgroundServer

app = FastAPI()


@app.get("/metrics/")
def metrics() -> PlainTextResponse:
    return PlainTextResponse("# HELP x y\n")


@app.get("/elsewhere")
def elsewhere() -> RedirectResponse:
    return RedirectResponse("http://example.invalid/metrics", status_code=307)


@app.get("/loop")
def loop() -> RedirectResponse:
    return RedirectResponse("/loop", status_code=307)


@pytest.fixture(scope="module")
def probe() -> Iterator[HttpProbe]:
    with BackgroundServer(app) as server:
        client = HttpProbe(server.url, request_timeout_s=5.0, budget_s=30.0)
        try:
            yield client
        finally:
            client.close()


def test_a_same_host_redirect_is_followed(probe: HttpProbe) -> None:
    reply = probe.send("GET", "/metrics")  # Starlette answers 307 -> /metrics/
    assert reply.status == 200 and reply.text.startswith("# HELP"), reply
    assert probe.successes["GET /metrics"] == 1


def test_a_redirect_to_another_host_is_not_followed(probe: HttpProbe) -> None:
    reply = probe.send("GET", "/elsewhere")
    assert reply.status == 307 and "another host" in reply.text


def test_a_redirect_loop_ends(probe: HttpProbe) -> None:
    reply = probe.send("GET", "/loop")
    assert reply.status == 307 and "redirects in a row" in reply.text
