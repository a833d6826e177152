"""The deploy step's calls to the Kubernetes API and the registry: create, canary, promote, roll back,
replace, each waiting for KServe's Ready before traffic or an alias moves, against the stand-in API server
(tests/kube_stand_in.py: KServe v0.20.0's admission rules and status) and a real MLflow registry."""

import re
from pathlib import Path

import mlflow
import pytest
import yaml

from core.decisions import GateDecision
from models.bundle import BUNDLE_FILE
from rollout.deploy import (
    CANARY_ALIAS,
    PRODUCTION_ALIAS,
    Cluster,
    DeployError,
    Registry,
    deploy_champion,
    promote,
    rollback,
    rollout,
    status,
)
from rollout.inference_service import ServingSettings, storage_uri_of
from tests.helpers import REPO
from tests.kube_stand_in import OBJECT_PATH, StandInApiServer
from tests.registry import RegistryServer

ISVC, ROUTE = "inferenceservices/sentiment", "httproutes/sentiment"
V1_HPA = "horizontalpodautoscalers/sentiment-v1-predictor"


@pytest.fixture(scope="module")
def deploy_registry(fast_champion_registry: RegistryServer, tmp_path_factory) -> RegistryServer:
    """A copy of the TF-IDF champion's registry with versions 2, 3 and 4 (the same model registered again)."""
    server = fast_champion_registry.copy(tmp_path_factory.mktemp("deploy-registry"))
    try:
        mlflow.set_tracking_uri(server.url)
        first = mlflow.MlflowClient().get_model_version("sentiment", "1")
        for _ in range(3):
            mlflow.register_model(first.source, "sentiment")
        yield server
    finally:
        server.stop()


@pytest.fixture
def registry_uri(deploy_registry: RegistryServer) -> str:
    """:func:`deploy_registry` with the aliases the gate left (``champion`` -> 1) and no other."""
    registry_reset(deploy_registry.url)
    mlflow.set_tracking_uri(deploy_registry.url)
    return deploy_registry.url


def registry_reset(uri: str) -> None:
    """Only the gate's alias (``champion``) left."""
    client = mlflow.MlflowClient(uri)
    for alias in client.get_registered_model("sentiment").aliases:
        if alias != "champion":
            client.delete_registered_model_alias("sentiment", alias)


@pytest.fixture
def settings(tmp_path: Path) -> ServingSettings:
    return ServingSettings(image="sentiment-mlops-serve:abc123", bundle_root=str(tmp_path / "bundles"))


@pytest.fixture
def api():
    stand_in = StandInApiServer()
    yield stand_in
    stand_in.stop()


def cluster(api: StandInApiServer) -> Cluster:
    return Cluster(api.api_client, poll_seconds=0.01)


def aliases(uri: str) -> dict[str, str]:
    return {k: str(v) for k, v in mlflow.MlflowClient(uri).get_registered_model("sentiment").aliases.items()}


def weights(route: dict) -> list[dict[str, int]]:
    """Backend Service -> weight, per rule (gRPC, REST)."""
    return [{ref["name"]: ref["weight"] for ref in rule["backendRefs"]} for rule in route["spec"]["rules"]]


def test_first_rollout_publishes_the_bundle_creates_waits_then_routes(api, settings, registry_uri) -> None:
    assert rollout(cluster(api), Registry("sentiment"), settings, "1", canary_percent=10) == "created"
    writes = [(m, p) for m, p in api.calls() if m != "GET"]
    assert writes == [("POST", "inferenceservices"), ("POST", "httproutes")]
    assert api.calls().index(("POST", "httproutes")) > api.calls().index(("GET", ISVC))  # Ready first
    isvc = api.isvc()
    predictor = isvc["spec"]["predictor"]
    assert predictor["name"] == "v1" and isvc["metadata"]["labels"]["networking.kserve.io/visibility"] == (
        "cluster-local"
    )  # KServe v0.20 writes no route of its own; ours splits traffic
    assert storage_uri_of(predictor) == settings.bundle_root + "/sentiment/1/"
    assert (Path(settings.bundle_root) / "sentiment" / "1" / BUNDLE_FILE).is_file()
    env = {e["name"] for e in predictor["containers"][0]["env"]}
    assert "MLFLOW_TRACKING_URI" not in env and "MODEL_URI" not in env  # no MLflow needed to serve
    route = api.route()
    assert route["spec"]["hostnames"] == ["sentiment-mlops.example.com"]
    assert weights(route) == [{"sentiment-v1-predictor": 100}] * 2
    assert [ref["port"] for rule in route["spec"]["rules"] for ref in rule["backendRefs"]] == [8081, 80]
    # KServe's own routes wait 60 s for an answer (Envoy Gateway's default without a timeout is 15 s)
    assert [rule["timeouts"] for rule in route["spec"]["rules"]] == [{"request": "60s"}] * 2
    assert aliases(registry_uri)[PRODUCTION_ALIAS] == "1" and CANARY_ALIAS not in aliases(registry_uri)
    assert rollout(cluster(api), Registry("sentiment"), settings, "1", canary_percent=10) == "unchanged"


def test_canary_gets_its_share_only_once_ready_then_promote(api, settings, registry_uri) -> None:
    registry = Registry("sentiment")
    rollout(cluster(api), registry, settings, "1", canary_percent=0)
    assert rollout(cluster(api), registry, settings, "2", canary_percent=10) == "canary"
    (canary,) = api.isvc()["spec"]["canary"]
    assert canary["trafficPercent"] == 10 and canary["predictor"]["name"] == "v2"
    assert not {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget"} & set(canary["predictor"])
    _, _, content_type, patch = next(r for r in api.requests if r[0] == "PATCH" and ISVC in r[1])
    assert content_type == "application/merge-patch+json"  # RFC 7386, as the stand-in applies it
    assert list(patch["spec"]) == ["canary"]  # the stable predictor is untouched
    assert weights(api.route()) == [{"sentiment-v1-predictor": 90, "sentiment-v2-predictor": 10}] * 2
    assert aliases(registry_uri) == {"champion": "1", PRODUCTION_ALIAS: "1", CANARY_ALIAS: "2"}
    shown = status(api.isvc(), api.route())
    assert shown["serving"]["version"] == "1" and shown["serving"]["percent"] == 90
    assert shown["canary"] == {"version": "2", "percent": 10}

    before = len(api.requests)
    assert promote(cluster(api), registry, settings) == "2"
    writes = [(m, p) for m, p in api.calls()[before:] if m != "GET"]
    # sized as the stable one and Ready, v2 takes the traffic before KServe deletes v1's pods; v1's HPA,
    # which KServe keeps, goes last
    assert writes == [("PATCH", ISVC), ("PATCH", ROUTE), ("PATCH", ISVC), ("DELETE", V1_HPA)]
    full_size = next(body for m, p, _, body in api.requests[before:] if m == "PATCH")
    assert full_size["spec"]["canary"][0]["trafficPercent"] == 100
    assert api.autoscalers() == ["sentiment-v2-predictor"]
    spec = api.isvc()["spec"]
    assert "canary" not in spec and spec["predictor"]["name"] == "v2"
    assert spec["predictor"]["minReplicas"] == 1 and spec["predictor"]["maxReplicas"] == 4  # kept
    assert weights(api.route()) == [{"sentiment-v2-predictor": 100}] * 2
    assert aliases(registry_uri) == {"champion": "1", PRODUCTION_ALIAS: "2"}
    with pytest.raises(DeployError, match="no canary"):
        promote(cluster(api), registry, settings)


def test_canary_then_rollback(api, settings, registry_uri) -> None:
    registry = Registry("sentiment")
    rollout(cluster(api), registry, settings, "1", canary_percent=0)
    rollout(cluster(api), registry, settings, "2", canary_percent=25)
    before = len(api.requests)
    assert rollback(cluster(api), registry, settings) == "1"
    writes = [(m, p) for m, p in api.calls()[before:] if m != "GET"]
    assert writes == [("PATCH", ROUTE), ("PATCH", ISVC)]
    assert "canary" not in api.isvc()["spec"] and api.isvc()["spec"]["predictor"]["name"] == "v1"
    assert weights(api.route()) == [{"sentiment-v1-predictor": 100}] * 2
    assert aliases(registry_uri) == {"champion": "1", PRODUCTION_ALIAS: "1"}
    with pytest.raises(DeployError, match="no canary"):
        rollback(cluster(api), registry, settings)


def test_replace_goes_through_a_full_size_canary(api, settings, registry_uri) -> None:
    registry = Registry("sentiment")
    rollout(cluster(api), registry, settings, "1", canary_percent=0)
    before = len(api.requests)
    assert rollout(cluster(api), registry, settings, "3", canary_percent=0) == "replaced"
    writes = [(m, p, body) for m, p, _, body in api.requests[before:] if m != "GET"]
    assert writes[0][2]["spec"]["canary"][0]["trafficPercent"] == 100  # sized as the stable one
    assert [(m, p.rsplit("/", 2)[-2] + "/" + p.rsplit("/", 1)[-1]) for m, p, _ in writes] == [
        ("PATCH", ISVC),
        ("PATCH", ROUTE),
        ("PATCH", ISVC),
        ("DELETE", V1_HPA),
    ]
    assert api.isvc()["spec"]["predictor"]["name"] == "v3" and "canary" not in api.isvc()["spec"]
    assert weights(api.route()) == [{"sentiment-v3-predictor": 100}] * 2
    assert aliases(registry_uri)[PRODUCTION_ALIAS] == "3"


def test_a_predictor_that_never_gets_ready_moves_neither_traffic_nor_aliases(settings, registry_uri) -> None:
    healthy = StandInApiServer()
    try:
        rollout(cluster(healthy), Registry("sentiment"), settings, "1", canary_percent=0)
        healthy.ready = False  # KServe now reports the new canary (and so the service) not ready
        with pytest.raises(DeployError, match="not Ready with canary v2"):
            rollout(
                cluster(healthy), Registry("sentiment"), settings, "2", canary_percent=10, timeout_seconds=0.2
            )
        assert weights(healthy.route()) == [{"sentiment-v1-predictor": 100}] * 2
        assert aliases(registry_uri) == {"champion": "1", PRODUCTION_ALIAS: "1"}
    finally:
        healthy.stop()
    never = StandInApiServer(ready=False)
    try:
        with pytest.raises(DeployError, match="not Ready"):
            rollout(
                cluster(never), Registry("sentiment"), settings, "3", canary_percent=0, timeout_seconds=0.2
            )
        assert ("httproutes", "sentiment") not in never.objects
        assert aliases(registry_uri) == {"champion": "1", PRODUCTION_ALIAS: "1"}
    finally:
        never.stop()


def gate_decision(**fields) -> GateDecision:
    scores = {"run-1": 0.7}
    return GateDecision(
        **{"metric": "macro_recall", "weights": {"test": 1.0}, "run_id": "run-1", "candidate_score": 0.7}
        | {
            "candidate_scores": scores,
            "candidate_set_scores": {"run-1": {"test": 0.7}},
            "champion_score": None,
        }
        | {"champion_version": None, "interval": None, "confidence": 0.95, "int8_loss": None}
        | {"int8_accepted": False, **fields}
    )


def test_local_deploy_step_writes_the_manifests_it_would_apply(tmp_path: Path, settings, monkeypatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    manifest = tmp_path / "manifest.yaml"
    decision = gate_decision(promoted=True, registered_version="7", reason="beats the champion")
    assert deploy_champion(decision, settings, 10, str(manifest)) == "manifest"
    isvc, route = yaml.safe_load_all(manifest.read_text())
    assert isvc["kind"] == "InferenceService" and isvc["spec"]["predictor"]["name"] == "v7"
    assert storage_uri_of(isvc["spec"]["predictor"]) == f"{settings.bundle_root}/sentiment/7/"
    assert route["kind"] == "HTTPRoute" and weights(route) == [{"sentiment-v7-predictor": 100}] * 2

    kept = gate_decision(promoted=False, registered_version=None, reason="does not beat the champion")
    assert deploy_champion(kept, settings, 10, str(manifest)) == "skipped"
    assert "does not beat the champion" in manifest.read_text()


def test_a_new_canary_takes_the_old_canarys_share_away_first(api, settings, registry_uri) -> None:
    registry = Registry("sentiment")
    rollout(cluster(api), registry, settings, "1", canary_percent=0)
    rollout(cluster(api), registry, settings, "2", canary_percent=10)
    assert rollout(cluster(api), registry, settings, "2", canary_percent=10) == "unchanged"
    before = len(api.requests)
    assert rollout(cluster(api), registry, settings, "3", canary_percent=20) == "canary"
    writes = [(m, p) for m, p in api.calls()[before:] if m != "GET"]
    assert writes == [("PATCH", ROUTE), ("PATCH", ISVC), ("PATCH", ROUTE)]
    first_route_patch = next(body for m, p, _, body in api.requests[before:] if m == "PATCH" and ROUTE in p)
    assert weights(first_route_patch) == [{"sentiment-v1-predictor": 100}] * 2  # before v2's pods go
    assert weights(api.route()) == [{"sentiment-v1-predictor": 80, "sentiment-v3-predictor": 20}] * 2
    assert aliases(registry_uri) == {"champion": "1", PRODUCTION_ALIAS: "1", CANARY_ALIAS: "3"}


def test_the_canary_can_be_reweighed_or_made_the_serving_version(api, settings, registry_uri) -> None:
    registry = Registry("sentiment")
    rollout(cluster(api), registry, settings, "1", canary_percent=0)
    rollout(cluster(api), registry, settings, "2", canary_percent=10)
    assert rollout(cluster(api), registry, settings, "2", canary_percent=50) == "canary"
    assert api.isvc()["spec"]["canary"][0]["trafficPercent"] == 50
    assert weights(api.route()) == [{"sentiment-v1-predictor": 50, "sentiment-v2-predictor": 50}] * 2
    assert rollout(cluster(api), registry, settings, "2", canary_percent=0) == "replaced"
    assert api.isvc()["spec"]["predictor"]["name"] == "v2" and "canary" not in api.isvc()["spec"]
    assert aliases(registry_uri) == {"champion": "1", PRODUCTION_ALIAS: "2"}


def test_a_verdict_about_another_canary_changes_nothing(api, settings, registry_uri) -> None:
    registry = Registry("sentiment")
    rollout(cluster(api), registry, settings, "1", canary_percent=0)
    rollout(cluster(api), registry, settings, "3", canary_percent=10)  # v3 replaced v2 during the analysis
    before = len(api.requests)
    for action in (promote, rollback):
        with pytest.raises(DeployError, match="the canary is version 3 now, not 2: nothing done"):
            action(cluster(api), registry, settings, expected_canary="2")
    assert [m for m, _ in api.calls()[before:]] == ["GET", "GET"]


def test_a_promote_that_times_out_leaves_the_aliases_saying_what_the_route_serves(
    settings, registry_uri
) -> None:
    api = StandInApiServer()
    try:
        registry = Registry("sentiment")
        rollout(cluster(api), registry, settings, "1", canary_percent=0)
        rollout(cluster(api), registry, settings, "2", canary_percent=10)
        api.ready = False  # the full-size canary never gets Ready: it takes no more traffic
        with pytest.raises(DeployError, match="not Ready with canary v2"):
            promote(cluster(api), registry, settings, timeout_seconds=0.2)
        assert weights(api.route()) == [{"sentiment-v1-predictor": 90, "sentiment-v2-predictor": 10}] * 2
        assert aliases(registry_uri) == {"champion": "1", PRODUCTION_ALIAS: "1", CANARY_ALIAS: "2"}
        # Ready after the promote's patch, not after the rollout it left: route and aliases say v2
        api.ready = lambda isvc: bool(isvc["spec"].get("canary"))
        with pytest.raises(DeployError, match="not Ready after"):
            promote(cluster(api), registry, settings, timeout_seconds=0.2)
        assert weights(api.route()) == [{"sentiment-v2-predictor": 100}] * 2  # v2's pods serve it all
        assert aliases(registry_uri) == {"champion": "1", PRODUCTION_ALIAS: "2"}
    finally:
        api.stop()


WAIT = {"timeout_seconds": 0.2}


def first(c, r, s):
    return rollout(c, r, s, "1", canary_percent=0, **WAIT)


def canary_of_2(c, r, s):
    return rollout(c, r, s, "2", canary_percent=10, **WAIT)


def replace_by_3(c, r, s):
    return rollout(c, r, s, "3", canary_percent=0, **WAIT)


def promote_2(c, r, s):
    return promote(c, r, s, expected_canary="2", **WAIT)  # as the analysis' verdict names it


def never(isvc: dict) -> bool:
    return False


# (steps before, the step a Ready timeout interrupts, what KServe reports Ready meanwhile)
INTERRUPTED = {
    "create": ([], first, never),
    "canary": ([first], canary_of_2, never),
    "replace, at the new predictor": ([first], replace_by_3, never),
    "replace, after its promote": (
        [first],
        replace_by_3,
        lambda isvc: isvc["spec"]["predictor"]["name"] != "v3" or bool(isvc["spec"].get("canary")),
    ),
    "promote": ([first, canary_of_2], promote_2, never),
    "promote, after its patch": (
        [first, canary_of_2],
        promote_2,
        lambda isvc: bool(isvc["spec"].get("canary")),
    ),
}


@pytest.mark.parametrize("case", INTERRUPTED)
def test_a_rerun_after_a_ready_timeout_converges_to_the_uninterrupted_state(
    case, settings, registry_uri
) -> None:
    """Stopped by a Ready timeout and run again once KServe reports Ready (a KFP retry of the deploy step, a
    user's second make deploy): the same InferenceService, route, HPAs and aliases as a run never stopped."""
    before, step, readiness = INTERRUPTED[case]

    def run(interrupt: bool) -> dict:
        registry_reset(registry_uri)
        api = StandInApiServer()
        try:
            for earlier in before:
                earlier(cluster(api), Registry("sentiment"), settings)
            if interrupt:
                api.ready = readiness
                with pytest.raises(DeployError, match="not Ready"):
                    step(cluster(api), Registry("sentiment"), settings)
                api.ready = True
            step(cluster(api), Registry("sentiment"), settings)
            return {
                "inference service": api.isvc()["spec"],
                "route": api.route()["spec"],
                "autoscalers": api.autoscalers(),
                "aliases": aliases(registry_uri),
            }
        finally:
            api.stop()

    assert run(interrupt=True) == run(interrupt=False)


def test_every_call_of_the_deploy_step_is_one_the_pipeline_runners_role_allows(
    api, settings, registry_uri
) -> None:
    """The deploy step runs as KFP's pipeline-runner, bound to manifests/base/pipeline-rbac.yaml's Role: a
    call outside its rules would be refused with 403 on the cluster."""
    registry = Registry("sentiment")
    for step in (first, canary_of_2, promote_2, replace_by_3):
        step(cluster(api), registry, settings)
    rollout(cluster(api), registry, settings, "4", canary_percent=10, **WAIT)
    rollback(cluster(api), registry, settings, expected_canary="4", **WAIT)
    (role,) = [
        d
        for d in yaml.safe_load_all((REPO / "manifests/base/pipeline-rbac.yaml").read_text())
        if d["kind"] == "Role"
    ]
    allowed = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    verbs = {"POST": "create", "PATCH": "patch", "DELETE": "delete"}
    made = set()
    for method, path, _, _ in api.requests:
        match = OBJECT_PATH.match(path)
        verb = verbs.get(method) or ("get" if match["name"] else "list")
        made.add((match["group"], match["plural"], verb))
    assert ("autoscaling", "horizontalpodautoscalers", "delete") in made
    assert made <= allowed, made - allowed


def test_the_rollout_history_prints_what_served_when_and_why(api, settings, registry_uri) -> None:
    """Deploy v1 (the gate's reason), a 25 % canary of v2, promote it, a 10 % canary of v3, roll it back
    (the analysis' reasons): ``python -m rollout.history`` (make history) prints each period with its shares
    and why, and the offline score the gate registered v1 with."""
    import subprocess
    import sys

    registry = Registry("sentiment")
    rollout(cluster(api), registry, settings, "1", canary_percent=0, reason="gate: first model")
    rollout(cluster(api), registry, settings, "2", canary_percent=25, reason="by hand")
    promote(cluster(api), registry, settings, reason="analysis: every check passed")
    rollout(cluster(api), registry, settings, "3", canary_percent=10, reason="gate: beats the champion")
    rollback(cluster(api), registry, settings, reason="analysis: live_quality failed")
    done = subprocess.run(
        [sys.executable, "-m", "rollout.history", "--tracking-uri", registry_uri],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    table, versions = done.stdout.split("\n\n")
    rows = [line.split(" | ")[2:] for line in table.splitlines()[2:]][-5:]  # this test's periods
    assert rows == [
        ["v1 100 %", "create", "gate: first model |"],
        ["v1 75 %, v2 25 %", "canary", "by hand |"],
        ["v2 100 %", "promote", "analysis: every check passed |"],
        ["v2 90 %, v3 10 %", "canary", "gate: beats the champion |"],
        ["v2 100 %", "rollback", "analysis: live_quality failed |"],
    ]
    assert table.splitlines()[-1].split(" | ")[1].startswith("now (")
    scores = {line.split(" | ")[0]: line.split(" | ")[1] for line in versions.splitlines()[2:]}
    assert re.fullmatch(r"macro_recall [01]\.\d{3}", scores["| v1"]) and scores["| v2"] == "n/a"
