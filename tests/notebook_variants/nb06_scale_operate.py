"""Notebook 06: Little's law, PSI from two histograms, the canary router, and picking a server.

Exercise 4 has two graded cells: which rows qualify (QUALIFY) and which of them wins (CHOICE).
"""

from tests.notebook_variants import right, wrong

QUALIFY, CHOICE = "ex4-pick-server-tests", "ex4-pick-server-choice-tests"

#: The cells that start services and load them (batching sweep, open loop, uvicorn --workers, drift
#: samples, canary, router, LitServe and the live comparison): about 60 s per submission under
#: COURSE_FAST. The graded cells read only their own inputs and the benchmark snapshot (`bench`, kept).
TRIM = (
    'batch_servers = {size: start_service(f"nb06-batch{size}", backend="onnx-fp32", max_batch_size=size, '
    "max_wait_ms=2)",
    "levels = (1, 4, 16) if settings.fast else (1, 2, 4, 8, 16, 32)",
    "shares = (0.3, 0.6, 0.9) if settings.fast else (0.2, 0.4, 0.6, 0.8, 0.9, 1.0)",
    'samples = {"test (reference)": load_sentiment("test"), "val (in-domain)": load_sentiment("val"),',
    'variants = {"stable": batch_servers[16], "canary": start_service("nb06-canary", backend="onnx-int8")}',
    'traffic = load_sentiment("test") * (1 if settings.fast else 4)',
    'litserve_args = ["--max-batch-size", "16", "--batch-timeout-ms", "2", "--ort-threads", "0"]',
    'check_texts = [e.text for e in load_sentiment("test")[:4] + load_out_of_domain()[:4]]',
    "live_s = 2 if settings.fast else 5",
    'modes = {"own registry per worker": {},',
)

VARIANTS = {
    "ex1-little-law": [
        right(
            "one ValueError per argument, seconds computed first",
            """
def little_law(throughput_rps, latency_ms):
    if throughput_rps < 0:
        raise ValueError(f"throughput_rps must be >= 0, got {throughput_rps}")
    if latency_ms < 0:
        raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
    latency_s = latency_ms / 1e3
    return float(throughput_rps * latency_s)
""",
        ),
        wrong(
            "forgets the unit: milliseconds used as seconds",
            """
def little_law(throughput_rps, latency_ms):
    if throughput_rps < 0 or latency_ms < 0:
        raise ValueError("throughput_rps and latency_ms must be >= 0")
    return float(throughput_rps * latency_ms)
""",
        ),
        right(
            "a loop over the named arguments, then the product divided by 1000",
            """
def little_law(throughput_rps, latency_ms):
    for name, value in {"throughput_rps": throughput_rps, "latency_ms": latency_ms}.items():
        if value < 0:
            raise ValueError(f"{name}={value!r} is negative")
    return throughput_rps * latency_ms / 1000.0
""",
        ),
        wrong(
            "checks only the throughput: a negative latency gives a negative L",
            """
def little_law(throughput_rps, latency_ms):
    if throughput_rps < 0:
        raise ValueError("throughput_rps must be >= 0")
    return float(throughput_rps) * float(latency_ms) / 1000.0
""",
        ),
    ],
    "ex2-psi": [
        wrong(
            "clips shares at 1e-4 (the library's rule) instead of the smoothing the text asks for",
            """
def psi_from_counts(reference_counts, current_counts):
    ref, cur = np.asarray(reference_counts, dtype=float), np.asarray(current_counts, dtype=float)
    if ref.shape != cur.shape or ref.size == 0:
        raise ValueError("pass the same bins")
    ref, cur = np.maximum(ref / ref.sum(), 1e-4), np.maximum(cur / cur.sum(), 1e-4)
    return float(np.sum((cur - ref) * np.log(cur / ref)))
""",
        ),
        right(
            "pure Python with math.log and zip, after a length check",
            """
def psi_from_counts(reference_counts, current_counts):
    import math
    ref, cur = list(reference_counts), list(current_counts)
    if len(ref) != len(cur) or not ref:
        raise ValueError(f"{len(ref)} and {len(cur)} bins: need the same, non-zero number")
    k, ref_total, cur_total = len(ref), sum(ref), sum(cur)
    total = 0.0
    for r, c in zip(ref, cur):
        r_share = (r + 0.5) / (ref_total + 0.5 * k)
        c_share = (c + 0.5) / (cur_total + 0.5 * k)
        total += (c_share - r_share) * math.log(c_share / r_share)
    return float(total)
""",
        ),
        wrong(
            "smooths the counts but divides by the raw total (shares no longer sum to 1)",
            """
def psi_from_counts(reference_counts, current_counts):
    ref, cur = np.asarray(reference_counts, dtype=float), np.asarray(current_counts, dtype=float)
    if ref.shape != cur.shape or ref.size == 0:
        raise ValueError("pass the same bins")
    ref_share, cur_share = (ref + 0.5) / ref.sum(), (cur + 0.5) / cur.sum()
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))
""",
        ),
        right(
            "a shares() helper and np.log differences",
            """
def psi_from_counts(reference_counts, current_counts):
    def shares(counts):
        counts = np.array(counts, dtype=np.float64)
        return (counts + 0.5) / (counts.sum() + 0.5 * len(counts))

    if len(reference_counts) == 0 or len(reference_counts) != len(current_counts):
        raise ValueError("the histograms must have the same bins")
    p, q = shares(reference_counts), shares(current_counts)
    return float(((q - p) * (np.log(q) - np.log(p))).sum())
""",
        ),
        wrong(
            "KL divergence instead of PSI: the (current - reference) factor is missing",
            """
def psi_from_counts(reference_counts, current_counts):
    ref, cur = np.asarray(reference_counts, dtype=float), np.asarray(current_counts, dtype=float)
    if ref.shape != cur.shape or ref.size == 0:
        raise ValueError("pass the same bins")
    ref_share = (ref + 0.5) / (ref.sum() + 0.5 * ref.size)
    cur_share = (cur + 0.5) / (cur.sum() + 0.5 * cur.size)
    return float(np.sum(cur_share * np.log(cur_share / ref_share)))
""",
        ),
    ],
    "ex3-choose-variant": [
        right(
            "random.Random.choices with the weights, after the checks",
            """
def choose_variant(weights, rng):
    if not weights or min(weights.values()) < 0 or sum(weights.values()) == 0:
        raise ValueError(f"bad weights {weights!r}")
    return rng.choices(list(weights), weights=list(weights.values()), k=1)[0]
""",
        ),
        wrong(
            "draws with the global random module: a seed does not make the routing reproducible",
            """
def choose_variant(weights, rng):
    import random as global_random
    if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError("bad weights")
    return global_random.choices(list(weights), weights=list(weights.values()))[0]
""",
        ),
        right(
            "cumulative weights and bisect",
            """
def choose_variant(weights, rng):
    import bisect
    import itertools
    names, values = list(weights), list(weights.values())
    if not names or any(v < 0 for v in values) or not any(v > 0 for v in values):
        raise ValueError("weights: at least one, none negative, not all zero")
    cumulative = list(itertools.accumulate(values))
    return names[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]
""",
        ),
        wrong(
            "picks uniformly (rng.choice), ignoring the weights",
            """
def choose_variant(weights, rng):
    if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError("bad weights")
    return rng.choice([name for name, w in weights.items() if w > 0])
""",
        ),
    ],
    "ex4-pick-server": [
        right(
            "sorted by (-rps, p99) with NaN dropped explicitly",
            """
def pick_server(rows, *, load, max_p99_ms):
    fits = [r for r in rows if r["load"] == load and not r["errors"] and not math.isnan(r["p99_ms"])
            and r["p99_ms"] <= max_p99_ms]
    return sorted(fits, key=lambda r: (-r["rps"], r["p99_ms"]))[0]["server"] if fits else None
""",
        ),
        wrong(
            "rejects rows 'above' the target with >, so a NaN p99 (never above) qualifies",
            """
def pick_server(rows, *, load, max_p99_ms):
    fits = [r for r in rows if r["load"] == load and r["errors"] == 0 and not r["p99_ms"] > max_p99_ms]
    return max(fits, key=lambda r: (r["rps"], -r["p99_ms"]))["server"] if fits else None
""",
            loses=(QUALIFY,),
        ),
        right(
            "one pass keeping the best row so far",
            """
def pick_server(rows, *, load, max_p99_ms):
    best = None
    for row in rows:
        if row["load"] != load or row["errors"] > 0 or not row["p99_ms"] <= max_p99_ms:
            continue
        if best is None or (row["rps"], -row["p99_ms"]) > (best["rps"], -best["p99_ms"]):
            best = row
    return None if best is None else best["server"]
""",
        ),
        wrong(
            "max by rps alone: on equal rps the first row wins, not the lower p99",
            """
def pick_server(rows, *, load, max_p99_ms):
    fits = [r for r in rows if r["load"] == load and r["errors"] == 0 and r["p99_ms"] <= max_p99_ms]
    return max(fits, key=lambda r: r["rps"])["server"] if fits else None
""",
            loses=(CHOICE,),
        ),
        wrong(
            "the lowest p99 wins instead of the highest rps",
            """
def pick_server(rows, *, load, max_p99_ms):
    fits = [r for r in rows if r["load"] == load and r["errors"] == 0 and r["p99_ms"] <= max_p99_ms]
    return min(fits, key=lambda r: r["p99_ms"])["server"] if fits else None
""",
        ),
    ],
}
