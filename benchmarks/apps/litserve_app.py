"""LitServe serving the same ONNX INT8 model as the reference, with LitServe's own dynamic batching.

LitServe runs an API server process (uvicorn + FastAPI) and `--workers` inference worker processes, each
collecting requests from a queue into batches of up to `--max-batch-size`, waiting at most
`--batch-timeout-ms`.
The model, tokenizer, thread count and padding are the reference's, so the benchmark compares the serving
machinery and nothing else. It is started as a script because LitServe launches its worker processes
from `LitServer.run()`, not from an ASGI app that uvicorn could import.

    MODEL_DIR=artifacts/model python benchmarks/apps/litserve_app.py --port 8001
"""

# No `from __future__ import annotations` here: LitServe reads decode_request's and encode_response's
# annotations at run time (inspect.signature) to declare the endpoint's body and response models.
import argparse
from pathlib import Path

import litserve as ls
import numpy as np
from pydantic import BaseModel, Field

from course_utils.config import get_settings
from course_utils.export import onnx_session
from course_utils.model import LABELS, encode, load_tokenizer, softmax, verify_model_dir

ONNX_FILE = "model.int8.onnx"


class PredictRequest(BaseModel):
    """The reference's body contract: FastAPI validates it in the API process, as the reference does."""

    text: str = Field(min_length=1)


class PredictResponse(BaseModel):
    label: str
    confidence: float
    model_version: str


class SentimentAPI(ls.LitAPI):
    """Four LitServe hooks around the course's ONNX helpers; one JSON body `{"text": ...}` per request."""

    def __init__(self, model_dir: Path, *, threads: int, max_batch_size: int, batch_timeout_s: float) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout_s)
        self.model_dir = model_dir
        self.threads = threads

    def setup(self, device: str) -> None:
        """Verify the sha256 of what we load (as the reference does), then build the session once."""
        card = verify_model_dir(self.model_dir, files=[ONNX_FILE, "tokenizer.json"])
        self.model_version = str(card["version"])
        self.tokenizer = load_tokenizer(self.model_dir)
        self.session = onnx_session(self.model_dir / ONNX_FILE, threads=self.threads)

    def decode_request(self, request: PredictRequest) -> str:
        return request.text

    def batch(self, inputs: list[str]) -> list[str]:
        return list(inputs)

    def predict(self, texts: list[str] | str) -> list[tuple[str, float]]:
        """One forward pass over the whole batch, padded to its longest text (as the reference pads)."""
        batch = [texts] if isinstance(texts, str) else texts
        (logits,) = self.session.run(["logits"], encode(self.tokenizer, batch))
        proba = softmax(np.asarray(logits))
        best = proba.argmax(axis=1)
        return [(LABELS[int(b)], float(p[b])) for b, p in zip(best, proba, strict=True)]

    def unbatch(self, output: list[tuple[str, float]]) -> list[tuple[str, float]]:
        return output

    def encode_response(self, output: tuple[str, float] | list[tuple[str, float]]) -> PredictResponse:
        label, confidence = output[0] if isinstance(output, list) else output
        return PredictResponse(label=label, confidence=confidence, model_version=self.model_version)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--batch-timeout-ms", type=float, default=2.0)
    parser.add_argument(
        "--ort-threads", type=int, default=0, help="ONNX Runtime threads per worker; 0 = one per core"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="inference worker processes (workers_per_device)"
    )
    parser.add_argument("--loop", default="auto", help="uvicorn event loop (asyncio, uvloop, auto)")
    parser.add_argument("--http", default="auto", help="uvicorn HTTP parser (h11, httptools, auto)")
    args = parser.parse_args()
    api = SentimentAPI(
        get_settings().model_dir,
        threads=args.ort_threads,
        max_batch_size=args.max_batch_size,
        batch_timeout_s=args.batch_timeout_ms / 1000,
    )
    server = ls.LitServer(api, accelerator="cpu", devices=1, workers_per_device=args.workers, timeout=30)
    server.run(
        host=args.host,
        port=args.port,
        num_api_servers=1,
        generate_client_file=False,
        log_level="warning",
        loop=args.loop,
        http=args.http,
    )


if __name__ == "__main__":
    main()
