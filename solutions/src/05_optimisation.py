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
# # 05 · Inference constraints and optimisation
#
# **Goal.** Find out where the time and the memory of a prediction go, then make the sentiment model
# smaller and faster in seven ways: dynamic INT8 quantisation, ONNX Runtime (FP32, dynamic and static INT8),
# `torch.export`, TorchScript (and its tracing pitfall), unstructured and structured pruning, and knowledge
# distillation into a 2-layer student. One table and one plot at the end compare them all on size, latency
# and accuracy.
#
# **Time.** About 105 minutes. **Graded.** 3 exercises, 7 points (tests marked *hidden* run when grading).
#
# Run the cells from top to bottom. Each section teaches one idea; the last cell cleans up. Timings depend
# on your laptop and on what else it is doing: compare variants *within* a run, not with your neighbour.

# %% [markdown]
# ## 1. Setup
#
# We import everything once, so that later cells stay short.

# %%
import contextlib
import copy
import gc
import io
import json
import logging
import random
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

# %% [markdown]
# From PyTorch: `F` for the losses, `prune` for pruning, and `save_file` to measure an FP16 copy.

# %%
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import prune

# %% [markdown]
# From `course_utils`: the model and tokenizer, the ONNX helpers, the data, the accuracy metric and the
# stage timer. Seeds are fixed so that pruning and distillation give the same numbers on every run.

# %%
from course_utils.config import get_settings
from course_utils.data import LABELS, load_sentiment
from course_utils.export import onnx_logits, onnx_session
from course_utils.latency import time_stages
from course_utils.model import encode, load_classifier, load_encoder, load_tokenizer, predict_logits
from course_utils.model import SentimentClassifier, verify_model_dir
from course_utils.training import accuracy, set_seeds

settings = get_settings()
set_seeds(settings.seed)
WORK = Path(tempfile.mkdtemp(prefix="nb05-"))
pd.Series({"model folder": settings.model_dir, "scratch folder": WORK, "fast mode": settings.fast,
           "torch threads": torch.get_num_threads()})

# %% [markdown]
# The fine-tuned FP32 model is our *teacher* and our baseline. We evaluate every variant on the same test
# texts; in fast mode (`COURSE_FAST=1`, used by CI and grading) only the first 100 of them.

# %%
model = load_classifier()  # verified weights, eval mode
tokenizer = load_tokenizer(settings.model_dir)
verify_model_dir(settings.model_dir, files=["model.onnx", "model.int8.onnx"])  # sha256 of the ONNX files

test_set = load_sentiment("test")
eval_set = test_set[:100] if settings.fast else test_set
eval_texts = [example.text for example in eval_set]
print(f"{len(eval_set)} test texts, e.g. {eval_texts[0]!r}")

# %% [markdown]
# To compare variants fairly, each one is a function `texts -> logits` and is measured the same way:
# accuracy on `eval_set`, agreement with the FP32 model, and the median latency of a whole prediction
# (tokenisation included) for one text and for a batch of 32. `time_stages` warms up before timing, so
# one-off costs (memory allocation, lazy initialisation) do not count.

# %%
N_RUNS = 10 if settings.fast else 40  # timed runs at batch 1; batch 32 gets a third of them (at least 3)
results, LOGITS = {}, {}  # variant name -> row of the final table, variant name -> logits on eval_set

def measure(name, logits_fn, size_bytes):
    """One row of the final table: size, latency at batch 1 and 32, accuracy, agreement with FP32."""
    LOGITS[name] = logits = logits_fn(eval_texts)
    one = time_stages({"predict": lambda text: logits_fn([text])}, eval_texts[:10],
                      n_runs=N_RUNS, warmup_runs=2, progress=False)
    many = time_stages({"predict": logits_fn}, [eval_texts[:32]],
                       n_runs=max(3, N_RUNS // 3), warmup_runs=1, progress=False)
    same = logits.argmax(1) == LOGITS.get("torch FP32", logits).argmax(1)
    results[name] = {"size (MB)": size_bytes / 1e6, "batch 1 (ms)": one.total.median_ms,
                     "batch 32 (ms)": many.total.median_ms, "accuracy (%)": 100 * accuracy(logits, eval_set),
                     "agrees with FP32 (%)": 100 * float(same.mean())}
    return pd.Series(results[name]).round(1)


# %% [markdown]
# The baseline: PyTorch FP32, its size being the `model.safetensors` file.

# %%
fp32_bytes = (settings.model_dir / "model.safetensors").stat().st_size
measure("torch FP32", lambda texts: predict_logits(model, tokenizer, texts), fp32_bytes)


# %% [markdown]
# ## 2. Where does the time go? A latency breakdown
#
# A prediction is three stages: **preprocess** (tokenise, make tensors), **inference** (the forward pass)
# and **postprocess** (softmax, pick the label). Optimising the model only helps if inference is the
# big stage, so we time each stage separately with `time_stages`, which feeds each stage the output of
# the previous one.

# %%
def preprocess(text):
    batch = encode(tokenizer, [text])
    return torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"])


def inference(tensors):
    with torch.inference_mode():
        return model(*tensors)


def postprocess(logits):
    proba = torch.softmax(logits, dim=-1)[0]
    return {"label": LABELS[int(proba.argmax())], "confidence": float(proba.max())}


# %% [markdown]
# We run the pipeline on ten different test texts in turn, and show the table in milliseconds.

# %%
breakdown = time_stages({"preprocess": preprocess, "inference": inference, "postprocess": postprocess},
                        eval_texts[:10], n_runs=30 if settings.fast else 200)
breakdown.to_frame().round(3)

# %% [markdown]
# The plot shows the medians as bars (with each stage's share), the p95 as red marks and a 50 ms budget.

# %%
breakdown.plot(budget_ms=50)


# %% [markdown]
# For the PyTorch model, inference is almost all of the time: tokenisation in Rust and a softmax cost
# well under a millisecond. That is why the rest of this notebook works on the model itself.
#
# ## 3. Memory: parameters × bytes per parameter
#
# A model's weights need (number of parameters) × (bytes per parameter): 4 bytes in FP32, 2 in FP16 and
# 1 in INT8. We write that down, then check it against files we measure.
#
# ### Exercise 1 (2 points): memory of the parameters
#
# Write `param_memory_mb(model, bytes_per_param)` returning the memory of **all parameters** of a
# `torch.nn.Module` in megabytes (1 MB = 10⁶ bytes) as a `float`, if each parameter took
# `bytes_per_param` bytes. Count parameters with `model.parameters()` (it lists a shared parameter once),
# not the `state_dict`, which also holds buffers.

# %% nbgrader={"grade": false, "grade_id": "ex1-param-memory", "locked": false, "schema_version": 3, "solution": true, "task": false}
def param_memory_mb(model, bytes_per_param):
    """Megabytes (1e6 bytes) needed by the parameters of `model` at `bytes_per_param` bytes each."""
    ### BEGIN SOLUTION
    n_params = sum(p.numel() for p in model.parameters())
    return float(n_params * bytes_per_param / 1e6)
    ### END SOLUTION


# %% [markdown]
# Run the tests: each failing assert tells you what to fix.

# %% nbgrader={"grade": true, "grade_id": "ex1-param-memory-tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
small = nn.Linear(10, 5)  # 10 * 5 weights + 5 biases = 55 parameters
assert isinstance(param_memory_mb(small, 4), float), "return a float (the number of megabytes)"
assert abs(param_memory_mb(small, 4) - 55 * 4 / 1e6) < 1e-12, "55 parameters * 4 bytes = 0.00022 MB (1 MB = 1e6 bytes)"
assert abs(param_memory_mb(model, 4) - 90.264584) < 1e-6, "the classifier has 22,566,146 parameters"
print("Exercise 1: all visible tests passed")
### BEGIN HIDDEN TESTS
assert abs(param_memory_mb(small, 1) - 55e-6) < 1e-12
assert abs(param_memory_mb(model, 2) - 45.132292) < 1e-6
tied = nn.Sequential(small, nn.ReLU(), small)  # the same layer twice: its parameters count once
assert abs(param_memory_mb(tied, 4) - 55 * 4 / 1e6) < 1e-12
with_buffer = nn.BatchNorm1d(8)  # 16 parameters, plus running statistics (buffers) that do not count
assert abs(param_memory_mb(with_buffer, 4) - 16 * 4 / 1e6) < 1e-12
### END HIDDEN TESTS

# %% [markdown]
# Now the measurements. FP32 is the safetensors file; for FP16 we save a half-precision copy of the
# weights; for INT8 we take the dynamically quantised PyTorch model (section 4) and the ONNX INT8 file.
# `state_bytes` measures a `state_dict` serialised in memory, without writing a file.

# %%
def state_bytes(module):
    """Size of `module.state_dict()` serialised with torch.save, in bytes."""
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.getbuffer().nbytes


save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, WORK / "model.fp16.safetensors")
with warnings.catch_warnings():  # torch suggests torchao for new code; eager quantisation is still the lesson
    warnings.simplefilter("ignore")
    model_int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)

# %% [markdown]
# Computed versus measured, in MB:

# %%
measured = [fp32_bytes, (WORK / "model.fp16.safetensors").stat().st_size, state_bytes(model_int8),
            (settings.model_dir / "model.int8.onnx").stat().st_size]
memory = pd.DataFrame({"computed (MB)": [param_memory_mb(model, b) for b in (4, 2, 1, 1)],
                       "measured (MB)": np.array(measured) / 1e6},
                      index=["FP32 (safetensors)", "FP16 (safetensors)", "INT8 (torch dynamic)",
                             "INT8 (ONNX dynamic)"])
memory.round(1)


# %% [markdown]
# FP32, FP16 and ONNX INT8 match the arithmetic. PyTorch's INT8 model is much bigger than computed:
# `quantize_dynamic(..., {nn.Linear})` only converts the Linear layers, and half of MiniLM's 22.6 M
# parameters sit in the **word embeddings** (30,522 tokens × 384), which stay FP32. ONNX Runtime's
# quantiser also converts the embedding lookup (`Gather`).

# %% [markdown]
# ## 4. Dynamic quantisation in PyTorch
#
# Dynamic quantisation stores the weights of each `nn.Linear` as INT8 and quantises the activations on
# the fly, per batch, so it needs no calibration data. Which modules did it replace?

# %%
def linear_types(module):
    """How many Linear layers of each class `module` holds."""
    kinds = [f"{type(m).__module__.split('.modules')[0]}.{type(m).__name__}" for m in module.modules()
             if type(m).__name__ == "Linear"]
    return pd.Series(kinds, dtype=str).value_counts()


pd.DataFrame({"FP32": linear_types(model), "INT8": linear_types(model_int8)}).fillna(0).astype(int)

# %% [markdown]
# All 37 Linear layers (6 layers × 6, plus the head) became quantised ones. Quantisation rounds the
# weights, so the logits move a little; what matters is whether the *labels* change. `measure` reports
# both accuracy and agreement with FP32.

# %%
measure("torch INT8", lambda texts: predict_logits(model_int8, tokenizer, texts), state_bytes(model_int8))

# %% [markdown]
# Whether PyTorch's INT8 is faster depends on your CPU's integer instructions (AVX2, AVX-512 VNNI) and
# on the batch size: each Linear layer quantises its input on the fly, and everything between the
# Linear layers (attention softmax, LayerNorm, GELU, embeddings) still runs in FP32.

# %% [markdown]
# ## 5. ONNX Runtime, FP32 and INT8
#
# `make model` already exported the classifier to ONNX and quantised it, with `course_utils.export`:
#
# ```python
# export_onnx(model, folder / "model.onnx", tokenizer)   # torch.onnx.export, dynamic batch/sequence
# quantize_onnx(folder / "model.onnx", folder / "model.int8.onnx")  # onnxruntime.quantization
# ```
#
# Exporting again would take time and give the same file, so we load those files (their sha256 was
# checked in section 1). An ONNX Runtime session applies graph optimisations (fused attention, fused
# GELU, constant folding) when it loads the file.

# %%
sessions = {fmt: onnx_session(settings.model_dir / f"model{suffix}.onnx")
            for fmt, suffix in (("ONNX FP32", ""), ("ONNX INT8 dynamic", ".int8"))}
pd.DataFrame({fmt: {"inputs": [i.name for i in s.get_inputs()], "outputs": [o.name for o in s.get_outputs()]}
              for fmt, s in sessions.items()}).T

# %% [markdown]
# The same measurement for both sessions; the size is the `.onnx` file.

# %%
for fmt, suffix in (("ONNX FP32", ""), ("ONNX INT8 dynamic", ".int8")):
    size = (settings.model_dir / f"model{suffix}.onnx").stat().st_size
    measure(fmt, lambda texts, s=sessions[fmt]: onnx_logits(s, tokenizer, texts), size)
pd.DataFrame(results).T.round(1)

# %% [markdown]
# ## 6. Static INT8: activation ranges calibrated in advance
#
# Dynamic INT8 (above) measures the range of every activation at run time, for each batch. **Static**
# quantisation fixes those ranges once, from a *calibration* run over representative inputs, and writes
# them into the graph as constants. That saves the range computation at inference, and it is the only kind
# integer-only accelerators (phone NPUs, DSPs, microcontrollers) can run. Three steps: prepare the graph,
# calibrate and quantise, measure.

# %%
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType
from onnxruntime.quantization import quant_pre_process, quantize_static

# %% [markdown]
# `quant_pre_process` infers the shape of every tensor and simplifies the graph, so that the quantiser
# knows what it can convert. On our export its symbolic shape inference stops with *Incomplete symbolic
# shape inference*: it meets two different symbolic sizes where one dimension must have a single size, and
# `auto_merge=True` lets it merge them. (Without it, the failure also leaves `sym_shape_infer_temp.onnx`
# and a 90 MB `.data` file in the current folder.)

# %%
quant_pre_process(settings.model_dir / "model.onnx", WORK / "model.pre.onnx", auto_merge=True)
print(f"model.pre.onnx: {(WORK / 'model.pre.onnx').stat().st_size / 1e6:.1f} MB")


# %% [markdown]
# The calibrator runs the FP32 model and asks a *data reader* for one batch of inputs after another
# (`get_next()`, a dict keyed by input name) until it gets `None`. Ours tokenises texts in batches of 16,
# padded the way a service pads them, so the ranges it records are those the model will meet.

# %%
class TextCalibrationReader(CalibrationDataReader):
    """Tokenised batches of `texts` for ONNX Runtime's calibrator, in the model's input format."""

    def __init__(self, texts, batch_size=16):
        self.batches = (encode(tokenizer, texts[i:i + batch_size]) for i in range(0, len(texts), batch_size))

    def get_next(self):
        """The next batch as {"input_ids": ..., "attention_mask": ...}, or None when all were read."""
        return next(self.batches, None)


# %% [markdown]
# Calibration texts come from the **training** split: calibrating on test texts would tune the model to
# the data we evaluate it on. A few hundred are enough to see typical ranges (64 in fast mode).

# %%
calibration_set = random.Random(settings.seed).sample(load_sentiment("train"), 64 if settings.fast else 256)
calibration_texts = [example.text for example in calibration_set]
print(f"{len(calibration_texts)} calibration texts, e.g. {calibration_texts[0]!r}")

# %% [markdown]
# To compare fairly with the dynamic model, we quantise the same operations: the Linear layers (a `MatMul`
# with a constant weight) and the embedding lookup (`Gather`). Attention's two products of activations
# (`MatMul` without a weight) stay FP32, as in the dynamic model. The option `MatMulConstBOnly` would do
# that, but the QDQ quantiser of ONNX Runtime 1.32 ignores it, so we name those nodes.

# %%
pre_graph = onnx.load(WORK / "model.pre.onnx", load_external_data=False).graph
constants = {tensor.name for tensor in pre_graph.initializer}
attention_products = [node.name for node in pre_graph.node
                      if node.op_type == "MatMul" and not constants & set(node.input)]
print(f"{len(attention_products)} activation × activation MatMuls stay FP32, e.g. {attention_products[0]}")

# %% [markdown]
# The other choices, one reason each:
#
# - **QDQ format**: a QuantizeLinear/DequantizeLinear pair around each converted tensor, which ONNX Runtime
#   fuses into integer kernels where it can; ORT recommends it and other runtimes (TensorRT, OpenVINO) read it.
# - **MinMax** calibration: each range covers every value seen. Entropy and Percentile clip outliers
#   instead, which costs histograms and needs calibration batches of a single shape.
# - **Per-channel** weights (one scale per output row), as in the dynamic model.
# - **Unsigned 8-bit activations, signed 8-bit weights**: ORT's recommendation for x86 CPUs.

# %%
quantize_static(WORK / "model.pre.onnx", WORK / "model.int8.static.onnx", TextCalibrationReader(calibration_texts),
                quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul", "Gather"],
                nodes_to_exclude=attention_products, calibrate_method=CalibrationMethod.MinMax,
                per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
sessions["ONNX INT8 static"] = onnx_session(WORK / "model.int8.static.onnx")
print(f"model.int8.static.onnx: {(WORK / 'model.int8.static.onnx').stat().st_size / 1e6:.1f} MB")

# %% [markdown]
# Measured like every other variant:

# %%
measure("ONNX INT8 static", lambda texts: onnx_logits(sessions["ONNX INT8 static"], tokenizer, texts),
        (WORK / "model.int8.static.onnx").stat().st_size)

# %% [markdown]
# Static and dynamic INT8 side by side, with FP32 as the reference:

# %%
pd.DataFrame(results).T.loc[["ONNX FP32", "ONNX INT8 dynamic", "ONNX INT8 static"]].round(1)

# %% [markdown]
# Same size, but static INT8 is **no faster** than dynamic INT8 here (on a busy CPU it can be slower) and it
# **agrees less** with FP32. Accuracy: each activation gets one fixed range, wide enough for the largest
# value any calibration text produced, and transformer activations have a few large outliers, so typical
# values get only a few of the 256 levels; dynamic INT8 fits the range to each batch. Speed: the range
# computation that static INT8 saves is cheap, and ONNX Runtime fuses quantise, multiply and dequantise
# into one kernel in the dynamic graph, while the static graph keeps separate quantise and dequantise
# steps between its float operations (LayerNorm, GELU, residual additions). The graphs ORT runs show it:

# %%
def kernel_counts(path):
    """How often each quantised or MatMul kernel occurs in the graph ONNX Runtime runs for `path`."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(WORK / "optimized.onnx")  # write out the optimised graph
    options.log_severity_level = 3  # ORT warns that the file is specific to this CPU; we only read it
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    kernels = pd.Series([node.op_type for node in onnx.load(WORK / "optimized.onnx").graph.node]).value_counts()
    return kernels[kernels.index.str.contains("quant|MatMul", case=False)]


pd.DataFrame({"dynamic": kernel_counts(settings.model_dir / "model.int8.onnx"),
              "static": kernel_counts(WORK / "model.int8.static.onnx")}).fillna(0).astype(int)

# %% [markdown]
# Static INT8 pays off where integers are all the hardware has (NPUs, DSPs, microcontrollers) and in
# runtimes that compile whole QDQ graphs (TensorRT, OpenVINO). To win back accuracy: leave the most
# sensitive layers in FP32 (`nodes_to_exclude`; `onnxruntime.quantization.qdq_loss_debug` finds them),
# try Percentile calibration, or train with quantisation in the loop (quantisation-aware training).

# %% [markdown]
# ## 7. `torch.export`: a graph without Python
#
# `torch.export.export` traces the model into a graph of ATen operations (an `ExportedProgram`) that can
# be saved, loaded without the model's Python class, and compiled further (`torch.compile`, AOTInductor,
# ExecuTorch). Batch size and sequence length must be declared **dynamic**, or the graph would only
# accept the shapes of the example.

# %%
example = encode(tokenizer, ["short", "a somewhat longer example sentence"])
example_args = (torch.from_numpy(example["input_ids"]), torch.from_numpy(example["attention_mask"]))
batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=512)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    program = torch.export.export(model, example_args, dynamic_shapes=[{0: batch, 1: seq}] * 2)
torch.export.save(program, WORK / "model.pt2")
exported = program.module()
print(f"{len(program.graph.nodes)} graph nodes, model.pt2: {(WORK / 'model.pt2').stat().st_size / 1e6:.1f} MB")


# %% [markdown]
# The exported module has no train/eval switch (it was captured in eval mode, dropout is gone), so we
# call it directly. First we check that it computes the same logits as the eager model on new shapes.

# %%
def exported_logits(texts):
    batch = encode(tokenizer, texts)
    with torch.inference_mode():
        logits = exported(torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"]))
    return logits.numpy()


gap = np.abs(exported_logits(eval_texts[:7]) - LOGITS["torch FP32"][:7]).max()
assert gap < 1e-4, f"the exported graph disagrees with the eager model by {gap}"
print(f"largest logit difference to eager PyTorch on 7 texts: {gap:.1e}")

# %% [markdown]
# Same operations, same kernels: expect about the same latency as eager PyTorch. The gain of an exported
# graph is portability and what compilers can do with it, not speed by itself.

# %%
measure("torch.export", exported_logits, (WORK / "model.pt2").stat().st_size)


# %% [markdown]
# ## 8. TorchScript: the older graph, and its tracing pitfall
#
# Before `torch.export`, PyTorch's way out of Python was **TorchScript**. `torch.jit.trace` runs the model
# once on an example and records the operations that ran; `torch.jit.script` compiles the Python source of
# `forward` (a subset of Python) into a graph, control flow included. A saved TorchScript file loads without
# the model's class, in Python or in C++ (LibTorch), which is why you will meet it in existing deployments.
# We trace the course model on the example of section 7 and keep every warning it raises.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    traced = torch.jit.trace(model, example_args)
raised = pd.DataFrame([{"warning": w.category.__name__, "raised in": Path(w.filename).name,
                        "message (first sentence)": str(w.message).split(". ")[0]} for w in caught])
raised.drop_duplicates().style.hide(axis="index").format(escape="html")

# %% [markdown]
# Two warnings matter. The **DeprecationWarning**: TorchScript is deprecated (more at the end of this
# section). The **TracerWarning** from transformers' mask code: a tensor became a Python `bool` there,
# and the trace froze its value. That check asks whether the attention mask must be padded to the keys'
# length, which for an encoder is always *no*, so this frozen branch is right for every input. We check
# that below. (The FutureWarning is transformers talking about its own API.)
#
# Scripting would keep such branches, but it compiles source code, and only a subset of Python. We try it
# on the classifier, parts of it, and its head; the helper keeps the first line of each error.

# %%
def first_error_line(attempt):
    """'ok' if `attempt()` runs, else the error's class and first sentence, without torch's pages of
    diagnostics (printed, logged and warned: all three are silenced while it runs)."""
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            attempt()
    except Exception as exc:  # any failure is the result we want to show
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0].split('. ')[0]}"
    finally:
        logging.disable(logging.NOTSET)
    return "ok"


attempts = {"the classifier": model, "its BertModel encoder": model.encoder,
            "one BertLayer": model.encoder.encoder.layer[0], "its head (nn.Linear)": model.head}
pd.Series({name: first_error_line(lambda m=m: torch.jit.script(m)) for name, m in attempts.items()},
          name="torch.jit.script(...)").to_frame().style.format(escape="html")

# %% [markdown]
# Each error is Python that TorchScript does not support: a class annotation that `from __future__ import
# annotations` turned into a string (`temperature: torch.Tensor` in `course_utils/model.py`), a config object
# whose source it cannot compile, `**kwargs`. So for a Hugging Face model tracing is the only TorchScript
# route; scripting suits small modules written for it.
#
# **The tracing pitfall**, live. A tiny module whose branch depends on the *values* of its input:

# %%
class SignGate(nn.Module):
    """Doubles an input whose sum is positive, negates any other."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x * 2
        return -x


# %% [markdown]
# We trace it with a positive example and script it, and keep only the TracerWarnings.

# %%
gate, positive, negative = SignGate(), torch.tensor([1.0, 2.0]), torch.tensor([-1.0, -2.0])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    traced_gate = torch.jit.trace(gate, (positive,))
    scripted_gate = torch.jit.script(gate)
tracer_warnings = {str(w.message).split(". ")[0] for w in caught if w.category is torch.jit.TracerWarning}
print(f"TracerWarning: {tracer_warnings}")

# %% [markdown]
# On the example all three agree. On a negative input the traced module silently takes the branch it
# saw while tracing:

# %%
pd.DataFrame({name: {"x = [1, 2]": fn(positive).tolist(), "x = [-1, -2]": fn(negative).tolist()}
              for name, fn in (("eager", gate), ("traced", traced_gate), ("scripted", scripted_gate))}).T

# %% [markdown]
# The recorded code shows why: the trace is a single multiplication by the constant 2, while the scripted
# code kept the `if`.

# %%
print("traced:", traced_gate.code, "scripted:", scripted_gate.code, sep="\n")

# %% [markdown]
# `torch.export` faces the same branch and refuses to guess: it stops with an error that names the
# data-dependent condition. The fix there is to write the branch as `torch.cond(pred, true_fn, false_fn, (x,))`.

# %%
print(first_error_line(lambda: torch.export.export(gate, (positive,))))

# %% [markdown]
# Back to the course model. `torch.jit.save` writes code and weights into one file, and `torch.jit.load`
# needs neither `SentimentClassifier` nor transformers. To prove it, a fresh Python process that imports
# only torch loads the file and computes the logits of three test texts.

# %%
torch.jit.save(traced, WORK / "model.ts.pt")
LOADER = """import json, sys, torch
module = torch.jit.load(sys.argv[1])
inputs = [torch.tensor(rows) for rows in json.loads(sys.argv[2])]
print(json.dumps({"logits": module(*inputs).tolist(),
                  "imported": [m for m in ("transformers", "course_utils") if m in sys.modules]}))"""
probe = encode(tokenizer, eval_texts[:3])
probe_json = json.dumps([probe["input_ids"].tolist(), probe["attention_mask"].tolist()])
run = subprocess.run([sys.executable, "-c", LOADER, str(WORK / "model.ts.pt"), probe_json],
                     capture_output=True, text=True, timeout=120, check=True)
reply = json.loads(run.stdout)
gap = np.abs(np.array(reply["logits"]) - LOGITS["torch FP32"][:3]).max()
assert gap < 1e-4 and not reply["imported"], f"fresh process: gap {gap}, imported {reply['imported']}"
print(f"fresh process, no transformers imported: largest logit difference to eager {gap:.1e}")

# %% [markdown]
# Tracing can also freeze **shapes**: any size the code turns into a Python `int` becomes a constant.
# The tracer records `x.size(1)` as an operation, though, so we compare the loaded module with eager
# PyTorch on batch sizes and lengths unlike the example's:

# %%
loaded = torch.jit.load(WORK / "model.ts.pt")
shapes = {"the example": ["short", "a somewhat longer example sentence"], "1 text": eval_texts[:1],
          "3 texts": eval_texts[1:4], "32 texts": eval_texts[:32], "a long text and a short one":
          [" ".join(eval_texts[:60]), "short"]}
parity = {}
for name, texts in shapes.items():
    batch = encode(tokenizer, texts)
    args = (torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"]))
    with torch.inference_mode():
        gap = (loaded(*args) - model(*args)).abs().max().item()
    parity[name] = {"batch × tokens": "×".join(map(str, args[0].shape)), "largest logit difference": gap}
pd.DataFrame(parity).T

# %% [markdown]
# The trace generalises to every shape (up to 512 tokens, truncation included) and gives the eager
# model's logits. Its latency and size, with the saved file as its size:

# %%
measure("TorchScript (traced)", lambda texts: predict_logits(loaded, tokenizer, texts),
        (WORK / "model.ts.pt").stat().st_size)

# %% [markdown]
# About eager PyTorch's latency: the same kernels run, only without Python between them.
#
# **Where TorchScript stands in PyTorch 2.13.** It is deprecated (since PyTorch 2.5): `trace`, `script`,
# `save` and `load` each raise a DeprecationWarning that says *switch to `torch.compile` or `torch.export`*,
# and on Python 3.14 they warn that they may break. Read TorchScript when you meet it; build new work on
# what is maintained:
#
# | you need | use |
# |---|---|
# | a faster model, still in Python | `torch.compile` |
# | a portable graph of the model | `torch.export` (section 7) |
# | a compiled model for a C++ or Python server | AOTInductor: `torch._inductor.aoti_compile_and_package(program)` |
# | phones, microcontrollers | ExecuTorch, which starts from an `ExportedProgram` |
# | another runtime (ONNX Runtime, TensorRT, OpenVINO) | ONNX: `torch.onnx.export`, built on `torch.export` by default since 2.9 |
#
# One TorchScript legacy is still in this course: `course_utils` exported the ONNX files of section 5 with
# `dynamo=False`, the older exporter that traces with TorchScript (it warns that it is legacy).

# %% [markdown]
# ## 9. Magnitude pruning: sparsity is not speed
#
# Pruning sets the smallest weights to zero. **Unstructured** pruning zeroes single weights anywhere;
# **structured** pruning zeroes whole rows (neurons). `torch.nn.utils.prune` does it with a mask: the
# module keeps the original as `weight_orig`, the mask as `weight_mask`, and recomputes
# `weight = weight_orig * weight_mask` before each forward pass.
#
# ### Exercise 2 (2 points): measure sparsity
#
# Write `sparsity(module)` returning the fraction (a `float` in [0, 1]) of weights that are exactly zero,
# over the `weight` of **every `nn.Linear`** inside `module` (the module itself included, biases and
# other layer types ignored). Count zeros over all those weights together, not per layer. Read each
# layer's `.weight`: after pruning that is the masked tensor, while the parameters are `weight_orig`.
# The tests compare within 1e-6, so a fraction computed in float32 (e.g. `.float().mean()`) is fine.

# %% nbgrader={"grade": false, "grade_id": "ex2-sparsity", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sparsity(module):
    """Fraction of exactly-zero entries over the weights of every nn.Linear in `module`."""
    ### BEGIN SOLUTION
    weights = [m.weight for m in module.modules() if isinstance(m, nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    return zeros / total if total else 0.0
    ### END SOLUTION


# %% [markdown]
# The tests prune small layers whose answer we know.

# %% nbgrader={"grade": true, "grade_id": "ex2-sparsity-tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
layer = nn.Linear(4, 5)
assert isinstance(sparsity(layer), float) and sparsity(layer) == 0.0, "a fresh layer has no zero weights: return 0.0"
with torch.no_grad():
    layer.weight[:2] = 0  # 2 of 5 rows: 8 of 20 weights
assert abs(sparsity(layer) - 0.4) < 1e-6, "8 of 20 weights are zero: count (weight == 0) over weight.numel()"
pruned_layer = prune.l1_unstructured(nn.Linear(10, 10), "weight", amount=0.3)
assert abs(sparsity(pruned_layer) - 0.3) < 1e-6, "after pruning read layer.weight (masked), not layer.weight_orig"
print("Exercise 2: all visible tests passed")
### BEGIN HIDDEN TESTS
big, tiny = nn.Linear(10, 10), nn.Linear(2, 2)
with torch.no_grad():
    tiny.weight.zero_()
stack = nn.Sequential(big, nn.ReLU(), nn.Embedding(5, 3), tiny)
with torch.no_grad():
    stack[2].weight.zero_()  # not a Linear: must not count
assert abs(sparsity(stack) - 4 / 104) < 1e-6  # pooled over layers, not a mean of per-layer sparsities
assert abs(sparsity(prune.ln_structured(nn.Linear(8, 10), "weight", amount=0.5, n=2, dim=0)) - 0.5) < 1e-6
assert isinstance(sparsity(nn.Linear(3, 3)), float)
### END HIDDEN TESTS

# %% [markdown]
# Unstructured: prune 50% of the weights of every Linear layer in the encoder (L1 magnitude), then make
# it permanent with `prune.remove`, which folds the mask into a plain `weight` again.

# %%
def encoder_linears(clf):
    return [m for m in clf.encoder.modules() if isinstance(m, nn.Linear)]


unstructured = copy.deepcopy(model)
for layer in encoder_linears(unstructured):
    prune.l1_unstructured(layer, "weight", amount=0.5)
    prune.remove(layer, "weight")
print(f"encoder sparsity: {sparsity(unstructured.encoder):.1%}")

# %% [markdown]
# Structured: remove 30% of the feed-forward neurons of every layer, i.e. the rows of the up-projection
# `intermediate.dense` with the smallest L2 norm (`ln_structured`, `dim=0`). Attention heads are left alone.

# %%
masked = copy.deepcopy(model)
for block in masked.encoder.encoder.layer:
    prune.ln_structured(block.intermediate.dense, "weight", amount=0.3, n=2, dim=0)
    prune.remove(block.intermediate.dense, "weight")
print(f"encoder sparsity: {sparsity(masked.encoder):.1%}")


# %% [markdown]
# Zeros in a dense matrix are still multiplied. To gain speed we must **remove** the dead neurons: drop
# their rows from the up-projection and their columns from the down-projection. A dead neuron still
# outputs the constant GELU(bias), so we fold that into the down-projection's bias: the outputs stay equal.

# %%
def remove_dead_neurons(block):
    up, down, act = block.intermediate.dense, block.output.dense, block.intermediate.intermediate_act_fn
    alive = up.weight.abs().sum(dim=1) > 0
    width = int(alive.sum())
    new_up, new_down = nn.Linear(up.in_features, width), nn.Linear(width, down.out_features)
    with torch.no_grad():
        new_up.weight.copy_(up.weight[alive])
        new_up.bias.copy_(up.bias[alive])
        new_down.weight.copy_(down.weight[:, alive])
        new_down.bias.copy_(down.bias + down.weight[:, ~alive] @ act(up.bias[~alive]))
    block.intermediate.dense, block.output.dense = new_up, new_down


# %% [markdown]
# We apply it to a copy of the masked model. Same function, smaller matrices: the logits must not change.

# %%
shrunk = copy.deepcopy(masked)
for block in shrunk.encoder.encoder.layer:
    remove_dead_neurons(block)
print(f"FFN width: {model.encoder.config.intermediate_size} -> {block.intermediate.dense.out_features}")
with torch.inference_mode():
    gap = (masked(*example_args) - shrunk(*example_args)).abs().max().item()
assert gap < 1e-4, f"removing dead neurons changed the logits by {gap}"
print(f"largest logit difference between masked and removed: {gap:.1e}")

# %% [markdown]
# Now measure all three. This takes a few seconds per variant.

# %%
variants = {"pruned 50% unstructured": unstructured, "pruned 30% FFN rows (masked)": masked,
            "pruned 30% FFN rows (removed)": shrunk}
for name, clf in tqdm(variants.items(), desc="measuring pruned models"):
    measure(name, lambda texts, clf=clf: predict_logits(clf, tokenizer, texts), state_bytes(clf))

# %% [markdown]
# Sparsity, size of the encoder's Linear weights, latency and accuracy side by side:

# %%
rows = {}
for name, clf in {"torch FP32": model, **variants}.items():
    rows[name] = {"encoder sparsity (%)": 100 * sparsity(clf.encoder),
                  "Linear weights (M)": sum(m.weight.numel() for m in encoder_linears(clf)) / 1e6,
                  "batch 32 (ms)": results[name]["batch 32 (ms)"],
                  "accuracy (%)": results[name]["accuracy (%)"]}
pd.DataFrame(rows).T.round(1)


# %% [markdown]
# - **50% unstructured** sparsity gives no speed-up: dense matrix kernels multiply the zeros too. It only
#   pays off with sparse kernels or hardware that skips zeros (e.g. 2:4 sparsity on recent GPUs), or for
#   compressed storage. The file is the same size.
# - **Masked structured** pruning is no faster either, for the same reason.
# - **Removing** the neurons shrinks the matrices (20% fewer Linear weights in the encoder), so it is the
#   one pruning variant that can be faster; look at batch 32, where the matrix products dominate. If the
#   timings look noisy, something else was using the CPU: re-run the measuring cell.
# - Without fine-tuning after pruning, accuracy drops; real pipelines prune gradually and retrain.

# %% [markdown]
# ## 10. Knowledge distillation: a 2-layer student
#
# A smaller *student* learns from the *teacher*'s soft predictions. At temperature T > 1 the softmax of
# the teacher's logits shows which wrong class is "less wrong", information a hard label lacks.
#
# ### Exercise 3 (3 points): the distillation loss
#
# Write `distillation_loss(student_logits, teacher_logits, labels, T, alpha)` (Hinton et al., 2015):
#
# - soft term: `KL(softmax(teacher_logits / T) || softmax(student_logits / T))`, averaged over the batch
#   (`F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")`), **multiplied by
#   `T**2`**: gradients of the soft term shrink like 1/T², and this keeps its weight independent of T;
# - hard term: the cross-entropy of `student_logits` with the true `labels` (at T = 1);
# - return `alpha * soft + (1 - alpha) * hard`, a 0-dimensional tensor that gradients flow through.
#
# Use log-softmax (`F.log_softmax`), not `log(softmax(...))`, which can give `-inf`.

# %% nbgrader={"grade": false, "grade_id": "ex3-distillation-loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def distillation_loss(student_logits, teacher_logits, labels, T, alpha):
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy(student, labels)."""
    ### BEGIN SOLUTION
    log_p_student = F.log_softmax(student_logits / T, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits / T, dim=-1)
    soft = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean") * T**2
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft + (1 - alpha) * hard
    ### END SOLUTION


# %% [markdown]
# The tests use two texts with known teacher and student logits.

# %% nbgrader={"grade": true, "grade_id": "ex3-distillation-loss-tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
s = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
t, y = torch.tensor([[3.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
loss = distillation_loss(s, t, y, T=2.0, alpha=0.5)
assert torch.is_tensor(loss) and loss.dim() == 0, "return a 0-dimensional tensor (a scalar loss)"
hard = F.cross_entropy(s, y).item()
assert abs(distillation_loss(s, t, y, T=2.0, alpha=0.0).item() - hard) < 1e-6, "alpha=0 is the cross-entropy with the labels"
assert distillation_loss(t, t, y, T=3.0, alpha=1.0).item() < 1e-6, "student == teacher and alpha=1 must give 0"
soft_t1 = distillation_loss(s, t, y, T=1.0, alpha=1.0).item()
assert abs(soft_t1 - 0.126215) < 1e-4, "soft term: KL(teacher || student), reduction='batchmean'"
soft_t4 = distillation_loss(s, t, y, T=4.0, alpha=1.0).item()
assert abs(soft_t4 - 0.290010) < 1e-4, "divide both logits by T, and multiply the soft term by T**2"
assert abs(loss.item() - 0.228241) < 1e-4, "combine as alpha * soft + (1 - alpha) * hard"
loss.backward()
assert s.grad is not None and s.grad.abs().sum() > 0, "gradients must flow to the student logits: stay in torch"
print("Exercise 3: all visible tests passed")
### BEGIN HIDDEN TESTS
def _reference(student, teacher, labels, T, alpha):  # NumPy, straight from the definition
    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    ls, lt = log_softmax(student / T), log_softmax(teacher / T)
    kl = (np.exp(lt) * (lt - ls)).sum(axis=1).mean()
    ce = -log_softmax(student)[np.arange(len(labels)), labels].mean()
    return alpha * T * T * kl + (1 - alpha) * ce
_g = torch.Generator().manual_seed(5)
_s, _t = torch.randn(8, 3, generator=_g, dtype=torch.float64) * 3, torch.randn(8, 3, generator=_g, dtype=torch.float64) * 3
_y = torch.randint(0, 3, (8,), generator=_g)
for _T, _a in ((1.0, 0.3), (2.0, 0.5), (5.0, 0.9), (10.0, 1.0)):
    _got = distillation_loss(_s, _t, _y, T=_T, alpha=_a).item()
    _want = _reference(_s.numpy(), _t.numpy(), _y.numpy(), _T, _a)
    assert abs(_got - _want) < 1e-6 * max(1.0, abs(_want)), (_T, _a, _got, _want)
_big = torch.tensor([[200.0, -200.0]])
assert torch.isfinite(distillation_loss(_big, -_big, torch.tensor([1]), T=1.0, alpha=0.5))
### END HIDDEN TESTS

# %% [markdown]
# The teacher labels the training texts once (soft labels are its logits). Its logits are already
# divided by the calibration temperature stored inside the model (a buffer fitted on validation texts,
# printed below), so the distillation temperature T softens probabilities that are calibrated, not raw.
# Fast mode uses a subset of the training split and one epoch; the full run uses all of it for three epochs.

# %%
train_set = load_sentiment("train")
train_set, epochs = (train_set[:960], 1) if settings.fast else (train_set, 3)
train_labels = torch.tensor([example.label_id for example in train_set])
chunks = []
with torch.inference_mode():
    for start in tqdm(range(0, len(train_set), 64), desc="teacher soft labels"):
        batch = encode(tokenizer, [e.text for e in train_set[start:start + 64]], max_length=64)
        chunks.append(model(torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"])))
teacher_logits = torch.cat(chunks)
print(f"{len(train_set)} training texts, {epochs} epoch(s); teacher logits already divided by "
      f"its calibration temperature {float(model.temperature):.2f}")

# %% [markdown]
# The student: the pretrained MiniLM encoder cut to its **first 2 of 6 layers**, with a fresh head. It
# starts from pretrained weights, which is why a short training run is enough.

# %%
set_seeds(settings.seed)
encoder = load_encoder()
encoder.encoder.layer = encoder.encoder.layer[:2]
encoder.config.num_hidden_layers = 2
student = SentimentClassifier(encoder)
n_params = {name: sum(p.numel() for p in clf.parameters()) for name, clf in (("teacher", model), ("student", student))}
pd.Series(n_params).div(1e6).round(1).rename("parameters (M)")

# %% [markdown]
# One training step: AdamW with a larger learning rate for the fresh head, a batch of 32 texts, and your
# distillation loss at T = 2 and alpha = 0.5.

# %%
optimizer = torch.optim.AdamW([{"params": student.encoder.parameters(), "lr": 2e-4},
                               {"params": student.head.parameters(), "lr": 2e-3}])


def train_step(idx):
    """One optimiser step on the training texts at positions `idx`; returns the loss."""
    batch = encode(tokenizer, [train_set[i].text for i in idx], max_length=64)
    logits = student(torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"]))
    loss = distillation_loss(logits, teacher_logits[idx], train_labels[idx], T=2.0, alpha=0.5)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


# %% [markdown]
# The loop: one epoch is one pass over the shuffled training texts. The shuffling uses a seeded
# generator, so the student comes out the same on every run.

# %%
order_rng, losses = random.Random(settings.seed), []
student.train()
with tqdm(total=epochs * -(-len(train_set) // 32), desc="distilling", unit="step") as bar:
    for _epoch in range(epochs):
        order = list(range(len(train_set)))
        order_rng.shuffle(order)
        for start in range(0, len(order), 32):
            losses.append(train_step(order[start:start + 32]))
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
student.eval()
print(f"{len(losses)} steps, mean loss of the last 5: {np.mean(losses[-5:]):.3f}")

# %% [markdown]
# The loss per step shows whether training converged (a falling curve) or was cut short.

# %%
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(losses, alpha=0.4, label="per step")
ax.plot(pd.Series(losses).rolling(5, min_periods=1).mean(), label="mean of 5 steps")
ax.set(xlabel="training step (batch of 32 texts)", ylabel="distillation loss (nats)", title="Student training")
ax.legend()
plt.show()

# %% [markdown]
# The student is measured like every other variant.

# %%
measure("distilled student", lambda texts: predict_logits(student, tokenizer, texts), state_bytes(student))

# %% [markdown]
# The student runs a third of the encoder's layers, so it is up to three times faster at batch 32, but
# it is only about a third smaller: the word embeddings (11.7 M parameters) are the same at every depth.
# Distillation combines with the other methods: an INT8 ONNX export of the student would be smaller still.

# %% [markdown]
# ## 11. One comparison of every variant
#
# Size, latency and accuracy of everything we built, measured the same way in this run:

# %%
subset = f"all {len(eval_set)} test texts"
if settings.fast:
    subset = f"the first {len(eval_set)} of {len(test_set)} test texts (fast mode)"
table = pd.DataFrame(results).T
table.style.format("{:.1f}").set_caption(
    f"Size (MB = 1e6 bytes), median latency of a whole prediction (ms, {N_RUNS} runs at batch 1 and "
    f"{max(3, N_RUNS // 3)} at batch 32, after warm-up, {torch.get_num_threads()} threads), accuracy on {subset}."
)

# %% [markdown]
# The plot puts the same numbers side by side; shorter bars are better for size and latency, longer for
# accuracy.

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 5), sharey=True)
columns = {"size (MB)": "size (MB)", "batch 1 (ms)": "latency, 1 text (ms)", "accuracy (%)": "accuracy (%)"}
for ax, (column, label) in zip(axes, columns.items(), strict=True):
    ax.barh(table.index, table[column], color=plt.cm.tab20.colors[:len(table)])
    ax.set(xlabel=label)
    ax.grid(axis="x", alpha=0.3)
axes[2].set_xlim(max(0, table["accuracy (%)"].min() - 10), 100)
axes[0].invert_yaxis()
fig.suptitle(f"Every variant on {subset}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# - Measure first: for this model, inference is nearly all of a prediction's time.
# - Memory is parameters × bytes; check which layers a method actually converts (the embeddings!).
# - ONNX Runtime (fused graph, INT8 weights) is the biggest win on a CPU, at a small cost in agreement
#   with FP32: check the agreement column, not only accuracy.
# - Static INT8 (calibrated ranges) is no faster than dynamic INT8 for a transformer on a CPU and loses
#   accuracy: one fixed range per activation fits outliers, not typical values. It is for integer-only hardware.
# - `torch.export` gives a portable graph with the same speed; compilers build on it.
# - TorchScript is deprecated. A trace silently freezes data-dependent branches (watch for TracerWarnings);
#   scripting keeps them but rejects most Hugging Face code. Start new work from `torch.export`.
# - Unstructured sparsity does not speed up dense kernels; removing whole neurons does, at an accuracy cost.
# - A distilled 2-layer student is about 3× faster and close in accuracy after a short training run.
#
# ## Clean-up
#
# Delete the scratch folder and free the models (safe to run twice).

# %%
shutil.rmtree(WORK, ignore_errors=True)
model_int8 = unstructured = masked = shrunk = student = exported = program = sessions = variants = None
traced = loaded = traced_gate = scripted_gate = None
gc.collect()
print(f"scratch folder removed: {not WORK.exists()}")
