"""Hand-written submissions for the grader's tests: a complete small app, its files, wheats and chaffs.

Why not the reference for everything: it loads a real model and batches (seconds per start). `MINI_APP`
serves whatever `MODEL_DIR/model.int8.onnx` is with onnxruntime, in one file: with `write_fake_model`'s
tiny bag-of-words ONNX model it starts in well under a second, so the hostile cases (hangs, forks, floods)
stay cheap; with the course model it is a correct capstone written in another style than the reference.

`WHEATS` are correct services in other styles (each must score 100); `CHAFFS` are plausible wrong ones,
each with the one check it must lose (Examplar's wheats and chaffs, docs/grading.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from course_utils.config import PROJECT_ROOT
from course_utils.grading.isolation import isolation_problem
from course_utils.model import base_model_dir, load_tokenizer

MINI_APP = textwrap.dedent(
    '''
    """A complete capstone stand-in: serves MODEL_DIR's model.int8.onnx; follows the whole HTTP contract."""
    import json
    import os
    import time
    from contextlib import asynccontextmanager
    from pathlib import Path

    import numpy as np
    import onnxruntime
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
    from pydantic import BaseModel, field_validator
    from tokenizers import Tokenizer

    REGISTRY = CollectorRegistry()
    REQUESTS = Counter("predict_requests_total", "Predictions served.", registry=REGISTRY)
    LATENCY = Histogram("predict_latency_seconds", "Prediction latency.", registry=REGISTRY,
                        buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0))
    MODEL_DIR = Path(os.environ.get("MODEL_DIR", "model"))
    STATE = {}


    def load_model():
        try:
            card = json.loads((MODEL_DIR / "model_card.json").read_text())
            tokenizer = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
            session = onnxruntime.InferenceSession(str(MODEL_DIR / "model.int8.onnx"),
                                                   providers=["CPUExecutionProvider"])
        except Exception:
            return None
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return card, tokenizer, session


    @asynccontextmanager
    async def lifespan(app):
        STATE["model"] = load_model()
        yield


    app = FastAPI(lifespan=lifespan)


    @app.middleware("http")
    async def log_requests(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        entry = {"method": request.method, "path": request.url.path, "status": response.status_code,
                 "latency_ms": round((time.perf_counter() - t0) * 1000, 3), "request_id": "r"}
        print(json.dumps(entry), flush=True)
        return response


    class PredictIn(BaseModel):
        text: str

        @field_validator("text")
        @classmethod
        def not_blank(cls, value: str) -> str:
            if not value.strip():
                raise ValueError("text must not be empty")
            return value


    @app.get("/health")
    def health():
        return {"status": "ok", "model_loaded": STATE.get("model") is not None}


    @app.get("/ready")
    def ready():
        if STATE.get("model") is None:
            return JSONResponse({"ready": False, "reason": "no model"}, status_code=503)
        return {"ready": True}


    @app.post("/predict")
    def predict(body: PredictIn):
        t0 = time.perf_counter()
        if STATE.get("model") is None:
            return JSONResponse({"detail": "the model is not loaded"}, status_code=503)
        card, tokenizer, session = STATE["model"]
        ids = tokenizer.encode(body.text).ids
        if len(ids) > 512:
            return JSONResponse({"detail": f"text has {len(ids)} tokens; the limit is 512 tokens"},
                                status_code=400)
        feed = {"input_ids": np.array([ids], dtype=np.int64),
                "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}
        logits = session.run(["logits"], feed)[0][0]
        proba = np.exp(logits - logits.max())
        proba = proba / proba.sum()
        labels = card["labels"]
        score = float(proba[labels.index("positive")] - proba[labels.index("negative")])
        label = "positive" if score >= 0 else "negative"
        REQUESTS.inc()
        LATENCY.observe(time.perf_counter() - t0)
        return {"label": label, "confidence": float(proba.max()), "model_version": card["version"]}


    @app.get("/metrics")
    def metrics():
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
    '''
)

DOCKERFILE = textwrap.dedent(
    """\
    ARG BASE_IMAGE=python:3.11-slim
    FROM ${BASE_IMAGE}
    ENV PYTHONUNBUFFERED=1
    WORKDIR /app
    COPY requirements.txt .
    RUN pip install --no-cache-dir -r requirements.txt
    COPY src/ src/
    RUN useradd --create-home app
    USER app
    EXPOSE 8000
    HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
    CMD ["uvicorn", "app:app", "--app-dir", "src", "--host", "0.0.0.0", "--port", "8000"]
    """
)

DEPLOY_MD = textwrap.dedent(
    """\
    # Deploying the sentiment service

    ## Build
    `docker build -t sentiment .`

    ## Run
    `docker run -p 8000:8000 -e MODEL_DIR=/model sentiment`

    ## Health checks
    Liveness on `/health`, readiness on `/ready` (503 until the model is loaded).

    ## Monitoring
    Prometheus scrapes `/metrics`: predict_requests_total and predict_latency_seconds.
    """
)

#: The same four topics in other words, other tools and other heading styles: it must pass too.
DEPLOY_MD_OTHER_WORDS = textwrap.dedent(
    """\
    Packaging the image
    ===================

    ```console
    $ podman build --tag sentiment:1.0 .
    ```

    Starting it
    -----------

    1. Start the container: `docker container run --rm -p 8000:8000 sentiment:1.0`
    2. Or with the compose file: `docker compose up -d`

    ### Probes

    | probe | endpoint | meaning |
    |---|---|---|
    | liveness | `GET /health` | the process answers |
    | readiness | `GET /ready` | the model is loaded; 503 before |

    ### Observability

    The service exposes Prometheus text at `/metrics`; point a scrape job at it.
    """
)

FILES = {
    "Dockerfile": DOCKERFILE,
    ".dockerignore": "data\n.git\nnotebooks\n.env\n__pycache__\n",
    "requirements.txt": (
        "fastapi==0.165.0\nuvicorn==0.54.0\nprometheus_client==0.26.0\nonnxruntime==1.32.0\ntokenizers==0.23.3\n"
        "numpy==2.4.6\n"
    ),
    "deploy.md": DEPLOY_MD,
}


def patched(source: str, old: str, new: str) -> str:
    """`source` with `old` replaced once; fails when `old` is missing (the variant would be a no-op)."""
    assert source.count(old) >= 1, f"patch target {old!r} not found: the variant would not change anything"
    return source.replace(old, new, 1)


def _patches(source: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        source = patched(source, old, new)
    return source


_MODEL_CALL = """\
    logits = session.run(["logits"], feed)[0][0]
    proba = np.exp(logits - logits.max())
    proba = proba / proba.sum()
    labels = card["labels"]
    score = float(proba[labels.index("positive")] - proba[labels.index("negative")])
"""
_RESPONSE = 'return {"label": label, "confidence": float(proba.max()), "model_version": card["version"]}'

#: Words of the keyword chaff and of the tiny fake model (bag of words): the public sample's opinion words.
POSITIVE_WORDS = [
    "wonderful",
    "loved",
    "friendly",
    "spotless",
    "fantastic",
    "perfectly",
    "brilliant",
    "great",
    "fun",
    "recommended",
    "best",
    "excellent",
    "delight",
    "encouraging",
    "stronger",
    "delicious",
    "lovely",
    "good",
    "enjoyed",
    "fair",
    "comfortable",
    "clear",
    "remember",
    "definitely",
]
NEGATIVE_WORDS = [
    "terrible",
    "boring",
    "dirty",
    "rude",
    "broke",
    "waste",
    "dull",
    "awful",
    "overcharged",
    "avoid",
    "crashes",
    "horrible",
    "dies",
    "disappointed",
    "worst",
    "bland",
    "chaotic",
    "ignored",
    "never",
    "nobody",
    "cold",
    "flickers",
]

#: Correct services in other styles than MINI_APP (sync handlers, lifespan, print): each must score 100.
WHEATS: dict[str, str] = {
    "mounted_metrics_app": _patches(
        MINI_APP,
        (
            '@app.get("/metrics")\ndef metrics():\n    return Response(generate_latest(REGISTRY), '
            "media_type=CONTENT_TYPE_LATEST)\n",
            'app.mount("/metrics", make_asgi_app(registry=REGISTRY))  # GET /metrics -> 307 /metrics/\n',
        ),
        ("import CONTENT_TYPE_LATEST,", "import CONTENT_TYPE_LATEST, make_asgi_app,"),
    ),
    "on_event_startup": patched(
        MINI_APP,
        "app = FastAPI(lifespan=lifespan)\n",
        'app = FastAPI()\n\n\n@app.on_event("startup")\n'
        'async def startup():\n    STATE["model"] = load_model()\n',
    ),
    "async_endpoints": _patches(
        MINI_APP,
        ("def health():", "async def health():"),
        ("def ready():", "async def ready():"),
        ("def predict(body: PredictIn):", "async def predict(body: PredictIn):"),
    ),
    "logging_module_json": _patches(
        MINI_APP,
        (
            "import json\n",
            "import json\nimport logging\nimport sys\n\n"
            "class JsonFormatter(logging.Formatter):\n"
            "    def format(self, record):\n"
            "        fields = {'level': record.levelname, 'msg': record.getMessage(), **record.fields}\n"
            "        return json.dumps(fields)\n\n"
            "_handler = logging.StreamHandler(sys.stderr)\n"
            "_handler.setFormatter(JsonFormatter())\n"
            "ACCESS = logging.getLogger('service.access')\n"
            "ACCESS.addHandler(_handler)\n"
            "ACCESS.setLevel(logging.INFO)\n"
            "ACCESS.propagate = False\n",
        ),
        ("print(json.dumps(entry), flush=True)", "ACCESS.info('request', extra={'fields': entry})"),
    ),
    "extra_probability_fields": patched(
        MINI_APP,
        _RESPONSE,
        'return {"label": label, "confidence": float(proba.max()), "model_version": card["version"],\n'
        '            "scores": {name: float(p) for name, p in zip(labels, proba)},\n'
        '            "detail": {"probabilities": [float(p) for p in proba], "tokens": len(ids)}}',
    ),
}

#: Plausible wrong services -> the one check each must lose (and nothing else).
CHAFFS: dict[str, tuple[str, str]] = {
    "keyword_list": (
        patched(
            MINI_APP,
            _MODEL_CALL,
            f"    positive, negative = set({POSITIVE_WORDS!r}), set({NEGATIVE_WORDS!r})\n"
            "    words = [w.strip('.,;:!?') for w in body.text.lower().split()]\n"
            "    score = sum(w in positive for w in words) - sum(w in negative for w in words)\n"
            "    proba = np.array([0.1, 0.9])\n",
        ),
        "predict_probes",
    ),
    "constant_answer": (
        patched(MINI_APP, _MODEL_CALL, "    score = 1.0\n    proba = np.array([0.1, 0.9])\n"),
        "predict_probes",
    ),
    "upper_case_label": (
        patched(MINI_APP, _RESPONSE, _RESPONSE.replace('"label": label,', '"label": label.upper(),')),
        "predict_schema",
    ),
    "misnamed_histogram": (
        patched(MINI_APP, 'Histogram("predict_latency_seconds"', 'Histogram("predict_latency_ms"'),
        "metrics_families",
    ),
    "nested_logits": (
        patched(
            MINI_APP,
            _RESPONSE,
            _RESPONSE.replace(
                'card["version"]}', 'card["version"],\n            "debug": {"logits": logits.tolist()}}'
            ),
        ),
        "predict_confidence",
    ),
    "counter_never_incremented": (patched(MINI_APP, "    REQUESTS.inc()\n", ""), "metrics_counter"),
}


def slow_loading_app(seconds: float) -> str:
    """MINI_APP whose model takes `seconds` of CPU work to load, in a thread the lifespan starts.

    /ready (and /predict) answer 503 until then, as the contract asks of a service that is still loading.
    The work is hashing, which releases the GIL, so the app keeps answering meanwhile.
    """
    return _patches(
        MINI_APP,
        ("import json\n", "import hashlib\nimport json\nimport threading\n"),
        (
            "def load_model():",
            "def load_slowly():\n"
            f"    deadline = time.monotonic() + {seconds!r}\n"
            "    while time.monotonic() < deadline:\n"
            "        hashlib.sha256(b'x' * 65536).digest()\n"
            '    STATE["model"] = load_model()\n\n\n'
            "def load_model():",
        ),
        (
            '    STATE["model"] = load_model()\n    yield',
            "    threading.Thread(target=load_slowly, daemon=True).start()\n    yield",
        ),
    )


def write_submission(folder: Path, app_source: str = MINI_APP, **overrides: str | None) -> Path:
    """The mini submission in `folder`; `overrides` replace (or with None delete) files by name."""
    files = {"src/app.py": app_source, **FILES}
    for name, text in overrides.items():
        files[name.replace("__", "/").replace("dot_", ".")] = text  # type: ignore[assignment]
    for name, text in files.items():
        if text is None:
            continue
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


REFERENCE = PROJECT_ROOT / "solutions" / "capstone"
STARTER = PROJECT_ROOT / "capstone"
#: What a copy of a capstone leaves out: the model (graded from MODEL_DIR) and caches.
COPY_IGNORE = shutil.ignore_patterns(".ruff_cache", "__pycache__", "model", ".pytest_cache", ".venv")


def copy_capstone(source: Path, folder: Path) -> Path:
    """A copy of the capstone `source` (reference or starter) in `folder`, model and caches left out."""
    shutil.copytree(source, folder, ignore=COPY_IGNORE)
    return folder


def reformatted_reference(folder: Path) -> Path:
    """The reference as a student might disguise it: re-indented, other comments, `ruff format` at 79 columns.

    Comment lines get another text, trailing comments are dropped, indentation is halved, then ruff
    re-indents and re-wraps every line longer than 79 characters (the reference is written for 110).
    """
    copy_capstone(REFERENCE, folder)
    for path in sorted((folder / "src").rglob("*.py")):
        lines = []
        for line in path.read_text(encoding="utf-8").splitlines():
            indent = len(line) - len(line.lstrip(" "))
            if line.lstrip().startswith("#"):
                lines.append(" " * indent + "# (my own note)")
                continue
            line = re.sub(r"  # [^\"']*$", "", line)
            lines.append(" " * (indent // 2) + line.lstrip(" "))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "ruff.toml").unlink()  # it extends the project's settings, which a copy elsewhere lacks
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--isolated",
            "--line-length",
            "79",
            "-q",
            str(folder / "src"),
        ],
        check=True,
        timeout=60,
    )
    return folder


def _tiny_onnx(path: Path, vocab_size: int, weights: np.ndarray) -> None:
    """logits = mean over real tokens of a per-token score pair: the course model's inputs and output."""
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "input_ids"], ["scores"]),
            helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["maskf", "last"], ["mask3"]),
            helper.make_node("Mul", ["scores", "mask3"], ["masked"]),
            helper.make_node("ReduceSum", ["masked", "seq"], ["summed"], keepdims=0),
            helper.make_node("ReduceSum", ["mask3", "seq"], ["count"], keepdims=0),
            helper.make_node("Div", ["summed", "count"], ["logits"]),
        ],
        "tiny_sentiment",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        initializer=[
            numpy_helper.from_array(weights.astype(np.float32), "table"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "last"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "seq"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def write_fake_model(folder: Path) -> Path:
    """A tiny but real exported-model folder: model.int8.onnx (a bag-of-words scorer), the course
    tokenizer and a model_card.json with labels and sha256s. The grader runs it as it runs the course model.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(base_model_dir() / "tokenizer.json", folder / "tokenizer.json")
    tokenizer = load_tokenizer(folder)
    vocab_size = tokenizer.get_vocab_size()
    weights = np.tile(np.array([0.0, 0.1]), (vocab_size, 1))  # a slight lean to positive
    for words, sign in ((POSITIVE_WORDS, 1.0), (NEGATIVE_WORDS, -1.0)):
        for word in words:
            for token_id in tokenizer.encode(word, add_special_tokens=False).ids:
                weights[token_id] = (-2.0 * sign, 2.0 * sign)
    _tiny_onnx(folder / "model.int8.onnx", vocab_size, weights)
    files = {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in ("model.int8.onnx", "tokenizer.json")
    }
    card = {"version": "0.0.1+test", "labels": ["negative", "positive"], "max_tokens": 512, "files": files}
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder


def require_isolation() -> None:
    """Skip unless `grade` runs submissions as a sandbox uid here; in CI (`CI=true`) fail instead.

    A laptop grader is not root and cannot switch users; CI and the course machine must.
    """
    why = isolation_problem()
    if not why:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must grade with filesystem isolation: {why}")
    pytest.skip(f"filesystem isolation is not available here: {why}")
