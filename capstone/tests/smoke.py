"""Container smoke test: start the built image, wait for /ready, ask for predictions, always remove it.

Why after the build: the contract test imports the app in-process, so it cannot see what only the image
can get wrong: a file left out of the image, a wrong CMD, a server on another port, a model the image's
user cannot read. This runs the image as production would and stops the pipeline before a broken image is
deployed. It needs the docker command and the course library, which `make setup` installs in every job.

    python tests/smoke.py IMAGE [--network bridge|host] [--port 0] [--container-port 8000] [--timeout-s 180]

With `--network bridge` (the default) the container's port is published on 127.0.0.1:PORT. With
`--network host` the container shares the machine's ports, so the image must read its port from the
environment variable UVICORN_PORT (uvicorn does, unless CMD passes --port). PORT 0 picks a free port.
Exit codes: 0 passed, 1 a check failed, 2 the container could not be started.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from course_utils.contract import INVALID_BODIES, LABELS, REQUESTS_COUNTER, confidence_problem
from course_utils.ports import free_port

DOCKER_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 40
NEGATIVE, POSITIVE = LABELS


class SmokeError(Exception):
    """A smoke check failed; the message says what was expected and what came back."""


def docker(docker_cmd: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one docker command with a bounded wait; its output is returned, never raised."""
    return subprocess.run(
        [docker_cmd, *args], capture_output=True, text=True, timeout=DOCKER_TIMEOUT_S, check=False
    )


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, str]:
    """(status, body text) of one request; HTTP error statuses are answers, not exceptions."""
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return int(response.status), response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", errors="replace")


def wait_ready(docker_cmd: str, container: str, base_url: str, timeout_s: float) -> float:
    """Poll /ready until 200; fail early, with the reason, if the container stops. Returns the wait in s."""
    started = time.monotonic()
    last = "no answer yet"
    while time.monotonic() - started < timeout_s:
        state = docker(docker_cmd, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container)
        status, _, code = state.stdout.strip().partition(" ")
        if status != "running":
            raise SmokeError(
                f"the container stopped before /ready answered 200 (state {status!r}, exit {code})"
            )
        try:
            answer, text = http("GET", f"{base_url}/ready")
            if answer == 200:
                return time.monotonic() - started
            last = f"{answer} {text[:200]}"
        except OSError as exc:  # refused or reset while the server starts
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    raise SmokeError(
        f"/ready did not answer 200 within {timeout_s:.0f} s (last: {last}). With --network host the image "
        "must listen on UVICORN_PORT; with bridge, on --container-port."
    )


def check_predictions(base_url: str) -> list[str]:
    """The answers a deployed service must give; returns one line per check that passed.

    The rules (labels, confidence, the bodies refused with 422, the counter's name) are the capstone
    contract's, imported from `course_utils.contract` as the grader and tests/test_service_contract.py do.
    """
    passed = []
    for text, label in (
        ("This movie is excellent!", POSITIVE),
        ("A dull, boring waste of time.", NEGATIVE),
    ):
        status, body = http("POST", f"{base_url}/predict", json.dumps({"text": text}).encode())
        if status != 200:
            raise SmokeError(f"POST /predict {text!r} answered {status}, expected 200: {body[:300]}")
        answer: dict[str, Any] = json.loads(body)
        confidence = answer.get("confidence")
        if answer.get("label") != label or confidence_problem(confidence):
            why = confidence_problem(confidence) or f"the label is not {label!r}"
            raise SmokeError(f"POST /predict {text!r} answered {answer}: {why}")
        if not isinstance(answer.get("model_version"), str) or not answer["model_version"]:
            raise SmokeError(f"POST /predict answered {answer}, expected a non-empty model_version")
        passed.append(f"POST /predict {text!r} -> {label} ({confidence:.3f}, {answer['model_version']})")
    for invalid in INVALID_BODIES:
        raw = invalid.raw if invalid.raw is not None else json.dumps(invalid.json).encode()
        status, body = http("POST", f"{base_url}/predict", raw)
        if status != 422:
            raise SmokeError(f"POST /predict {invalid.name} answered {status}, expected 422: {body[:300]}")
    passed.append(f"POST /predict -> 422 for each of {len(INVALID_BODIES)} invalid bodies")
    status, body = http("GET", f"{base_url}/metrics")
    if status != 200 or REQUESTS_COUNTER not in body:
        raise SmokeError(f"GET /metrics answered {status} without {REQUESTS_COUNTER}: {body[:300]}")
    passed.append(f"GET /metrics -> {REQUESTS_COUNTER}")
    return passed


def run(args: argparse.Namespace) -> int:
    """Start the container, run the checks, print the result, remove the container whatever happened."""
    # A cancelled or timed-out CI job sends SIGTERM: exit through `finally`, which removes the container.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    port = args.port or free_port()
    container = f"capstone-smoke-{uuid.uuid4().hex[:8]}"
    if args.network == "host":
        network = ["--network", "host", "-e", f"UVICORN_PORT={port}"]
    else:
        network = ["--network", args.network, "-p", f"127.0.0.1:{port}:{args.container_port}"]
    started = docker(args.docker, "run", "-d", "--name", container, *network, args.image)
    if started.returncode != 0:
        docker(args.docker, "rm", "-f", container)
        print(f"smoke: could not start {args.image}: {started.stderr.strip()}", file=sys.stderr)
        return 2
    base_url = f"http://127.0.0.1:{port}"
    try:
        waited_s = wait_ready(args.docker, container, base_url, args.timeout_s)
        print(f"ok  GET /ready -> 200 after {waited_s:.1f} s ({base_url})")
        for line in check_predictions(base_url):
            print(f"ok  {line}")
    except (SmokeError, OSError, ValueError) as exc:
        logs = docker(args.docker, "logs", "--tail", str(LOG_TAIL_LINES), container)
        print(f"smoke FAILED: {exc}", file=sys.stderr)
        print(
            f"last {LOG_TAIL_LINES} log lines of the container:\n{logs.stdout}{logs.stderr}", file=sys.stderr
        )
        return 1
    finally:
        docker(args.docker, "rm", "-f", container)
    print(f"smoke passed: {args.image}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("image", help="image to run, e.g. course-capstone:abc1234")
    parser.add_argument("--docker", default="docker", help="the docker command")
    parser.add_argument("--network", default="bridge", help="bridge (publish a port) or host")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--container-port", type=int, default=8000, help="the port inside (bridge only)")
    parser.add_argument("--timeout-s", type=float, default=180.0, help="how long to wait for /ready")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
