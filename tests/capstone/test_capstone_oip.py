"""Open Inference Protocol (KServe v2): the real `tritonclient` against a live reference service."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from capstone_support import UvicornProcess
from tritonclient.utils import InferenceServerException

from course_utils.model import load_model_card


@pytest.fixture(scope="module")
def server(start_server: Callable[..., UvicornProcess], model_dir: Path) -> UvicornProcess:
    return start_server({"MODEL_DIR": str(model_dir)})


@pytest.fixture(scope="module")
def client(server: UvicornProcess) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(
        url=f"127.0.0.1:{server.port}", connection_timeout=10, network_timeout=30
    )


def _text_input(texts: list[str]) -> triton.InferInput:
    tensor = triton.InferInput("text", [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.array(texts, dtype=object), binary_data=False)
    return tensor


def test_health_and_metadata(client: triton.InferenceServerClient, model_dir: Path) -> None:
    card = load_model_card(model_dir)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(card["name"])
    metadata = client.get_model_metadata(card["name"])
    assert metadata["versions"] == [card["version"]]
    assert [i["name"] for i in metadata["inputs"]] == ["text"]
    assert [o["name"] for o in metadata["outputs"]] == ["label", "confidence"]
    assert client.get_server_metadata()["name"] == "sentiment-service"


def test_infer_with_tritonclient_echoes_the_request_id(
    client: triton.InferenceServerClient, model_dir: Path
) -> None:
    name = load_model_card(model_dir)["name"]
    outputs = [triton.InferRequestedOutput(n, binary_data=False) for n in ("label", "confidence")]
    result = client.infer(
        name,
        [_text_input(["This movie is excellent!", "Awful. A waste of money."])],
        outputs=outputs,
        request_id="req-42",
    )
    labels = [value.decode() if isinstance(value, bytes) else value for value in result.as_numpy("label")]
    confidence = result.as_numpy("confidence")
    assert labels == ["positive", "negative"]
    assert confidence.dtype == np.float32 and np.all((confidence >= 0) & (confidence <= 1))
    assert result.get_response()["id"] == "req-42"


def test_protocol_errors_are_reported(client: triton.InferenceServerClient, model_dir: Path) -> None:
    with pytest.raises(InferenceServerException, match="not served here"):
        client.infer("no-such-model", [_text_input(["hello"])])
    wrong = triton.InferInput("review", [1], "BYTES")
    wrong.set_data_from_numpy(np.array(["hello"], dtype=object), binary_data=False)
    with pytest.raises(InferenceServerException, match="exactly one input named 'text'"):
        client.infer(load_model_card(model_dir)["name"], [wrong])


def test_too_long_text_is_a_400_like_predict(server: UvicornProcess, model_dir: Path) -> None:
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["word " * 600]}]}
    answer = httpx.post(
        server.url(f"/v2/models/{load_model_card(model_dir)['name']}/infer"), json=body, timeout=30
    )
    assert answer.status_code == 400 and "512" in answer.text
