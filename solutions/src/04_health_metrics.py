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
# metrics (a counter and a latency histogram) that we scrape, parse and plot. Then decide what to watch:
# the four golden signals (latency, traffic, errors, saturation), their percentiles over time as a
# Grafana panel draws them, and alert rules on them, tested with `promtool`.
#
# **Time.** About 100 minutes. **Graded.** 3 exercises, 7 points.

# %% [markdown]
# ## 1. Setup
#
# Imports for the service, for `prometheus_client` and for the measurements.

# %%
import json
import logging
import shutil
import tempfile
import textwrap
import threading
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import requests
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from IPython.display import display
from pydantic import BaseModel, Field
from tqdm.auto import tqdm

# %% [markdown]
# `prometheus_client` for the metrics and its parser for reading them back; from `course_utils`, the
# model, the background server and a bounded load generator.

# %%
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram,
                               ProcessCollector, generate_latest)
from prometheus_client.parser import text_string_to_metric_families

from course_utils.bench import run_closed_loop
from course_utils.config import get_settings
from course_utils.contract import LABELS, LATENCY_BUCKET_MAX_S, LATENCY_HISTOGRAM, REQUESTS_COUNTER
from course_utils.model import load_classifier, load_model_card, load_tokenizer, predict_proba
from course_utils.process import run
from course_utils.server import BackgroundServer, stop_all

settings = get_settings()
WORK = Path(tempfile.mkdtemp(prefix="nb04-"))  # scratch folder for the alert rules; the last cell deletes it


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
# table (a real service writes them to stdout, where the platform collects them). Two more series measure
# how *full* the service is (section 8): the requests being served right now, and the CPU time of this
# process (`ProcessCollector` adds `process_cpu_seconds_total` and friends).

# %%
app = FastAPI(title="Sentiment API (notebook 04)", lifespan=lifespan)
registry = CollectorRegistry()
metrics = make_metrics(registry)
in_flight = Gauge("http_requests_in_flight", "HTTP requests being served right now.", registry=registry)
ProcessCollector(registry=registry)

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
# returns to the client, so a user's complaint can be matched to a log line. While the request runs, it
# counts in the in-flight gauge.

# %%
@app.middleware("http")
async def observe(request: Request, call_next):
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:12]
    t0 = time.perf_counter()
    with in_flight.track_inprogress():  # +1 now, -1 when the block ends, even on an exception
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
# ## 8. What to monitor: the four golden signals
#
# A service can export hundreds of series; four of them tell you whether users are served well (Google's
# SRE book calls them the *golden signals*). Everything else helps to find out *why* they are not.
#
# | signal | the question | series in this service | PromQL for a panel or an alert |
# |---|---|---|---|
# | **latency** | how long does a prediction take? | `predict_latency_seconds` (histogram) | `histogram_quantile(0.95, sum by (le) (rate(predict_latency_seconds_bucket[1m])))` |
# | **traffic** | how much is asked of it? | `http_requests_total` (counter) | `sum(rate(http_requests_total[1m]))` requests per second |
# | **errors** | what share of it fails? | `http_requests_total{status=~"5.."}` | `sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))` |
# | **saturation** | how full is it? | `http_requests_in_flight` (gauge); `process_cpu_seconds_total` (counter); a queue's depth where there is a queue (notebook 06's batcher) | `sum(http_requests_in_flight)`; `rate(process_cpu_seconds_total[1m])` cores busy |
#
# Counters are only ever read through `rate()` or `increase()`: their raw value counts since the process
# started, and it drops to zero when the process restarts (which `rate()` handles). Saturation warns
# *before* the other three go bad: a service at 100% CPU or with a growing queue is about to get slow.
#
# To compute the table's queries ourselves we keep every sample of a scrape, one row each, as Prometheus
# stores them: a series is a name plus its labels.

# %%
def scrape(url):
    """Every sample of `url`/metrics, indexed by series (name + labels), with the time of the scrape."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    rows = [{"series": s.name + json.dumps(s.labels, sort_keys=True), "name": s.name, "value": s.value,
             "le": s.labels.get("le"), "status": s.labels.get("status", "")}
            for family in text_string_to_metric_families(text) for s in family.samples]
    return time.perf_counter(), pd.DataFrame(rows).set_index("series")


now, snapshot = scrape(srv.url)
snapshot[snapshot["name"].str.startswith(("http_requests", "process_cpu"))][["value"]]

# %% [markdown]
# `histogram_quantile` does not know the observations, only cumulative bucket counts. It finds the bucket
# that holds the rank `q × total` and **interpolates linearly** inside it; a rank in the `+Inf` bucket gets
# the highest finite bound. That is the whole algorithm:

# %%
def histogram_quantile(q, cumulative):
    """Prometheus' estimate of quantile `q` from cumulative bucket counts indexed by sorted bounds (s)."""
    bounds, counts = cumulative.index.to_numpy(dtype=float), cumulative.to_numpy(dtype=float)
    if counts[-1] == 0:
        return float("nan")  # no observation in the window: Grafana draws a gap
    rank = q * counts[-1]
    i = int(np.searchsorted(counts, rank))  # the first bucket whose count reaches the rank
    if i == len(bounds) - 1:
        return float(bounds[-2])  # the +Inf bucket has no upper bound to interpolate to
    lower, below = (bounds[i - 1], counts[i - 1]) if i > 0 else (0.0, 0.0)
    return float(lower + (bounds[i] - lower) * (rank - below) / (counts[i] - below))


# %% [markdown]
# A window's signals come from two scrapes: how much each counter **grew** (`increase()`; divide by the
# seconds for `rate()`), then the same sums as the PromQL. For latency: sum the buckets' growth by `le`,
# then take the quantiles, as `histogram_quantile(0.95, sum by (le) (rate(x_bucket[1m])))` does.

# %%
def golden_signals(start, end):
    """The four signals over the window between two scrapes, computed as the table's PromQL does."""
    (t0, before), (t1, after) = start, end
    grew = after.assign(value=after["value"].sub(before["value"], fill_value=0))
    http = grew[grew["name"] == "http_requests_total"]
    latency = grew[grew["name"] == f"{LATENCY_HISTOGRAM}_bucket"]
    by_le = latency.groupby(latency["le"].astype(float))["value"].sum().sort_index()
    cpu = grew.loc[grew["name"] == "process_cpu_seconds_total", "value"].sum()
    return {"traffic (req/s)": http["value"].sum() / (t1 - t0),
            "errors (5xx share)": http.loc[http["status"].str.startswith("5"), "value"].sum() / max(http["value"].sum(), 1),
            **{f"p{round(q * 100)} (ms)": 1000 * histogram_quantile(q, by_le) for q in (0.5, 0.95, 0.99)},
            "CPU (cores busy)": cpu / (t1 - t0)}


# %% [markdown]
# A gauge is not a counter: what it says between two scrapes is lost. So while a load runs we read the
# in-flight gauge every 0.1 s and keep its peak, what `max_over_time(http_requests_in_flight[1m])` gives
# Prometheus from its own scrapes.

# %%
def load_and_watch(clients, text, n_requests):
    """Run one bounded load in a thread; meanwhile sample the in-flight gauge. Returns its peak."""
    loader = threading.Thread(target=run_closed_loop, args=(f"{srv.url}/predict",), daemon=True,
                              kwargs={"method": "POST", "json": {"text": text}, "concurrency": clients,
                                      "n_requests": n_requests, "progress": False})
    loader.start()
    seen = [0.0]
    while loader.is_alive():
        seen.append(scrape(srv.url)[1].loc["http_requests_in_flight{}", "value"] - 1)  # minus this scrape
        time.sleep(0.1)
    loader.join()
    return max(seen)


# %% [markdown]
# ## 9. Percentiles over time: a small Grafana panel
#
# One p95 over the service's whole life hides what matters: *when* it got slow. A dashboard plots the
# quantile per time window instead. We play Prometheus: scrape, load the service differently for a
# while, scrape again, four times: one client, four clients, eight clients with long reviews (more tokens
# to compute), and one client again.

# %%
long_review = " ".join([texts[0], texts[1]] * 20)  # about 400 tokens instead of 10
phases = {"1 client": (1, texts[0]), "4 clients": (4, texts[0]), "8 clients, long reviews": (8, long_review),
          "1 client again": (1, texts[0])}
per_phase = 30 if settings.fast else 300
scrapes, rows = [scrape(srv.url)], []
for clients, text in tqdm(phases.values(), desc="load phases"):
    peak = load_and_watch(clients, text, per_phase)
    scrapes.append(scrape(srv.url))
    rows.append({**golden_signals(scrapes[-2], scrapes[-1]), "in flight (peak)": peak})
panel = pd.DataFrame(rows, index=list(phases))
panel.round(3)

# %% [markdown]
# The same numbers drawn the way Grafana's time-series panels draw them: one point per window, at the
# window's end; latency on top, traffic and saturation below.

# %%
ends_s = [t - scrapes[0][0] for t, _ in scrapes[1:]]
fig, (latency_ax, traffic_ax, saturation_ax) = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
for column in ("p50 (ms)", "p95 (ms)", "p99 (ms)"):
    latency_ax.plot(ends_s, panel[column], marker="o", label=column.split()[0])
latency_ax.set(ylabel="latency (ms, log scale)", yscale="log", title=f"{LATENCY_HISTOGRAM}: quantiles per window")
latency_ax.legend()
traffic_ax.plot(ends_s, panel["traffic (req/s)"], marker="o", color="tab:grey")
traffic_ax.set(ylabel="traffic (req/s)")
for end, phase in zip(ends_s, phases, strict=True):
    traffic_ax.annotate(phase, (end, panel.loc[phase, "traffic (req/s)"]), fontsize=8, ha="center", va="bottom")
traffic_ax.margins(x=0.1, y=0.25)
saturation_ax.plot(ends_s, panel["in flight (peak)"], marker="o", label="in flight (peak)")
saturation_ax.plot(ends_s, panel["CPU (cores busy)"], marker="s", label="CPU (cores busy)")
saturation_ax.set(xlabel="time since the first scrape (s)", ylabel="saturation")
saturation_ax.legend()
plt.show()

# %% [markdown]
# Long reviews and more clients than cores move every quantile, p99 most; after the load drops, the
# last window is fast again, which a single lifetime p95 would never show. The quantiles are estimates
# inside buckets (a p99 between 25 and 50 ms is interpolated), so choose bucket bounds near your
# objective. The in-flight peak follows the number of clients, as Little's law says it must. (The CPU
# here is this kernel's process, which runs the load generator beside the server: in production it is
# the service's alone.)
#
# **Grafana** draws exactly these queries, against a Prometheus data source, at every step of the time
# range you pick. A dashboard is a JSON file you keep in git, and *provisioning* files load the data
# source and the dashboards when Grafana starts, so a fresh Grafana shows them with no clicking: the
# reference capstone's `deploy/grafana` folder holds one such dashboard with its provisioning.
#
# ## 10. Alerting on the signals
#
# A dashboard needs someone watching it; an **alert rule** watches for you. Prometheus evaluates each
# rule's `expr` every evaluation interval; when it returns a value the alert is **pending**, and only
# if it stays true for the whole `for:` duration does it turn **firing** and go to Alertmanager, which
# pages someone. `for:` is what keeps a single slow minute or a restart from waking anybody up.
#
# Alert on **symptoms** users feel (the error share, p95 latency above the objective of your SLO), not
# on **causes** (high CPU, one pod restarted): a cause may hurt nobody, and a symptom catches causes you
# did not think of. Saturation alerts are the exception worth having: they warn before the symptoms,
# with a longer `for:` and a lower severity. The rules go in a YAML file Prometheus loads (`rule_files:`);
# we write ours into a scratch folder that the clean-up cell deletes.

# %%
rules = WORK / "rules.yml"
rules.write_text(textwrap.dedent("""\
    groups:
      - name: notebook-04
        rules:
          - alert: ErrorShareOverOnePercent  # symptom: users get errors
            expr: sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.01
            for: 5m
            labels: {severity: page}
          - alert: PredictionP95Over100ms  # symptom: users wait
            expr: histogram_quantile(0.95, sum by (le) (rate(predict_latency_seconds_bucket[5m]))) > 0.1
            for: 10m
            labels: {severity: page}
          - alert: ManyRequestsInFlight  # saturation: a warning before the symptoms
            expr: sum(http_requests_in_flight) > 32
            for: 15m
            labels: {severity: ticket}
    """))
print(rules.read_text())

# %% [markdown]
# Rules are code, so they get tests. `promtool test rules` feeds a rule file synthetic series
# (`0+12x20` means 0, then 12 more each interval, 20 times) and checks which alerts fire at which time.
# One test per rule makes it fire; the latency test also checks it is still only *pending* at 6 minutes
# (firing alerts are listed, pending ones are not), and another test keeps the error rule quiet.

# %%
rule_tests = WORK / "rules_test.yml"
rule_tests.write_text(textwrap.dedent("""\
    rule_files: [rules.yml]
    tests:
      - name: 3 errors in 100 requests a minute fire after 5 minutes
        interval: 1m
        input_series:
          - {series: 'http_requests_total{route="/predict", status="200"}', values: '0+97x30'}
          - {series: 'http_requests_total{route="/predict", status="500"}', values: '0+3x30'}
        alert_rule_test:
          - {eval_time: 20m, alertname: ErrorShareOverOnePercent, exp_alerts: [{exp_labels: {severity: page}}]}
      - name: 1 error in 1000 requests stays quiet
        interval: 1m
        input_series:
          - {series: 'http_requests_total{route="/predict", status="200"}', values: '0+999x30'}
          - {series: 'http_requests_total{route="/predict", status="503"}', values: '0+1x30'}
        alert_rule_test:
          - {eval_time: 20m, alertname: ErrorShareOverOnePercent, exp_alerts: []}
      - name: every prediction in the 100-250 ms bucket is pending at 6m, firing at 20m
        interval: 1m
        input_series:
          - {series: 'predict_latency_seconds_bucket{le="0.1"}', values: '0+0x30'}
          - {series: 'predict_latency_seconds_bucket{le="0.25"}', values: '0+50x30'}
          - {series: 'predict_latency_seconds_bucket{le="+Inf"}', values: '0+50x30'}
        alert_rule_test:
          - {eval_time: 6m, alertname: PredictionP95Over100ms, exp_alerts: []}
          - {eval_time: 20m, alertname: PredictionP95Over100ms, exp_alerts: [{exp_labels: {severity: page}}]}
      - name: 40 requests in flight for 20 minutes
        interval: 1m
        input_series:
          - {series: 'http_requests_in_flight{instance="a"}', values: '40+0x30'}
        alert_rule_test:
          - {eval_time: 20m, alertname: ManyRequestsInFlight, exp_alerts: [{exp_labels: {severity: ticket}}]}
    """))
print(f"{len(rule_tests.read_text().splitlines())} lines of rule tests in {rule_tests.name}")

# %% [markdown]
# `promtool` ships with Prometheus (CI has it). If it is missing here, the cell says how to get it and the
# notebook goes on; a failing test raises with promtool's explanation.

# %%
promtool = shutil.which("promtool")
if promtool is None:
    print("promtool not installed: `apt-get install prometheus` (Debian/Ubuntu), `brew install prometheus` "
          "(macOS) or the release archive from https://prometheus.io/download/; then re-run this cell.")
else:
    print(run([promtool, "test", "rules", str(rule_tests)], timeout_s=60, label="promtool test rules"))


# %% [markdown]
# ## 11. Stop the server
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
# - Watch the four golden signals: latency, traffic, errors and saturation (in flight, CPU, queue depth).
# - Percentiles over time come from bucket *increases* per window, summed by `le`, then interpolated
#   (`histogram_quantile`); Grafana draws those queries from dashboards kept as JSON.
# - Alert on symptoms (error share, p95 against the objective) with a `for:` that filters blips
#   (pending, then firing), and test the rules with `promtool test rules`.
#
# ## Clean-up
#
# Stop anything still running, detach the log collector and delete the scratch folder (safe to run twice).

# %%
stop_all()
access_log.handlers.clear()
shutil.rmtree(WORK, ignore_errors=True)
print("servers still running:", [s for s in (srv,) if s.running])
