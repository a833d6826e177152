"""Unit tests for monitoring.pushgateway against a real Pushgateway (Debian's prometheus-pushgateway)."""

import logging
import math

import httpx
import mlflow
import pytest
from prometheus_client.parser import text_string_to_metric_families

from components.gate import GateDecision
from monitoring.pushgateway import JOB, gate_registry, push_gate_metrics
from tests.helpers import free_port, start_pushgateway, stop_process

FAMILIES = {"run-a": "linear-tfidf", "run-b": "transformer"}


def decision(run_ids=("run-a", "run-b"), promoted=True, champion_score=0.70, interval=(0.01, 0.05), version="3"):
    scores = {"run-a": 0.81, "run-b": 0.74, "run-c": 0.6}
    return GateDecision(
        promoted=promoted, reason="test", metric="macro_recall", weights={"test": 1.0}, run_id=run_ids[0],
        candidate_score=scores[run_ids[0]], candidate_scores={r: scores[r] for r in run_ids},
        candidate_set_scores={r: {"test": scores[r] - 0.01, "ood_reddit": 0.5} for r in run_ids},
        champion_score=champion_score, champion_version="2", interval=interval, confidence=0.95,
        registered_version=version, int8_loss=None, int8_accepted=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    process, address = start_pushgateway(tmp_path_factory.mktemp("pushgateway"))
    yield address
    stop_process(process)


def samples(text, **labels):
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("job", "instance")))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("sentiment_pipeline") and all(s.labels.get(k) == v for k, v in labels.items())
    }


def registry_samples(registry):
    return samples(b"".join(__import__("prometheus_client").generate_latest(registry)).decode())


def test_gate_registry_holds_scores_decision_and_interval():
    got = registry_samples(gate_registry(decision(), FAMILIES, {"run-a": 12.0, "run-b": 300.0}))
    score = "sentiment_pipeline_candidate_score"
    assert got[(score, (("family", "linear-tfidf"), ("metric", "macro_recall"), ("set", "gate")))] == 0.81
    assert got[(score, (("family", "transformer"), ("metric", "macro_recall"), ("set", "ood_reddit")))] == 0.5
    assert got[("sentiment_pipeline_candidate_train_seconds", (("family", "transformer"),))] == 300.0
    assert got[("sentiment_pipeline_gate_promoted", (("family", "linear-tfidf"),))] == 1.0
    assert got[("sentiment_pipeline_gate_score", (("role", "champion"),))] == 0.70
    assert got[("sentiment_pipeline_gate_gain_interval", (("bound", "high"),))] == 0.05
    assert got[("sentiment_pipeline_champion_version", ())] == 3.0


def test_first_model_has_no_champion_score_interval_or_version():
    first = decision(run_ids=("run-a",), promoted=False, champion_score=None, interval=None, version=None)
    first = GateDecision(**{**first.__dict__, "champion_version": None})
    got = registry_samples(gate_registry(first, {"run-a": "linear-tfidf"}, {}))
    names = {name for name, _ in got}
    assert got[("sentiment_pipeline_gate_promoted", (("family", "linear-tfidf"),))] == 0.0
    assert ("sentiment_pipeline_gate_score", (("role", "champion"),)) not in got
    assert not names & {"sentiment_pipeline_gate_gain_interval", "sentiment_pipeline_champion_version"}
    assert "sentiment_pipeline_candidate_train_seconds" not in names


def test_push_groups_by_model_and_reads_train_seconds(gateway, tracking_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("sentiment").experiment_id
    runs = [client.create_run(experiment).info.run_id for _ in range(3)]
    client.log_metric(runs[0], "train_seconds", 42.0)  # runs[1] has none: NaN
    families = {runs[0]: "linear-tfidf", runs[1]: "transformer"}
    first = decision()
    renamed = {"run-a": runs[0], "run-b": runs[1]}
    moved = GateDecision(**{**first.__dict__, "run_id": runs[0],
                            "candidate_scores": {renamed[k]: v for k, v in first.candidate_scores.items()},
                            "candidate_set_scores": {renamed[k]: v for k, v in first.candidate_set_scores.items()}})  # fmt: skip
    push_gate_metrics(gateway, "unit-model", moved, families)
    text = httpx.get(f"http://{gateway}/metrics", timeout=10).text
    got = samples(text, job=JOB, model="unit-model")
    assert got[("sentiment_pipeline_candidate_train_seconds", (("family", "linear-tfidf"), ("model", "unit-model")))] == 42.0  # fmt: skip
    assert math.isnan(got[("sentiment_pipeline_candidate_train_seconds", (("family", "transformer"), ("model", "unit-model")))])  # fmt: skip
    assert got[("sentiment_pipeline_champion_version", (("model", "unit-model"),))] == 3.0

    # a second run replaces the group: the transformer's series are gone, another model's group stays
    push_gate_metrics(gateway, "other-model", moved, families)
    only_linear = GateDecision(**{**moved.__dict__, "candidate_scores": {runs[0]: 0.9},
                                  "candidate_set_scores": {runs[0]: {"test": 0.9}}, "registered_version": "4"})  # fmt: skip
    push_gate_metrics(gateway, "unit-model", only_linear, {runs[0]: "linear-tfidf"})
    text = httpx.get(f"http://{gateway}/metrics", timeout=10).text
    mine, other = samples(text, model="unit-model"), samples(text, model="other-model")
    assert {dict(labels).get("family") for _, labels in mine} == {"linear-tfidf", None}
    assert mine[("sentiment_pipeline_champion_version", (("model", "unit-model"),))] == 4.0
    assert ("sentiment_pipeline_candidate_train_seconds", (("family", "transformer"), ("model", "other-model"))) in other  # fmt: skip


def test_unreachable_gateway_is_logged_not_raised(tracking_uri, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    run = client.create_run(client.get_experiment_by_name("sentiment").experiment_id).info.run_id
    only = decision(run_ids=("run-a",))
    only = GateDecision(**{**only.__dict__, "run_id": run, "candidate_scores": {run: 0.8},
                           "candidate_set_scores": {run: {"test": 0.8}}})  # fmt: skip
    address = f"127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="monitoring.pushgateway"):
        push_gate_metrics(address, "sentiment", only, {run: "linear-tfidf"})
    assert f"could not push the gate's decision to {address}" in caplog.text
