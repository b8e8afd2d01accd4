"""Notebook 04: the readiness decision, the Prometheus metrics, and per-bucket counts from metrics text."""

from tests.notebook_variants import right, wrong

#: The golden-signals load phases and the panel drawn from them (section 9): no graded cell reads them.
TRIM = (
    'long_review = " ".join([texts[0], texts[1]] * 20)  # about 400 tokens instead of 10',
    "ends_s = [t - scrapes[0][0] for t, _ in scrapes[1:]]",
)

VARIANTS = {
    "ex1-readiness": [
        right(
            "one reason expression, then one return per outcome",
            """
def readiness(status):
    if status["draining"] or not (status["model_loaded"] and status["warmed_up"]):
        reason = "draining" if status["draining"] else "loading" if not status["model_loaded"] else "warming"
        return 503, {"status": "not_ready", "reason": reason}
    return 200, {"status": "ready"}
""",
        ),
        wrong(
            "checks loading before draining: a draining service without a model says 'loading'",
            """
def readiness(status):
    if not status["model_loaded"]:
        return 503, {"status": "not_ready", "reason": "loading"}
    if status["draining"]:
        return 503, {"status": "not_ready", "reason": "draining"}
    if not status["warmed_up"]:
        return 503, {"status": "not_ready", "reason": "warming"}
    return 200, {"status": "ready"}
""",
        ),
        right(
            "a table of (flag, reason) checked in order of priority",
            """
def readiness(status):
    checks = ((status.get("draining"), "draining"), (not status.get("model_loaded"), "loading"),
              (not status.get("warmed_up"), "warming"))
    for failed, reason in checks:
        if failed:
            return (503, dict(status="not_ready", reason=reason))
    return (200, dict(status="ready"))
""",
        ),
        wrong(
            "ignores warm-up: a loaded but cold model is reported ready",
            """
def readiness(status):
    if status["draining"]:
        return 503, {"status": "not_ready", "reason": "draining"}
    if not status["model_loaded"]:
        return 503, {"status": "not_ready", "reason": "loading"}
    return 200, {"status": "ready"}
""",
        ),
    ],
    "ex2-metrics": [
        wrong(
            "registers in the global REGISTRY (registry= forgotten): a second call fails",
            """
def make_metrics(registry):
    return {
        "http_requests": Counter("http_requests_total", "HTTP requests.", ["method", "route", "status"]),
        "predictions": Counter("predict_requests_total", "Predictions served.", ["label"]),
        "latency": Histogram("predict_latency_seconds", "Prediction time, s.", buckets=LATENCY_BUCKETS_S),
    }
""",
        ),
        right(
            "namespace= and labelnames= keywords, the buckets as a list",
            """
def make_metrics(registry):
    http = Counter("requests", "HTTP requests by method, route and status.", namespace="http",
                   labelnames=("method", "route", "status"), registry=registry)
    predictions = Counter("requests", "Predictions, by label.", namespace="predict", labelnames=["label"],
                          registry=registry)
    latency = Histogram("latency_seconds", "Prediction latency in seconds.", namespace="predict",
                        buckets=list(LATENCY_BUCKETS_S), registry=registry)
    return {"http_requests": http, "predictions": predictions, "latency": latency}
""",
        ),
        wrong(
            "the histogram keeps prometheus_client's default buckets (nothing below 5 ms)",
            """
def make_metrics(registry):
    return {
        "http_requests": Counter("http_requests_total", "HTTP requests.", ["method", "route", "status"],
                                 registry=registry),
        "predictions": Counter("predict_requests_total", "Predictions served.", ["label"], registry=registry),
        "latency": Histogram("predict_latency_seconds", "Prediction time, seconds.", registry=registry),
    }
""",
        ),
        right(
            "metrics built one by one with keyword arguments, dict assembled at the end",
            """
def make_metrics(registry):
    metrics = {}
    metrics["latency"] = Histogram(name="predict_latency_seconds", documentation="Seconds per prediction.",
                                   registry=registry, buckets=LATENCY_BUCKETS_S)
    metrics["predictions"] = Counter(name="predict_requests_total", documentation="Predictions by label.",
                                     labelnames=["label"], registry=registry)
    metrics["http_requests"] = Counter(name="http_requests_total", documentation="Requests (count).",
                                       labelnames=["method", "route", "status"], registry=registry)
    return metrics
""",
        ),
        wrong(
            "predictions as a Gauge: it can go down, Prometheus' rate() misreads it",
            """
def make_metrics(registry):
    from prometheus_client import Gauge
    return {
        "http_requests": Counter("http_requests_total", "HTTP requests.", ["method", "route", "status"],
                                 registry=registry),
        "predictions": Gauge("predict_requests_total", "Predictions served.", ["label"], registry=registry),
        "latency": Histogram("predict_latency_seconds", "Prediction time, s.", buckets=LATENCY_BUCKETS_S,
                             registry=registry),
    }
""",
        ),
    ],
    "ex3-buckets": [
        right(
            "a loop, sorted by float bound, the difference computed by hand",
            """
def bucket_counts(metrics_text, name):
    buckets = []
    for family in text_string_to_metric_families(metrics_text):
        if family.name == name:
            buckets = [(float(s.labels["le"]), s.value) for s in family.samples if s.name.endswith("_bucket")]
    buckets.sort(key=lambda b: b[0])
    counts, previous = [], 0.0
    for _, cumulative in buckets:
        counts.append(cumulative - previous)
        previous = cumulative
    return pd.DataFrame({"le_s": [b[0] for b in buckets], "cumulative": [b[1] for b in buckets],
                         "count": counts})
""",
        ),
        wrong(
            "keeps the buckets in text order: right for prometheus_client's output, wrong for any other",
            """
def bucket_counts(metrics_text, name):
    family = next(f for f in text_string_to_metric_families(metrics_text) if f.name == name)
    rows = [(float(s.labels["le"]), s.value) for s in family.samples if s.name == name + "_bucket"]
    frame = pd.DataFrame(rows, columns=["le_s", "cumulative"])
    frame["count"] = frame["cumulative"].diff().fillna(frame["cumulative"])
    return frame
""",
        ),
        right(
            "np.diff with prepend=0 over arrays sorted with argsort",
            """
def bucket_counts(metrics_text, name):
    (family,) = [f for f in text_string_to_metric_families(metrics_text) if f.name == name]
    samples = [s for s in family.samples if s.name == f"{name}_bucket"]
    le = np.array([np.inf if s.labels["le"] == "+Inf" else float(s.labels["le"]) for s in samples])
    cumulative = np.array([s.value for s in samples])
    order = np.argsort(le)
    return pd.DataFrame({"le_s": le[order], "cumulative": cumulative[order],
                         "count": np.diff(cumulative[order], prepend=0.0)})
""",
        ),
        wrong(
            "reads the first histogram in the text, whatever its name",
            """
def bucket_counts(metrics_text, name):
    family = next(f for f in text_string_to_metric_families(metrics_text) if f.type == "histogram")
    rows = [(float(s.labels["le"]), s.value) for s in family.samples if s.name.endswith("_bucket")]
    frame = pd.DataFrame(sorted(rows), columns=["le_s", "cumulative"])
    frame["count"] = frame["cumulative"].diff().fillna(frame["cumulative"])
    return frame
""",
        ),
    ],
}
