# Sentiment MLOps: `make pipeline-run` trains, gates and registers a model; `make test` checks it all.
# The cluster targets (cluster-up ... cluster-down) bring the same pipeline and predictor up on kind or
# minikube; see docs/cluster.md.
SHELL := /bin/bash
VENV ?= .venv
# The interpreter the venvs are made with: the first of these that pyproject's requires-python
# (>=3.11,<3.13) admits (Debian 13's python3 is 3.13).
PYTHON_CANDIDATES := python3.11 python3.12 python3
BASE_PYTHON ?= $(firstword $(foreach p,$(PYTHON_CANDIDATES),$(shell $(p) -c \
	'import sys; print("$(p)" if (3, 11) <= sys.version_info[:2] < (3, 13) else "")' 2>/dev/null)))
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
TOOLS_VENV ?= .venv-tools
MLOPS_HOME ?= $(CURDIR)/.mlops
MLFLOW_TRACKING_URI ?= sqlite:///$(MLOPS_HOME)/mlflow.db
TORCH_PIN := $(shell sed -n 's/^ *"\(torch==[^"]*\)",$$/\1/p' pyproject.toml)
UI_PORT ?= 5000
TORCH_INDEX ?=
DATA ?=
OOD ?=
MAX_ROWS ?=
PARAMS ?=  # a params file of your own (default: params.yaml), e.g. with smaller training budgets
HTTP_PORT ?= 8080
PREDICTIONS ?= $(MLOPS_HOME)/predictions
GRPC_PORT ?= 8081

PARAMS_ARG = $(if $(strip $(PARAMS)),--params $(PARAMS))

# cluster: what cluster-up and images chose is kept in $(BUILD) (cluster-kind, image-tag), so later targets
# need no repeated CLUSTER= and keep using the images that were loaded after a new commit
BUILD := $(MLOPS_HOME)/cluster
CLUSTER ?= $(or $(shell cat $(BUILD)/cluster-kind 2>/dev/null),kind)
KIND_CLUSTER ?= sentiment-mlops
MINIKUBE_ARGS ?=  # e.g. --gpus all: a node with the host's NVIDIA GPUs (docker driver, NVIDIA container toolkit)
HEAD_TAG := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)
TAG ?= $(or $(shell cat $(BUILD)/image-tag 2>/dev/null),$(HEAD_TAG))
TRAIN_IMAGE ?= sentiment-mlops-train:$(TAG)
SERVE_IMAGE ?= sentiment-mlops-serve:$(TAG)
CERT_MANAGER_VERSION := v1.17.0
# KServe v0.20.0 is tested upstream with Gateway API v1.5.1 and Envoy Gateway v1.8.1 (kserve-deps.env at
# its repository root); KFP 2.17.0 is the backend release of the kfp 2.17 SDK.
GATEWAY_API_VERSION := v1.5.1
ENVOY_GATEWAY_VERSION := v1.8.1
KSERVE_VERSION := v0.20.0
KFP_VERSION := 2.17.0
KPS_VERSION := 79.0.0
METRICS_SERVER_VERSION := 3.12.2
PUSHGATEWAY_CHART_VERSION := 3.2.0
PERCENT ?= 10
RPS ?= 10
SECONDS ?= 300
URL ?=
TEXTS ?=
WAIT_HOURS ?=
# Helm: KServe v0.20.0 installs with v3.16.3 (its kserve-deps.env HELM_VERSION); OCI charts need 3.8 or newer
HELM_MIN_VERSION := 3.8
# What Docker must give the kind node (or minikube's VM): the stack, two predictors during a canary (1 CPU /
# 2 Gi requested each) and train_transformer (2 CPU / 3 Gi) beside train_linear (1 CPU / 2 Gi)
MIN_CPUS := 6
MIN_MEMORY_GIB := 14

export MLFLOW_DISABLE_TELEMETRY := true
export TRAIN_IMAGE SERVE_IMAGE

# $(call secret_file,path): a random hex secret in path, created once; a newline an older make secrets left
# is dropped (kubectl create secret --from-file keeps it; MinIO trims its password, S3 clients do not).
secret_file = { test -s $(1) || openssl rand -hex 24 > $(1); } && printf '%s' "$$(tr -d '[:space:]' < $(1))" > $(1).new \
	&& chmod 600 $(1).new && mv $(1).new $(1)
# $(call require,tool,how to get it): fail with a clear message when a tool is missing.
require = command -v $(1) >/dev/null 2>&1 || { echo "make $@: '$(1)' is not installed: $(2)" >&2; exit 1; }
# $(call forward,namespace,service,local:remote): a port-forward in the background, stopped when the
# recipe line ends (with_mlflow's trap).
forward = kubectl -n $(1) port-forward $(2) $(3) >/dev/null & pids="$$pids $$!";
# Runs a command with MLflow and MinIO port-forwarded to localhost:5000 and :9000 (MLFLOW_TRACKING_URI,
# the S3 endpoint and the MinIO keys point at them): the deploy CLI reads the registry and publishes the
# version's serving bundle to MinIO.
with_mlflow = $(call forward,mlops,svc/mlflow,5000:5000) $(call forward,mlops,svc/minio,9000:9000) \
	trap 'kill $$pids 2>/dev/null' EXIT; trap 'exit 130' INT TERM; sleep 3; \
	MLFLOW_TRACKING_URI=http://localhost:5000 MLFLOW_S3_ENDPOINT_URL=http://localhost:9000 \
	AWS_ACCESS_KEY_ID=mlops AWS_SECRET_ACCESS_KEY=$$(cat $(BUILD)/minio-password) $(1)
# Prometheus and the Pushgateway of kube-prometheus-stack, port-forwarded for make analyze.
PROMETHEUS_SVC := svc/kps-kube-prometheus-stack-prometheus
# The Gateway's Envoy Service (found by its label), port-forwarded to localhost:8089 for make predict and
# make load, and the route's host (<name>-<namespace>.<domain>, as KServe would name it).
GATEWAY_HOST := sentiment-mlops.example.com
gateway_forward = gw=$$(kubectl -n envoy-gateway-system get svc -o name \
	-l gateway.envoyproxy.io/owning-gateway-name=kserve-ingress-gateway | head -1); \
	test -n "$$gw" || { echo "make $@: no Envoy service for kserve-ingress-gateway" >&2; exit 1; }; \
	kubectl -n envoy-gateway-system port-forward $$gw 8089:80 >/dev/null & pf=$$!; trap 'kill $$pf 2>/dev/null' EXIT; sleep 3;

.DEFAULT_GOAL := help
.PHONY: help install pipeline-run compile ui serve monitor batch-score schedule unschedule dashboards test test-slow extension-test lint format clean \
	cluster-up cluster-infra secrets images platform kfp-ui deploy canary promote rollback analyze history status \
	predict load cluster-demo cluster-down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

install: $(INSTALLED) ## create $(VENV) (the project, CPU torch first) and $(TOOLS_VENV) (checkov, hadolint)

$(INSTALLED): pyproject.toml requirements-tools.txt
	@test -n "$(BASE_PYTHON)" || { echo "make install: no Python 3.11 or 3.12 on PATH (tried $(PYTHON_CANDIDATES)); \
	pyproject.toml requires >=3.11,<3.13: install one, or name it with BASE_PYTHON=/path/to/python3.11" >&2; exit 1; }
	@$(BASE_PYTHON) -c 'import ensurepip' 2>/dev/null || { echo "make install: $(BASE_PYTHON) has no venv \
	support: apt-get install $(notdir $(BASE_PYTHON))-venv" >&2; exit 1; }
	$(BASE_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet $(TORCH_PIN) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PYTHON) -m pip install --quiet -e ".[dev]"
	$(BASE_PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet -r requirements-tools.txt
	touch $@

pipeline-run: install ## run the pipeline (kfp.local, or the cluster when KFP_HOST is set, e.g. after make kfp-ui); DATA="path|s3://..|hf-id ..." OOD="src ..." MAX_ROWS=N GPU=nvidia.com/gpu PARAMS=file WAIT_HOURS=h (cluster: wait for the run)
	MLOPS_HOME=$(MLOPS_HOME) $(PYTHON) -m pipelines.run $(PARAMS_ARG) $(foreach source,$(DATA),--data $(source)) \
		$(foreach source,$(OOD),--ood $(source)) $(if $(MAX_ROWS),--max-rows-per-split $(MAX_ROWS)) \
		$(if $(GPU),--accelerator $(GPU)) $(if $(WAIT_HOURS),--wait-hours $(WAIT_HOURS))

compile: install ## compile the pipeline to $(MLOPS_HOME)/sentiment_pipeline.yaml
	MLOPS_HOME=$(MLOPS_HOME) $(PYTHON) -m pipelines.run --compile-only

ui: install ## the MLflow UI on the local store (runs, plots, model cards, the registry) at http://127.0.0.1:$(UI_PORT)
	$(VENV)/bin/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --host 127.0.0.1 --port $(UI_PORT)

serve: install ## serve the registered champion with the KServe model server on HTTP_PORT / GRPC_PORT
	MLFLOW_TRACKING_URI=$(MLFLOW_TRACKING_URI) $(PYTHON) -m serving \
		--http_port $(HTTP_PORT) --grpc_port $(GRPC_PORT) --workers 1 --prediction_log $(PREDICTIONS) \
		--answer_key_file $(MLOPS_HOME)/answer-key

monitor: install ## drift, live quality and a retraining when needed, from what `make serve` logged (PREDICTIONS=folder|s3://..; DATA/OOD/MAX_ROWS as for pipeline-run)
	MLOPS_HOME=$(MLOPS_HOME) $(PYTHON) -m pipelines.run --monitor $(PREDICTIONS) $(PARAMS_ARG) $(foreach source,$(DATA),--data $(source)) \
		$(foreach source,$(OOD),--ood $(source)) $(if $(MAX_ROWS),--max-rows-per-split $(MAX_ROWS))

batch-score: install ## score a corpus with the champion (or MODEL=models:/..): INPUT=file|s3://.. OUTPUT=folder|s3://.. (kfp.local, or the cluster with KFP_HOST; GPU=nvidia.com/gpu there)
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "usage: make batch-score INPUT=<file|s3://...> OUTPUT=<folder|s3://...> [MODEL=models:/sentiment/3]"; exit 2; }
	MLOPS_HOME=$(MLOPS_HOME) $(PYTHON) -m pipelines.batch --input $(INPUT) --output $(OUTPUT) $(if $(MODEL),--model $(MODEL)) $(PARAMS_ARG) \
		$(if $(GPU),--accelerator $(GPU))

dashboards: install ## regenerate the Grafana dashboards (manifests/base/dashboards/*.json) from monitoring/dashboards.py
	$(PYTHON) -m monitoring.dashboards

test: install ## run the test suite (slow tests excluded)
	$(PYTHON) -m pytest

test-slow: install ## run only the slow tests (the TweetEval pipeline runs, the monitoring pipeline's own run, the retraining loop)
	$(PYTHON) -m pytest -m slow

extension-test: install ## the Chrome extension's unit tests (node) and browser tests (Debian chromium + chromium-driver)
	cd extension && node --test test/
	$(PYTHON) -m pytest tests/extension

lint: install ## ruff lint and format check; the import contracts (layers) in pyproject.toml
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(VENV)/bin/lint-imports

format: install ## apply ruff's formatting and fixes
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

clean: ## remove local run outputs (.mlops); keeps the venv and .mlops/cluster (the cluster's passwords, kind, image tag)
	@test ! -d $(MLOPS_HOME) || find $(MLOPS_HOME) -mindepth 1 -maxdepth 1 ! -name cluster -exec rm -rf {} +

# ---- cluster (kind or minikube); each target is safe to re-run ------------------------------------

cluster-up: ## create the CLUSTER (kind|minikube) and install everything: cluster-infra, images, platform
	@$(call require,kubectl,https://kubernetes.io/docs/tasks/tools/)
	@$(call require,helm,https://helm.sh/docs/intro/install/)
	@$(call require,docker,https://docs.docker.com/engine/install/)
	@case "$(CLUSTER)" in kind|minikube) ;; *) echo "make cluster-up: CLUSTER is kind or minikube, not '$(CLUSTER)'" >&2; exit 2;; esac
	@mkdir -p $(BUILD) && echo $(CLUSTER) > $(BUILD)/cluster-kind
ifeq ($(CLUSTER),kind)
	@$(call require,kind,https://kind.sigs.k8s.io/docs/user/quick-start/#installation)
	@read cpus memory <<< "$$(docker info --format '{{.NCPU}} {{.MemTotal}}')"; \
	test "$$cpus" -ge $(MIN_CPUS) -a "$$memory" -ge $$(( $(MIN_MEMORY_GIB) * 1000 * 1024 * 1024 )) || { \
	echo "make cluster-up: Docker gives $$cpus CPUs and $$(( memory / 1024 / 1024 / 1024 )) GiB; the stack needs \
	$(MIN_CPUS) CPUs and $(MIN_MEMORY_GIB) GiB (Docker Desktop: Settings > Resources)" >&2; exit 1; }
	kind get clusters | grep -qx $(KIND_CLUSTER) || kind create cluster --name $(KIND_CLUSTER) --config cluster/kind-config.yaml
	kubectl config use-context kind-$(KIND_CLUSTER)
else
	@$(call require,minikube,https://minikube.sigs.k8s.io/docs/start/)
	minikube status >/dev/null 2>&1 || minikube start --cpus $(MIN_CPUS) --memory $(MIN_MEMORY_GIB)g --kubernetes-version v1.32.2 $(MINIKUBE_ARGS)
	kubectl config use-context minikube
endif
	$(MAKE) cluster-infra images
	$(MAKE) platform

cluster-infra: install ## cert-manager, Gateway API + Envoy Gateway, KServe (Standard mode), KFP, kube-prometheus-stack, Pushgateway, metrics-server
	@$(call require,helm,https://helm.sh/docs/intro/install/)
	@version=$$(helm version --template '{{.Version}}'); \
	printf '%s\n%s\n' "v$(HELM_MIN_VERSION)" "$${version%%+*}" | sort -V -C || { echo "make cluster-infra: helm \
	$$version is older than $(HELM_MIN_VERSION) (OCI charts); KServe v0.20.0 installs with v3.16.3" >&2; exit 1; }
	helm repo add jetstack https://charts.jetstack.io --force-update
	helm repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update
	helm repo add metrics-server https://kubernetes-sigs.github.io/metrics-server/ --force-update
	helm upgrade --install cert-manager jetstack/cert-manager -n cert-manager --create-namespace \
		--version $(CERT_MANAGER_VERSION) --set crds.enabled=true --wait
	helm upgrade --install metrics-server metrics-server/metrics-server -n kube-system \
		--version $(METRICS_SERVER_VERSION) --set 'args={--kubelet-insecure-tls}' --wait
	kubectl apply --server-side -f \
		https://github.com/kubernetes-sigs/gateway-api/releases/download/$(GATEWAY_API_VERSION)/standard-install.yaml
	# Envoy Gateway as KServe v0.20.0 installs it (hack/setup/infra/manage.envoy-gateway-helm.sh): only the
	# chart's own gateway.envoyproxy.io CRDs, then the chart with --skip-crds, so its bundled experimental
	# Gateway API CRDs never replace the standard ones above
	helm show crds oci://docker.io/envoyproxy/gateway-helm --version $(ENVOY_GATEWAY_VERSION) \
		| $(PYTHON) cluster/select_crds.py gateway.envoyproxy.io | kubectl apply --server-side --force-conflicts -f -
	helm upgrade --install eg oci://docker.io/envoyproxy/gateway-helm --version $(ENVOY_GATEWAY_VERSION) \
		-n envoy-gateway-system --create-namespace --skip-crds --wait
	helm upgrade --install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd --version $(KSERVE_VERSION) \
		-n kserve --create-namespace --wait
	kubectl apply -f cluster/gateway.yaml
	helm upgrade --install kserve oci://ghcr.io/kserve/charts/kserve-resources --version $(KSERVE_VERSION) \
		-n kserve --set kserve.controller.deploymentMode=Standard \
		--set kserve.controller.gateway.ingressGateway.enableGatewayApi=true \
		--set kserve.controller.gateway.ingressGateway.kserveGateway=kserve/kserve-ingress-gateway \
		--set kserve.controller.gateway.disableIstioVirtualHost=true --wait
	kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=$(KFP_VERSION)"
	kubectl wait --for condition=established --timeout=60s crd/applications.app.k8s.io
	kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=$(KFP_VERSION)"
	kubectl -n kubeflow wait --for=condition=Available --timeout=900s deployment --all
	helm upgrade --install kps prometheus-community/kube-prometheus-stack --version $(KPS_VERSION) \
		-n monitoring --create-namespace \
		--set prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false \
		--set prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false \
		--set prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false \
		--set grafana.sidecar.dashboards.searchNamespace=ALL --wait
	helm upgrade --install prometheus-pushgateway prometheus-community/prometheus-pushgateway \
		--version $(PUSHGATEWAY_CHART_VERSION) -n monitoring --set serviceMonitor.enabled=true --wait
	# last: KFP's install above re-applies its own kfp-launcher (SeaweedFS); ours points at MinIO
	kubectl apply -k manifests/kfp

secrets: ## the MinIO credentials Secret in mlops and kubeflow, the predictor's admin token and answer-id key (random values kept in .mlops/cluster)
	@$(call require,kubectl,https://kubernetes.io/docs/tasks/tools/)
	@$(call require,openssl,apt-get install openssl)
	@mkdir -p $(BUILD) && $(call secret_file,$(BUILD)/minio-password) && $(call secret_file,$(BUILD)/predictor-token) \
		&& $(call secret_file,$(BUILD)/answer-key)
	@set -eo pipefail; for ns in mlops kubeflow; do \
		kubectl create namespace $$ns --dry-run=client -o yaml | kubectl apply -f - >/dev/null; \
		kubectl -n $$ns create secret generic minio-credentials --from-literal=AWS_ACCESS_KEY_ID=mlops \
			--from-file=AWS_SECRET_ACCESS_KEY=$(BUILD)/minio-password --dry-run=client -o yaml \
		| kubectl annotate --local -f - -o yaml serving.kserve.io/s3-endpoint=minio.mlops.svc.cluster.local:9000 \
			serving.kserve.io/s3-usehttps=0 serving.kserve.io/s3-verifyssl=0 serving.kserve.io/s3-region=us-east-1 \
		| kubectl apply -f -; \
	done
	kubectl -n mlops create secret generic sentiment-predictor-token --from-file=token=$(BUILD)/predictor-token \
		--from-file=answer-key=$(BUILD)/answer-key --dry-run=client -o yaml | kubectl apply -f -

images: TAG = $(HEAD_TAG)
images: ## build the train and serve images, tagged with the git commit, load them into the cluster, keep the tag for later targets
	@$(call require,docker,https://docs.docker.com/engine/install/)
	docker build -f Dockerfile.train -t $(TRAIN_IMAGE) .
	docker build -f Dockerfile.serve -t $(SERVE_IMAGE) .
ifeq ($(CLUSTER),kind)
	kind load docker-image $(TRAIN_IMAGE) $(SERVE_IMAGE) --name $(KIND_CLUSTER)
else
	minikube image load $(TRAIN_IMAGE) $(SERVE_IMAGE)
endif
	@mkdir -p $(BUILD) && echo $(TAG) > $(BUILD)/image-tag

platform: secrets ## apply manifests/overlays/CLUSTER (MinIO, MLflow, RBAC, PodMonitor, KFP's MinIO config) with TAG
	@mkdir -p $(BUILD)/overlay
	@printf 'resources: [../../../manifests/overlays/$(CLUSTER)]\nimages:\n- {name: sentiment-mlops-train, newTag: "$(TAG)"}\n' \
		> $(BUILD)/overlay/kustomization.yaml
	kubectl apply -k $(BUILD)/overlay
	kubectl -n mlops wait --for=condition=Available --timeout=300s deployment/minio deployment/mlflow
	kubectl -n mlops wait --for=condition=Complete --timeout=300s job/minio-buckets

schedule: install ## run the monitoring pipeline hourly on the cluster (KFP recurring run; idempotent; CRON="0 0 * * * *")
	$(PYTHON) -m pipelines.schedule $(if $(CRON),--cron "$(CRON)")

unschedule: install ## delete the monitoring pipeline's recurring run
	$(PYTHON) -m pipelines.schedule --unschedule

kfp-ui: ## port-forward the KFP UI/API to localhost:8088; then KFP_HOST=http://localhost:8088 make pipeline-run
	kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8088:80

deploy: install ## serve the champion as InferenceService `sentiment` (create, or replace the serving version once the new one is Ready)
	@$(call with_mlflow,$(PYTHON) -m rollout.deploy rollout --model-uri models:/sentiment@champion --image $(SERVE_IMAGE))

canary: install ## start the champion (or MODEL=models:/sentiment/<n>) as a canary with PERCENT (default 10) of the traffic, once Ready
	@$(call with_mlflow,$(PYTHON) -m rollout.deploy rollout --model-uri $(or $(MODEL),models:/sentiment@champion) --image $(SERVE_IMAGE) --canary-percent $(PERCENT))

promote: install ## the canary takes all traffic and becomes the serving version (alias production)
	@$(call with_mlflow,$(PYTHON) -m rollout.deploy promote)

rollback: install ## drop the canary; the serving version takes all traffic again
	@$(call with_mlflow,$(PYTHON) -m rollout.deploy rollback)

analyze: install ## canary analysis on Prometheus until promote, rollback or timeout, then act on it (ANALYZE_ARGS=--once|--no-apply)
	@$(call forward,monitoring,$(PROMETHEUS_SVC),9090:9090) \
	$(call forward,monitoring,svc/prometheus-pushgateway,9091:9091) \
	$(call with_mlflow,PUSHGATEWAY=localhost:9091 $(PYTHON) -m rollout.canary_analysis \
		--prometheus http://localhost:9090 $(ANALYZE_ARGS))

history: install ## what served when: every route change (time, versions and shares, why) with each version's offline and live quality
	@$(call forward,monitoring,$(PROMETHEUS_SVC),9090:9090) \
	$(call with_mlflow,$(PYTHON) -m rollout.history --prometheus http://localhost:9090)

status: install ## which versions serve with what share of the route, readiness, pods and HPA
	$(PYTHON) -m rollout.deploy status
	kubectl -n mlops get pods,hpa -l app.kubernetes.io/name=sentiment-predictor

predict: ## send one v1 and one v2 request through the Gateway (port-forwarded to localhost:8089)
	@$(gateway_forward) \
	curl -sS -H 'Host: $(GATEWAY_HOST)' -H 'Content-Type: application/json' \
		localhost:8089/v1/models/sentiment:predict -d '{"instances": ["I love this!", "worst day ever"]}'; echo; \
	curl -sS -H 'Host: $(GATEWAY_HOST)' -H 'Content-Type: application/json' \
		localhost:8089/v2/models/sentiment/infer \
		-d '{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["so happy"]}]}'; echo

load: install ## steady traffic: RPS requests/s (default 10) for SECONDS s (default 300) through the Gateway, or to URL (e.g. make serve's); TEXTS=file
	@$(if $(URL),,$(gateway_forward)) \
	$(PYTHON) -m rollout.load --url $(or $(URL),http://localhost:8089) $(if $(URL),,--host $(GATEWAY_HOST)) \
		--rps $(RPS) --seconds $(SECONDS) $(if $(TEXTS),--texts $(TEXTS))

cluster-demo: ## docs/cluster.md's walk-through in one command on a fresh kind cluster: two versions, a promoted and a rolled-back canary (1.5-2 h)
	bash cluster/demo.sh

cluster-down: ## delete the kind cluster (or stop minikube)
ifeq ($(CLUSTER),kind)
	@$(call require,kind,https://kind.sigs.k8s.io/docs/user/quick-start/#installation)
	kind delete cluster --name $(KIND_CLUSTER)
else
	@$(call require,minikube,https://minikube.sigs.k8s.io/docs/start/)
	minikube delete
endif
