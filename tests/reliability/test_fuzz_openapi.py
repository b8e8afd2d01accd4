"""Property-based fuzzing of the reference service from its own OpenAPI schema (schemathesis + Hypothesis).

A real uvicorn process on 127.0.0.1 serves the reference capstone; schemathesis reads its /openapi.json and
generates requests for every operation, valid ones and invalid ones (wrong types, missing fields, odd
headers...). Every response must be a documented status code with a body and headers that match the schema,
and none may be a 5xx. Bounded: `MAX_EXAMPLES` per operation and generation mode, no shrinking beyond
Hypothesis' default deadline-free search, loopback only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from capstone_support import UvicornProcess
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation import GenerationMode

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 500  # per POST operation and mode: about 2,000 generated requests, plus schemathesis' own
# A small body limit, so that generated batches reach the 413 path as well as the happy path.
MAX_BODY_BYTES = 4096

#: Every status code an answer had, for the summary printed at the end of the module.
SEEN: Counter[str] = Counter()


# API keys on, as in production: the schema declares them, and schemathesis checks that invalid ones get 401.
API_KEY = "fuzz-key"


@pytest.fixture(scope="module")
def fuzzed_server(start_server: Callable[..., UvicornProcess], model_dir: Path) -> UvicornProcess:
    env = {"MODEL_DIR": str(model_dir), "MAX_BODY_BYTES": str(MAX_BODY_BYTES), "API_KEYS": API_KEY}
    return start_server(env)


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: UvicornProcess) -> Iterator[Any]:
    loaded = schemathesis.openapi.from_url(fuzzed_server.url("/openapi.json"), timeout=10)
    loaded.config.update(base_url=fuzzed_server.base_url)
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES
    )
    # Invalid data may also be refused for its size: 413 is a documented refusal, not an acceptance.
    rejection = loaded.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    yield loaded
    print(f"\nfuzzed requests by status: {dict(sorted(SEEN.items()))} (total {sum(SEEN.values())})")


# The operations of the contract (the test below also checks that the schema has no others, so a new
# endpoint cannot escape the fuzzing), each fuzzed with valid and with invalid data.
OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/ready"),
    ("POST", "/predict"),
    ("POST", "/predict/batch"),
    ("GET", "/metrics"),
    # The Open Inference Protocol (v2) endpoints.
    ("GET", "/v2"),
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
    ("GET", "/v2/models/{model_name}"),
    ("GET", "/v2/models/{model_name}/ready"),
    ("POST", "/v2/models/{model_name}/infer"),
]


def test_the_fuzzed_operations_are_all_the_operations(api_schema: Any) -> None:
    listed = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert listed == set(OPERATIONS), "update OPERATIONS: the schema's operations changed"


# Negative data only where there is input to break: the GETs take no parameters at all.
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if method == "POST" or mode is GenerationMode.POSITIVE
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_every_answer_is_documented_and_none_is_a_server_error(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    seen: Counter[str] = Counter()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,  # the same requests on every run: a failure here reproduces
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def check(case: Any) -> None:
        response = case.call_and_validate(headers={"X-API-Key": API_KEY}, timeout=30)
        seen[str(response.status_code)] += 1
        assert response.status_code < 500, (response.status_code, response.text)

    check()
    SEEN.update(seen)
    print(f"{method} {path} {mode.value}: {dict(sorted(seen.items()))}")
    if method == "POST":  # the other GETs take no input: Hypothesis stops once it has tried the few there are
        assert sum(seen.values()) >= MAX_EXAMPLES // 2, f"too few requests were generated: {dict(seen)}"
