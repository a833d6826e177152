"""The Kubernetes objects that serve a model version, as plain dicts: the KServe InferenceService (Standard
mode, one predictor per registered version, canaries in ``spec.canary``) and the Gateway API HTTPRoute
that splits traffic between the stable and the canary predictor's Services by weight.

Read against KServe v0.20.0's source (the controller `make cluster-infra` installs):
- a custom container's model is the ``STORAGE_URI`` env of ``kserve-container``
  (pkg/apis/serving/v1beta1/predictor_custom.go ``GetStorageUri``); the storage initializer downloads it to
  /mnt/models and rewrites the env to that folder (pkg/webhook/admission/pod/storage_initializer_injector.go);
- v0.20.0 writes no weighted HTTPRoute for canaries (pkg/controller/v1beta1/inferenceservice/reconcilers/
  ingress/httproute_reconciler.go: one backend, the stable predictor's Service); weighted canary routing
  is kserve#5912, on master only. So the InferenceService is labelled cluster-local (that reconciler then
  creates no route, its ``Reconcile``) and ``traffic_route`` is the route, with ``weight`` per backend;
- each predictor's Service is ``<isvc>-<predictor name>-predictor`` (pkg/constants/constants.go
  ``PredictorServiceName``), port 80 for REST and the h2c container port for gRPC
  (reconcilers/service/service_reconciler.go).
"""

from dataclasses import dataclass

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
ROUTE_GROUP, ROUTE_VERSION, ROUTE_PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
AUTOSCALING_FIELDS = ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "autoScaling")
CLUSTER_LOCAL = {"networking.kserve.io/visibility": "cluster-local"}
REST_PORT, GRPC_PORT = 80, 8081  # the predictor Service's ports (container ports 8080 and 8081)
# The labels KServe puts on a predictor's Deployment, Service and HPA ({name}: the InferenceService's), as
# its orphan cleanup selects them (pkg/constants/constants.go InferenceServicePodLabelKey,
# KServiceComponentLabel)
COMPONENT_LABELS = {"serving.kserve.io/inferenceservice": "{name}", "component": "predictor"}


@dataclass(frozen=True)
class ServingSettings:
    """Where and how the predictor runs; the Helm chart renders the same objects (tested)."""

    image: str
    name: str = "sentiment"
    namespace: str = "mlops"
    bundle_root: str = "s3://mlflow/serving"
    s3_endpoint: str = "http://minio.mlops.svc.cluster.local:9000"
    prediction_log: str = "s3://predictions/sentiment"
    credentials_secret: str = "minio-credentials"
    admin_token_secret: str = (
        "sentiment-predictor-token"  # keys "token" (optional: serving/auth.py), "answer-key"
    )
    service_account: str = "sentiment-predictor"
    gateway: str = "kserve/kserve-ingress-gateway"
    domain: str = "example.com"
    min_replicas: int = 1
    max_replicas: int = 4
    scale_metric: str = "cpu"
    scale_target: int = 70
    request_timeout: str = "60s"  # as KServe's routes (httproute_reconciler.go); Envoy's default: 15 s

    @property
    def host(self) -> str:
        """The route's host name, as KServe would name it: ``<name>-<namespace>.<domain>``."""
        return f"{self.name}-{self.namespace}.{self.domain}"


def predictor_name(version: str) -> str:
    """The predictor of registry version 3 is ``v3`` (its Deployment and Service: ``<isvc>-v3-predictor``)."""
    return f"v{version}"


def service_name(settings: ServingSettings, version: str) -> str:
    return f"{settings.name}-{predictor_name(version)}-predictor"


def predictor_container(settings: ServingSettings, storage_uri: str) -> dict:
    """The kserve-container: the serve image on one worker, serving the bundle at ``storage_uri``."""

    def secret(key: str) -> dict:
        return {"name": key, "valueFrom": {"secretKeyRef": {"name": settings.credentials_secret, "key": key}}}

    def probe(path: str, **timing) -> dict:
        return {"httpGet": {"path": path, "port": 8080}, **timing}

    return {
        "name": "kserve-container",
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            f"--model_name={settings.name}",
            "--http_port=8080",
            "--grpc_port=8081",
            "--workers=1",
            "--reload_interval_seconds=0",
        ],
        "env": [
            {"name": "STORAGE_URI", "value": storage_uri},
            {"name": "MLFLOW_S3_ENDPOINT_URL", "value": settings.s3_endpoint},
            {"name": "PREDICTION_LOG", "value": settings.prediction_log},
            secret("AWS_ACCESS_KEY_ID"),
            secret("AWS_SECRET_ACCESS_KEY"),
            {
                "name": "ADMIN_TOKEN",
                "valueFrom": {
                    "secretKeyRef": {"name": settings.admin_token_secret, "key": "token", "optional": True}
                },
            },
            # every replica signs and verifies answer ids with it (serving/answer_ids.py)
            {
                "name": "ANSWER_KEY",
                "valueFrom": {"secretKeyRef": {"name": settings.admin_token_secret, "key": "answer-key"}},
            },
        ],
        "ports": [
            {"name": "http1", "containerPort": 8080, "protocol": "TCP"},
            {"name": "h2c", "containerPort": GRPC_PORT, "protocol": "TCP"},
        ],
        # the model's readiness: kserve's server-level /v2/health/ready is true before the model loads
        "readinessProbe": probe(f"/v2/models/{settings.name}/ready", periodSeconds=5, failureThreshold=3),
        "livenessProbe": probe("/v2/health/live", initialDelaySeconds=10, periodSeconds=15),
        "startupProbe": probe("/v2/health/live", periodSeconds=5, failureThreshold=60),
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "3Gi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def predictor(settings: ServingSettings, version: str, storage_uri: str) -> dict:
    """The stable predictor serving ``version`` from its bundle, named after it, with autoscaling."""
    return {
        "name": predictor_name(version),
        "serviceAccountName": settings.service_account,
        "minReplicas": settings.min_replicas,
        "maxReplicas": settings.max_replicas,
        "scaleMetric": settings.scale_metric,
        "scaleTarget": settings.scale_target,
        "labels": {"app.kubernetes.io/name": "sentiment-predictor"},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [predictor_container(settings, storage_uri)],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def inference_service(settings: ServingSettings, version: str, storage_uri: str) -> dict:
    """The InferenceService serving ``version`` (what a first rollout creates)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {
            "name": settings.name,
            "namespace": settings.namespace,
            "annotations": {
                "serving.kserve.io/deploymentMode": "Standard",
                "serving.kserve.io/autoscalerClass": "hpa",
            },
            "labels": {
                "app.kubernetes.io/name": "sentiment-predictor",
                "app.kubernetes.io/part-of": "sentiment-mlops",
                **CLUSTER_LOCAL,
            },
        },
        "spec": {"predictor": predictor(settings, version, storage_uri)},
    }


def storage_uri_of(predictor_spec: dict) -> str | None:
    """The STORAGE_URI a predictor spec serves (what KServe's GetStorageUri reads)."""
    for container in predictor_spec.get("containers", []):
        if container.get("name") == "kserve-container":
            for env in container.get("env", []):
                if env["name"] == "STORAGE_URI":
                    return env.get("value")
    return None


def version_of(predictor_spec: dict) -> str:
    """The registry version a predictor serves, from its name (``v3`` -> ``3``)."""
    return predictor_spec["name"].removeprefix("v")


def canary_patch(settings: ServingSettings, version: str, storage_uri: str, percent: int) -> dict:
    """Merge patch that adds ``version`` as the only canary with ``percent`` of the traffic (KServe sizes
    its replicas from it: ceil(stable minReplicas * percent / 100); the route sends the traffic). The
    canary carries no autoscaling fields (the webhook refuses them)."""
    if not 0 < percent <= 100:
        raise ValueError(f"canary percent must be between 1 and 100, not {percent}")
    canary = {
        k: v for k, v in predictor(settings, version, storage_uri).items() if k not in AUTOSCALING_FIELDS
    }
    return {"spec": {"canary": [{"trafficPercent": percent, "predictor": canary}]}}


def full_size_patch(current: dict) -> dict:
    """Merge patch that gives the canary ``trafficPercent: 100``: KServe then runs as many replicas of it as
    the stable predictor's ``minReplicas`` (before a promote moves all traffic onto it)."""
    canaries = current["spec"].get("canary") or []
    if not canaries:
        raise ValueError(f"{current['metadata']['name']} has no canary to size")
    return {"spec": {"canary": [{**canaries[0], "trafficPercent": 100}]}}


def promote_patch(current: dict) -> dict:
    """Merge patch that makes the canary the stable predictor, with the stable one's autoscaling, and
    drops it: the name and the storage URI change together, as the webhook requires."""
    canaries = current["spec"].get("canary") or []
    if not canaries:
        raise ValueError(f"{current['metadata']['name']} has no canary to promote")
    stable = current["spec"]["predictor"]
    scaling = {k: stable[k] for k in AUTOSCALING_FIELDS if k in stable}
    return {"spec": {"predictor": {**canaries[0]["predictor"], **scaling}, "canary": None}}


def rollback_patch(current: dict) -> dict:
    """Merge patch that removes the canary; the stable predictor takes all traffic again."""
    if not current["spec"].get("canary"):
        raise ValueError(f"{current['metadata']['name']} has no canary to roll back")
    return {"spec": {"canary": None}}


def traffic_route(
    settings: ServingSettings, stable: str, canary: str | None = None, percent: int = 0
) -> dict:
    """The HTTPRoute on KServe's Gateway for ``settings.host``: gRPC (matched as KServe matches it) to
    the predictors' h2c port, everything else to port 80, each split ``100 - percent`` / ``percent``
    between the stable and the canary version's Services."""
    gateway_namespace, gateway_name = settings.gateway.split("/")

    def backends(port: int) -> list[dict]:
        weights = [(stable, 100 - percent)] + ([(canary, percent)] if canary else [])
        return [
            {"kind": "Service", "name": service_name(settings, v), "port": port, "weight": w}
            for v, w in weights
        ]

    grpc = {
        "path": {"type": "RegularExpression", "value": r"^/inference\.GRPCInferenceService/.*$"},
        "headers": [{"type": "RegularExpression", "name": "content-type", "value": "^application/grpc.*"}],
    }
    rest = {"path": {"type": "PathPrefix", "value": "/"}}
    timeouts = {"request": settings.request_timeout}
    return {
        "apiVersion": f"{ROUTE_GROUP}/{ROUTE_VERSION}",
        "kind": "HTTPRoute",
        "metadata": {
            "name": settings.name,
            "namespace": settings.namespace,
            "labels": {"app.kubernetes.io/part-of": "sentiment-mlops"},
        },
        "spec": {
            "parentRefs": [
                {
                    "group": ROUTE_GROUP,
                    "kind": "Gateway",
                    "namespace": gateway_namespace,
                    "name": gateway_name,
                }
            ],
            "hostnames": [settings.host],
            "rules": [
                {"matches": [match], "backendRefs": backends(port), "timeouts": timeouts}
                for match, port in ((grpc, GRPC_PORT), (rest, REST_PORT))
            ],
        },
    }
