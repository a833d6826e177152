"""deploy: serve the version the gate promoted, through rollout/deploy.py (create the InferenceService, or
add it as a canary when one serves). Outside a cluster (kfp.local) it writes the manifests it would
apply."""

from dataclasses import dataclass

from kfp.dsl import Artifact, Output

from components import component


@dataclass(frozen=True)
class DeployConfig:
    """params.yaml ``deploy``: see the comments there."""

    namespace: str
    canary_percent: int
    serve_image: str


@component
def deploy(decision: str, config: dict, run: dict, tracking_uri: str, manifest: Output[Artifact]) -> str:
    """Serve the version the gate promoted: create the InferenceService, or add it as a canary with
    ``canary_percent`` of the traffic when one serves, each time waiting for it to be Ready before the
    route and the ``production`` alias move. Outside a cluster (kfp.local) it only writes the manifests it
    would apply. Returns the outcome (created, canary, replaced, converged, unchanged, manifest, skipped)."""
    from components.deploy import DeployConfig
    from core.config import RunConfig, from_mapping
    from core.decisions import GateDecision
    from core.tracking import use_tracking
    from rollout.deploy import deploy_champion
    from rollout.inference_service import ServingSettings

    use_tracking(tracking_uri)
    settings = from_mapping(DeployConfig, config, "deploy")
    model_name = from_mapping(RunConfig, run, "run").model_name
    serving = ServingSettings(image=settings.serve_image, name=model_name, namespace=settings.namespace)
    outcome = deploy_champion(
        GateDecision.from_json(decision), serving, settings.canary_percent, manifest.path
    )
    manifest.metadata.update({"outcome": outcome, "namespace": settings.namespace})
    return outcome
