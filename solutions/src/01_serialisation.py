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
# # 01 · Setup and serialisation
#
# **Goal.** Load the course's fine-tuned MiniLM sentiment model, save it in three formats, see why an
# untrusted pickle can run code on your machine, why `model.eval()` matters, and fill in a
# reproducibility checklist with real values.
#
# **Time.** About 60 minutes. **Graded.** 3 exercises, 7 points (tests marked *hidden* run when grading).
#
# Run the cells from top to bottom. Each section teaches one idea; the last cell cleans up.

# %% [markdown]
# ## 1. Setup
#
# We import everything once, so that later cells stay short.

# %%
import hashlib
import importlib.metadata
import json
import pickle
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

# %% [markdown]
# The course library `course_utils` reads its settings (model folder, fast mode) in one place; every file
# this notebook writes goes to a scratch folder that the last cell deletes.

# %%
from course_utils.config import get_settings
from course_utils.data import dataset_sha256
from course_utils.model import encode, load_classifier, load_model_card, load_tokenizer, predict_proba

settings = get_settings()
WORK = Path(tempfile.mkdtemp(prefix="nb01-"))
pd.Series({"model folder": settings.model_dir, "scratch folder": WORK, "fast mode": settings.fast})

# %% [markdown]
# `load_classifier` checks the sha256 of the weights, builds the architecture and fills it from
# `model.safetensors`. We time it because loading cost is what a server pays at every start.

# %%
t0 = time.perf_counter()
model = load_classifier()  # verified weights, already in eval mode
tokenizer = load_tokenizer(settings.model_dir)
print(f"model loaded in {time.perf_counter() - t0:.1f} s")

texts = ["An absolute joy from start to finish.", "The battery died after two days. Avoid.",
         "It was okay, I guess."]
proba = predict_proba(model, tokenizer, texts)
pd.DataFrame({"text": texts, "P(positive)": proba[:, 1].round(3)})

# %% [markdown]
# ## 2. What a `state_dict` is
#
# A model is *code* (the class `SentimentClassifier`) plus *numbers* (tensors). `model.state_dict()` is
# only the numbers: an ordered mapping from name to tensor. Most are trained weights; a few are *buffers*,
# tensors a model keeps and saves but does not train. Here the first entry, `temperature`, is one: the
# calibration temperature that `make model` fitted on validation texts, and that every output is divided
# by so that confidences can be trusted (notebook 06). Let us look at the size and a few entries.

# %%
state = model.state_dict()
n_numbers = sum(t.numel() for t in state.values())
size_mb = sum(t.numel() * t.element_size() for t in state.values()) / 1e6
print(f"{len(state)} tensors, {n_numbers / 1e6:.1f} million numbers, {size_mb:.1f} MB as float32; "
      f"temperature {float(state['temperature']):.2f}")
rows = [(name, tuple(t.shape), str(t.dtype)) for name, t in state.items()]
pd.DataFrame(rows, columns=["name", "shape", "dtype"]).iloc[[0, 1, 2, -2, -1]]

# %% [markdown]
# ## 3. Three ways to save the same weights
#
# We save the weights as a pickled `state_dict`, as a pickle of the *whole model object*, and as
# safetensors, then compare file size and load time.

# %%
paths = {
    "state_dict, torch.save": WORK / "weights.pt",
    "whole model, torch.save": WORK / "model_object.pt",
    "safetensors": WORK / "model.safetensors",
}
torch.save(state, paths["state_dict, torch.save"])
torch.save(model, paths["whole model, torch.save"])  # the class is stored by import path only
save_file(state, paths["safetensors"])

# %% [markdown]
# Each format has its own loader. The whole-model pickle needs `weights_only=False`, which lets the file
# run code, as section 4 shows.

# %%
loaders = {
    "state_dict, torch.save": lambda p: torch.load(p, weights_only=True),
    "whole model, torch.save": lambda p: torch.load(p, weights_only=False),
    "safetensors": load_file,
}
rows = []
for fmt, path in paths.items():
    t0 = time.perf_counter()
    loaders[fmt](path)
    rows.append({"format": fmt, "size (MB)": path.stat().st_size / 1e6,
                 "load time (ms)": (time.perf_counter() - t0) * 1000,
                 "can run code while loading": fmt == "whole model, torch.save"})
pd.DataFrame(rows).set_index("format").round(1)

# %% [markdown]
# The sizes are almost equal: the numbers dominate. The difference is *what else* the file holds. The
# whole-model pickle stores `course_utils.model.SentimentClassifier` by name, so renaming or moving the
# class breaks every saved file, and loading it means unpickling, which can call any function.
#
# ## 4. Why an untrusted pickle is dangerous
#
# Pickle rebuilds an object by calling whatever its `__reduce__` returned when it was saved. The class
# below is harmless (it writes a marker file in the scratch folder), but an attacker would return
# `os.system` and a command instead.

# %%
MARKER = WORK / "code_ran.txt"


class Innocent:
    """Looks like data; unpickling it calls Path.write_text(MARKER, ...) instead."""

    def __reduce__(self):
        return (Path.write_text, (MARKER, "this ran while a 'checkpoint' was loaded\n"))


evil = WORK / "downloaded_checkpoint.pt"
torch.save({"head.weight": torch.zeros(2, 384), "head.bias": Innocent()}, evil)
print(f"saved {evil.name}; marker exists: {MARKER.exists()}")

# %% [markdown]
# Loading it the old way (`weights_only=False`, the default before PyTorch 2.6) runs the code:

# %%
torch.load(evil, weights_only=False)  # never do this with a file you did not make yourself
print(f"marker exists: {MARKER.exists()}; it says: {MARKER.read_text().strip()!r}")

# %% [markdown]
# `weights_only=True` uses a restricted unpickler that only rebuilds tensors and plain containers, so it
# refuses the file before anything runs:

# %%
MARKER.unlink()
try:
    torch.load(evil, weights_only=True)
except pickle.UnpicklingError as exc:
    print("refused:", str(exc).splitlines()[0][:80], "...")
print(f"marker exists: {MARKER.exists()}")

# %% [markdown]
# safetensors cannot even *store* such an object: the format holds tensors only.

# %%
try:
    save_file({"head.bias": Innocent()}, WORK / "evil.safetensors")
except ValueError as exc:
    print("refused:", exc)

# %% [markdown]
# That is because a safetensors file is just an 8-byte length, a JSON header (name, dtype, shape, byte
# offsets) and raw bytes. Reading it never calls code. Here is the header of the file we saved:

# %%
with paths["safetensors"].open("rb") as f:
    header_len = int.from_bytes(f.read(8), "little")
    header = json.loads(f.read(header_len))
header.pop("__metadata__", None)
print(f"header: {header_len} bytes of JSON for {len(header)} tensors")
pd.DataFrame(header).T.head(4)


# %% [markdown]
# ### Exercise 1 (3 points): load weights safely
#
# Write `load_weights_safely(path)` that returns the tensors of a checkpoint **without ever running code
# from the file**: use `safetensors.torch.load_file` for `.safetensors` files, and
# `torch.load(..., weights_only=True, map_location="cpu")` for anything else. A malicious file must raise
# `pickle.UnpicklingError` (let it propagate) and must not create the marker.

# %% nbgrader={"grade": false, "grade_id": "ex1-load-safely", "locked": false, "schema_version": 3, "solution": true, "task": false}
def load_weights_safely(path):
    """The tensors of the checkpoint at `path` (str or Path), loaded without running code."""
    ### BEGIN SOLUTION
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_file(path)
    return torch.load(path, weights_only=True, map_location="cpu")
    ### END SOLUTION


# %% [markdown]
# Run the tests: each failing assert tells you what to fix.

# %% nbgrader={"grade": true, "grade_id": "ex1-load-safely-tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
loaded = load_weights_safely(paths["safetensors"])
assert set(loaded) == set(state), "load_weights_safely must return every tensor of a .safetensors file"
assert torch.equal(loaded["head.weight"], state["head.weight"]), "the tensors must equal the saved ones"
loaded = load_weights_safely(paths["state_dict, torch.save"])
assert torch.equal(loaded["head.bias"], state["head.bias"]), "a .pt state_dict must load with torch.load"
MARKER.unlink(missing_ok=True)
try:
    load_weights_safely(evil)
    raise AssertionError("the malicious .pt file loaded: pass weights_only=True to torch.load")
except pickle.UnpicklingError:
    pass
assert not MARKER.exists(), "code from the file ran: never use weights_only=False"
print("Exercise 1: all visible tests passed")
### BEGIN HIDDEN TESTS
assert set(load_weights_safely(str(paths["safetensors"]))) == set(state), "str paths must work too"
try:
    load_weights_safely(paths["whole model, torch.save"])
    raise AssertionError("a whole-model pickle must be refused (weights_only=True)")
except pickle.UnpicklingError:
    pass
assert not MARKER.exists()
### END HIDDEN TESTS

# %% [markdown]
# ## 5. `eval()` versus `train()`
#
# During training, dropout zeroes a random 10% of activations to regularise the model. At serving time
# that would make the *same request* give *different answers*. Dropout moves uncertain predictions the
# most, so we first pick the sentence the model is least sure about.

# %%
candidates = ["It was okay, I guess.", "Dear support, the replacement you sent is broken as well.",
              "ngl the barista remembered my order and drew a cat on my latte #monday"]
p_candidates = predict_proba(model, tokenizer, candidates)[:, 1]
unsure = candidates[int(np.argmin(np.abs(p_candidates - 0.5)))]
print(f"least sure about: {unsure!r}")

# %% [markdown]
# Now we predict that sentence many times in train mode and in eval mode, and compare the spread.

# %%
n_runs = 10 if settings.fast else 40
batch = encode(tokenizer, [unsure])
ids, mask = torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"])
runs = {}
for mode in ("train", "eval"):
    model.train(mode == "train")
    with torch.inference_mode():
        runs[mode] = [torch.softmax(model(ids, mask), dim=-1)[0, 1].item() for _ in range(n_runs)]
model.eval()
pd.DataFrame(runs).agg(["mean", "std", "min", "max"]).round(4)

# %% [markdown]
# A plot makes the difference obvious: in train mode every dot lands somewhere else.

# %%
fig, ax = plt.subplots(figsize=(7, 2.5))
for row, (mode, values) in enumerate(runs.items()):
    ax.scatter(values, [row] * len(values), alpha=0.6, label=f"{mode} mode")
ax.set(yticks=[0, 1], yticklabels=list(runs), ylim=(-0.5, 1.5), xlabel="P(positive) (probability)",
       title=f"{n_runs} predictions of the same sentence")
ax.grid(axis="x", alpha=0.3)
plt.show()


# %% [markdown]
# ### Exercise 2 (2 points): deterministic predictions
#
# Write `predict_positive(model, tokenizer, texts)` returning a NumPy array of P(positive), one per text,
# that is **identical on every call even if someone left the model in train mode**, and that **leaves the
# model in the mode it found it**: a caller in the middle of training must not find dropout switched off
# (read `model.training` first, restore it with `model.train(...)` at the end, even if prediction fails).
# Tokenise with `encode(tokenizer, texts)` (it returns NumPy `input_ids` and `attention_mask`), switch the
# model to eval mode, and run it inside `torch.inference_mode()` (no gradients are recorded, which saves
# memory and time). Apply a softmax over the last dimension and keep column 1. (The library's
# `predict_proba` predicts too, but leaves the model in eval mode: that is the difference graded here.)

# %% nbgrader={"grade": false, "grade_id": "ex2-predict", "locked": false, "schema_version": 3, "solution": true, "task": false}
def predict_positive(model, tokenizer, texts):
    """P(positive) for each text as a 1-D NumPy array, independent of the model's mode."""
    ### BEGIN SOLUTION
    was_training = model.training
    model.eval()
    try:
        batch = encode(tokenizer, texts)
        with torch.inference_mode():
            logits = model(torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"]))
    finally:
        model.train(was_training)
    return torch.softmax(logits, dim=-1)[:, 1].numpy()
    ### END SOLUTION


# %% [markdown]
# The tests leave the model in train mode on purpose before calling your function, and check that it is
# still in train mode afterwards.

# %% nbgrader={"grade": true, "grade_id": "ex2-predict-tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
model.train()
first = predict_positive(model, tokenizer, texts)
second = predict_positive(model, tokenizer, texts)
assert isinstance(first, np.ndarray) and first.shape == (3,), "return a 1-D NumPy array, one value per text"
assert np.array_equal(first, second), "two calls differ: call model.eval() before predicting"
assert ((first >= 0) & (first <= 1)).all(), "return probabilities (softmax), not logits"
assert model.training, "the model was in train mode and is now in eval mode: restore it with model.train(...)"
model.eval()  # the rest of the notebook predicts
print("Exercise 2: all visible tests passed")
### BEGIN HIDDEN TESTS
predict_positive(model, tokenizer, texts)
assert not model.training, "a model in eval mode must stay in eval mode: restore the mode you found"
expected = predict_proba(model, tokenizer, texts)[:, 1]
assert np.allclose(first, expected, atol=1e-5), "values differ from predict_proba: use column 1"
assert torch.is_grad_enabled(), "use the context manager torch.inference_mode(), not a global switch"
### END HIDDEN TESTS

# %% [markdown]
# ## 6. A reproducibility checklist, filled in for real
#
# A model nobody can rebuild or verify is a liability. `make model` wrote `model_card.json` with the seeds,
# the training configuration, the package versions, the dataset's sha256 and the sha256 of every file.

# %%
card = load_model_card()
pd.Series({"name": card["name"], "version": card["version"], "created": card["created_at"],
           "seeds": card["seeds"], "epochs": card["train_config"]["epochs"],
           "training texts (hand-written)": f"{card['train_texts']['total']} ({card['train_texts']['hand_written']})",
           "temperature": card["calibration"]["temperature"],
           "test accuracy": card["metrics"]["torch_fp32"]["test_accuracy"]})


# %% [markdown]
# ### Exercise 3 (2 points): verify the model files
#
# Write `verify_files(model_dir, card)` returning `{file name: True or False}` for every file listed in
# `card["files"]`: `True` when the file's sha256 (hex digest, as `hashlib.sha256`) equals the recorded
# one. A missing file is `False`, not an exception. Read files in chunks (e.g. 1 MiB) so that a large
# model never has to fit in memory at once.

# %% nbgrader={"grade": false, "grade_id": "ex3-verify", "locked": false, "schema_version": 3, "solution": true, "task": false}
def verify_files(model_dir, card):
    """{file name: sha256 matches card["files"]} for every file the card lists."""
    ### BEGIN SOLUTION
    result = {}
    for name, expected in card["files"].items():
        path = Path(model_dir) / name
        if not path.is_file():
            result[name] = False
            continue
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        result[name] = digest.hexdigest() == expected
    return result
    ### END SOLUTION


# %% [markdown]
# The hidden tests also try a tampered copy of the folder.

# %% nbgrader={"grade": true, "grade_id": "ex3-verify-tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
checks = verify_files(settings.model_dir, card)
assert set(checks) == set(card["files"]), "return one entry per file listed in card['files']"
assert all(checks.values()), f"these files should match their sha256: {[n for n, ok in checks.items() if not ok]}"
print("Exercise 3: all visible tests passed")
### BEGIN HIDDEN TESTS
tampered = WORK / "tampered"
tampered.mkdir(exist_ok=True)
for small in ("config.json", "vocab.txt"):
    shutil.copy(settings.model_dir / small, tampered / small)
(tampered / "config.json").write_text((settings.model_dir / "config.json").read_text() + " ")
small_card = {"files": {n: card["files"][n] for n in ("config.json", "vocab.txt", "model.onnx")}}
assert verify_files(tampered, small_card) == {"config.json": False, "vocab.txt": True, "model.onnx": False}
### END HIDDEN TESTS

# %% [markdown]
# With your function, the checklist compares every recorded fact with this machine. A `False` is not a
# failure of the notebook: it tells you what differs from the environment that built the model.

# %%
installed = {pkg: importlib.metadata.version(pkg) for pkg in card["packages"]}
rows = [("seeds", str(card["seeds"]), card["seeds"]["torch"] == settings.seed),
        ("dataset sha256", card["dataset_sha256"][:16] + "...", card["dataset_sha256"] == dataset_sha256()),
        ("model files sha256", f"{sum(checks.values())}/{len(checks)} match", all(checks.values()))]
rows += [(f"{pkg} version", version, installed[pkg] == version) for pkg, version in card["packages"].items()]
pd.DataFrame(rows, columns=["item", "recorded in the card", "same on this machine"]).set_index("item")

# %% [markdown]
# ## Summary
#
# - Save **weights** (a `state_dict`), not objects; prefer **safetensors**: no code runs when it loads.
# - Never `torch.load(..., weights_only=False)` a file you did not make; verify sha256 before loading.
# - Serve in **eval mode** under `torch.inference_mode()`: deterministic and cheaper.
# - Record seeds, versions and hashes next to the model, and check them where it runs.
#
# ## Clean-up
#
# Delete the scratch folder and free the model's memory.

# %%
shutil.rmtree(WORK, ignore_errors=True)
del model, state
print(f"removed {WORK}")
