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
# # 03 · Containerise the service
#
# **Goal.** Package a small sentiment service into a Docker image: write a `Dockerfile` and a
# `.dockerignore`, check them against the course's best practices, build the image with the Docker SDK,
# run it, and call it. Then build it in two stages and see what that saves, and what a smaller base would.
#
# **Time.** About 70 minutes. **Graded.** 2 exercises, 6 points: only the Dockerfile and .dockerignore
# are graded (by a linter), so everything graded works **without** a Docker daemon. Building and running
# need one; without it those cells explain what is missing and skip.

# %% [markdown]
# ## 1. Setup
#
# Everything this notebook writes goes into a temporary build context folder.

# %%
import importlib.metadata
import re
import shlex
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import requests
from IPython.display import display

from course_utils.config import get_settings
from course_utils.data import DATA_DIR
from course_utils.dockerfile import parse_dockerfile
from course_utils.docker_tools import (build_image, container_network, docker_client, docker_status,
                                       image_size_mb, image_user, run_container)
from course_utils.dockerfile_lint import lint_dockerfile
from course_utils.ports import free_port

# %% [markdown]
# Is there a Docker daemon? `docker_status()` never raises: it says what it found and how to fix it.

# %%
settings = get_settings()
CONTEXT = Path(tempfile.mkdtemp(prefix="nb03-context-"))
status = docker_status()
pd.Series({"daemon answers": status.ok, "detail": status.detail, "fix": status.fix or "-"})

# %% [markdown]
# ## 2. The build context
#
# `docker build` sends a folder (the *context*) to the daemon. Ours holds the service code, pinned
# requirements and the model files. The service uses ONNX Runtime with the INT8 model (23 MB) instead of
# PyTorch (hundreds of MB): small images build, ship and start faster. Like in notebook 02, it loads the
# model once in a lifespan.

# %%
# %%writefile {CONTEXT}/app.py
import json
import os
from contextlib import asynccontextmanager

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel, Field
from tokenizers import Tokenizer

MODEL_DIR, LABELS, state = os.environ.get("MODEL_DIR", "model"), ("negative", "positive"), {}


# %% [markdown]
# The second half of `app.py` (`%%writefile -a` appends): the lifespan and two endpoints.

# %%
# %%writefile -a {CONTEXT}/app.py
@asynccontextmanager
async def lifespan(app):
    state["tokenizer"] = Tokenizer.from_file(f"{MODEL_DIR}/tokenizer.json")
    state["tokenizer"].enable_truncation(512)
    state["session"] = ort.InferenceSession(f"{MODEL_DIR}/model.int8.onnx")
    with open(f"{MODEL_DIR}/model_card.json") as card:
        state["version"] = json.load(card)["version"]
    yield

app = FastAPI(title="Sentiment service (notebook 03)", lifespan=lifespan)


# %% [markdown]
# And the endpoints: ONNX Runtime takes NumPy arrays named like the model's inputs.

# %%
# %%writefile -a {CONTEXT}/app.py
@app.get("/health")
def health():
    return {"status": "ok", "model_loaded": "session" in state}

class PredictRequest(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)

@app.post("/predict")
def predict(body: PredictRequest):
    enc = state["tokenizer"].encode(body.text)
    feed = {"input_ids": np.array([enc.ids], dtype=np.int64),
            "attention_mask": np.array([enc.attention_mask], dtype=np.int64)}
    logits = state["session"].run(None, feed)[0][0]
    proba = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    return {"label": LABELS[int(proba.argmax())], "confidence": float(proba.max()),
            "model_version": state["version"]}


# %% [markdown]
# Pinned requirements (the exact versions in this environment, so the image runs what we tested) and the
# model files the service needs, nothing more.

# %%
packages = ("fastapi", "uvicorn", "onnxruntime", "tokenizers", "numpy")
pins = [f"{name}=={importlib.metadata.version(name)}" for name in packages]
(CONTEXT / "requirements.txt").write_text("\n".join(pins) + "\n")
(CONTEXT / "model").mkdir(exist_ok=True)
for name in ("model.int8.onnx", "tokenizer.json", "model_card.json"):
    shutil.copy(settings.model_dir / name, CONTEXT / "model" / name)
print(*pins, sep="\n")

# %% [markdown]
# A real project folder also holds things that must **never** end up in an image: training data, a `.env`
# file with secrets, notebooks, git history. We add some to the context to see how to keep them out.

# %%
(CONTEXT / "data").mkdir(exist_ok=True)
shutil.copy(DATA_DIR / "sentiment.jsonl", CONTEXT / "data" / "sentiment.jsonl")
(CONTEXT / ".env").write_text("API_KEY=not-a-real-secret\n")
(CONTEXT / "notebooks").mkdir(exist_ok=True)
files = sorted(p for p in CONTEXT.rglob("*") if p.is_file())
pd.DataFrame({"file": [str(p.relative_to(CONTEXT)) for p in files],
              "size (kB)": [round(p.stat().st_size / 1e3, 1) for p in files]}).set_index("file")

# %% [markdown]
# ## 3. A first, naive Dockerfile
#
# This Dockerfile works, but the linter (`lint_dockerfile`, no daemon needed) finds a problem on almost
# every line. Read the messages: each says what is wrong and why.

# %%
NAIVE = """
FROM python:latest
COPY . .
RUN pip install -r requirements.txt
CMD uvicorn app:app --host 0.0.0.0
"""
(CONTEXT / "Dockerfile.naive").write_text(NAIVE)
pd.DataFrame(lint_dockerfile(CONTEXT / "Dockerfile.naive")).set_index("rule")

# %% [markdown]
# ### Exercise 1 (4 points): a good Dockerfile
#
# Write `DOCKERFILE` (a string) so that every rule passes. Requirements:
#
# 1. Start with `ARG BASE_IMAGE=python:3.11-slim` and `FROM ${BASE_IMAGE}` (the course machines, which
#    reach no registry, build with a local base image instead).
# 2. `COPY requirements.txt` and `RUN pip install --no-cache-dir -r requirements.txt` **before** copying
#    the code and model, so that a code edit reuses the cached dependency layer.
# 3. Copy only what the service needs: `model/` and `app.py` (never `COPY . .`).
# 4. `ENV PYTHONUNBUFFERED=1 MODEL_DIR=/app/model UVICORN_HOST=0.0.0.0 UVICORN_PORT=8000`: uvicorn reads
#    its host and port from these variables, so `docker run -e UVICORN_PORT=...` can change them.
# 5. Create a user (`RUN useradd --create-home app`) and switch to it (`USER app`): a `USER` that no
#    `RUN` creates stops the container at start.
# 6. `EXPOSE 8000`, a `HEALTHCHECK` whose command requests `/health` and fails when it does not answer (the
#    image has `python` but no `curl`; `CMD true` cannot fail), and `CMD` in exec form without `--host` or
#    `--port` (the ENV of step 4 sets them): `CMD ["uvicorn", "app:app"]`.
#
# Other instructions are up to you (`WORKDIR`, `RUN pip install --upgrade pip`, comments, how you split
# `ENV`). The tests read the Dockerfile as Docker parses it (`course_utils.dockerfile.parse_dockerfile`),
# so spacing, case and quoting do not matter.

# %% nbgrader={"grade": false, "grade_id": "ex1-dockerfile", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
DOCKERFILE = """
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 MODEL_DIR=/app/model UVICORN_HOST=0.0.0.0 UVICORN_PORT=8000
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
RUN useradd --create-home app
COPY model/ model/
COPY app.py .
USER app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:' + os.environ['UVICORN_PORT'] + '/health', timeout=2)"]
CMD ["uvicorn", "app:app"]
"""
### END SOLUTION

# %% [markdown]
# ### Exercise 2 (2 points): a `.dockerignore`
#
# Write `DOCKERIGNORE` (a string, one pattern per line) that keeps `.git`, `.env`, `data/`, `notebooks/`,
# `__pycache__/` and `.ipynb_checkpoints/` out of the build context: they are never sent to the daemon,
# so they can never be copied into a layer by accident. The tests read your patterns as Docker does (the
# linter's reader): `.env*`, `**/data` or an allowlist (`*` then `!app.py`, ...) are as good as the plain
# names, and a later `!data` line brings `data` back in. They check `.git`, `.env`, `data` and `notebooks`.

# %% nbgrader={"grade": false, "grade_id": "ex2-dockerignore", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
DOCKERIGNORE = """
.git
.env
data/
notebooks/
__pycache__/
.ipynb_checkpoints/
*.pyc
"""
### END SOLUTION

# %% [markdown]
# Write both files into the context and lint the result.

# %%
(CONTEXT / "Dockerfile").write_text(DOCKERFILE.strip() + "\n")
(CONTEXT / ".dockerignore").write_text(DOCKERIGNORE.strip() + "\n")
findings = {f.rule: f for f in lint_dockerfile(CONTEXT / "Dockerfile")}
pd.DataFrame(findings.values()).set_index("rule")

# %% [markdown]
# The tests read the linter's findings; a failing assert quotes the linter's message. Each exercise is
# linted on its own, in a fresh folder: the Dockerfile alone, and your `.dockerignore` beside a fixed
# Dockerfile that copies the whole context (`COPY . /app`), so neither score depends on the other answer.

# %%
def lint_texts(dockerfile, dockerignore=None):
    """The linter's findings, by rule, for a Dockerfile (and a .dockerignore) written into a fresh folder."""
    folder = Path(tempfile.mkdtemp(prefix="nb03-lint-"))
    try:
        (folder / "Dockerfile").write_text(dockerfile.strip() + "\n")
        if dockerignore is not None:
            (folder / ".dockerignore").write_text(dockerignore.strip() + "\n")
        return {f.rule: f for f in lint_dockerfile(folder / "Dockerfile")}
    finally:
        shutil.rmtree(folder)


# %% nbgrader={"grade": true, "grade_id": "ex1-dockerfile-build-tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
findings = lint_texts(DOCKERFILE)
for rule in ("base-slim-pinned", "deps-before-code", "no-secrets-or-data"):
    assert findings[rule].ok, f"{rule}: {findings[rule].message}"
print("Exercise 1 (base image, layers, what is copied): visible tests passed")
### BEGIN HIDDEN TESTS
parsed = parse_dockerfile(DOCKERFILE)
assert parsed.global_args.get("BASE_IMAGE") == "python:3.11-slim", "declare ARG BASE_IMAGE=python:3.11-slim before FROM"
from_line = [i for i in parsed.instructions if i.keyword == "FROM"][-1].arguments
assert re.search(r"\$\{?BASE_IMAGE\b", from_line), f"start FROM ${{BASE_IMAGE}}, not FROM {from_line}"
sources = [w for i in parsed.final.all("COPY", "ADD") for w in (i.exec_form or i.arguments.split())[:-1]]
copied = {w.removeprefix("./").rstrip("/") for w in sources}
assert copied <= {"requirements.txt", "model", "app.py"} and {"model", "app.py"} <= copied, f"copy only requirements.txt, model/ and app.py, not {sorted(copied)}"
### END HIDDEN TESTS

# %% [markdown]
# The runtime rules: user, logs, health, port and signals.

# %% nbgrader={"grade": true, "grade_id": "ex1-dockerfile-runtime-tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
findings = lint_texts(DOCKERFILE)
for rule in ("non-root-user", "pythonunbuffered", "healthcheck", "expose", "exec-form-cmd"):
    assert findings[rule].ok, f"{rule}: {findings[rule].message}"
print("Exercise 1 (runtime): visible tests passed")
### BEGIN HIDDEN TESTS
parsed = parse_dockerfile(DOCKERFILE)
env = {}
for inst in parsed.final.all("ENV"):
    words = shlex.split(inst.arguments)
    if "=" in words[0]:
        env.update(word.split("=", 1) for word in words)
    else:  # the legacy form: ENV NAME value
        env[words[0]] = inst.arguments.split(maxsplit=1)[1]
expected_env = {"MODEL_DIR": "/app/model", "UVICORN_HOST": "0.0.0.0", "UVICORN_PORT": "8000"}
assert {k: env.get(k) for k in expected_env} == expected_env, f"ENV {expected_env}, got {env}"
cmd = parsed.final.all("CMD", "ENTRYPOINT")
assert cmd and not any(w.startswith(("--port", "--host")) for i in cmd for w in (i.exec_form or i.arguments.split())), "let UVICORN_HOST/UVICORN_PORT choose host and port"
assert "/health" in parsed.final.all("HEALTHCHECK")[-1].arguments, "the HEALTHCHECK must request /health"
### END HIDDEN TESTS

# %% [markdown]
# And the `.dockerignore`:

# %% nbgrader={"grade": true, "grade_id": "ex2-dockerignore-tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
ignore_findings = lint_texts("FROM python:3.11-slim\nCOPY . /app\n", DOCKERIGNORE)
assert ignore_findings["dockerignore"].ok, f"dockerignore: {ignore_findings['dockerignore'].message}"
print("Exercise 2: visible tests passed")
### BEGIN HIDDEN TESTS
# With `COPY . /app`, the no-secrets-or-data rule fails unless .env and data are both excluded.
secrets = ignore_findings["no-secrets-or-data"]
assert secrets.ok, f"ignore .env too, it holds secrets: {secrets.message}"
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Build the image
#
# `build_image` drives the Docker SDK and streams progress. Students' laptops use `python:3.11-slim`
# (pulled once from Docker Hub); the course machines reach no registry and use a local base image,
# `course-base:bookworm`, when it exists. The first build downloads the requirements (about a minute);
# later builds reuse cached layers.

# %%
TAG = "course-nb03:dev"
BASE = "python:3.11-slim"
if status.ok and docker_client().images.list(name="course-base:bookworm"):
    BASE = "course-base:bookworm"
if status.ok:
    build = build_image(CONTEXT, tag=TAG, build_args={"BASE_IMAGE": BASE})
    display(pd.Series({"base image": BASE, "build time (s)": round(build.duration_s, 1),
                       "image size (MB)": round(image_size_mb(TAG)), "runs as": image_user(TAG) or "root"}))
else:
    print(f"Skipped (no Docker daemon): {status.detail}\nTo build, {status.fix}")

# %% [markdown]
# **Layer caching.** We edit the code and rebuild: every step before `COPY app.py` comes from the cache,
# so the rebuild takes seconds instead of reinstalling every package.

# %%
if status.ok:
    with (CONTEXT / "app.py").open("a") as f:
        f.write("\n# a code edit\n")
    rebuild = build_image(CONTEXT, tag=TAG, build_args={"BASE_IMAGE": BASE})
    steps = sum(line.startswith("Step ") for line in rebuild.log)
    cached = sum("Using cache" in line for line in rebuild.log)
    print(f"rebuild in {rebuild.duration_s:.1f} s: {cached} of {steps} steps came from the cache")

# %% [markdown]
# ## 5. Two stages: the installer stays behind
#
# Every instruction adds a layer, and deleting a file in a later layer does not shrink the image: the
# earlier layer still ships it. A **multi-stage build** installs in a first stage (`FROM ... AS build`),
# then starts the final stage afresh and copies in only the result (`COPY --from=build`). Only the final
# stage's layers make the image. Our build stage creates a virtualenv with the pinned packages, then
# uninstalls the venv's own pip and setuptools: the service never installs anything at run time.

# %%
BUILD_STAGE = """
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE} AS build
RUN python3 -m venv /opt/venv
COPY requirements.txt /build/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /build/requirements.txt \\
    && /opt/venv/bin/pip uninstall --yes pip setuptools
"""

# %% [markdown]
# The final stage starts `FROM` the same base: the venv's `python3` is a link to the base's interpreter,
# so it needs the same Python at the same path. It copies `/opt/venv` (owned by root, so the `app` user
# cannot change the packages) and puts its `bin` first on `PATH`; the rest is your Dockerfile. The linter
# judges the final stage: that is what runs.

# %%
FINAL_STAGE = """
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 MODEL_DIR=/app/model UVICORN_HOST=0.0.0.0 UVICORN_PORT=8000 PATH=/opt/venv/bin:$PATH
RUN useradd --create-home app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY model/ model/
COPY app.py .
USER app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD ["python3", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:' + os.environ['UVICORN_PORT'] + '/health', timeout=2)"]
CMD ["uvicorn", "app:app"]
"""
(CONTEXT / "Dockerfile.multi").write_text(BUILD_STAGE.strip() + "\n\n" + FINAL_STAGE.strip() + "\n")
pd.DataFrame(lint_dockerfile(CONTEXT / "Dockerfile.multi")).set_index("rule")[["ok"]].T

# %% [markdown]
# Build it (`dockerfile=` picks the file in the context) and compare it with your one-stage image. The
# first build installs the packages again, in the new stage (about a minute).

# %%
MULTI_TAG = "course-nb03:multi-stage"
if status.ok:
    multi = build_image(CONTEXT, tag=MULTI_TAG, dockerfile="Dockerfile.multi", build_args={"BASE_IMAGE": BASE})
    sizes = pd.Series({"base image": image_size_mb(BASE), "one stage (exercise 1)": image_size_mb(TAG),
                       "two stages": image_size_mb(MULTI_TAG)})
    display(pd.DataFrame({"size (MB)": sizes, "added to the base (MB)": sizes - sizes["base image"]}).round(1))

# %% [markdown]
# Where do the megabytes go? `docker history` lists each layer with the instruction that made it: the base
# image (its layers have no instruction here), the packages and the model are nearly all of it.

# %%
def layers(image, min_mb=0.5):
    """The layers of `image` over `min_mb`, oldest first: (instruction, MB)."""
    rows = []
    for step in reversed(docker_client().images.get(image).history()):
        made_by = step["CreatedBy"].split("#(nop) ")[-1].removeprefix("/bin/sh -c ").strip()
        made_by = re.sub(r"(dir|file):[0-9a-f]{64} in ", r"\1 to ", made_by)  # classic builder: COPY dir:<sha256> in /x
        rows.append((made_by[:70] or "(the base image)", step["Size"] / 1e6))
    return pd.DataFrame([row for row in rows if row[1] >= min_mb], columns=["instruction", "MB"]).round(1)

if status.ok:
    display(pd.concat({"one stage": layers(TAG), "two stages": layers(MULTI_TAG)}))

# %% [markdown]
# **Why (almost) no difference?** A multi-stage build removes what *building* leaves behind, and your
# one-stage image left little: `--no-cache-dir` kept pip's download cache out, every package came as a wheel
# (no compiler needed), and the base image's own pip is in both images. The reference capstone created a
# venv in its single stage; two stages drop that venv's pip and setuptools, 22 MB of 556 MB
# (`benchmarks/container.py`). Two stages pay off most when a package builds from source: the compiler,
# the headers and the build files (often hundreds of MB) stay in the build stage. And an image without an
# installer gives an attacker who gets in less to work with. The price is build time: `COPY --from` copies
# the whole venv into a new layer, so the reference's build without cache took 72 s instead of 44 s.
#
# Code edits still rebuild in seconds: the build stage depends only on `requirements.txt`, so it comes
# from the cache, and so does the final stage up to `COPY app.py`.

# %%
if status.ok:
    with (CONTEXT / "app.py").open("a") as f:
        f.write("\n# another code edit\n")
    rebuild = build_image(CONTEXT, tag=MULTI_TAG, dockerfile="Dockerfile.multi", build_args={"BASE_IMAGE": BASE})
    steps = sum(line.startswith("Step ") for line in rebuild.log)
    cached = sum("Using cache" in line for line in rebuild.log)
    print(f"rebuild in {rebuild.duration_s:.1f} s: {cached} of {steps} steps came from the cache")

# %% [markdown]
# ### Minimal base images
#
# What remains is mostly the base image and the packages. Smaller bases, from large to small (the course
# machines reach no registry, so these are described, not measured):
#
# | base | what is inside | trade-off |
# |---|---|---|
# | `python:3.11` | full Debian with gcc and headers | builds anything from source: a good **build** stage, too big to ship |
# | `python:3.11-slim` | Debian without compilers and docs; pip | the usual **final** stage, and our default |
# | `gcr.io/distroless/python3-debian12` | Python 3.11 and the C libraries it needs; no shell, pip or package manager | the least to attack and to scan; `HEALTHCHECK` and `CMD` must be exec form, debugging needs the `:debug` variant, and the venv must come from the same Python (3.11) at the same path |
# | `python:3.11-alpine` | musl libc instead of glibc | small, but `manylinux` wheels do not install on musl: onnxruntime has no musl wheel, so pip fails or compiles for a long time; musl's allocator and DNS behave differently |
#
# Whatever the base, the pattern stays: a build stage with the tools, a final stage with the runtime only.
# A later stage cannot slim its base: `course-base:bookworm` (Debian with python3, pip and venv) ships in
# both images above as it is.

# %% [markdown]
# ## 6. Run it and call it
#
# A request from this notebook reaches the container in one of two ways:
#
# - **Host network** (Linux with a local Docker Engine): the container shares the machine's network, so
#   uvicorn on 127.0.0.1:PORT inside *is* 127.0.0.1:PORT here. No port mapping is needed.
# - **Bridge network, published port** (Docker Desktop on macOS and Windows, rootless or remote daemons:
#   there "host" is a VM, not your laptop): the container has a network of its own. uvicorn must listen on
#   `0.0.0.0` inside (the container's own 127.0.0.1 is out of reach), and Docker publishes the port on
#   this machine's 127.0.0.1 only (`docker run -p 127.0.0.1:PORT:PORT`), so your network cannot reach it.
#
# `container_network()` picks the one that works here (`COURSE_DOCKER_NETWORK=host` or `bridge` overrides
# it). We run the two-stage image (the one-stage image runs the same way) with a free port and the
# listening address in `UVICORN_PORT` and `UVICORN_HOST`; `run_container` waits until Docker's HEALTHCHECK
# reports *healthy* and `/health` answers.

# %%
container = None
if status.ok:
    network, port = container_network(), free_port()
    url = f"http://127.0.0.1:{port}"
    container = run_container(MULTI_TAG, env={"UVICORN_HOST": network.bind_host, "UVICORN_PORT": str(port)},
                              port=port, network_mode=network.mode, health_url=f"{url}/health", timeout_s=60)
    print(f"{network.mode} network ({network.reason}): container {container.id[:12]} is "
          f"{container.health()} on {url}")

# %% [markdown]
# The same requests as in notebook 02, now answered by the container:

# %%
if container is not None:
    texts = ["An absolute joy from start to finish.", "The battery died after two days. Avoid."]
    answers = [requests.post(f"{url}/predict", json={"text": t}, timeout=10).json() for t in texts]
    display(pd.DataFrame(answers, index=texts))
    print(container.logs().strip().splitlines()[-1])

# %% [markdown]
# ## 7. Stop the container
#
# `stop()` sends SIGTERM (uvicorn, as PID 1 thanks to the exec-form `CMD`, shuts down gracefully), then
# removes the container.

# %%
if container is not None:
    container.stop()
    print("container stopped and removed")

# %% [markdown]
# ## Summary
#
# - Slim, pinned base image; dependencies before code for layer caching; exec-form `CMD`.
# - Non-root `USER`, `PYTHONUNBUFFERED=1`, a `HEALTHCHECK`, `EXPOSE`; configuration through environment
#   variables.
# - `.dockerignore` keeps data, secrets and history out of the context, and so out of every layer.
# - A multi-stage build installs in one stage and ships only the result: it saves most when building needs
#   tools that the service does not. A smaller base image (slim, distroless) trims what remains.
#
# ## Clean-up
#
# Stop the container if it still runs and delete the build context. The images stay so that the next
# builds are fast; remove them with `docker image rm course-nb03:dev course-nb03:multi-stage`.

# %%
if container is not None:
    container.stop()  # idempotent
shutil.rmtree(CONTEXT, ignore_errors=True)
print(f"removed {CONTEXT}")
