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
# # 04 · Health checks and metrics
#
# **Goal.** Make the service observable: a readiness endpoint that tells a load balancer when to send
# traffic, a middleware that logs one structured line per request with its latency, and Prometheus
# metrics (a counter and a latency histogram) that we scrape, parse and plot.
#
# **Time.** About 75 minutes. **Graded.** 3 exercises, 7 points.

# %% [markdown]
# ## 1. Setup
#
# Imports for the service, for `prometheus_client` and for the measurements.

# %%
import json
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import requests
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from IPython.display import display
from pydantic import BaseModel, Field

# %% [markdown]
# `prometheus_client` for the metrics and its parser for reading them back; from `course_utils`, the
# model, the background server and a bounded load generator.

# %%
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from course_utils.bench import run_closed_loop
from course_utils.config import get_settings
from course_utils.contract import LABELS, LATENCY_BUCKET_MAX_S, LATENCY_HISTOGRAM, REQUESTS_COUNTER
from course_utils.model import load_classifier, load_model_card, load_tokenizer, predict_proba
from course_utils.server import BackgroundServer, stop_all

settings = get_settings()


# %% [markdown]
# ## 2. Liveness and readiness are different questions
#
# | endpoint | question | if it fails, the platform... |
# |---|---|---|
# | `GET /health` (liveness) | is the process alive and answering? | restarts the container |
# | `GET /ready` (readiness) | should this instance get traffic *now*? | stops routing requests to it (no restart) |
#
# A service is alive long before it is ready: while it loads the model, while it warms up (the first
# predictions are slow), and again while it drains requests at shutdown. Restarting it then would only
# make things worse, which is why the two endpoints must stay separate.
#
# ### Exercise 1 (2 points): the readiness decision
#
# Write `readiness(status)` for a dict with the booleans `model_loaded`, `warmed_up` and `draining`. Return
# `(200, {"status": "ready"})` when the model is loaded, warmed up and not draining; otherwise
# `(503, {"status": "not_ready", "reason": REASON})` where REASON is `"draining"` if draining (it wins over
# everything), else `"loading"` if the model is not loaded, else `"warming"`.

# %% nbgrader={"grade": false, "grade_id": "ex1-readiness", "locked": false, "schema_version": 3, "solution": true, "task": false}
def readiness(status):
    """(HTTP status code, JSON body) of GET /ready for the service's current status."""
    ### BEGIN SOLUTION
    if status["draining"]:
        return 503, {"status": "not_ready", "reason": "draining"}
    if not status["model_loaded"]:
        return 503, {"status": "not_ready", "reason": "loading"}
    if not status["warmed_up"]:
        return 503, {"status": "not_ready", "reason": "warming"}
    return 200, {"status": "ready"}
    ### END SOLUTION


# %% [markdown]
# Each test is one moment in the life of the service.

# %% nbgrader={"grade": true, "grade_id": "ex1-readiness-tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
def status(loaded, warm, draining):
    return {"model_loaded": loaded, "warmed_up": warm, "draining": draining}

assert readiness(status(True, True, False)) == (200, {"status": "ready"}), "loaded + warm + not draining is ready"
assert readiness(status(False, False, False)) == (503, {"status": "not_ready", "reason": "loading"})
assert readiness(status(True, False, False))[1]["reason"] == "warming", "loaded but not warmed up: 'warming'"
print("Exercise 1: all visible tests passed")
### BEGIN HIDDEN TESTS
assert readiness(status(True, True, True)) == (503, {"status": "not_ready", "reason": "draining"})
assert readiness(status(False, False, True))[1]["reason"] == "draining"
assert readiness(status(False, True, False))[1]["reason"] == "loading"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Prometheus metrics
#
# Prometheus *scrapes* `GET /metrics` every few seconds: a text page of counters (only go up), gauges
# (go up and down) and histograms (counts of observations per bucket). Two rules keep them useful:
#
# - **Seconds, not milliseconds**, and histogram buckets fine enough for fast requests (down to 1 ms).
# - **Bounded labels**: `route="/items/{id}"`, never the raw path; each label value is a new time series.
#
# We register metrics in a **fresh `CollectorRegistry`**, never the global default: re-running a cell
# would otherwise fail with *Duplicated timeseries*, and tests could not start from zero.

# %%
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
assert LATENCY_BUCKETS_S[0] <= LATENCY_BUCKET_MAX_S, "the capstone contract wants a bucket down to 1 ms"
print(f"{len(LATENCY_BUCKETS_S)} buckets from {LATENCY_BUCKETS_S[0] * 1000:.0f} ms to {LATENCY_BUCKETS_S[-1]} s")


# %% [markdown]
# ### Exercise 2 (3 points): create the metrics
#
# Write `make_metrics(registry)` returning a dict with three metrics, all registered in `registry`
# (pass `registry=registry`):
#
# | key | type | name | labels | notes |
# |---|---|---|---|---|
# | `"http_requests"` | `Counter` | `http_requests_total` | `method`, `route`, `status` | every HTTP request |
# | `"predictions"` | `Counter` | `predict_requests_total` | `label` | one per prediction served |
# | `"latency"` | `Histogram` | `predict_latency_seconds` | none | `buckets=LATENCY_BUCKETS_S` |
#
# Every metric needs a help text (the second argument): say what it counts and in which unit.
#
# The two prediction metrics are the capstone's: the grader looks for exactly these names, which
# `course_utils.contract` holds as `REQUESTS_COUNTER` and `LATENCY_HISTOGRAM` (use either the names or
# the constants).

# %% nbgrader={"grade": false, "grade_id": "ex2-metrics", "locked": false, "schema_version": 3, "solution": true, "task": false}
def make_metrics(registry):
    """The service's metrics, registered in `registry`."""
    ### BEGIN SOLUTION
    return {
        "http_requests": Counter("http_requests_total", "HTTP requests by method, route and status code.",
                                 ["method", "route", "status"], registry=registry),
        "predictions": Counter(REQUESTS_COUNTER, "Predictions served, by predicted label.",
                               ["label"], registry=registry),
        "latency": Histogram(LATENCY_HISTOGRAM, "Time to compute one prediction, in seconds.",
                             buckets=LATENCY_BUCKETS_S, registry=registry),
    }
    ### END SOLUTION


# %% [markdown]
# The tests use a registry of their own and read the text format Prometheus would scrape.

# %% nbgrader={"grade": true, "grade_id": "ex2-metrics-tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
test_registry = CollectorRegistry()
m = make_metrics(test_registry)
m["predictions"].labels(label="positive").inc()
m["latency"].observe(0.004)
m["http_requests"].labels(method="POST", route="/predict", status="200").inc()
text = generate_latest(test_registry).decode()
assert f'{REQUESTS_COUNTER}{{label="positive"}} 1.0' in text, f"{REQUESTS_COUNTER}: a Counter with a 'label' label"
assert f'{LATENCY_HISTOGRAM}_bucket{{le="0.001"}} 0.0' in text, f"{LATENCY_HISTOGRAM}: buckets=LATENCY_BUCKETS_S"
assert f'{LATENCY_HISTOGRAM}_bucket{{le="0.005"}} 1.0' in text, "observations must land in the buckets"
assert 'http_requests_total{method="POST",route="/predict",status="200"} 1.0' in text, "check http_requests_total's labels"
print("Exercise 2: all visible tests passed")
### BEGIN HIDDEN TESTS
make_metrics(CollectorRegistry())  # a second registry must work: nothing is registered globally
assert REGISTRY.get_sample_value(f"{LATENCY_HISTOGRAM}_count") is None, "use registry=registry, not the global REGISTRY"
families = {f.name: f for f in text_string_to_metric_families(text)}
counter = REQUESTS_COUNTER.removesuffix("_total")  # the parser names a counter's family without _total
assert families[LATENCY_HISTOGRAM].type == "histogram"
assert families[counter].type == "counter" and families["http_requests"].type == "counter"
assert all(families[n].documentation for n in (LATENCY_HISTOGRAM, counter, "http_requests"))
### END HIDDEN TESTS

# %% [markdown]
# ## 4. The service: loading in the background
#
# The lifespan starts a thread that loads the model and runs a few warm-up predictions, so the server
# answers `/health` at once while `/ready` goes from *loading* to *warming* to *ready*. At shutdown it
# marks the service as draining.

# %%
def load_and_warm_up(app):
    app.state.model, app.state.tokenizer = load_classifier(), load_tokenizer(settings.model_dir)
    app.state.model_version = load_model_card()["version"]
    app.state.status["model_loaded"] = True
    for _ in range(3):  # the first predictions are slow: pay for them before real traffic arrives
        predict_proba(app.state.model, app.state.tokenizer, ["warm-up request"])
    app.state.status["warmed_up"] = True


@asynccontextmanager
async def lifespan(app):
    app.state.status = {"model_loaded": False, "warmed_up": False, "draining": False}
    loader = threading.Thread(target=load_and_warm_up, args=(app,), daemon=True)
    loader.start()
    yield
    app.state.status["draining"] = True
    loader.join(timeout=30)


# %% [markdown]
# The app and its metrics, plus a logger whose lines we collect in a list so we can look at them as a
# table (a real service writes them to stdout, where the platform collects them).

# %%
app = FastAPI(title="Sentiment API (notebook 04)", lifespan=lifespan)
registry = CollectorRegistry()
metrics = make_metrics(registry)

access_lines = []


class CollectLines(logging.Handler):
    def emit(self, record):
        access_lines.append(json.loads(record.getMessage()))


access_log = logging.getLogger("nb04.access")
access_log.handlers = [CollectLines()]
access_log.setLevel(logging.INFO)
access_log.propagate = False


# %% [markdown]
# The middleware wraps every request: it times it, counts it by method, **route template** and status, and
# logs one JSON line with a request id (taken from the `x-request-id` header, or a new one) that it also
# returns to the client, so a user's complaint can be matched to a log line.

# %%
@app.middleware("http")
async def observe(request: Request, call_next):
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:12]
    t0 = time.perf_counter()
    response = await call_next(request)
    latency_ms = (time.perf_counter() - t0) * 1000
    route = request.scope.get("route")
    route = route.path if route is not None else "unmatched"  # bounded: never the raw path
    metrics["http_requests"].labels(request.method, route, str(response.status_code)).inc()
    access_log.info(json.dumps({"method": request.method, "path": route, "status": response.status_code,
                                "latency_ms": round(latency_ms, 2), "request_id": request_id}))
    response.headers["x-request-id"] = request_id
    return response


# %% [markdown]
# Liveness, readiness (your function) and the metrics page in Prometheus' text format:

# %%
@app.get("/health")
def health(request: Request):
    return {"status": "ok", "model_loaded": request.app.state.status["model_loaded"]}


@app.get("/ready")
def ready(request: Request):
    code, body = readiness(request.app.state.status)
    return JSONResponse(body, status_code=code)


@app.get("/metrics")
def metrics_page():
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


# %% [markdown]
# `/predict` times only the prediction for the histogram (the middleware already times whole requests)
# and counts the predicted label, which later helps to notice drift in what the model says.

# %%
class PredictRequest(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)


@app.post("/predict")
def predict(body: PredictRequest, request: Request):
    state = request.app.state
    with metrics["latency"].time():  # observes the elapsed seconds when the block ends
        proba = predict_proba(state.model, state.tokenizer, [body.text])[0]
    label = LABELS[int(proba.argmax())]
    metrics["predictions"].labels(label=label).inc()
    return {"label": label, "confidence": float(proba.max()), "model_version": state.model_version}


# %% [markdown]
# ## 5. Watch readiness change
#
# We start the server and poll `/ready` every 50 ms (bounded: at most 60 s) until it answers anything but
# `503`, then keep only the moments where the answer changed.

# %%
srv = BackgroundServer(app, name="nb04-api").start()
timeline, t0 = [], time.perf_counter()
while time.perf_counter() - t0 < 60:
    r = requests.get(f"{srv.url}/ready", timeout=5)
    reason = r.json().get("reason", "-") if r.status_code in (200, 503) else r.text[:60]
    timeline.append({"time (ms)": round((time.perf_counter() - t0) * 1000), "status": r.status_code, "reason": reason})
    if r.status_code != 503:
        break
    time.sleep(0.05)  # the polling interval
pd.DataFrame(timeline).drop_duplicates(["status", "reason"]).set_index("time (ms)")

# %% [markdown]
# A last check from the outside, as a load balancer would do it:

# %%
assert requests.get(f"{srv.url}/ready", timeout=5).status_code == 200, "/ready should say 200 once warmed up"
assert requests.get(f"{srv.url}/health", timeout=5).json() == {"status": "ok", "model_loaded": True}
print("readiness over HTTP: the service is ready")

# %% [markdown]
# ## 6. Put some load on it
#
# `run_closed_loop` sends requests from two concurrent clients and times them on the client side. It is
# bounded by a number of requests, and shows a progress bar.

# %%
n_requests = 40 if settings.fast else 400
texts = ["An absolute joy from start to finish.", "The battery died after two days. Avoid."]
load = run_closed_loop(f"{srv.url}/predict", method="POST", json={"text": texts[0]}, concurrency=2,
                       n_requests=n_requests // 2)
load_neg = run_closed_loop(f"{srv.url}/predict", method="POST", json={"text": texts[1]}, concurrency=2,
                           n_requests=n_requests - n_requests // 2)
pd.DataFrame([load.to_dict(), load_neg.to_dict()], index=texts)[["n_requests", "throughput_rps", "p50_ms", "p95_ms"]].round(1)

# %% [markdown]
# The access log has one JSON line per request (readiness polls included), ready for any log tool:

# %%
log = pd.DataFrame(access_lines)
display(log.tail(3))
log.groupby(["path", "status"]).latency_ms.describe()[["count", "50%", "max"]].round(2)

# %% [markdown]
# ## 7. Scrape and parse the metrics
#
# This is what Prometheus reads. We show the lines of our prediction metrics:

# %%
metrics_text = requests.get(f"{srv.url}/metrics", timeout=5).text
print("\n".join(line for line in metrics_text.splitlines() if line.startswith((REQUESTS_COUNTER, f"{LATENCY_HISTOGRAM}_bucket"))))


# %% [markdown]
# ### Exercise 3 (2 points): buckets from the metrics text
#
# Histogram buckets are **cumulative**: `le="0.01"` counts every observation ≤ 10 ms, including those
# ≤ 5 ms. Write `bucket_counts(metrics_text, name)` that parses the text with
# `text_string_to_metric_families`, finds the family called `name`, and returns a DataFrame with one row
# per bucket sorted by bound: columns `le_s` (the bound in seconds, a float; `+Inf` becomes `np.inf`),
# `cumulative` (the sample's value) and `count` (observations in this bucket alone: the difference
# from the previous bucket). Bucket samples are named `name + "_bucket"`, their bound is in
# `sample.labels["le"]`. The text may hold other metrics (histograms too), and a hand-written text may
# list the buckets in any order: sort them by their bound as a number.

# %% nbgrader={"grade": false, "grade_id": "ex3-buckets", "locked": false, "schema_version": 3, "solution": true, "task": false}
def bucket_counts(metrics_text, name):
    """Per-bucket counts of histogram `name` from Prometheus text: columns le_s, cumulative, count."""
    ### BEGIN SOLUTION
    family = next(f for f in text_string_to_metric_families(metrics_text) if f.name == name)
    rows = [(float(s.labels["le"]), s.value) for s in family.samples if s.name == name + "_bucket"]
    frame = pd.DataFrame(sorted(rows), columns=["le_s", "cumulative"])
    frame["count"] = frame["cumulative"].diff().fillna(frame["cumulative"])
    return frame
    ### END SOLUTION


# %% [markdown]
# The tests build a histogram with known observations.

# %% nbgrader={"grade": true, "grade_id": "ex3-buckets-tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
reg = CollectorRegistry()
h = Histogram("demo_seconds", "demo", buckets=(0.01, 0.1, 1.0), registry=reg)
for value in (0.005, 0.05, 0.06, 0.5, 3.0):
    h.observe(value)
frame = bucket_counts(generate_latest(reg).decode(), "demo_seconds")
assert list(frame.columns) == ["le_s", "cumulative", "count"], f"columns must be le_s, cumulative, count, not {list(frame.columns)}"
assert frame["le_s"].tolist() == [0.01, 0.1, 1.0, np.inf], "one row per bucket, sorted, +Inf as np.inf"
assert frame["cumulative"].tolist() == [1, 3, 4, 5], "cumulative is the sample value"
assert frame["count"].tolist() == [1, 2, 1, 1], "count = this bucket's cumulative minus the previous one"
print("Exercise 3: all visible tests passed")
### BEGIN HIDDEN TESTS
# A fixed, hand-written text: another histogram first, then buckets out of order (as numbers, 10 > 2.5).
by_hand = """# HELP other_seconds Another histogram.
# TYPE other_seconds histogram
other_seconds_bucket{le="1.0"} 7.0
other_seconds_bucket{le="+Inf"} 9.0
other_seconds_count 9.0
other_seconds_sum 3.0
# HELP job_seconds Job durations.
# TYPE job_seconds histogram
job_seconds_bucket{le="10.0"} 4.0
job_seconds_bucket{le="2.5"} 4.0
job_seconds_bucket{le="+Inf"} 6.0
job_seconds_bucket{le="0.25"} 1.0
job_seconds_count 6.0
job_seconds_sum 30.0
"""
frame = bucket_counts(by_hand, "job_seconds")
assert frame["le_s"].tolist() == [0.25, 2.5, 10.0, np.inf], "sort the buckets by their bound as a number"
assert frame["cumulative"].tolist() == [1, 4, 4, 6] and frame["count"].tolist() == [1, 3, 0, 2]
assert bucket_counts(by_hand, "other_seconds")["count"].tolist() == [7, 2]
### END HIDDEN TESTS

# %% [markdown]
# A bar per bucket shows the latency distribution that the server itself measured, without any client
# or network in the way.

# %%
served = bucket_counts(metrics_text, LATENCY_HISTOGRAM)
labels = [f"≤{b * 1000:g}" if np.isfinite(b) else "more" for b in served["le_s"]]
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.bar(labels, served["count"], color="tab:green")
ax.tick_params(axis="x", labelrotation=45)
ax.set(xlabel="prediction latency bucket (ms, upper bound)", ylabel="predictions",
       title=f"{LATENCY_HISTOGRAM} after {int(served['cumulative'].iloc[-1])} predictions")
plt.show()

# %% [markdown]
# Buckets give *bounds*, not exact values: Prometheus' `histogram_quantile` interpolates inside a bucket.
# Here we find the bucket that holds the 95th percentile and compare it with what the clients measured
# (which adds HTTP, JSON and queueing to the model time).

# %%
total = served["cumulative"].iloc[-1]
p95_bound_ms = served.loc[served["cumulative"] >= 0.95 * total, "le_s"].iloc[0] * 1000
pd.Series({"server: p95 is at most (ms)": p95_bound_ms,
           "clients: measured p95 (ms)": max(load.p95_ms, load_neg.p95_ms)}).round(1)

# %% [markdown]
# ## 8. Stop the server
#
# Shutting down runs the end of the lifespan: the status says *draining*.

# %%
srv.stop()
print("status after shutdown:", app.state.status)

# %% [markdown]
# ## Summary
#
# - `/health` answers "alive?", `/ready` answers "send me traffic?": loading, warming and draining are
#   alive but not ready.
# - One middleware gives every request a latency, a structured log line and a request id.
# - Prometheus metrics: counters and histograms, in seconds, with bounded labels, in a registry you own.
# - Histogram buckets are cumulative; quantiles from them are bounds, and they exclude the network.
#
# ## Clean-up
#
# Stop anything still running (safe to run twice) and detach the log collector.

# %%
stop_all()
access_log.handlers.clear()
print("servers still running:", [s for s in (srv,) if s.running])
