"""The cluster path, checked offline with the real tools: kustomize (kubectl) builds every overlay, the
Helm chart renders and lints with the real Helm engine (helm-python-sdk), every object validates against
Kubernetes' schemas (kubernetes-validate) or its CRD's schema (../shared/schemas, strictly: unknown fields
fail; the HTTPRoute, whose CRD is not vendored, against Gateway API v1.5.1's field bounds), every
InferenceService the project can produce passes KServe v0.20.0's admission rules (tests/kserve_admission.py)
and every canary comes with its own weighted route, the chart installs next to `make platform`, the policy
checkers platform teams run (checkov, hadolint) pass, and the compiled pipeline names the train image and
the MinIO Secret for every step.
"""

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from models.bundle import bundle_uri
from rollout.inference_service import (
    ServingSettings,
    canary_patch,
    inference_service,
    promote_patch,
    rollback_patch,
    traffic_route,
)
from tests.helpers import REPO, shared_absent
from tests.kserve_admission import admission_errors
from tests.kube_stand_in import merge_patch

SCHEMAS = REPO.parent / "shared" / "schemas"
CHART = REPO / "helm" / "sentiment-serving"
TOOLS = REPO / ".venv-tools" / "bin"
KUBERNETES_VERSION = "1.32"  # cluster/kind-config.yaml's node image
CRD_FILES = {
    ("serving.kserve.io", "InferenceService"): "kserve/serving.kserve.io_inferenceservices.yaml",
    ("serving.kserve.io", "ServingRuntime"): "kserve/serving.kserve.io_servingruntimes.yaml",
    (
        "monitoring.coreos.com",
        "ServiceMonitor",
    ): "prometheus-operator/monitoring.coreos.com_servicemonitors.yaml",
    ("monitoring.coreos.com", "PodMonitor"): "prometheus-operator/monitoring.coreos.com_podmonitors.yaml",
    (
        "monitoring.coreos.com",
        "PrometheusRule",
    ): "prometheus-operator/monitoring.coreos.com_prometheusrules.yaml",
    ("gateway.networking.k8s.io", "HTTPRoute"): "gateway-api/gateway.networking.k8s.io_httproutes.yaml",
    ("gateway.networking.k8s.io", "Gateway"): "gateway-api/gateway.networking.k8s.io_gateways.yaml",
}
CHART_VALUES = {"image": {"tag": "0123456789ab"}, "version": "3"}
CANARY_VALUES = {**CHART_VALUES, "canary": {"percent": 10, "version": "4"}}
SETTINGS = ServingSettings(image="sentiment-mlops-serve:0123456789ab")
LONG_RUNNING = {"Deployment", "InferenceService"}


def kustomize(path: Path) -> list[dict]:
    built = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True)
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def helm_render(values: dict) -> list[dict]:
    import helm_python

    with helm_python.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name="sentiment", namespace="mlops")
    return [doc for text in rendered.values() for doc in yaml.safe_load_all(text) if doc]


@functools.cache  # each CRD file is read once (the InferenceService CRD is megabytes of YAML)
def crd_schema(api_version: str, kind: str) -> dict | None:
    """The openAPIV3Schema of a CRD kind we validate, or None for a Kubernetes core kind."""
    group, _, version = api_version.rpartition("/")
    name = CRD_FILES.get((group, kind))
    if name is None:
        return None
    if not SCHEMAS.is_dir():
        shared_absent(SCHEMAS, "the vendored CRD schemas come with ../shared (read-only, not in repo)")
    crd = yaml.load((SCHEMAS / name).read_text(), Loader=yaml.CSafeLoader)  # libyaml: a third of the time
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return served["schema"]["openAPIV3Schema"]


def unknown_fields(value, schema: dict, path: str = "") -> list[str]:
    """Fields the structural schema does not declare (the API server would drop them silently)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict) and "properties" in schema:
        found = []
        for key, item in value.items():
            if key not in schema["properties"]:
                found.append(f"{path}.{key}")
            else:
                found += unknown_fields(item, schema["properties"][key], f"{path}.{key}")
        return found
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        return [
            f
            for k, v in value.items()
            for f in unknown_fields(v, schema["additionalProperties"], f"{path}.{k}")
        ]
    if isinstance(value, list) and "items" in schema:
        return [f for i, v in enumerate(value) for f in unknown_fields(v, schema["items"], f"{path}[{i}]")]
    return []


def validate(obj: dict) -> None:
    schema = crd_schema(obj["apiVersion"], obj["kind"])
    if schema is None:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        return
    # No metaschema check: CRD schemas carry Go regular expressions (e.g. PrometheusRule's "^(?i)...")
    # that Python's re rejects; a pattern is only compiled where the object has that field.
    jsonschema.Draft7Validator(schema).validate(obj)
    spec_only = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    assert unknown_fields(spec_only, schema) == [], f"{obj['kind']} {obj['metadata']['name']}"


def pods(obj: dict) -> list[dict]:
    """The pod-level specs of a workload: Deployment/Job templates, the predictor and its canaries."""
    if obj["kind"] in ("Deployment", "Job"):
        return [obj["spec"]["template"]["spec"]]
    if obj["kind"] == "InferenceService":
        return [obj["spec"]["predictor"]] + [c["predictor"] for c in obj["spec"].get("canary", [])]
    return []


def deploy_states() -> dict[str, list[dict]]:
    """Every InferenceService (and its route) the deploy step leaves, transition by transition."""
    uri = {v: bundle_uri(SETTINGS.bundle_root, SETTINGS.name, v) for v in "345"}
    created = inference_service(SETTINGS, "3", uri["3"])
    canary = merge_patch(created, canary_patch(SETTINGS, "4", uri["4"], 10))
    promoted = merge_patch(canary, promote_patch(canary))
    rolled_back = merge_patch(canary, rollback_patch(canary))
    replacing = merge_patch(promoted, canary_patch(SETTINGS, "5", uri["5"], 100))
    replaced = merge_patch(replacing, promote_patch(replacing))
    return {
        "deploy-create": [created, traffic_route(SETTINGS, "3")],
        "deploy-canary": [canary, traffic_route(SETTINGS, "3", "4", 10)],
        "deploy-promote": [promoted, traffic_route(SETTINGS, "4")],
        "deploy-rollback": [rolled_back, traffic_route(SETTINGS, "3")],
        "deploy-replacing": [replacing, traffic_route(SETTINGS, "4")],
        "deploy-replaced": [replaced, traffic_route(SETTINGS, "5")],
    }


TRANSITIONS = [
    ("deploy-create", "deploy-canary"),
    ("deploy-canary", "deploy-promote"),
    ("deploy-canary", "deploy-rollback"),
    ("deploy-promote", "deploy-replacing"),
    ("deploy-replacing", "deploy-replaced"),
    ("chart", "chart-canary"),
]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    """Every rendering users apply: both overlays, the chart (stable, canary, standalone) and every state
    the deploy step leaves."""
    return {
        "kind": kustomize(REPO / "manifests/overlays/kind"),
        "minikube": kustomize(REPO / "manifests/overlays/minikube"),
        "chart": helm_render(CHART_VALUES),
        "chart-canary": helm_render(CANARY_VALUES),
        "chart-standalone": helm_render({**CHART_VALUES, "standalone": True}),
        # make cluster-infra's Gateway (its GatewayClass has no schema in ../shared)
        "gateway": [
            d
            for d in yaml.safe_load_all((REPO / "cluster/gateway.yaml").read_text())
            if d["kind"] == "Gateway"
        ],
        **deploy_states(),
    }


def only(objects: list[dict], kind: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def test_every_rendering_validates_against_its_schema(rendered) -> None:
    for objects in rendered.values():
        for obj in objects:
            validate(obj)
    kinds = {obj["kind"] for obj in rendered["kind"]}
    assert {"Deployment", "Job", "PodMonitor", "NetworkPolicy", "Role", "RoleBinding", "ConfigMap"} <= kinds
    assert {obj["kind"] for obj in rendered["chart"]} == {"InferenceService", "HTTPRoute"}
    assert {obj["kind"] for obj in rendered["chart-standalone"]} == {
        "InferenceService",
        "HTTPRoute",
        "PodMonitor",
        "ServiceAccount",
        "NetworkPolicy",
    }


def test_schema_validation_catches_a_wrong_inference_service_and_route() -> None:
    wrong = inference_service(SETTINGS, "1", "s3://mlflow/serving/sentiment/1")
    wrong["spec"]["predictor"]["scaleMetric"] = "gpu"  # not in the enum
    with pytest.raises(jsonschema.ValidationError):
        validate(wrong)
    typo = inference_service(SETTINGS, "1", "s3://mlflow/serving/sentiment/1")
    typo["spec"]["predictor"]["maxReplica"] = 3  # the API server would drop it silently
    with pytest.raises(AssertionError, match="InferenceService"):
        validate(typo)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {}})
    route = traffic_route(SETTINGS, "1", "2", 10)
    route["spec"]["rules"][1]["backendRefs"][0]["weight"] = -1  # Gateway API: 0 to 1,000,000
    with pytest.raises(jsonschema.ValidationError, match="-1"):
        validate(route)
    slow = traffic_route(SETTINGS, "1")
    slow["spec"]["rules"][0]["timeouts"]["request"] = "1 minute"  # a Gateway API Duration is "60s"
    with pytest.raises(jsonschema.ValidationError, match="1 minute"):
        validate(slow)


def test_every_inference_service_passes_kserve_v0_20_admission(rendered) -> None:
    """What the webhook checks on create and on each update (the transitions the deploy step and a helm
    upgrade make): stable storage URI for a canary and a rename, no canary autoscaling, traffic <= 100,
    unique names, Standard mode. The project's earlier InferenceService (MODEL_URI, no STORAGE_URI) fails
    here, as it failed on a real KServe."""
    for name, objects in rendered.items():
        if any(o["kind"] == "InferenceService" for o in objects):
            assert admission_errors(None, only(objects, "InferenceService")) == [], name
    for old, new in TRANSITIONS:
        old_isvc, new_isvc = (only(rendered[n], "InferenceService") for n in (old, new))
        assert admission_errors(old_isvc, new_isvc) == [], (old, new)
    earlier = inference_service(SETTINGS, "3", "s3://mlflow/serving/sentiment/3")
    container = earlier["spec"]["predictor"]["containers"][0]
    container["env"] = [{"name": "MODEL_URI", "value": "models:/sentiment/3"}, *container["env"][1:]]
    with_canary = merge_patch(earlier, canary_patch(SETTINGS, "4", "s3://mlflow/serving/sentiment/4", 10))
    assert admission_errors(earlier, with_canary) == [
        "canary requires a stable predictor with a model (multi-model serving is not supported with canary)"
    ]


def test_every_canary_ships_its_weighted_route(rendered) -> None:
    """KServe v0.20.0's HTTPRoute reconciler writes one backend, the stable predictor's Service
    (httproute_reconciler.go createRawPredictorHTTPRoute); weighted canaries (kserve#5912) are in no
    release. So every InferenceService is cluster-local (no KServe route) and every rendering with a
    canary carries our route, stable and canary weighted by the canary's share."""
    for name, objects in rendered.items():
        if not any(o["kind"] == "InferenceService" for o in objects):
            continue
        isvc, route = only(objects, "InferenceService"), only(objects, "HTTPRoute")
        assert isvc["metadata"]["labels"]["networking.kserve.io/visibility"] == "cluster-local", name
        stable = f"sentiment-{isvc['spec']['predictor']['name']}-predictor"
        for rule in route["spec"]["rules"]:
            shares = {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}
            assert sum(shares.values()) == 100 and stable in shares, name
            for canary in isvc["spec"].get("canary", []):
                if canary["trafficPercent"] < 100:  # 100 sizes a replacement; the route moves after Ready
                    assert (
                        shares[f"sentiment-{canary['predictor']['name']}-predictor"]
                        == canary["trafficPercent"]
                    )
        assert route["spec"]["hostnames"] == ["sentiment-mlops.example.com"]
    rest_rule = only(rendered["chart-canary"], "HTTPRoute")["spec"]["rules"][1]
    assert rest_rule["backendRefs"] == [
        {"kind": "Service", "name": "sentiment-v3-predictor", "port": 80, "weight": 90},
        {"kind": "Service", "name": "sentiment-v4-predictor", "port": 80, "weight": 10},
    ]


def test_the_chart_installs_next_to_make_platform(rendered) -> None:
    """`make platform` owns the predictor's ServiceAccount, PodMonitor and NetworkPolicy; the chart's
    default rendering must not claim them (Helm refuses objects it does not own)."""
    platform = {(o["kind"], o["metadata"]["name"]) for o in rendered["kind"]}
    for name in ("chart", "chart-canary"):
        assert not platform & {(o["kind"], o["metadata"]["name"]) for o in rendered[name]}, name
    standalone = {(o["kind"], o["metadata"]["name"]) for o in rendered["chart-standalone"]}
    assert platform & standalone == {
        ("ServiceAccount", "sentiment-predictor"),
        ("PodMonitor", "sentiment-predictor"),
        ("NetworkPolicy", "sentiment-predictor"),
    }


def test_workloads_are_pinned_non_root_limited_and_probed(rendered) -> None:
    for objects in rendered.values():
        assert not [o for o in objects if o["kind"] == "Secret"], "credentials are made by make secrets"
        for obj in objects:
            for pod in pods(obj):
                assert pod["securityContext"]["runAsNonRoot"] is True
                for container in pod["containers"]:
                    image = container["image"]
                    assert ":" in image and not image.endswith(":latest"), image
                    if obj["kind"] == "InferenceService":  # the tag make images built, never a default
                        assert image == SETTINGS.image, image
                    assert container["resources"]["limits"], container["name"]
                    assert container["securityContext"]["allowPrivilegeEscalation"] is False
                    assert container["securityContext"]["readOnlyRootFilesystem"] is True
                    if obj["kind"] in LONG_RUNNING:
                        assert container["readinessProbe"] and container["livenessProbe"], container["name"]


def test_helm_chart_lints_and_refuses_missing_versions() -> None:
    import helm_python

    for values in (CHART_VALUES, CANARY_VALUES):
        report = helm_python.lint(str(CHART), values, strict=True)
        assert report["errors"] == [] and not [m for m in report["messages"] if m["severity"] >= 2], report
    with pytest.raises(helm_python.HelmError, match=r"image\.tag is required"):
        helm_render({"version": "3"})
    with pytest.raises(helm_python.HelmError, match="version is required"):
        helm_render({"image": {"tag": "0123456789ab"}})
    with pytest.raises(helm_python.HelmError, match=r"canary\.version"):
        helm_render({**CHART_VALUES, "canary": {"percent": 10}})
    with pytest.raises(helm_python.HelmError, match=r"canary\.percent must be 1-99"):
        helm_render({**CHART_VALUES, "canary": {"percent": 100, "version": "4"}})


def test_helm_and_the_deploy_step_describe_the_same_objects(rendered) -> None:
    def comparable(obj: dict) -> dict:
        return {
            "metadata": {k: obj["metadata"].get(k) for k in ("name", "annotations", "labels")},
            "spec": obj["spec"],
        }

    for chart, deployed in (("chart", "deploy-create"), ("chart-canary", "deploy-canary")):
        for kind in ("InferenceService", "HTTPRoute"):
            assert comparable(only(rendered[chart], kind)) == comparable(only(rendered[deployed], kind)), kind


def test_compiled_pipeline_runs_every_step_in_the_train_image_with_the_minio_secret(tmp_path: Path) -> None:
    from components import TRAIN_IMAGE
    from pipelines.params import PipelineParams
    from pipelines.pipeline import OBJECT_STORE_SECRET, compile_pipeline, training_pipeline

    package = compile_pipeline(str(tmp_path / "p.yaml"), training_pipeline(PipelineParams.load().cluster))
    pipeline_spec, platform_spec = yaml.safe_load_all(Path(package).read_text())
    executors = pipeline_spec["deploymentSpec"]["executors"]
    assert len(executors) >= 10 and "exec-deploy" in executors
    assert {e["container"]["image"] for e in executors.values()} == {TRAIN_IMAGE}
    kubernetes = platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(kubernetes) == set(executors)
    for config in kubernetes.values():
        (secret,) = config["secretAsEnv"]
        assert secret["secretName"] == OBJECT_STORE_SECRET
        assert {k["envVar"] for k in secret["keyToEnv"]} == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
        assert config["configMapAsEnv"][0]["keyToEnv"][0]["envVar"] == "MLFLOW_S3_ENDPOINT_URL"


def tool(name: str) -> str:
    path = os.environ.get(name.upper()) or (TOOLS / name if (TOOLS / name).exists() else shutil.which(name))
    if not path:
        pytest.fail(f"{name} is not installed: `make install` puts it in {TOOLS}")
    return str(path)


def checkov(*paths: Path) -> dict[str, dict]:
    """Run checkov once over ``paths`` with the committed skip list; return, per file name, {'passed': n,
    'failed': [check id and resource]}, and the parsing errors under ``"parsing_errors"``."""
    result = subprocess.run(
        [
            tool("checkov"),
            "--config-file",
            str(REPO / ".checkov.yaml"),
            "--skip-download",
            "--output",
            "json",
            "--framework",
            "kubernetes",
            "dockerfile",
            *[a for p in paths for a in ("--file", str(p))],
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    reports = json.loads(result.stdout) if result.stdout.strip() else []
    reports = reports if isinstance(reports, list) else [reports]
    by_file: dict[str, dict] = {p.name: {"passed": 0, "failed": []} for p in paths}
    for report in reports:
        for check in report.get("results", {}).get("passed_checks", []):
            by_file[Path(check["file_path"]).name]["passed"] += 1
        for check in report.get("results", {}).get("failed_checks", []):
            by_file[Path(check["file_path"]).name]["failed"].append(
                f"{check['check_id']} {check['resource']}"
            )
    by_file["parsing_errors"] = sum(r["summary"]["parsing_errors"] for r in reports if "summary" in r)
    return by_file


CARELESS = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "careless", "namespace": "mlops"},
    "spec": {
        "selector": {"matchLabels": {"app": "x"}},
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {
                "containers": [
                    {"name": "x", "image": "python:latest", "securityContext": {"privileged": True}}
                ]
            },
        },
    },
}


@pytest.fixture(scope="module")
def checkov_report(rendered, tmp_path_factory) -> dict[str, dict]:
    """One checkov run over every rendering, both Dockerfiles and a careless Deployment (its control)."""
    folder = tmp_path_factory.mktemp("checkov")
    files = [write_yaml(folder / f"{name}.yaml", objects) for name, objects in rendered.items()]
    careless = write_yaml(folder / "careless.yaml", [CARELESS])
    return checkov(*files, careless, REPO / "Dockerfile.train", REPO / "Dockerfile.serve")


def write_yaml(path: Path, objects: list[dict]) -> Path:
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return path


def test_checkov_passes_the_manifests_the_chart_and_the_dockerfiles(checkov_report) -> None:
    ours = {
        name: report
        for name, report in checkov_report.items()
        if name not in ("careless.yaml", "parsing_errors")
    }
    assert [failure for report in ours.values() for failure in report["failed"]] == []
    assert checkov_report["parsing_errors"] == 0
    assert sum(report["passed"] for report in ours.values()) > 300
    # CKV_DOCKER_2 (HEALTHCHECK) is skipped for the batch train image only (.checkov.yaml): the serve
    # image must have one.
    assert "\nHEALTHCHECK " in (REPO / "Dockerfile.serve").read_text()


def test_checkov_fails_a_careless_deployment(checkov_report) -> None:
    failed = " ".join(checkov_report["careless.yaml"]["failed"])
    for check in (
        "CKV_K8S_14",
        "CKV_K8S_16",
        "CKV_K8S_11",
        "CKV_K8S_8",
    ):  # latest tag, privileged, limits, probe
        assert check in failed


def hadolint(*dockerfiles: Path) -> subprocess.CompletedProcess:
    config = ["--config", str(REPO / ".hadolint.yaml")]
    return subprocess.run([tool("hadolint"), *config, *map(str, dockerfiles)], capture_output=True, text=True)


def test_hadolint_passes_both_dockerfiles_and_fails_a_careless_one(tmp_path: Path) -> None:
    ours = hadolint(REPO / "Dockerfile.train", REPO / "Dockerfile.serve")
    assert ours.returncode == 0, ours.stdout + ours.stderr
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install torch\nADD . /app\n")
    result = hadolint(careless)
    assert result.returncode != 0 and "DL3007" in result.stdout and "DL3013" in result.stdout


@pytest.mark.parametrize(
    ("target", "missing"), [("cluster-up", "kubectl"), ("images", "docker"), ("cluster-down", "kind")]
)
def test_cluster_targets_name_the_missing_tool(target: str, missing: str) -> None:
    """No cluster tool is on an empty PATH: each target stops at once and says which tool it needs."""
    result = subprocess.run(
        [shutil.which("make"), "--no-print-directory", target],
        cwd=REPO,
        env={"PATH": "/nonexistent", "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"make {target}: '{missing}' is not installed" in result.stderr


def test_both_pod_monitors_label_every_series_with_the_model(rendered) -> None:
    """The dashboards' $model variable and every panel filter on the label this relabeling adds."""
    relabel = {
        "sourceLabels": ["__meta_kubernetes_pod_label_serving_kserve_io_inferenceservice"],
        "targetLabel": "model",
    }
    monitors = [d for docs in rendered.values() for d in docs if d["kind"] == "PodMonitor"]
    assert len(monitors) >= 2
    for monitor in monitors:
        assert relabel in monitor["spec"]["podMetricsEndpoints"][0]["relabelings"]
