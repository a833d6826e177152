"""deploy: roll a registered model version out as the KServe InferenceService and its traffic route, and
keep the registry truthful about what serves.

- ``rollout``: publish the version's serving bundle (models/bundle.py), then create the
  InferenceService, or start the version as a canary with a share of the traffic, or replace the
  serving version (through a canary that takes 100 % once Ready, so no request meets a deleted pod);
- ``promote`` / ``rollback``: the canary takes all traffic / is removed.

Every step waits for KServe to report the new predictor Ready before the route sends it traffic. The
registry follows the route: ``production`` names the version the route sends all (or, during a canary,
the rest of the) traffic to, ``canary`` the version it sends a share to, each moved right after the route
is; ``champion`` is only the gate's. A deploy that fails leaves the route, and so the aliases, serving a
Ready version; run again (a KFP retry, or ``make deploy`` once more), it converges: it waits for what the
InferenceService already holds to be Ready, then brings the route and the aliases in line with it, so an
interrupted run ends where an uninterrupted one would have.

    python -m rollout.deploy rollout --model-uri models:/sentiment@champion --image <serve image>
    python -m rollout.deploy {promote,rollback,status} [--name sentiment] [--namespace mlops]
"""

import argparse
import json
import logging
import os
import time
from pathlib import Path

from core.decisions import GateDecision
from core.registry import resolve
from models.bundle import bundle_uri, publish_bundle
from rollout.history import RouteChange, record_route_change
from rollout.inference_service import (
    COMPONENT_LABELS,
    GROUP,
    PLURAL,
    ROUTE_GROUP,
    ROUTE_PLURAL,
    ROUTE_VERSION,
    VERSION,
    ServingSettings,
    canary_patch,
    full_size_patch,
    inference_service,
    predictor_name,
    promote_patch,
    rollback_patch,
    service_name,
    storage_uri_of,
    traffic_route,
    version_of,
)

logger = logging.getLogger(__name__)

PRODUCTION_ALIAS, CANARY_ALIAS = "production", "canary"
READY_TIMEOUT_SECONDS = 900.0  # first pulls of the serve image on a laptop cluster take minutes


class DeployError(RuntimeError):
    """The cluster did not reach the state asked for (or is not in the state an action expects)."""


class Cluster:
    """The InferenceService and its HTTPRoute through the official Kubernetes client (get / create /
    merge patch), and waiting for KServe's readiness."""

    def __init__(self, api_client=None, poll_seconds: float = 2.0):
        from kubernetes import client

        self.api = client.CustomObjectsApi(api_client)
        self.autoscaling = client.AutoscalingV2Api(api_client)
        self.poll_seconds = poll_seconds

    def _get(self, group: str, version: str, plural: str, namespace: str, name: str) -> dict | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.get_namespaced_custom_object(group, version, namespace, plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def inference_service(self, settings: ServingSettings) -> dict | None:
        return self._get(GROUP, VERSION, PLURAL, settings.namespace, settings.name)

    def existing(self, settings: ServingSettings) -> dict:
        current = self.inference_service(settings)
        if current is None:
            raise DeployError(f"no InferenceService {settings.namespace}/{settings.name}: deploy one first")
        return current

    def create(self, body: dict) -> None:
        self.api.create_namespaced_custom_object(GROUP, VERSION, body["metadata"]["namespace"], PLURAL, body)

    def patch(self, settings: ServingSettings, body: dict) -> None:
        self.api.patch_namespaced_custom_object(
            GROUP, VERSION, settings.namespace, PLURAL, settings.name, body
        )

    def route(self, settings: ServingSettings) -> dict | None:
        return self._get(ROUTE_GROUP, ROUTE_VERSION, ROUTE_PLURAL, settings.namespace, settings.name)

    def apply_route(self, body: dict) -> None:
        """Create the HTTPRoute, or replace its spec (a merge patch replaces lists whole)."""
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        if self._get(ROUTE_GROUP, ROUTE_VERSION, ROUTE_PLURAL, namespace, name) is None:
            self.api.create_namespaced_custom_object(
                ROUTE_GROUP, ROUTE_VERSION, namespace, ROUTE_PLURAL, body
            )
        else:
            self.api.patch_namespaced_custom_object(
                ROUTE_GROUP, ROUTE_VERSION, namespace, ROUTE_PLURAL, name, {"spec": body["spec"]}
            )

    def delete_stale_autoscalers(self, settings: ServingSettings, current: dict) -> list[str]:
        """Delete the HPAs of predictors that are neither the stable one nor a canary: KServe v0.20.0 deletes
        a dropped predictor's Deployment and Service but not its HPA (components/predictor.go, the
        orphan cleanup lists only those two kinds). Returns the names deleted."""
        from kubernetes.client.exceptions import ApiException

        selector = ",".join(f"{k}={v}" for k, v in COMPONENT_LABELS.items()).format(name=settings.name)
        kept = {service_name(settings, v) for v in stable_and_canary(current) if v is not None}
        found = self.autoscaling.list_namespaced_horizontal_pod_autoscaler(
            settings.namespace, label_selector=selector
        )
        stale = [hpa.metadata.name for hpa in found.items if hpa.metadata.name not in kept]
        for name in stale:
            try:
                self.autoscaling.delete_namespaced_horizontal_pod_autoscaler(name, settings.namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        return stale

    def wait_ready(self, settings: ServingSettings, canary: str | None, timeout_seconds: float) -> dict:
        """Wait until KServe reports the InferenceService Ready and, with ``canary``, that version's canary
        predictor ready (``status.canaryStatuses``); without, no canary left. DeployError at the timeout."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            current = self.existing(settings)
            if is_ready(current, canary):
                return current
            if time.monotonic() > deadline:
                raise DeployError(
                    f"{settings.namespace}/{settings.name} not Ready "
                    f"{'with canary ' + predictor_name(canary) + ' ' if canary else ''}after "
                    f"{timeout_seconds:.0f} s: {json.dumps(current.get('status', {}).get('conditions', []))}"
                )
            time.sleep(self.poll_seconds)


def is_ready(current: dict, canary: str | None) -> bool:
    status = current.get("status", {})
    conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
    canaries = {c["name"]: c.get("ready") for c in status.get("canaryStatuses") or []}
    if conditions.get("Ready") != "True":
        return False
    if canary is None:
        return not canaries
    return conditions.get("CanaryPredictorReady") == "True" and canaries.get(predictor_name(canary)) is True


class Registry:
    """The registry aliases that say what serves: ``production`` (all traffic) and ``canary``."""

    def __init__(self, model_name: str, tracking_uri: str | None = None):
        import mlflow

        self.client, self.name = mlflow.MlflowClient(tracking_uri), model_name

    def serving(self, version: str) -> None:
        """``version`` takes all traffic: production -> it; no canary."""
        self.client.set_registered_model_alias(self.name, PRODUCTION_ALIAS, version)
        self.clear_canary()

    def canary(self, version: str) -> None:
        self.client.set_registered_model_alias(self.name, CANARY_ALIAS, version)

    def clear_canary(self) -> None:
        if CANARY_ALIAS in self.client.get_registered_model(self.name).aliases:
            self.client.delete_registered_model_alias(self.name, CANARY_ALIAS)

    def serving_aliases(self) -> dict[str, str]:
        """The ``production`` and ``canary`` aliases as they are (alias -> version)."""
        aliases = self.client.get_registered_model(self.name).aliases
        return {a: str(v) for a, v in aliases.items() if a in (PRODUCTION_ALIAS, CANARY_ALIAS)}

    def record_route(self, change: RouteChange) -> None:
        """Keep the route ``change`` in the rollout history (rollout/history.py)."""
        record_route_change(self.client, self.name, change)


def stable_and_canary(current: dict) -> tuple[str, str | None]:
    """The versions of the stable predictor and of the canary (None without one)."""
    canaries = current["spec"].get("canary") or []
    return version_of(current["spec"]["predictor"]), (
        version_of(canaries[0]["predictor"]) if canaries else None
    )


def canary_share(current: dict) -> int:
    """The canary's ``trafficPercent`` (0 without one)."""
    canaries = current["spec"].get("canary") or []
    return canaries[0]["trafficPercent"] if canaries else 0


def routed(current: dict) -> tuple[str, str | None, int]:
    """(stable, canary, percent) the route should send once the InferenceService is Ready: a canary's share
    is its ``trafficPercent``; a full-size canary (100, a replacement under way) gets nothing until the
    replacement promotes it."""
    stable, canary = stable_and_canary(current)
    percent = canary_share(current)
    return (stable, canary, percent) if canary and percent < 100 else (stable, None, 0)


def converge(
    cluster: Cluster,
    registry: Registry,
    settings: ServingSettings,
    timeout_seconds: float,
    action: str = "converge",
    reason: str = "",
) -> bool:
    """Wait until the InferenceService (and its canary) is Ready, then write the route and the aliases it
    calls for where they differ (a route change recorded as ``action`` for ``reason``), and delete the
    HPAs KServe left behind. True when anything was written."""
    _, canary = stable_and_canary(cluster.existing(settings))
    current = cluster.wait_ready(settings, canary, timeout_seconds)
    stable, canary, percent = routed(current)
    route = traffic_route(settings, stable, canary, percent)
    wrote = bool(cluster.delete_stale_autoscalers(settings, current))
    live = cluster.route(settings)
    if live is None or live["spec"] != route["spec"]:
        cluster.apply_route(route)
        registry.record_route(RouteChange.now(action, stable, canary, percent, reason))
        wrote = True
    wanted = {PRODUCTION_ALIAS: stable, **({CANARY_ALIAS: canary} if canary else {})}
    if registry.serving_aliases() != wanted:
        registry.serving(stable)
        if canary:
            registry.canary(canary)
        wrote = True
    return wrote


def rollout(
    cluster: Cluster,
    registry: Registry,
    settings: ServingSettings,
    version: str,
    canary_percent: int,
    timeout_seconds: float = READY_TIMEOUT_SECONDS,
    reason: str = "",
) -> str:
    """Serve registry ``version``: create the InferenceService, or add it as a canary with
    ``canary_percent`` of the traffic (a new share when it is the canary already), or (0) replace the
    serving version; each route change goes to the rollout history with ``reason``. Returns created,
    canary, replaced, converged (this version was there already: an interrupted run's route and aliases
    finished) or unchanged."""
    storage_uri = publish_bundle(settings.bundle_root, settings.name, version)
    current = cluster.inference_service(settings)
    if current is None:
        cluster.create(inference_service(settings, version, storage_uri))
        converge(cluster, registry, settings, timeout_seconds, "create", reason)
        return "created"
    stable, canary = stable_and_canary(current)
    if version == stable:
        return (
            "converged"
            if converge(cluster, registry, settings, timeout_seconds, reason=reason)
            else "unchanged"
        )
    if version == canary and canary_percent == canary_share(current):
        return (
            "canary"
            if converge(cluster, registry, settings, timeout_seconds, "canary", reason)
            else "unchanged"
        )
    if version == canary and not canary_percent:
        promote(cluster, registry, settings, timeout_seconds, expected_canary=version, reason=reason)
        return "replaced"
    if canary and canary != version:  # the old canary's pods go with the patch below: take its share first
        cluster.apply_route(traffic_route(settings, stable))
        registry.record_route(RouteChange.now("withdraw canary", stable, None, 0, f"version {version} next"))
        registry.clear_canary()
    cluster.patch(settings, canary_patch(settings, version, storage_uri, canary_percent or 100))
    if canary_percent:
        converge(cluster, registry, settings, timeout_seconds, "canary", reason)
        return "canary"
    promote(cluster, registry, settings, timeout_seconds, expected_canary=version, reason=reason)
    return "replaced"


def _canary_to_act_on(current: dict, expected_canary: str | None) -> tuple[str, str]:
    """(stable, canary) versions; DeployError when there is no canary or another one than expected (an
    analysis' verdict is about one version)."""
    stable, canary = stable_and_canary(current)
    if canary is None:
        raise DeployError(f"{current['metadata']['name']} has no canary")
    if expected_canary is not None and canary != expected_canary:
        raise DeployError(f"the canary is version {canary} now, not {expected_canary}: nothing done")
    return stable, canary


def promote(
    cluster: Cluster,
    registry: Registry,
    settings: ServingSettings,
    timeout_seconds: float = READY_TIMEOUT_SECONDS,
    expected_canary: str | None = None,
    reason: str = "",
) -> str:
    """The canary, sized as the stable predictor (``trafficPercent: 100``) and Ready, takes all traffic,
    then becomes the stable predictor (KServe deletes the old one's Deployment and Service in the same
    reconcile, so the route moves first). Returns its version."""
    return _end_canary(cluster, registry, settings, timeout_seconds, expected_canary, True, reason)


def rollback(
    cluster: Cluster,
    registry: Registry,
    settings: ServingSettings,
    timeout_seconds: float = READY_TIMEOUT_SECONDS,
    expected_canary: str | None = None,
    reason: str = "",
) -> str:
    """The stable predictor takes all traffic again (route first), then the canary is removed. Returns
    the stable version."""
    return _end_canary(cluster, registry, settings, timeout_seconds, expected_canary, False, reason)


def _end_canary(
    cluster: Cluster,
    registry: Registry,
    settings: ServingSettings,
    timeout_seconds: float,
    expected_canary: str | None,
    keep_canary: bool,
    reason: str,
) -> str:
    """Route all traffic to the version that stays (the registry follows), then patch the canary away; a
    promoted canary is first sized as the stable one and must be Ready. Last, the HPAs KServe left behind
    are deleted."""
    current = cluster.existing(settings)
    if expected_canary is not None and not current["spec"].get("canary"):
        stable, _ = stable_and_canary(current)
        if (stable == expected_canary) == keep_canary:  # done already, up to Ready: finish it
            converge(cluster, registry, settings, timeout_seconds, reason=reason)
            return stable
    stable, canary = _canary_to_act_on(current, expected_canary)
    if keep_canary:
        if canary_share(current) != 100:
            cluster.patch(settings, full_size_patch(current))
        current = cluster.wait_ready(settings, canary, timeout_seconds)
    kept = canary if keep_canary else stable
    cluster.apply_route(traffic_route(settings, kept))
    registry.record_route(RouteChange.now("promote" if keep_canary else "rollback", kept, None, 0, reason))
    registry.serving(kept)
    cluster.patch(settings, promote_patch(current) if keep_canary else rollback_patch(current))
    settled = cluster.wait_ready(settings, None, timeout_seconds)
    cluster.delete_stale_autoscalers(settings, settled)
    return kept


def status(current: dict, route: dict | None) -> dict:
    """Which version serves, which is canary with what share of the route, and the Ready condition."""
    stable, canary = stable_and_canary(current)
    rest = [
        r
        for r in (route or {"spec": {"rules": []}})["spec"]["rules"]
        if r["matches"][0]["path"]["type"] == "PathPrefix"
    ]
    weights = {ref["name"]: ref.get("weight", 1) for rule in rest for ref in rule["backendRefs"]}
    conditions = {c["type"]: c["status"] for c in current.get("status", {}).get("conditions", [])}

    def share(version: str) -> int:
        return weights.get(f"{current['metadata']['name']}-{predictor_name(version)}-predictor", 0)

    return {
        "name": current["metadata"]["name"],
        "serving": {
            "version": stable,
            "storage_uri": storage_uri_of(current["spec"]["predictor"]),
            "percent": share(stable),
        },
        "canary": {"version": canary, "percent": share(canary)} if canary else None,
        "ready": conditions.get("Ready", "Unknown"),
        "host": route["spec"]["hostnames"][0] if route else None,
    }


def deploy_champion(
    decision: GateDecision, settings: ServingSettings, canary_percent: int, manifest_path: str
) -> str:
    """The pipeline's deploy step: when the gate promoted, serve the new version (a canary of
    ``canary_percent`` when one already serves). In a pod it calls the Kubernetes API; elsewhere (a local
    run) it writes the InferenceService it would create to ``manifest_path`` instead. Returns the outcome."""
    import yaml

    if not decision.promoted:
        Path(manifest_path).write_text(f"# not deployed: the gate kept the champion ({decision.reason})\n")
        return "skipped"
    version = str(decision.registered_version)
    storage_uri = bundle_uri(settings.bundle_root, settings.name, version)
    manifests = [inference_service(settings, version, storage_uri), traffic_route(settings, version)]
    Path(manifest_path).write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    if "KUBERNETES_SERVICE_HOST" not in os.environ:
        return "manifest"
    load_kube_config()
    cluster = Cluster()
    reason = f"gate: {decision.reason}"
    outcome = rollout(cluster, Registry(settings.name), settings, version, canary_percent, reason=reason)
    live = [cluster.existing(settings), cluster.route(settings)]  # what the cluster holds now
    Path(manifest_path).write_text(yaml.safe_dump_all(live, sort_keys=False))
    return outcome


def load_kube_config() -> None:
    """In a pod: its ServiceAccount; elsewhere: the current kubectl context."""
    from kubernetes import config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; the model's name and namespace default to params.yaml's ``run`` and ``deploy``."""
    from core.config import params_section

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=("rollout", "promote", "rollback", "status"))
    parser.add_argument("--name", default=params_section("run")["model_name"])
    parser.add_argument("--namespace", default=params_section("deploy")["namespace"])
    parser.add_argument("--image", help="the serve image (rollout); make passes the one `make images` built")
    parser.add_argument(
        "--model-uri", help="models:/<name>/<version> or @<alias>, resolved in MLflow (rollout)"
    )
    parser.add_argument("--canary-percent", type=int, default=0, help="rollout as a canary with this share")
    parser.add_argument(
        "--timeout", type=float, default=READY_TIMEOUT_SECONDS, help="seconds to wait for Ready"
    )
    parser.add_argument(
        "--reason", default="by hand (rollout.deploy)", help="why, for the rollout history (make history)"
    )
    args = parser.parse_args(argv)
    if args.action == "rollout" and not (args.model_uri and args.image):
        parser.error("rollout needs --model-uri and --image")
    return args


def run(args: argparse.Namespace) -> None:
    """``python -m rollout.deploy`` with its parsed ``args`` (:func:`parse_args`)."""
    load_kube_config()
    cluster, registry = Cluster(), Registry(args.name, os.environ.get("MLFLOW_TRACKING_URI"))
    settings = ServingSettings(image=args.image or "", name=args.name, namespace=args.namespace)
    if args.action == "rollout":
        version = str(resolve(args.model_uri).version)
        outcome = rollout(
            cluster, registry, settings, version, args.canary_percent, args.timeout, reason=args.reason
        )
        print(f"{outcome}: version {version}")
    elif args.action == "promote":
        promoted = promote(cluster, registry, settings, args.timeout, reason=args.reason)
        print(f"promoted: version {promoted}")
    elif args.action == "rollback":
        kept = rollback(cluster, registry, settings, args.timeout, reason=args.reason)
        print(f"rolled back: version {kept} serves")
    print(json.dumps(status(cluster.existing(settings), cluster.route(settings)), indent=2))


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(parse_args(argv))


if __name__ == "__main__":
    main()
