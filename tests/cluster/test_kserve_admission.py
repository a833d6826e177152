"""Each ported KServe v0.20.0 admission rule (tests/kserve_admission.py) refuses what the upstream webhook
refuses, with its message; source: pkg/apis/serving/v1beta1/inference_service_validation.go at v0.20.0
(line numbers per rule), and the stand-in API server answers a refused write with 400 as the webhook does."""

from copy import deepcopy

import pytest
from kubernetes.client.exceptions import ApiException

from rollout.deploy import Cluster
from rollout.inference_service import ServingSettings, canary_patch, inference_service
from tests.kserve_admission import admission_errors, storage_uri
from tests.kube_stand_in import StandInApiServer, merge_patch

SETTINGS = ServingSettings(image="sentiment-mlops-serve:0123456789ab")
STABLE = inference_service(SETTINGS, "3", "s3://mlflow/serving/sentiment/3")
CANARY = merge_patch(STABLE, canary_patch(SETTINGS, "4", "s3://mlflow/serving/sentiment/4", 10))


def changed(obj: dict, *path_and_value) -> dict:
    """A copy of ``obj`` with the value at ``path`` (keys and list indices) replaced (None deletes)."""
    *path, value = path_and_value
    copy = deepcopy(obj)
    target = copy
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return copy


def test_storage_uri_is_the_kserve_container_env() -> None:
    """predictor_custom.go GetStorageUri (lines 75-88): STORAGE_URI of the container kserve-container."""
    assert storage_uri(STABLE["spec"]["predictor"]) == "s3://mlflow/serving/sentiment/3"
    renamed = changed(STABLE, "spec", "predictor", "containers", 0, "name", "server")
    assert storage_uri(renamed["spec"]["predictor"]) is None


@pytest.mark.parametrize(
    ("what", "isvc", "message"),
    [
        (
            "line 188: canaries need Standard mode",
            changed(CANARY, "metadata", "annotations", "serving.kserve.io/deploymentMode", "Serverless"),
            "canary is only supported in Standard deployment mode",
        ),
        (
            "line 193: the stable predictor needs a model",
            changed(
                CANARY, "spec", "predictor", "containers", 0, "env", [{"name": "MODEL_URI", "value": "x"}]
            ),
            "canary requires a stable predictor with a model",
        ),
        (
            "line 203: a canary needs a name",
            changed(CANARY, "spec", "canary", 0, "predictor", "name", None),
            "canary[0] predictor.name is required",
        ),
        (
            "line 207: canary names are unique",
            changed(CANARY, "spec", "canary", [CANARY["spec"]["canary"][0]] * 2),
            'canary predictor.name "v4" is duplicated',
        ),
        (
            "line 212: a canary is not the stable predictor",
            changed(CANARY, "spec", "canary", 0, "predictor", "name", "v3"),
            'canary predictor.name "v3" conflicts with stable predictor name',
        ),
        (
            "line 216: traffic 0-100",
            changed(CANARY, "spec", "canary", 0, "trafficPercent", 101),
            'canary "v4" trafficPercent must be between 0 and 100, got 101',
        ),
        (
            "line 235: no autoscaling on a canary",
            changed(CANARY, "spec", "canary", 0, "predictor", "maxReplicas", 3),
            'canary "v4" must not set maxReplicas (canary uses fixed replicas)',
        ),
        (
            "line 249: canary minReplicas <= stable",
            changed(CANARY, "spec", "canary", 0, "predictor", "minReplicas", 2),
            'canary "v4" minReplicas (2) must not exceed stable predictor minReplicas (1)',
        ),
        (
            "line 261: total traffic <= 100",
            changed(
                CANARY,
                "spec",
                "canary",
                [
                    CANARY["spec"]["canary"][0],
                    merge_patch(
                        CANARY["spec"]["canary"][0], {"trafficPercent": 95, "predictor": {"name": "v5"}}
                    ),
                ],
            ),
            "sum of canary trafficPercent values (105) must be <= 100",
        ),
    ],
)
def test_canary_rules(what: str, isvc: dict, message: str) -> None:
    errors = admission_errors(None, isvc)
    assert errors and errors[0].startswith(message), what
    assert admission_errors(None, CANARY) == []


def test_update_rules() -> None:
    """Lines 703-713: renaming the stable predictor needs a new storage URI; lines 691-701: the mode stays."""
    renamed = changed(STABLE, "spec", "predictor", "name", "v9")
    assert admission_errors(STABLE, renamed) == [
        "predictor.name change requires a model change (e.g. storageUri)"
    ]
    new_model = changed(
        renamed, "spec", "predictor", "containers", 0, "env", 0, "value", "s3://b/sentiment/9"
    )
    assert admission_errors(STABLE, new_model) == []
    serverless = changed(STABLE, "metadata", "annotations", "serving.kserve.io/deploymentMode", "Serverless")
    assert (
        "deploymentMode cannot be changed from 'Standard' to 'Serverless'"
        in admission_errors(STABLE, serverless)[0]
    )


def test_the_stand_in_refuses_like_the_webhook() -> None:
    api = StandInApiServer()
    try:
        cluster = Cluster(api.api_client)
        cluster.create(STABLE)
        with pytest.raises(ApiException) as refused:
            cluster.patch(SETTINGS, {"spec": {"predictor": {"name": "v9"}}})
        assert refused.value.status == 400
        assert "denied the request: predictor.name change requires a model change" in refused.value.body
        assert api.isvc()["spec"]["predictor"]["name"] == "v3"  # nothing stored
    finally:
        api.stop()
