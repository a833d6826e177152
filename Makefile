# Sentiment MLOps: `make pipeline-run` trains, gates and registers a model; `make test` checks it all.
SHELL := /bin/bash
VENV ?= .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
MLOPS_HOME ?= $(CURDIR)/.mlops
MLFLOW_TRACKING_URI ?= sqlite:///$(MLOPS_HOME)/mlflow.db
TORCH_VERSION := 2.13.0
TORCH_INDEX ?=
DATA ?=
OOD ?=
MAX_ROWS ?=
HTTP_PORT ?= 8080
GRPC_PORT ?= 8081

export MLFLOW_DISABLE_TELEMETRY := true

.DEFAULT_GOAL := help
.PHONY: help install pipeline-run compile serve test test-slow lint format clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

install: $(INSTALLED) ## create $(VENV) and install the project (CPU torch first)

$(INSTALLED): pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PYTHON) -m pip install --quiet -e ".[dev]"
	touch $@

pipeline-run: install ## run the pipeline (kfp.local, or the cluster when KFP_HOST is set); DATA=path|s3://..|hf-id OOD="src ..." MAX_ROWS=N
	MLOPS_HOME=$(MLOPS_HOME) $(PYTHON) -m pipelines.run $(if $(DATA),--data $(DATA)) \
		$(foreach source,$(OOD),--ood $(source)) $(if $(MAX_ROWS),--max-rows-per-split $(MAX_ROWS))

compile: install ## compile the pipeline to $(MLOPS_HOME)/sentiment_pipeline.yaml
	MLOPS_HOME=$(MLOPS_HOME) $(PYTHON) -m pipelines.run --compile-only

serve: install ## serve the registered champion with the KServe model server on HTTP_PORT / GRPC_PORT
	MLFLOW_TRACKING_URI=$(MLFLOW_TRACKING_URI) $(PYTHON) -m serving \
		--http_port $(HTTP_PORT) --grpc_port $(GRPC_PORT) --workers 1

test: install ## run the test suite (slow tests excluded)
	$(PYTHON) -m pytest

test-slow: install ## run only the slow tests (full TweetEval training)
	$(PYTHON) -m pytest -m slow

lint: install ## ruff lint and format check
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

format: install ## apply ruff's formatting and fixes
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

clean: ## remove local run outputs (.mlops); keeps the venv
	rm -rf $(MLOPS_HOME)
