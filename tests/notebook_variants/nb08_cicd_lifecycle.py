"""Notebook 08: validate_batch, evaluation_gate, rollout_step; right in other styles, wrong as students do."""

from tests.notebook_variants import right, wrong

#: Slow ungraded cells (the gate, four models over the test split, the registry's copies, the pipeline's
#: subprocesses, live servers and rollouts): no graded cell reads what they compute.
TRIM = (
    "gate = pd.DataFrame(run_gate(settings.model_dir))",
    "def predict_labels(onnx_file, texts, *, max_tokens=512, batch_size=64):",
    'registry = ModelRegistry(WORK / "registry")',
    'rows, stopped = [], None if CAPSTONE_DIR.is_dir() else f"no capstone folder at {CAPSTONE_DIR}"',
    'tampered = WORK / "tampered"',
    'stable = serve("production", name="nb08-stable")',
    'v3 = registry.register(export_version("1.2.0", "model.int8.onnx"))',
)

SCHEMA = ("ex1-validate-batch-schema-tests",)
BALANCE = ("ex1-validate-batch-balance-tests",)
DRIFT = ("ex1-validate-batch-drift-tests",)
GATE = ("ex2-evaluation-gate-tests",)
LENGTHS = ("ex2-evaluation-gate-lengths-tests",)
EVIDENCE = ("ex3-rollout-step-evidence-tests",)
BREACH = ("ex3-rollout-step-breach-tests",)
RAMP = ("ex3-rollout-step-ramp-tests",)

VARIANTS = {
    "ex1-validate-batch": [
        right(
            "a validity helper, collections.Counter for the shares, upper-case check names",
            """
from collections import Counter

def is_valid(record):
    text = record.get("text")
    return "id" in record and isinstance(text, str) and text.strip() != "" and record.get("label") in LABELS

def validate_batch(records, reference_lengths, *, max_psi=0.2, min_label_share=0.4):
    problems = [f"SCHEMA: record #{i} is not valid" for i, r in enumerate(records) if not is_valid(r)]
    good = [r for r in records if is_valid(r)]
    if not good:
        return problems
    counts = Counter(r["label"] for r in good)
    if any(counts[label] / len(good) < min_label_share for label in LABELS):
        problems.append("BALANCE: " + ", ".join(f"{label}={counts[label]}" for label in LABELS))
    if psi(reference_lengths, [len(r["text"].split()) for r in good]) > max_psi:
        problems.append("DRIFT: the text lengths moved")
    return problems
""",
        ),
        wrong(
            "keeps only the first three schema problems, as the library's validate_data does for its table",
            """
def validate_batch(records, reference_lengths, *, max_psi=0.2, min_label_share=0.4):
    schema, usable = [], []
    for i, record in enumerate(records):
        text = record.get("text")
        if "id" in record and isinstance(text, str) and text.strip() and record.get("label") in LABELS:
            usable.append(record)
        else:
            schema.append(f"schema: record {i}")
    problems = schema[:3]
    if not usable:
        return problems
    if min(sum(r["label"] == label for r in usable) / len(usable) for label in LABELS) < min_label_share:
        problems.append("balance: skewed")
    if psi(reference_lengths, [len(r["text"].split()) for r in usable]) > max_psi:
        problems.append("drift: lengths")
    return problems
""",
            loses=SCHEMA,
        ),
        right(
            "try/except KeyError for the fields, numpy for the shares and the word counts",
            """
def validate_batch(records, reference_lengths, *, max_psi=0.2, min_label_share=0.4):
    problems, valid = [], []
    for n, record in enumerate(records):
        try:
            record["id"]
            text, label = record["text"], record["label"]
        except KeyError as missing:
            problems.append(f"schema: record {n} has no {missing}")
            continue
        if not isinstance(text, str) or not text.strip() or label not in LABELS:
            problems.append(f"schema: record {n} has a bad text or label")
        else:
            valid.append(record)
    if len(valid) == 0:
        return problems
    labels = np.array([r["label"] for r in valid])
    if min(np.mean(labels == label) for label in LABELS) < min_label_share:
        problems.append("balance : labels are skewed")
    words = np.array([len(r["text"].split()) for r in valid])
    if psi(np.array(reference_lengths), words) > max_psi:
        problems.append("drift : word counts differ from the reference")
    return problems
""",
        ),
        wrong(
            "compares labels case-insensitively: 'Positive' is accepted",
            """
def validate_batch(records, reference_lengths, *, max_psi=0.2, min_label_share=0.4):
    problems, usable = [], []
    for i, record in enumerate(records):
        text, label = record.get("text"), str(record.get("label")).lower()
        if "id" in record and isinstance(text, str) and text.strip() and label in LABELS:
            usable.append({**record, "label": label})
        else:
            problems.append(f"schema: record {i}")
    if not usable:
        return problems
    if min(sum(r["label"] == label for r in usable) / len(usable) for label in LABELS) < min_label_share:
        problems.append("balance: skewed")
    if psi(reference_lengths, [len(r["text"].split()) for r in usable]) > max_psi:
        problems.append("drift: lengths")
    return problems
""",
            loses=SCHEMA,
        ),
        wrong(
            "computes the label shares on every record, invalid ones included",
            """
def validate_batch(records, reference_lengths, *, max_psi=0.2, min_label_share=0.4):
    problems, usable = [], []
    for i, record in enumerate(records):
        text = record.get("text")
        if "id" in record and isinstance(text, str) and text.strip() and record.get("label") in LABELS:
            usable.append(record)
        else:
            problems.append(f"schema: record {i}")
    if not usable:
        return problems
    shares = [sum(r.get("label") == label for r in records) / len(records) for label in LABELS]
    if min(shares) < min_label_share:
        problems.append("balance: skewed")
    if psi(reference_lengths, [len(r["text"].split()) for r in usable]) > max_psi:
        problems.append("drift: lengths")
    return problems
""",
            loses=BALANCE,
        ),
        right(
            "list comprehensions and a dict of shares; problems in a different order",
            """
def validate_batch(records, reference_lengths, *, max_psi=0.2, min_label_share=0.4):
    ok = lambda r: ("id" in r and type(r.get("text")) is str and len(r["text"].strip()) > 0
                    and r.get("label") in LABELS)
    valid = [r for r in records if ok(r)]
    found = []
    if valid:
        drift = psi(reference_lengths, [len(r["text"].split()) for r in valid])
        if drift > max_psi:
            found.append(f"drift: PSI {drift:.2f}")
        shares = {label: [r["label"] for r in valid].count(label) / len(valid) for label in LABELS}
        if any(share < min_label_share for share in shares.values()):
            found.append(f"balance: {shares}")
    return [f"schema: {r!r}" for r in records if not ok(r)] + found
""",
        ),
        wrong(
            "counts only the labels that occur: a batch of positives alone looks balanced",
            """
from collections import Counter

def validate_batch(records, reference_lengths, *, max_psi=0.2, min_label_share=0.4):
    problems, usable = [], []
    for i, record in enumerate(records):
        text = record.get("text")
        if "id" in record and isinstance(text, str) and text.strip() and record.get("label") in LABELS:
            usable.append(record)
        else:
            problems.append(f"schema: record {i}")
    if not usable:
        return problems
    counts = Counter(r["label"] for r in usable)
    if min(counts.values()) / len(usable) < min_label_share:
        problems.append("balance: skewed")
    if psi(reference_lengths, [len(r["text"].split()) for r in usable]) > max_psi:
        problems.append("drift: lengths")
    return problems
""",
            loses=BALANCE,
        ),
        wrong(
            "measures the texts in characters, the reference in words",
            """
def validate_batch(records, reference_lengths, *, max_psi=0.2, min_label_share=0.4):
    problems, usable = [], []
    for i, record in enumerate(records):
        text = record.get("text")
        if "id" in record and isinstance(text, str) and text.strip() and record.get("label") in LABELS:
            usable.append(record)
        else:
            problems.append(f"schema: record {i}")
    if not usable:
        return problems
    if min(sum(r["label"] == label for r in usable) / len(usable) for label in LABELS) < min_label_share:
        problems.append("balance: skewed")
    if psi(reference_lengths, [len(r["text"]) for r in usable]) > max_psi:
        problems.append("drift: lengths")
    return problems
""",
            loses=DRIFT,
        ),
        wrong(
            "stops at the schema problems: a batch with one bad record is never checked for drift",
            """
def validate_batch(records, reference_lengths, *, max_psi=0.2, min_label_share=0.4):
    problems, usable = [], []
    for i, record in enumerate(records):
        text = record.get("text")
        if "id" in record and isinstance(text, str) and text.strip() and record.get("label") in LABELS:
            usable.append(record)
        else:
            problems.append(f"schema: record {i}")
    if problems:
        return problems
    if min(sum(r["label"] == label for r in usable) / len(usable) for label in LABELS) < min_label_share:
        problems.append("balance: skewed")
    if psi(reference_lengths, [len(r["text"].split()) for r in usable]) > max_psi:
        problems.append("drift: lengths")
    return problems
""",
            loses=DRIFT,
        ),
        wrong(
            "treats a whitespace-only text as a text (checks `not text` instead of `not text.strip()`)",
            """
def validate_batch(records, reference_lengths, *, max_psi=0.2, min_label_share=0.4):
    problems, usable = [], []
    for i, record in enumerate(records):
        text = record.get("text")
        if "id" in record and isinstance(text, str) and text and record.get("label") in LABELS:
            usable.append(record)
        else:
            problems.append(f"schema: record {i}")
    if not usable:
        return problems
    if min(sum(r["label"] == label for r in usable) / len(usable) for label in LABELS) < min_label_share:
        problems.append("balance: skewed")
    if psi(reference_lengths, [len(r["text"].split()) for r in usable]) > max_psi:
        problems.append("drift: lengths")
    return problems
""",
            loses=SCHEMA,
        ),
        wrong(
            "ignores max_psi and uses the usual threshold 0.2",
            """
def validate_batch(records, reference_lengths, *, max_psi=0.2, min_label_share=0.4):
    problems, usable = [], []
    for i, record in enumerate(records):
        text = record.get("text")
        if "id" in record and isinstance(text, str) and text.strip() and record.get("label") in LABELS:
            usable.append(record)
        else:
            problems.append(f"schema: record {i}")
    if not usable:
        return problems
    if min(sum(r["label"] == label for r in usable) / len(usable) for label in LABELS) < min_label_share:
        problems.append("balance: skewed")
    if psi(reference_lengths, [len(r["text"].split()) for r in usable]) > 0.2:
        problems.append("drift: lengths")
    return problems
""",
            loses=DRIFT,
        ),
    ],
    "ex2-evaluation-gate": [
        right(
            "numpy arrays for the accuracies, capitalised check names",
            """
def evaluation_gate(labels, candidate, production, *, min_examples=200, min_accuracy=0.90, max_drop=0.01):
    if len({len(labels), len(candidate), len(production)}) != 1:
        raise ValueError("labels and predictions differ in length")
    y = np.asarray(labels)
    cand, prod = float(np.mean(np.asarray(candidate) == y)), float(np.mean(np.asarray(production) == y))
    problems = []
    if y.size < min_examples:
        problems.append(f"Size: only {y.size}")
    if cand < min_accuracy:
        problems.append(f"Accuracy: {cand:.3f}")
    if cand < prod - max_drop:
        problems.append(f"Regression: {cand:.3f} < {prod:.3f} - {max_drop}")
    return problems
""",
        ),
        wrong(
            "zips the lists without checking their lengths: predictions for other examples are judged",
            """
def evaluation_gate(labels, candidate, production, *, min_examples=200, min_accuracy=0.90, max_drop=0.01):
    n = len(labels)
    cand = sum(c == y for c, y in zip(candidate, labels)) / n
    prod = sum(p == y for p, y in zip(production, labels)) / n
    problems = []
    if n < min_examples:
        problems.append("size: too few examples")
    if cand < min_accuracy:
        problems.append("accuracy: too low")
    if prod - cand > max_drop:
        problems.append("regression: worse than production")
    return problems
""",
            loses=LENGTHS,
        ),
        right(
            "an accuracy helper and the drop written as production minus candidate",
            '''
def evaluation_gate(labels, candidate, production, *, min_examples=200, min_accuracy=0.90, max_drop=0.01):
    """Problems of the candidate, [] to ship."""
    def accuracy(predictions):
        if len(predictions) != len(labels):
            raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
        return [p == y for p, y in zip(predictions, labels)].count(True) / len(labels)

    new, old = accuracy(candidate), accuracy(production)
    out = []
    if not len(labels) >= min_examples:
        out.append("size: the held-out set is too small to judge")
    if not new >= min_accuracy:
        out.append("accuracy: below the release criterion")
    if old - new > max_drop:
        out.append("regression: the candidate is worse than production")
    return out
''',
        ),
        wrong(
            "measures the candidate's agreement with production instead of its accuracy on the labels",
            """
def evaluation_gate(labels, candidate, production, *, min_examples=200, min_accuracy=0.90, max_drop=0.01):
    if not len(labels) == len(candidate) == len(production):
        raise ValueError("different lengths")
    n = len(labels)
    cand = sum(c == p for c, p in zip(candidate, production)) / n
    prod = sum(p == y for p, y in zip(production, labels)) / n
    problems = []
    if n < min_examples:
        problems.append("size: too few examples")
    if cand < min_accuracy:
        problems.append("accuracy: too low")
    if prod - cand > max_drop:
        problems.append("regression: worse than production")
    return problems
""",
            loses=GATE,
        ),
        wrong(
            "a relative drop (candidate / production < 1 - max_drop) instead of an absolute one",
            """
def evaluation_gate(labels, candidate, production, *, min_examples=200, min_accuracy=0.90, max_drop=0.01):
    if not len(labels) == len(candidate) == len(production):
        raise ValueError("different lengths")
    n = len(labels)
    cand = sum(c == y for c, y in zip(candidate, labels)) / n
    prod = sum(p == y for p, y in zip(production, labels)) / n
    problems = []
    if n < min_examples:
        problems.append("size: too few examples")
    if cand < min_accuracy:
        problems.append("accuracy: too low")
    if cand / prod < 1 - max_drop:
        problems.append("regression: worse than production")
    return problems
""",
            loses=GATE,
        ),
        right(
            "sum over booleans with a generator and early length check through zip(strict=True)",
            """
def evaluation_gate(labels, candidate, production, *, min_examples=200, min_accuracy=0.90, max_drop=0.01):
    try:
        triples = list(zip(labels, candidate, production, strict=True))
    except ValueError as exc:
        raise ValueError(f"not the same held-out examples: {exc}") from None
    n = len(triples)
    cand = sum(y == c for y, c, _ in triples) / n
    prod = sum(y == p for y, _, p in triples) / n
    return ([f"size: {n} < {min_examples}"] if n < min_examples else []) + \\
           ([f"accuracy: {cand}"] if cand < min_accuracy else []) + \\
           ([f"regression: {prod} -> {cand}"] if prod - cand > max_drop else [])
""",
        ),
        wrong(
            "an if/elif chain: only the first problem is reported",
            """
def evaluation_gate(labels, candidate, production, *, min_examples=200, min_accuracy=0.90, max_drop=0.01):
    if not len(labels) == len(candidate) == len(production):
        raise ValueError("different lengths")
    n = len(labels)
    cand = sum(c == y for c, y in zip(candidate, labels)) / n
    prod = sum(p == y for p, y in zip(production, labels)) / n
    if n < min_examples:
        return ["size: too few examples"]
    elif cand < min_accuracy:
        return ["accuracy: too low"]
    elif prod - cand > max_drop:
        return ["regression: worse than production"]
    return []
""",
            loses=GATE,
        ),
        wrong(
            "needs more than min_examples examples: exactly min_examples is refused",
            """
def evaluation_gate(labels, candidate, production, *, min_examples=200, min_accuracy=0.90, max_drop=0.01):
    if not len(labels) == len(candidate) == len(production):
        raise ValueError("different lengths")
    n = len(labels)
    cand = sum(c == y for c, y in zip(candidate, labels)) / n
    prod = sum(p == y for p, y in zip(production, labels)) / n
    problems = []
    if n <= min_examples:
        problems.append("size: too few examples")
    if cand < min_accuracy:
        problems.append("accuracy: too low")
    if prod - cand > max_drop:
        problems.append("regression: worse than production")
    return problems
""",
            loses=GATE,
        ),
        wrong(
            "checks the candidate's length against the labels, not the production predictions",
            """
def evaluation_gate(labels, candidate, production, *, min_examples=200, min_accuracy=0.90, max_drop=0.01):
    if len(candidate) != len(labels):
        raise ValueError("one prediction per label")
    n = len(labels)
    cand = sum(c == y for c, y in zip(candidate, labels)) / n
    prod = sum(p == y for p, y in zip(production, labels)) / n
    problems = []
    if n < min_examples:
        problems.append("size: too few examples")
    if cand < min_accuracy:
        problems.append("accuracy: too low")
    if prod - cand > max_drop:
        problems.append("regression: worse than production")
    return problems
""",
            loses=LENGTHS,
        ),
    ],
    "ex3-rollout-step": [
        right(
            "the next step from a dict, the error rate compared by multiplication",
            """
def rollout_step(weight, canary, stable, objectives):
    if canary["requests"] < objectives["min_requests"]:
        return ("continue", weight)
    def bad(v):
        return (v["errors"] > objectives["max_error_rate"] * v["requests"]
                or v["p95_ms"] > objectives["max_p95_ms"])
    if bad(canary) and bad(stable):
        return ("continue", weight)
    if bad(canary):
        return ("rollback", 0.0)
    following = dict(zip(STEPS, STEPS[1:]))
    return ("continue", following[weight]) if weight in following else ("promote", 1.0)
""",
        ),
        wrong(
            "judges the objectives before the evidence: 5 errors in 10 requests roll back at once",
            """
def rollout_step(weight, canary, stable, objectives):
    def breaches(v):
        rate = v["errors"] / v["requests"]
        return rate > objectives["max_error_rate"] or v["p95_ms"] > objectives["max_p95_ms"]
    if breaches(canary):
        return ("continue", weight) if breaches(stable) else ("rollback", 0.0)
    if canary["requests"] < objectives["min_requests"]:
        return ("continue", weight)
    if weight == STEPS[-1]:
        return ("promote", 1.0)
    return ("continue", STEPS[STEPS.index(weight) + 1])
""",
            loses=EVIDENCE,
        ),
        right(
            "math.isclose to find the step, nested ifs, separate rate and latency checks",
            """
import math

def rollout_step(weight, canary, stable, objectives):
    if canary["requests"] >= objectives["min_requests"]:
        canary_rate = canary["errors"] / canary["requests"]
        limit_ms = objectives["max_p95_ms"]
        canary_bad = canary_rate > objectives["max_error_rate"] or canary["p95_ms"] > limit_ms
        if canary_bad:
            stable_rate = stable["errors"] / stable["requests"]
            stable_bad = stable_rate > objectives["max_error_rate"] or stable["p95_ms"] > limit_ms
            if stable_bad:
                return "continue", weight
            return "rollback", 0.0
        i = next(k for k, step in enumerate(STEPS) if math.isclose(step, weight))
        if i + 1 < len(STEPS):
            return "continue", STEPS[i + 1]
        return "promote", 1.0
    return "continue", weight
""",
        ),
        wrong(
            "rolls back whenever the canary breaches, even when the stable version breaches too",
            """
def rollout_step(weight, canary, stable, objectives):
    if canary["requests"] < objectives["min_requests"]:
        return ("continue", weight)
    if (canary["errors"] / canary["requests"] > objectives["max_error_rate"]
            or canary["p95_ms"] > objectives["max_p95_ms"]):
        return ("rollback", 0.0)
    if weight == STEPS[-1]:
        return ("promote", 1.0)
    return ("continue", STEPS[STEPS.index(weight) + 1])
""",
            loses=BREACH,
        ),
        wrong(
            "compares the number of errors with max_error_rate: 15 errors in 1,000 requests roll back",
            """
def rollout_step(weight, canary, stable, objectives):
    if canary["requests"] < objectives["min_requests"]:
        return ("continue", weight)
    def breaches(v):
        return v["errors"] > objectives["max_error_rate"] or v["p95_ms"] > objectives["max_p95_ms"]
    if breaches(canary):
        return ("continue", weight) if breaches(stable) else ("rollback", 0.0)
    if weight == STEPS[-1]:
        return ("promote", 1.0)
    return ("continue", STEPS[STEPS.index(weight) + 1])
""",
            loses=BREACH,
        ),
        right(
            "a loop over STEPS, the decision built from named booleans",
            """
def rollout_step(weight, canary, stable, objectives):
    enough = canary["requests"] >= objectives["min_requests"]
    if not enough:
        return "continue", weight
    limits = (objectives["max_error_rate"], objectives["max_p95_ms"])
    canary_ok = canary["errors"] / canary["requests"] <= limits[0] and canary["p95_ms"] <= limits[1]
    stable_ok = stable["errors"] / stable["requests"] <= limits[0] and stable["p95_ms"] <= limits[1]
    if not canary_ok:
        return ("rollback", 0.0) if stable_ok else ("continue", weight)
    for step, next_step in zip(STEPS, STEPS[1:]):
        if step == weight:
            return "continue", next_step
    return "promote", 1.0
""",
        ),
        wrong(
            "treats an objective as a limit to stay under: an error rate of exactly 0.02 rolls back",
            """
def rollout_step(weight, canary, stable, objectives):
    if canary["requests"] < objectives["min_requests"]:
        return ("continue", weight)
    def breaches(v):
        rate = v["errors"] / v["requests"]
        return rate >= objectives["max_error_rate"] or v["p95_ms"] >= objectives["max_p95_ms"]
    if breaches(canary):
        return ("continue", weight) if breaches(stable) else ("rollback", 0.0)
    if weight == STEPS[-1]:
        return ("promote", 1.0)
    return ("continue", STEPS[STEPS.index(weight) + 1])
""",
            loses=BREACH,
        ),
        wrong(
            "promotes a healthy canary at any step, skipping the ramp",
            """
def rollout_step(weight, canary, stable, objectives):
    if canary["requests"] < objectives["min_requests"]:
        return ("continue", weight)
    def breaches(v):
        rate = v["errors"] / v["requests"]
        return rate > objectives["max_error_rate"] or v["p95_ms"] > objectives["max_p95_ms"]
    if breaches(canary):
        return ("continue", weight) if breaches(stable) else ("rollback", 0.0)
    return ("promote", 1.0)
""",
            loses=RAMP,
        ),
        wrong(
            "doubles the weight instead of moving to the next value of STEPS",
            """
def rollout_step(weight, canary, stable, objectives):
    if canary["requests"] < objectives["min_requests"]:
        return ("continue", weight)
    def breaches(v):
        rate = v["errors"] / v["requests"]
        return rate > objectives["max_error_rate"] or v["p95_ms"] > objectives["max_p95_ms"]
    if breaches(canary):
        return ("continue", weight) if breaches(stable) else ("rollback", 0.0)
    if weight >= STEPS[-1]:
        return ("promote", 1.0)
    return ("continue", weight * 2)
""",
            loses=RAMP,
        ),
        wrong(
            "moves on to the next step while both versions breach, instead of holding the weight",
            """
def rollout_step(weight, canary, stable, objectives):
    if canary["requests"] < objectives["min_requests"]:
        return ("continue", weight)
    def breaches(v):
        rate = v["errors"] / v["requests"]
        return rate > objectives["max_error_rate"] or v["p95_ms"] > objectives["max_p95_ms"]
    if breaches(canary) and not breaches(stable):
        return ("rollback", 0.0)
    if weight == STEPS[-1]:
        return ("promote", 1.0)
    return ("continue", STEPS[STEPS.index(weight) + 1])
""",
            loses=BREACH,
        ),
        wrong(
            "counts both versions' requests as evidence: 10 canary requests beside 100 stable ones decide",
            """
def rollout_step(weight, canary, stable, objectives):
    if canary["requests"] + stable["requests"] < objectives["min_requests"]:
        return ("continue", weight)
    def breaches(v):
        rate = v["errors"] / v["requests"]
        return rate > objectives["max_error_rate"] or v["p95_ms"] > objectives["max_p95_ms"]
    if breaches(canary):
        return ("continue", weight) if breaches(stable) else ("rollback", 0.0)
    if weight == STEPS[-1]:
        return ("promote", 1.0)
    return ("continue", STEPS[STEPS.index(weight) + 1])
""",
            loses=EVIDENCE,
        ),
        wrong(
            "needs more than min_requests: exactly min_requests canary requests are not enough to decide",
            """
def rollout_step(weight, canary, stable, objectives):
    if canary["requests"] <= objectives["min_requests"]:
        return ("continue", weight)
    def breaches(v):
        rate = v["errors"] / v["requests"]
        return rate > objectives["max_error_rate"] or v["p95_ms"] > objectives["max_p95_ms"]
    if breaches(canary):
        return ("continue", weight) if breaches(stable) else ("rollback", 0.0)
    if weight == STEPS[-1]:
        return ("promote", 1.0)
    return ("continue", STEPS[STEPS.index(weight) + 1])
""",
            loses=EVIDENCE,
        ),
    ],
}
