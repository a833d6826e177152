"""deploy: roll a registered model version out as a KServe InferenceService (Standard mode): create it
when none exists, else start the new version as a canary next to the serving one (``spec.canary``), and
promote or roll back that canary. Talks to the Kubernetes API with the official client; the pipeline's
deploy step and `make deploy / canary / promote / rollback / status` both use it.

    python -m components.deploy rollout --model-uri models:/sentiment/3 --image sentiment-mlops-serve:abc
    python -m components.deploy {promote,rollback,status} [--name sentiment] [--namespace mlops]
"""

import argparse
import copy
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
AUTOSCALING_FIELDS = ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "autoScaling")


@dataclass(frozen=True)
class ServingSettings:
    """Where and how the predictor runs; the defaults match manifests/serving and the Helm chart."""

    name: str = "sentiment"
    namespace: str = "mlops"
    image: str = "sentiment-mlops-serve:dev"
    tracking_uri: str = "http://mlflow.mlops.svc.cluster.local:5000"
    s3_endpoint: str = "http://minio.mlops.svc.cluster.local:9000"
    prediction_log: str = "s3://predictions/sentiment"
    credentials_secret: str = "minio-credentials"
    service_account: str = "sentiment-predictor"
    min_replicas: int = 1
    max_replicas: int = 4
    scale_metric: str = "cpu"
    scale_target: int = 70


def predictor_container(settings: ServingSettings, model_uri: str) -> dict:
    """The kserve-container: the serve image on one worker, its model URI, MLflow and MinIO access."""

    def secret(key: str) -> dict:
        return {"name": key, "valueFrom": {"secretKeyRef": {"name": settings.credentials_secret, "key": key}}}

    def probe(path: str, **timing) -> dict:
        return {"httpGet": {"path": path, "port": 8080}, **timing}

    return {
        "name": "kserve-container",
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [f"--model_name={settings.name}", "--http_port=8080", "--grpc_port=8081", "--workers=1",
                 "--reload_interval_seconds=0"],
        "env": [
            {"name": "MODEL_URI", "value": model_uri},
            {"name": "MLFLOW_TRACKING_URI", "value": settings.tracking_uri},
            {"name": "MLFLOW_S3_ENDPOINT_URL", "value": settings.s3_endpoint},
            {"name": "PREDICTION_LOG", "value": settings.prediction_log},
            secret("AWS_ACCESS_KEY_ID"),
            secret("AWS_SECRET_ACCESS_KEY"),
        ],
        "ports": [{"name": "http1", "containerPort": 8080, "protocol": "TCP"},
                  {"name": "h2c", "containerPort": 8081, "protocol": "TCP"}],
        "readinessProbe": probe("/v2/health/ready", periodSeconds=5, failureThreshold=3),
        "livenessProbe": probe("/v2/health/live", initialDelaySeconds=10, periodSeconds=15),
        "startupProbe": probe("/v2/health/live", periodSeconds=5, failureThreshold=60),
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "3Gi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }  # fmt: skip


def inference_service(settings: ServingSettings, model_uri: str) -> dict:
    """The whole InferenceService serving ``model_uri`` (what manifests/serving declares)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {
            "name": settings.name,
            "namespace": settings.namespace,
            "annotations": {"serving.kserve.io/deploymentMode": "Standard",
                            "serving.kserve.io/autoscalerClass": "hpa"},
            "labels": {"app.kubernetes.io/name": "sentiment-predictor",
                       "app.kubernetes.io/part-of": "sentiment-mlops"},
        },
        "spec": {
            "predictor": {
                "serviceAccountName": settings.service_account,
                "minReplicas": settings.min_replicas,
                "maxReplicas": settings.max_replicas,
                "scaleMetric": settings.scale_metric,
                "scaleTarget": settings.scale_target,
                "labels": {"app.kubernetes.io/name": "sentiment-predictor"},
                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [predictor_container(settings, model_uri)],
                "volumes": [{"name": "tmp", "emptyDir": {}}],
            }
        },
    }  # fmt: skip


def served_model_uri(predictor: dict) -> str | None:
    """The MODEL_URI a predictor spec serves."""
    for env in predictor["containers"][0].get("env", []):
        if env["name"] == "MODEL_URI":
            return env.get("value")
    return None


def pinned_model_uri(model_uri: str) -> str:
    """``models:/<name>@<alias>`` resolved to ``models:/<name>/<version>`` in MLflow's registry (a canary
    and its stable predictor must each serve one fixed version); other URIs as they are."""
    alias = re.fullmatch(r"models:/([^/@]+)@(.+)", model_uri)
    if not alias:
        return model_uri
    import mlflow

    version = mlflow.MlflowClient().get_model_version_by_alias(alias.group(1), alias.group(2)).version
    return f"models:/{alias.group(1)}/{version}"


def predictor_name(model_uri: str) -> str:
    """A DNS-label name for the predictor serving ``model_uri``: models:/sentiment/3 -> v3."""
    version = re.fullmatch(r"models:/[^/@]+/(\d+)", model_uri)
    if not version:
        raise ValueError(f"a rollout needs a pinned version (models:/<name>/<version>), not {model_uri!r}")
    return f"v{version.group(1)}"


def versioned_predictor(predictor: dict, model_uri: str, image: str) -> dict:
    """A copy of ``predictor`` (pod, probes, resources, security) serving ``model_uri`` from ``image``,
    named after the version."""
    predictor = copy.deepcopy(predictor)
    predictor["name"] = predictor_name(model_uri)
    container = predictor["containers"][0]
    container["image"] = image
    container["env"] = [{"name": "MODEL_URI", "value": model_uri}] + [
        e for e in container["env"] if e["name"] != "MODEL_URI"
    ]
    return predictor


def versioned_inference_service(settings: ServingSettings, model_uri: str) -> dict:
    """The InferenceService serving one pinned version, its predictor named after it (what a rollout
    creates)."""
    body = inference_service(settings, model_uri)
    body["spec"]["predictor"]["name"] = predictor_name(model_uri)
    return body


def canary_patch(current: dict, model_uri: str, image: str, percent: int) -> dict:
    """Merge patch that adds ``model_uri`` as the only canary, taking ``percent`` of the traffic. The
    canary has no autoscaling fields: KServe derives its replicas from its traffic share."""
    if not 0 < percent < 100:
        raise ValueError(f"canary percent must be between 1 and 99, not {percent}")
    predictor = versioned_predictor(current["spec"]["predictor"], model_uri, image)
    canary = {k: v for k, v in predictor.items() if k not in AUTOSCALING_FIELDS}
    return {"spec": {"canary": [{"trafficPercent": percent, "predictor": canary}]}}


def promote_patch(current: dict) -> dict:
    """Merge patch that makes the canary the serving predictor (keeping its autoscaling) and drops it."""
    canaries = current["spec"].get("canary") or []
    if not canaries:
        raise ValueError(f"{current['metadata']['name']} has no canary to promote")
    return {"spec": {"predictor": canaries[0]["predictor"], "canary": None}}


def rollback_patch(current: dict) -> dict:
    """Merge patch that removes the canary; the serving predictor takes all traffic again."""
    if not current["spec"].get("canary"):
        raise ValueError(f"{current['metadata']['name']} has no canary to roll back")
    return {"spec": {"canary": None}}


class InferenceServices:
    """get / create / merge-patch of InferenceServices through the Kubernetes client."""

    def __init__(self, api_client=None):
        from kubernetes import client

        self.api = client.CustomObjectsApi(api_client)

    def get(self, name: str, namespace: str) -> dict | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, body: dict) -> dict:
        namespace = body["metadata"]["namespace"]
        return self.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def patch(self, name: str, namespace: str, body: dict) -> dict:
        return self.api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body)

    def existing(self, name: str, namespace: str) -> dict:
        current = self.get(name, namespace)
        if current is None:
            raise ValueError(f"no InferenceService {namespace}/{name}: deploy one first (make deploy)")
        return current


def rollout(
    services: InferenceServices, settings: ServingSettings, model_uri: str, canary_percent: int
) -> str:
    """Serve ``model_uri``: create the InferenceService, or add it as a canary (``canary_percent`` > 0) or
    replace the serving version (0). Returns what was done: created, canary, replaced or unchanged."""
    current = services.get(settings.name, settings.namespace)
    if current is None:
        services.create(versioned_inference_service(settings, model_uri))
        return "created"
    if served_model_uri(current["spec"]["predictor"]) == model_uri:
        return "unchanged"
    if canary_percent:
        patch = canary_patch(current, model_uri, settings.image, canary_percent)
        services.patch(settings.name, settings.namespace, patch)
        return "canary"
    predictor = versioned_predictor(current["spec"]["predictor"], model_uri, settings.image)
    services.patch(settings.name, settings.namespace, {"spec": {"predictor": predictor, "canary": None}})
    return "replaced"


def status(current: dict) -> dict:
    """Which version serves, which is canary with what share, and the Ready condition."""
    canaries = current["spec"].get("canary") or []
    conditions = {c["type"]: c["status"] for c in current.get("status", {}).get("conditions", [])}
    return {
        "name": current["metadata"]["name"],
        "serving": served_model_uri(current["spec"]["predictor"]),
        "canary": [{"model_uri": served_model_uri(c["predictor"]), "percent": c["trafficPercent"]}
                   for c in canaries],
        "ready": conditions.get("Ready", "Unknown"),
        "url": current.get("status", {}).get("url"),
    }  # fmt: skip


def deploy_champion(
    decision: dict, model_name: str, settings: ServingSettings, canary_percent: int, manifest_path: str
) -> str:
    """The pipeline's deploy step: when the gate promoted, serve the new version (a canary of
    ``canary_percent`` when one already serves). In a pod it calls the Kubernetes API; elsewhere (a local
    run) it writes the InferenceService it would create to ``manifest_path`` instead. Returns the outcome."""
    import yaml

    if not decision["promoted"]:
        Path(manifest_path).write_text(f"# not deployed: the gate kept the champion ({decision['reason']})\n")
        return "skipped"
    model_uri = f"models:/{model_name}/{decision['registered_version']}"
    manifest = versioned_inference_service(settings, model_uri)
    Path(manifest_path).write_text(yaml.safe_dump(manifest, sort_keys=False))
    if "KUBERNETES_SERVICE_HOST" not in os.environ:
        return "manifest"
    load_kube_config()
    return rollout(InferenceServices(), settings, model_uri, canary_percent)


def load_kube_config() -> None:
    """In a pod: its ServiceAccount; elsewhere: the current kubectl context."""
    from kubernetes import config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=("rollout", "promote", "rollback", "status"))
    parser.add_argument("--name", default=ServingSettings.name)
    parser.add_argument("--namespace", default=ServingSettings.namespace)
    parser.add_argument("--image", default=ServingSettings.image)
    parser.add_argument(
        "--model-uri", help="models:/<name>/<version> or @<alias>, resolved in MLflow (rollout)"
    )
    parser.add_argument("--canary-percent", type=int, default=0, help="rollout as a canary with this share")
    args = parser.parse_args(argv)
    load_kube_config()
    services = InferenceServices()
    settings = ServingSettings(name=args.name, namespace=args.namespace, image=args.image)
    if args.action == "rollout":
        if not args.model_uri:
            parser.error("rollout needs --model-uri")
        model_uri = pinned_model_uri(args.model_uri)
        print(f"{rollout(services, settings, model_uri, args.canary_percent)}: {model_uri}")
        return
    current = services.existing(args.name, args.namespace)
    if args.action == "promote":
        services.patch(args.name, args.namespace, promote_patch(current))
    elif args.action == "rollback":
        services.patch(args.name, args.namespace, rollback_patch(current))
    print(json.dumps(status(services.existing(args.name, args.namespace)), indent=2))


if __name__ == "__main__":
    main()
