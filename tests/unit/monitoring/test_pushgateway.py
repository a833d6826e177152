"""Unit tests for monitoring.pushgateway against a real Pushgateway (Debian's prometheus-pushgateway)."""

import logging
import math

import mlflow
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core.decisions import GateDecision
from monitoring.pushgateway import JOB, gate_registry, push_gate_metrics
from tests.helpers import HTTP, free_port, start_pushgateway, stop_process

TRAIN = "sentiment_pipeline_candidate_train_seconds"


def decision(scores, **overrides):
    """A decision for ``scores`` (run id -> gate score); the first run is the best candidate."""
    best = next(iter(scores))
    fields = dict(
        promoted=True,
        reason="test",
        metric="macro_recall",
        weights={"test": 1.0},
        run_id=best,
        candidate_score=scores[best],
        candidate_scores=scores,
        candidate_set_scores={r: {"test": s - 0.01, "ood_reddit": 0.5} for r, s in scores.items()},
        champion_score=0.70,
        champion_version="2",
        interval=(0.01, 0.05),
        confidence=0.95,
        registered_version="3",
        int8_loss=None,
        int8_accepted=False,
    )
    return GateDecision(**{**fields, **overrides})


def samples(text, **labels):
    """(name, sorted labels without job/instance) -> value for the pipeline's series matching ``labels``."""
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("job", "instance")))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("sentiment_pipeline") and all(s.labels.get(k) == v for k, v in labels.items())
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    process, address = start_pushgateway(tmp_path_factory.mktemp("pushgateway"))
    yield address
    stop_process(process)


@pytest.fixture
def runs(tracking_uri):
    """Three real MLflow runs in the current tracking store; the first logged train_seconds=42."""
    mlflow.set_tracking_uri(tracking_uri)  # what push_gate_metrics' MlflowClient() reads, as in the pipeline
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("sentiment").experiment_id
    ids = [client.create_run(experiment).info.run_id for _ in range(3)]
    client.log_metric(ids[0], "train_seconds", 42.0)
    return ids


def test_gate_registry_holds_scores_decision_and_interval():
    registry = gate_registry(
        decision({"a": 0.81, "b": 0.74}), {"a": "linear-tfidf", "b": "transformer"}, {"a": 12.0, "b": 300.0}
    )
    got = samples(generate_latest(registry).decode())
    score = "sentiment_pipeline_candidate_score"
    assert got[(score, (("family", "linear-tfidf"), ("metric", "macro_recall"), ("set", "gate")))] == 0.81
    assert got[(score, (("family", "transformer"), ("metric", "macro_recall"), ("set", "ood_reddit")))] == 0.5
    assert got[(score, (("family", "transformer"), ("metric", "macro_recall"), ("set", "test")))] == 0.73
    assert got[(TRAIN, (("family", "transformer"),))] == 300.0
    assert got[("sentiment_pipeline_gate_promoted", (("family", "linear-tfidf"),))] == 1.0
    assert got[("sentiment_pipeline_gate_score", (("role", "candidate"),))] == 0.81
    assert got[("sentiment_pipeline_gate_score", (("role", "champion"),))] == 0.70
    assert got[("sentiment_pipeline_gate_gain_interval", (("bound", "low"),))] == 0.01
    assert got[("sentiment_pipeline_champion_version", ())] == 3.0
    assert got[("sentiment_pipeline_last_run_timestamp_seconds", ())] > 1.7e9


def test_first_model_has_no_champion_score_interval_or_version():
    first = decision(
        {"a": 0.6},
        promoted=False,
        champion_score=None,
        champion_version=None,
        interval=None,
        registered_version=None,
    )
    got = samples(generate_latest(gate_registry(first, {"a": "linear-tfidf"}, {})).decode())
    names = {name for name, _ in got}
    assert got[("sentiment_pipeline_gate_promoted", (("family", "linear-tfidf"),))] == 0.0
    assert ("sentiment_pipeline_gate_score", (("role", "champion"),)) not in got
    assert not names & {"sentiment_pipeline_gate_gain_interval", "sentiment_pipeline_champion_version", TRAIN}


def test_push_groups_by_model_and_reads_train_seconds(gateway, runs):
    a, b, _ = runs
    families = {a: "linear-tfidf", b: "transformer"}
    push_gate_metrics(gateway, "unit-model", decision({a: 0.81, b: 0.74}), families)
    got = samples(HTTP.get(f"http://{gateway}/metrics", timeout=10).text, job=JOB, model="unit-model")
    assert got[(TRAIN, (("family", "linear-tfidf"), ("model", "unit-model")))] == 42.0
    assert math.isnan(got[(TRAIN, (("family", "transformer"), ("model", "unit-model")))])
    assert got[("sentiment_pipeline_champion_version", (("model", "unit-model"),))] == 3.0

    # the next run replaces this model's group (the transformer's series go); another model's group stays
    push_gate_metrics(gateway, "other-model", decision({a: 0.81, b: 0.74}), families)
    push_gate_metrics(gateway, "unit-model", decision({a: 0.9}, registered_version="4"), {a: "linear-tfidf"})
    text = HTTP.get(f"http://{gateway}/metrics", timeout=10).text
    mine, other = samples(text, model="unit-model"), samples(text, model="other-model")
    assert {dict(labels).get("family") for _, labels in mine} == {"linear-tfidf", None}
    assert mine[("sentiment_pipeline_champion_version", (("model", "unit-model"),))] == 4.0
    assert (TRAIN, (("family", "transformer"), ("model", "other-model"))) in other


def test_unreachable_gateway_is_logged_not_raised(runs, caplog):
    address = f"127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="monitoring.pushgateway"):
        push_gate_metrics(address, "sentiment", decision({runs[0]: 0.8}), {runs[0]: "linear-tfidf"})
    assert f"could not push the gate's decision to {address}" in caplog.text
