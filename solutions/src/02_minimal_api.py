# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · A minimal prediction API
#
# **Goal.** Put the sentiment model behind an HTTP API: a Pydantic contract for requests and responses,
# the model loaded once at startup (lifespan), `GET /health` and `POST /predict`; then measure what a
# client waits for (p50 and p95 latency).
#
# **Time.** About 60 minutes. **Graded.** 3 exercises, 7 points.
#
# The server runs in a background thread of this kernel (`course_utils.server.BackgroundServer`), so
# the notebook never blocks. The stop cell near the end shuts it down.

# %% [markdown]
# ## 1. Setup
#
# Imports for the API (FastAPI, Pydantic), the client (`requests`) and the measurements.

# %%
import time
from contextlib import asynccontextmanager
from typing import Literal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import requests
from fastapi import FastAPI, Request
from IPython.display import display
from pydantic import BaseModel, Field, ValidationError, field_validator
from tqdm.auto import tqdm

# %% [markdown]
# From the course library: settings, the model loaders, the background server, and the capstone contract
# (`course_utils.contract`: the labels, the confidence rule, the bodies a service must refuse), which the
# capstone grader checks too.

# %%
from course_utils.config import get_settings
from course_utils.contract import CONFIDENCE_MIN, INVALID_BODIES, LABELS
from course_utils.data import load_sentiment
from course_utils.model import load_classifier, load_model_card, load_tokenizer, predict_proba
from course_utils.server import BackgroundServer, stop_all

settings = get_settings()
sample_texts = [example.text for example in load_sentiment("test")[:50]]
print(f"{len(sample_texts)} test reviews, e.g. {sample_texts[0]!r}")


# %% [markdown]
# ## 2. The contract: Pydantic request and response models
#
# The API's contract is two classes. FastAPI validates every request against the first (a bad body gets
# a `422` before your code runs) and documents both at `/docs`. The response never exposes raw logits:
# a label (one of `LABELS`), a confidence and the model version, so a client can tell which model
# answered. The confidence is the probability of the returned, most probable label: with two labels it
# is at least `CONFIDENCE_MIN` = 0.5.

# %%
class PredictResponse(BaseModel):
    label: Literal[LABELS]  # "negative" or "positive": Literal of a tuple allows each of its values
    confidence: float = Field(ge=CONFIDENCE_MIN, le=1.0, description="softmax probability of `label`")
    model_version: str


PredictResponse(label="positive", confidence=0.97, model_version="1.0.0")


# %% [markdown]
# ### Exercise 1 (2 points): the request model
#
# Complete `PredictRequest`: one field `text`, a string of 1 to 10,000 characters (use `Field`), with an
# example for the docs, and a `field_validator` that **rejects whitespace-only text** (spaces, tabs,
# newlines) by raising `ValueError("text must not be blank")`. Pydantic turns that `ValueError` into a
# `422` response. Whether the validator returns the text as it came or stripped is up to you: both pass.
# The length limits apply to the text as sent (10,000 characters pass, 10,001 do not). The tests also send
# the JSON bodies of the capstone contract that must get a `422` (`INVALID_BODIES`, printed below): empty
# or blank text, no `text`, and a `text` that is not a string.

# %% nbgrader={"grade": false, "grade_id": "ex1-request-model", "locked": false, "schema_version": 3, "solution": true, "task": false}
class PredictRequest(BaseModel):
    ### BEGIN SOLUTION
    text: str = Field(min_length=1, max_length=10_000, examples=["What a lovely film!"])

    @field_validator("text")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be blank")
        return value
    ### END SOLUTION


# %% [markdown]
# The tests build requests the way FastAPI does, with `model_validate` on the parsed JSON. The bodies the
# contract refuses, as JSON (the malformed one never reaches Pydantic: FastAPI refuses it first):

# %%
REFUSED_BODIES = [body.json for body in INVALID_BODIES if body.raw is None]
print(REFUSED_BODIES)

# %% [markdown]
# Run the tests: each failing assert tells you what to fix.

# %% nbgrader={"grade": true, "grade_id": "ex1-request-model-tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert PredictRequest.model_validate({"text": "great film"}).text == "great film", "keep the text as it is"
for bad in ({"text": ""}, {"text": "   \n"}, {}):
    try:
        PredictRequest.model_validate(bad)
        raise AssertionError(f"{bad!r} was accepted: it must raise a ValidationError (422)")
    except ValidationError:
        pass
print("Exercise 1: all visible tests passed")
### BEGIN HIDDEN TESTS
for bad in [*REFUSED_BODIES, {"text": 5}, {"text": "x" * 10_001}, {"text": "\t \r\n"}]:
    try:
        PredictRequest.model_validate(bad)
        raise AssertionError(f"{str(bad)[:40]!r} was accepted")
    except ValidationError:
        pass
assert PredictRequest.model_validate({"text": " ok "}).text.strip() == "ok", "keep the text (stripped or not)"
assert len(PredictRequest.model_validate({"text": "x" * 10_000}).text) == 10_000, "10,000 characters are allowed"
assert PredictRequest.model_validate({"text": "a"}).text == "a", "one character is allowed"
### END HIDDEN TESTS

# %% [markdown]
# Here is what a client gets back for a blank text: Pydantic's error list, which FastAPI sends as the body
# of the `422`.

# %%
try:
    PredictRequest.model_validate({"text": "   "})
except ValidationError as exc:
    display(pd.DataFrame(exc.errors())[["loc", "msg", "input"]])

# %% [markdown]
# ## 3. Load the model once: the lifespan
#
# Loading is far slower than predicting. We measure both to see why a service loads the model **once,
# at startup**, and never per request.

# %%
t0 = time.perf_counter()
model, tokenizer = load_classifier(), load_tokenizer(settings.model_dir)
load_s = time.perf_counter() - t0
t0 = time.perf_counter()
predict_proba(model, tokenizer, sample_texts[:1])
predict_ms = (time.perf_counter() - t0) * 1000
pd.Series({"load the model (ms)": load_s * 1000, "one prediction (ms)": predict_ms}).round(1)


# %% [markdown]
# FastAPI's *lifespan* is an async context manager: the code before `yield` runs once before the server
# accepts requests, the code after it at shutdown. We keep the model on `app.state`, which every request
# can reach. (Loading at import time instead would slow every `import` and hide errors from the server.)

# %%
@asynccontextmanager
async def lifespan(app: FastAPI):
    card = load_model_card(settings.model_dir)
    app.state.model = load_classifier(settings.model_dir)  # checks sha256, eval mode
    app.state.tokenizer = load_tokenizer(settings.model_dir)
    app.state.model_version = card["version"]
    yield  # the server runs while the lifespan waits here
    app.state.model = None  # shutdown: release the memory


# %% [markdown]
# The app and its liveness endpoint. `/health` says the *process* answers; it never touches the model, so
# it stays fast even when the model is busy.

# %%
app = FastAPI(title="Sentiment API (notebook 02)", lifespan=lifespan)


@app.get("/health")
def health(request: Request) -> dict:
    return {"status": "ok", "model_loaded": getattr(request.app.state, "model", None) is not None}


# %% [markdown]
# ### Exercise 2 (3 points): the `/predict` endpoint
#
# Complete `predict`: run `predict_proba(state.model, state.tokenizer, [body.text])`, take the row of
# probabilities, and return a `PredictResponse` with the most probable label (`LABELS[index]`), its
# probability as `confidence` (a Python `float`) and `state.model_version`.
#
# It is a plain `def`, not `async def`, on purpose: the model is CPU-bound, and FastAPI runs `def`
# endpoints in a thread pool, so the event loop stays free to accept other requests (and `/health`).
# If you re-run this cell, re-run the cell that creates `app` first.

# %% nbgrader={"grade": false, "grade_id": "ex2-predict-endpoint", "locked": false, "schema_version": 3, "solution": true, "task": false}
@app.post("/predict")
def predict(body: PredictRequest, request: Request) -> PredictResponse:
    state = request.app.state
    ### BEGIN SOLUTION
    proba = predict_proba(state.model, state.tokenizer, [body.text])[0]
    best = int(np.argmax(proba))
    return PredictResponse(label=LABELS[best], confidence=float(proba[best]),
                           model_version=state.model_version)
    ### END SOLUTION


# %% [markdown]
# ## 4. Run it in the background
#
# `uvicorn.run(app)` would block this kernel forever. `BackgroundServer` runs uvicorn in a thread on a
# free port (port 0), waits until the lifespan has loaded the model, and raises a clear error if startup
# fails. `name=` makes a re-run of this cell replace the old server instead of leaking it.

# %%
srv = BackgroundServer(app, name="nb02-api").start()
print(f"serving on {srv.url}   (docs: {srv.url}/docs)")
requests.get(f"{srv.url}/health", timeout=5).json()

# %% [markdown]
# A real request over HTTP, with `requests`, exactly as any client would send it:

# %%
response = requests.post(f"{srv.url}/predict", json={"text": "A wonderful, warm film."}, timeout=30)
print(response.status_code, response.json())
blank = requests.post(f"{srv.url}/predict", json={"text": "  "}, timeout=30)
print(blank.status_code, blank.json()["detail"][0]["msg"])

# %% [markdown]
# These tests talk to the running server.

# %% nbgrader={"grade": true, "grade_id": "ex2-predict-endpoint-tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
r = requests.post(f"{srv.url}/predict", json={"text": "A wonderful, warm film."}, timeout=30)
assert r.status_code == 200, f"/predict answered {r.status_code}: {r.text[:300]}. Fix predict() above."
body = r.json()
assert set(body) == {"label", "confidence", "model_version"}, f"return a PredictResponse, got {body}"
assert body["label"] == "positive", "a clearly positive review should be 'positive': check LABELS[index]"
assert CONFIDENCE_MIN <= body["confidence"] <= 1, "confidence is the probability of the returned (most likely) label"
assert requests.post(f"{srv.url}/predict", json={"text": ""}, timeout=30).status_code == 422
print("Exercise 2: all visible tests passed")
### BEGIN HIDDEN TESTS
# The label and confidence must be those of the most probable class, whichever class it is.
for text in ("Dreadful service, cold food and a rude waiter.", "A wonderful, warm film.",
             "It was fine, I suppose, though I would not go again."):
    body = requests.post(f"{srv.url}/predict", json={"text": text}, timeout=30).json()
    expected = predict_proba(model, tokenizer, [text])[0]
    assert body["label"] == LABELS[int(np.argmax(expected))], f"{text!r}: label of the most probable class"
    assert abs(body["confidence"] - float(expected.max())) < 1e-4, f"{text!r}: its probability"
assert body["model_version"] == load_model_card(settings.model_dir)["version"]
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Latency: what the client waits for
#
# We send requests one after another over one keep-alive connection (`requests.Session`) and time each
# one from the client's side: network stack, JSON, validation, tokenisation and the model together.

# %%
n_requests = 30 if settings.fast else 200
latencies_ms = []
with requests.Session() as session:
    for i in tqdm(range(n_requests), desc="POST /predict"):
        t0 = time.perf_counter()
        r = session.post(f"{srv.url}/predict", json={"text": sample_texts[i % len(sample_texts)]},
                         timeout=30)
        r.raise_for_status()
        latencies_ms.append((time.perf_counter() - t0) * 1000)
print(f"first request {latencies_ms[0]:.1f} ms, median of the rest {np.median(latencies_ms[1:]):.1f} ms")


# %% [markdown]
# ### Exercise 3 (2 points): a latency summary
#
# The mean hides the slow requests that users remember, so services are judged by percentiles. Write
# `latency_summary(latencies_ms)` returning a dict with keys `n`, `mean_ms`, `p50_ms`, `p95_ms`,
# `p99_ms`, `max_ms` (floats, `n` an int), using `np.percentile`. An empty list must raise
# `ValueError` with a helpful message: there is nothing to summarise.

# %% nbgrader={"grade": false, "grade_id": "ex3-latency-summary", "locked": false, "schema_version": 3, "solution": true, "task": false}
def latency_summary(latencies_ms):
    """n, mean, p50, p95, p99 and max of a list of latencies in milliseconds."""
    ### BEGIN SOLUTION
    values = np.asarray(latencies_ms, dtype=float)
    if values.size == 0:
        raise ValueError("no latencies to summarise: send some requests first")
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"n": int(values.size), "mean_ms": float(values.mean()), "p50_ms": float(p50),
            "p95_ms": float(p95), "p99_ms": float(p99), "max_ms": float(values.max())}
    ### END SOLUTION


# %% [markdown]
# Test it on numbers whose percentiles we know.

# %% nbgrader={"grade": true, "grade_id": "ex3-latency-summary-tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
s = latency_summary(list(range(1, 101)))
assert set(s) == {"n", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"}, f"wrong keys: {sorted(s)}"
assert s["n"] == 100 and s["max_ms"] == 100.0, "n is the number of values, max_ms the largest"
assert abs(s["p50_ms"] - 50.5) < 1e-9 and abs(s["p95_ms"] - 95.05) < 1e-9, "use np.percentile"
try:
    latency_summary([])
    raise AssertionError("latency_summary([]) must raise ValueError")
except ValueError:
    pass
print("Exercise 3: all visible tests passed")
### BEGIN HIDDEN TESTS
values = [10.0, 1.0, 3.0, 2.0]  # unsorted; mean 4 and median 2.5 differ, the last value is not the max
s = latency_summary(values)
assert s["n"] == 4 and s["max_ms"] == 10.0 and abs(s["mean_ms"] - 4.0) < 1e-9 and abs(s["p50_ms"] - 2.5) < 1e-9
for key, q in (("p95_ms", 95), ("p99_ms", 99)):
    assert abs(s[key] - np.percentile(values, q)) < 1e-9, f"{key}: np.percentile(latencies, {q})"
assert all(isinstance(s[k], float) for k in ("mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")), "floats"
### END HIDDEN TESTS

# %% [markdown]
# How much of the time is the model? We time the same predictions in-process, without HTTP, and put both
# summaries side by side.

# %%
in_process_ms = []
for i in range(n_requests):
    t0 = time.perf_counter()
    predict_proba(model, tokenizer, [sample_texts[i % len(sample_texts)]])
    in_process_ms.append((time.perf_counter() - t0) * 1000)
table = pd.DataFrame({"over HTTP": latency_summary(latencies_ms[1:]),
                      "model only (in-process)": latency_summary(in_process_ms)}).T
table.round(2)

# %% [markdown]
# A histogram shows the shape that two numbers hide: a tight body and a tail of slower requests.

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(latencies_ms[1:], bins=25, color="tab:blue", alpha=0.8)
for name in ("p50_ms", "p95_ms"):
    ax.axvline(table.loc["over HTTP", name], ls="--", color="k" if name == "p50_ms" else "tab:red",
               label=f"{name[:3]} = {table.loc['over HTTP', name]:.1f} ms")
ax.set(xlabel="latency per request (ms)", ylabel="requests", title="POST /predict, one client")
ax.legend()
plt.show()

# %% [markdown]
# On a quiet laptop the PyTorch model dominates this service's latency. Later notebooks make the model
# much faster (ONNX Runtime, INT8) and then HTTP, JSON and tokenisation become a large share.
#
# ## 6. Stop the server
#
# Every server we start, we stop. After `stop()` the port is closed:

# %%
url = srv.url
srv.stop()
try:
    requests.get(f"{url}/health", timeout=2)
except requests.ConnectionError:
    print("the server is stopped: connection refused")

# %% [markdown]
# ## Summary
#
# - The contract lives in Pydantic models: invalid input is a `422` before your code runs.
# - Load the model once in the lifespan; keep `/health` free of model work.
# - CPU-bound endpoints are plain `def`, so the event loop stays responsive.
# - Judge latency by p50/p95/p99 from the client's side, and look at the histogram.
#
# ## Clean-up
#
# Stop anything still running (safe to run twice) and free the model.

# %%
stop_all()
del model
print("servers running:", [s for s in (srv,) if s.running])
