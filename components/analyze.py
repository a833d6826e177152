"""analyze: after a canary deploy, judge the canary against the stable version on Prometheus until a
verdict, through rollout/canary_analysis.py; any other deploy outcome has nothing to judge."""

from kfp.dsl import Metrics, Output

from components import component


@component
def analyze(
    outcome: str, config: dict, deploy: dict, run: dict, tracking_uri: str, verdict: Output[Metrics]
) -> str:
    """After a canary deploy: judge the canary against the stable version on Prometheus at an interval
    (params.yaml ``canary_analysis``) until a verdict (promote, rollback) or the timeout, record it
    (registry tags, MLflow, Pushgateway) and act on it. Any other deploy outcome (a first version, a local
    run) has nothing to judge. Returns the verdict."""
    if outcome != "canary":
        return f"skipped: deploy outcome {outcome}"
    from components.deploy import DeployConfig
    from core.config import RunConfig, from_mapping
    from rollout.canary_analysis import AnalysisSettings, run_analysis
    from rollout.deploy import Cluster, Registry, load_kube_config
    from rollout.inference_service import ServingSettings

    load_kube_config()
    namespace = from_mapping(DeployConfig, deploy, "deploy").namespace
    settings_of_run = from_mapping(RunConfig, run, "run")
    model_name = settings_of_run.model_name
    settings = AnalysisSettings.from_config(config, namespace, model_name)
    serving = ServingSettings(image="", name=model_name, namespace=namespace)
    registry = Registry(model_name, tracking_uri)
    result = run_analysis(settings, Cluster(), registry, serving, tracking_uri, settings_of_run.pushgateway)
    for check in result.checks:
        if check.p_value is not None:
            verdict.log_metric(f"{check.name}_p_value", check.p_value)
    verdict.log_metric("intervals", result.intervals)
    verdict.metadata.update({"decision": result.decision, "reason": result.reason})
    return result.decision
