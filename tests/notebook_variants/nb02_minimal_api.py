"""Notebook 02: the request model, the /predict endpoint (over HTTP) and the latency summary."""

from tests.notebook_variants import right, wrong

VARIANTS = {
    "ex1-request-model": [
        right(
            "strips the text and returns it stripped; examples through json_schema_extra",
            """
class PredictRequest(BaseModel):
    text: str = Field(..., min_length=1, max_length=10_000, json_schema_extra={"examples": ["Great film"]})

    @field_validator("text")
    @classmethod
    def strip_and_check(cls, v):
        v = v.strip()
        if not v:
            raise ValueError("text must not be blank")
        return v
""",
        ),
        wrong(
            "only rejects the empty string: whitespace-only text gets through",
            """
class PredictRequest(BaseModel):
    text: str = Field(min_length=1, max_length=10_000, examples=["What a lovely film!"])

    @field_validator("text")
    @classmethod
    def not_blank(cls, value):
        if value == "":
            raise ValueError("text must not be blank")
        return value
""",
        ),
        right(
            "isspace() check, the length limits left to Field",
            '''
class PredictRequest(BaseModel):
    """One text to classify."""

    text: str = Field(min_length=1, max_length=10000, examples=["An absolute joy."])

    @field_validator("text")
    @classmethod
    def reject_whitespace(cls, text: str) -> str:
        if text.isspace():
            raise ValueError("text must not be blank")
        return text
''',
        ),
        wrong(
            "no max_length: a 10,001-character text is accepted",
            """
class PredictRequest(BaseModel):
    text: str = Field(min_length=1, examples=["What a lovely film!"])

    @field_validator("text")
    @classmethod
    def not_blank(cls, value):
        if not value.strip():
            raise ValueError("text must not be blank")
        return value
""",
        ),
    ],
    "ex2-predict-endpoint": [
        wrong(
            "confidence is always P(positive), not the probability of the returned label",
            """
@app.post("/predict")
def predict(body: PredictRequest, request: Request) -> PredictResponse:
    state = request.app.state
    proba = predict_proba(state.model, state.tokenizer, [body.text])[0]
    return PredictResponse(label=LABELS[int(np.argmax(proba))], confidence=float(proba[1]),
                           model_version=state.model_version)
""",
        ),
        right(
            "max over (label, probability) pairs, returns a dict that FastAPI validates",
            """
@app.post("/predict")
def predict(body: PredictRequest, request: Request) -> PredictResponse:
    state = request.app.state
    probabilities = predict_proba(state.model, state.tokenizer, [body.text])[0].tolist()
    label, confidence = max(zip(LABELS, probabilities), key=lambda pair: pair[1])
    return {"label": label, "confidence": confidence, "model_version": state.model_version}
""",
        ),
        wrong(
            "takes the least probable label (argmin)",
            """
@app.post("/predict")
def predict(body: PredictRequest, request: Request) -> PredictResponse:
    state = request.app.state
    proba = predict_proba(state.model, state.tokenizer, [body.text])[0]
    best = int(np.argmin(proba))
    return PredictResponse(label=LABELS[best], confidence=float(1 - proba[best]),
                           model_version=state.model_version)
""",
        ),
        right(
            "proba.argmax() and proba.max() on the row, keyword-free positional unpacking",
            """
@app.post("/predict")
def predict(body: PredictRequest, request: Request) -> PredictResponse:
    state = request.app.state
    (row,) = predict_proba(state.model, state.tokenizer, [body.text])
    return PredictResponse(label=LABELS[row.argmax()], confidence=row.max().item(),
                           model_version=str(state.model_version))
""",
        ),
    ],
    "ex3-latency-summary": [
        right(
            "pure Python statistics with np.percentile per key",
            """
def latency_summary(latencies_ms):
    import statistics
    if len(latencies_ms) == 0:
        raise ValueError("latency_summary needs at least one latency")
    values = [float(v) for v in latencies_ms]
    return {"n": len(values), "mean_ms": statistics.fmean(values),
            "p50_ms": float(np.percentile(values, 50)), "p95_ms": float(np.percentile(values, 95)),
            "p99_ms": float(np.percentile(values, 99)), "max_ms": max(values)}
""",
        ),
        wrong(
            "max_ms is the last value, not the largest",
            """
def latency_summary(latencies_ms):
    values = np.asarray(latencies_ms, dtype=float)
    if values.size == 0:
        raise ValueError("no latencies")
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"n": int(values.size), "mean_ms": float(values.mean()), "p50_ms": float(p50),
            "p95_ms": float(p95), "p99_ms": float(p99), "max_ms": float(values[-1])}
""",
        ),
        right(
            "pandas quantiles (linear interpolation, as np.percentile)",
            """
def latency_summary(latencies_ms):
    series = pd.Series(latencies_ms, dtype=float)
    if series.empty:
        raise ValueError("empty list: there is nothing to summarise")
    q = series.quantile([0.5, 0.95, 0.99])
    return dict(n=len(series), mean_ms=float(series.mean()), p50_ms=float(q[0.5]),
                p95_ms=float(q[0.95]), p99_ms=float(q[0.99]), max_ms=float(series.max()))
""",
        ),
        wrong(
            "p50 is the mean (the two agree only on symmetric data)",
            """
def latency_summary(latencies_ms):
    values = np.asarray(latencies_ms, dtype=float)
    if values.size == 0:
        raise ValueError("no latencies")
    return {"n": int(values.size), "mean_ms": float(values.mean()), "p50_ms": float(values.mean()),
            "p95_ms": float(np.percentile(values, 95)), "p99_ms": float(np.percentile(values, 99)),
            "max_ms": float(values.max())}
""",
        ),
    ],
}
