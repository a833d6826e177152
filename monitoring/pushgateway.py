"""Publish a pipeline run's outcome to a Prometheus Pushgateway (the standard route for batch jobs) for the
Pipeline dashboard: every candidate's scores by set, the gate's decision, interval and champion. One
group per model name (job ``sentiment-pipeline``): each run replaces the last one's values, and
Prometheus' scrapes keep the history.
"""

import logging

import mlflow
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from core.decisions import GateDecision

logger = logging.getLogger(__name__)

JOB = "sentiment-pipeline"


def gate_registry(
    decision: GateDecision, families: dict[str, str], seconds: dict[str, float]
) -> CollectorRegistry:
    """The decision as gauges; ``families`` maps each candidate's run id to its family (linear-embeddings,
    linear-tfidf, transformer, ensemble), ``seconds`` maps it to its training time."""
    registry = CollectorRegistry()
    score = Gauge(
        "sentiment_pipeline_candidate_score",
        "Each candidate's gate metric by set: test, ood_<domain>, and gate (the weighted score it ranks by).",
        ["family", "set", "metric"],
        registry=registry,
    )
    for run_id, family in families.items():
        for name, value in decision.candidate_set_scores[run_id].items():
            score.labels(family, name, decision.metric).set(value)
        score.labels(family, "gate", decision.metric).set(decision.candidate_scores[run_id])
    train = Gauge(
        "sentiment_pipeline_candidate_train_seconds",
        "Each candidate's training time.",
        ["family"],
        registry=registry,
    )
    for run_id, value in seconds.items():
        train.labels(families[run_id]).set(value)
    winner = families[decision.run_id]
    Gauge(
        "sentiment_pipeline_gate_promoted",
        "1 when the gate promoted the best candidate (family) to champion, else 0.",
        ["family"],
        registry=registry,
    ).labels(winner).set(int(decision.promoted))
    gate_score = Gauge(
        "sentiment_pipeline_gate_score",
        "The gate's weighted score of the best candidate and of the champion it was compared with.",
        ["role"],
        registry=registry,
    )
    gate_score.labels("candidate").set(decision.candidate_score)
    if decision.champion_score is not None:
        gate_score.labels("champion").set(decision.champion_score)
    if decision.interval is not None:
        interval = Gauge(
            "sentiment_pipeline_gate_gain_interval",
            "Paired-bootstrap confidence interval of the candidate's gain over the champion.",
            ["bound"],
            registry=registry,
        )
        interval.labels("low").set(decision.interval[0])
        interval.labels("high").set(decision.interval[1])
    champion = decision.registered_version or decision.champion_version
    if champion is not None:
        Gauge(
            "sentiment_pipeline_champion_version",
            "The registry version the champion alias points at.",
            registry=registry,
        ).set(int(champion))
    Gauge(
        "sentiment_pipeline_last_run_timestamp_seconds",
        "When the last pipeline run finished.",
        registry=registry,
    ).set_to_current_time()
    return registry


def push_gate_metrics(
    gateway: str | None, model_name: str, decision: GateDecision, families: dict[str, str]
) -> None:
    """Push the decision to ``gateway`` (host:port or URL), grouped by ``model_name``, with each candidate's
    ``train_seconds`` from its MLflow run. A failed push is logged, not raised: the registry already
    holds the decision. No ``gateway`` (None or empty: none configured) pushes nothing."""
    if not gateway:
        return
    client = mlflow.MlflowClient()
    seconds = {
        run_id: client.get_run(run_id).data.metrics.get("train_seconds", float("nan")) for run_id in families
    }
    try:
        push_to_gateway(
            gateway,
            job=JOB,
            grouping_key={"model": model_name},
            registry=gate_registry(decision, families, seconds),
        )
        logger.info("pushed the gate's decision to the Pushgateway at %s", gateway)
    except OSError as exc:
        logger.warning("could not push the gate's decision to %s: %s", gateway, exc)
