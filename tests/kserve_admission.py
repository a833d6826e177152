"""The KServe admission-webhook rules that concern our InferenceService, ported from the controller
version `make cluster-infra` installs (kserve/kserve tag v0.20.0), with the upstream messages, so that the
tests refuse what the real webhook would refuse. Each rule names its source lines.

No API server or webhook can run here; tests/kube_stand_in.py applies these rules to every create and
patch, as the webhook would, and each rule has its own test in tests/cluster/test_kserve_admission.py.
"""

VALIDATION = "pkg/apis/serving/v1beta1/inference_service_validation.go@v0.20.0"
CUSTOM = "pkg/apis/serving/v1beta1/predictor_custom.go@v0.20.0"
CANARY_AUTOSCALING_FIELDS = ("maxReplicas", "scaleTarget", "scaleMetric", "autoScaling")


def storage_uri(predictor: dict) -> str | None:
    """A custom predictor's model: the STORAGE_URI env of the container named kserve-container (a single
    container is given that name by Default()): GetStorageUri, CUSTOM lines 69-88."""
    containers = predictor.get("containers") or []
    if len(containers) == 1 and not containers[0].get("name"):
        containers = [{**containers[0], "name": "kserve-container"}]
    for container in containers:
        if container.get("name") == "kserve-container":
            for env in container.get("env", []):
                if env.get("name") == "STORAGE_URI":
                    return env.get("value")
    return None


def predictor_storage_uri(predictor: dict) -> str:
    """getPredictorStorageURI, VALIDATION lines 715-726: the model's storageUri, else the implementation's."""
    model = predictor.get("model") or {}
    return model.get("storageUri") or storage_uri(predictor) or ""


def canary_errors(isvc: dict) -> list[str]:
    """validateCanarySpecs, VALIDATION lines 183-266 (the first error, as the webhook returns one)."""
    spec = isvc["spec"]
    canaries = spec.get("canary") or []
    if not canaries:
        return []
    mode = isvc["metadata"].get("annotations", {}).get("serving.kserve.io/deploymentMode")
    if mode != "Standard":  # line 188
        return ["canary is only supported in Standard deployment mode"]
    stable = spec["predictor"]
    if storage_uri(stable) is None and not stable.get("model"):  # line 193
        return [
            "canary requires a stable predictor with a model "
            "(multi-model serving is not supported with canary)"
        ]
    names, total = set(), 0
    for i, canary in enumerate(canaries):
        predictor = canary.get("predictor", {})
        name = predictor.get("name", "")
        if not name:  # line 203
            return [f"canary[{i}] predictor.name is required"]
        if name in names:  # line 207
            return [f'canary predictor.name "{name}" is duplicated']
        names.add(name)
        if name == stable.get("name", ""):  # line 212
            return [f'canary predictor.name "{name}" conflicts with stable predictor name']
        percent = canary.get("trafficPercent", 0)
        if not 0 <= percent <= 100:  # line 216
            return [f'canary "{name}" trafficPercent must be between 0 and 100, got {percent}']
        total += percent
        if predictor.get("workerSpec"):  # line 231
            return [f'canary "{name}" must not set workerSpec (multi-node is not yet supported for canary)']
        for field in CANARY_AUTOSCALING_FIELDS:  # lines 235-246
            if predictor.get(field):
                return [f'canary "{name}" must not set {field} (canary uses fixed replicas)']
        stable_min = stable.get("minReplicas", 1)
        if predictor.get("minReplicas") is not None and predictor["minReplicas"] > stable_min:  # line 249
            return [
                f'canary "{name}" minReplicas ({predictor["minReplicas"]}) must not exceed stable predictor '
                f"minReplicas ({stable_min})"
            ]
    if total > 100:  # line 261
        return [f"sum of canary trafficPercent values ({total}) must be <= 100"]
    return []


def update_errors(old: dict, new: dict) -> list[str]:
    """validatePredictorNameChange, VALIDATION lines 703-713: renaming the stable predictor needs a new
    model (storage URI). validateDeploymentMode, lines 691-701: the mode never changes."""
    old_mode = old.get("status", {}).get("deploymentMode") or old["metadata"].get("annotations", {}).get(
        "serving.kserve.io/deploymentMode"
    )
    new_mode = new["metadata"].get("annotations", {}).get("serving.kserve.io/deploymentMode")
    if old_mode and new_mode and old_mode != new_mode:
        return [f"update rejected: deploymentMode cannot be changed from '{old_mode}' to '{new_mode}'"]
    old_predictor, new_predictor = old["spec"]["predictor"], new["spec"]["predictor"]
    if old_predictor.get("name", "") != new_predictor.get("name", "") and predictor_storage_uri(
        old_predictor
    ) == predictor_storage_uri(new_predictor):
        return ["predictor.name change requires a model change (e.g. storageUri)"]
    return []


def admission_errors(old: dict | None, new: dict) -> list[str]:
    """What the webhook refuses of a create (``old`` None) or an update, plus our own rule that every
    InferenceService runs in Standard mode (the only mode that has canaries, line 188)."""
    errors = [] if old is None else update_errors(old, new)
    errors += canary_errors(new)
    mode = new["metadata"].get("annotations", {}).get("serving.kserve.io/deploymentMode")
    if mode != "Standard":
        errors.append(f"deploymentMode is {mode!r}: this project serves in Standard mode only")
    return errors
