"""The record of a canary analysis: its verdict with the evidence of its last interval, written to an
MLflow run (experiment ``sentiment-canary``), the canary version's registry tags and the Pushgateway (the
Pipeline dashboard's canary panels)."""

import logging
from dataclasses import asdict, dataclass, field

from rollout.canary_checks import FAIL, PASS, CheckResult, VersionEvidence

logger = logging.getLogger(__name__)

PROMOTE, ROLLBACK, WAIT = "promote", "rollback", "wait"
ANALYSIS_EXPERIMENT = "sentiment-canary"
PUSH_JOB = "sentiment-canary"


@dataclass(frozen=True)
class CanaryVerdict:
    """The analysis' decision and the evidence of its last interval."""

    decision: str
    reason: str
    model: str
    stable_version: str
    canary_version: str
    intervals: int
    consecutive_passes: int
    checks: list[CheckResult]
    evidence: dict[str, VersionEvidence] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def verdict_metrics(verdict: CanaryVerdict) -> dict[str, float]:
    """The evidence as flat MLflow metrics: per-version counts and per-check statistics and p-values."""
    values = {}
    for role, version in (("stable", verdict.stable_version), ("canary", verdict.canary_version)):
        evidence = verdict.evidence.get(version)
        if evidence:
            values |= {f"{role}_requests": evidence.requests, f"{role}_errors": evidence.errors}
    for check in verdict.checks:
        if check.statistic is not None:
            values[f"{check.name}_statistic"] = check.statistic
        if check.p_value is not None:
            values[f"{check.name}_p_value"] = check.p_value
    return values | {"intervals": verdict.intervals, "consecutive_passes": verdict.consecutive_passes}


def record_verdict(verdict: CanaryVerdict, tracking_uri: str | None, pushgateway: str | None) -> str | None:
    """Log the verdict to an MLflow run (returns its id), tag the canary version in the registry, and push
    it to ``pushgateway`` (host:port; None or "" skips). A failed push is logged, not raised."""
    import mlflow

    from core.tracking import use_tracking

    run_id = None
    if tracking_uri:
        use_tracking(tracking_uri, ANALYSIS_EXPERIMENT)
        name = f"canary-{verdict.model}-v{verdict.canary_version}-vs-v{verdict.stable_version}"
        with mlflow.start_run(run_name=name) as run:
            mlflow.set_tags(
                {
                    "model_name": verdict.model,
                    "canary.verdict": verdict.decision,
                    "canary_version": verdict.canary_version,
                    "stable_version": verdict.stable_version,
                }
            )
            mlflow.log_metrics(verdict_metrics(verdict))
            mlflow.log_dict(verdict.as_dict(), "canary/verdict.json")
            run_id = run.info.run_id
        client = mlflow.MlflowClient()
        tags = {
            "canary.verdict": verdict.decision,
            "canary.reason": verdict.reason[:4000],
            "canary.stable_version": verdict.stable_version,
            "canary.analysis_run": run_id,
        }
        for key, value in tags.items():
            client.set_model_version_tag(verdict.model, verdict.canary_version, key, value)
    if pushgateway:
        push_verdict(pushgateway, verdict)
    return run_id


def push_verdict(gateway: str, verdict: CanaryVerdict) -> None:
    """The verdict, each check's outcome and p-value, and the traffic per version, as gauges (job
    ``sentiment-canary``, grouped by model: each analysis replaces the last one's values)."""
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    Gauge(
        "sentiment_canary_verdict",
        "The last canary analysis' verdict (1 on the label that holds), by canary and stable version.",
        ["verdict", "canary_version", "stable_version"],
        registry=registry,
    ).labels(verdict.decision, verdict.canary_version, verdict.stable_version).set(1)
    passed = Gauge(
        "sentiment_canary_check_passed",
        "Each check of the last analysis: 1 pass, 0 fail, -1 insufficient traffic.",
        ["check"],
        registry=registry,
    )
    p_values = Gauge(
        "sentiment_canary_check_p_value", "P-value of each statistical check.", ["check"], registry=registry
    )
    for check in verdict.checks:
        passed.labels(check.name).set({PASS: 1, FAIL: 0}.get(check.outcome, -1))
        if check.p_value is not None:
            p_values.labels(check.name).set(check.p_value)
    requests = Gauge(
        "sentiment_canary_requests", "Requests in the analysis window, by role.", ["role"], registry=registry
    )
    for role, version in (("stable", verdict.stable_version), ("canary", verdict.canary_version)):
        if version in verdict.evidence:
            requests.labels(role).set(verdict.evidence[version].requests)
    Gauge(
        "sentiment_canary_last_analysis_timestamp_seconds", "When the last analysis ended.", registry=registry
    ).set_to_current_time()
    try:
        push_to_gateway(gateway, job=PUSH_JOB, grouping_key={"model": verdict.model}, registry=registry)
    except OSError as exc:
        logger.warning("could not push the canary verdict to %s: %s", gateway, exc)
