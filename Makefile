# Deployment and ML Lifecycle: every entry point creates or updates .venv first.
# `make serve` and `make test` are the two commands a new user needs (see README.md).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MODEL  := artifacts/model/model_card.json
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: help venv model serve test lint typecheck pytest lab docker pipeline bench audit lock doctor student-kit screenshots clean

help:
	@echo "make serve   set up .venv, build the default model if needed, serve it on 127.0.0.1:8000"
	@echo "make test    lint, type-check and run every test (unit, integration, notebooks)"
	@echo "make lab     JupyterLab on the notebooks      make doctor   check this machine"
	@echo "make model   build the default model          make docker   build the reference image"
	@echo "make pipeline  the capstone CI/CD pipeline on the reference: lint, tests, gate, image, smoke, staging"
	@echo "make student-kit  write what students get to KIT=$(KIT) (+ .zip); fails if an answer line leaks"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

venv: $(STAMP)

# The model is rebuilt only when its inputs change: build_model compares a build key over all of them.
model: $(STAMP)
	$(BIN)/course-utils build-model

serve: model
	$(BIN)/course-utils serve

doctor: $(STAMP)
	$(BIN)/course-utils doctor

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: model
	$(BIN)/pytest

test: lint typecheck pytest

# Loopback only; --allow-root where the course runs as root (containers, CI machines).
lab: model
	$(BIN)/jupyter lab notebooks --ServerApp.ip=127.0.0.1 $$([ "$$(id -u)" = 0 ] && echo --allow-root)

docker: model
	rm -rf solutions/capstone/model && cp -r artifacts/model solutions/capstone/model
	docker build -t course-capstone:latest solutions/capstone

# The capstone's CI/CD pipeline (capstone/Makefile, docs/pipeline.md) run on the reference capstone.
# Where no registry is reachable: make pipeline PIPELINE_ARGS="BASE_IMAGE=course-base:bookworm DOCKER_NETWORK=host"
PIPELINE_ARGS ?=
pipeline: model
	$(MAKE) -C solutions/capstone -f ../../capstone/Makefile pipeline \
		PYTHON=$(CURDIR)/$(BIN)/python MODEL_DIR=$(CURDIR)/artifacts/model BUILD_DIR=$(CURDIR)/build/pipeline \
		$(PIPELINE_ARGS)

# Side-by-side measurements (not part of make test: timing belongs in benchmarks, not unit tests).
bench: model
	$(BIN)/python benchmarks/serving.py

# Known vulnerabilities in the pins (needs PyPI's per-version JSON API; see docs/reliability.md).
audit: $(STAMP)
	$(BIN)/pip-audit --disable-pip --no-deps --progress-spinner off -r requirements.txt \
		-r solutions/capstone/requirements.txt \
		$$(grep -v '^#' docs/pip-audit-allowlist.txt | awk 'NF {print "--ignore-vuln", $$1}')

# What students get: notebooks, starter, library, data, their README and Makefile (course_utils/kit.py).
KIT ?= build/student-kit
student-kit: $(STAMP)
	$(BIN)/course-utils student-kit $(KIT) --zip --force

# Refresh docs/screenshots/ (the README's gallery): every notebook of the kit run in JupyterLab in chromium.
screenshots: model
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/pytest tests/browser/test_jupyterlab_notebooks.py -s

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//' > requirements.txt.new
	@echo "wrote requirements.txt.new; review it and move it over requirements.txt"

clean:
	rm -rf $(VENV) artifacts .pytest_cache .mypy_cache .ruff_cache
