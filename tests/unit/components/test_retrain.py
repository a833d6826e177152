"""The retrain step's parts on a real MLflow store: feedback written as a versioned data source (folder
and S3), the guards, and the record of each start. The full loop, with the real training pipeline, is
tests/integration/test_retraining_loop.py."""

import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from components.ingest import read_source
from components.retrain import (
    RETRAIN_EXPERIMENT,
    RetrainConfig,
    hold_off,
    retrain_if_needed,
    write_feedback_source,
)
from core.lineage import DATASET_DIGEST_CHARS, content_digest
from tests.helpers import PARAMS, sentiment_frame

HOUR = 3600.0


def config(**changes) -> RetrainConfig:
    values = {"min_feedback_rows": 30, "cooldown_hours": 24.0, "max_per_week": 3, "max_training_hours": 6.0}
    return RetrainConfig(**(vars(PARAMS.retrain) | values | changes))


def test_feedback_becomes_a_content_addressed_source_with_a_stratified_holdout(tmp_path: Path) -> None:
    feedback = sentiment_frame().assign(id="x", model_version="1")
    source = write_feedback_source(feedback, str(tmp_path / "data"), 0.25, seed=0)
    assert source.digest == content_digest(feedback)
    assert source.train_uri == f"{tmp_path}/data/feedback-{source.digest[:16]}/feedback_train.parquet"
    train, held_out = read_source(source.train_uri), read_source(source.holdout_uri)
    assert (len(train), len(held_out)) == (source.train_rows, source.holdout_rows) == (108, 36)
    assert held_out["label"].value_counts().to_dict() == {"negative": 12, "neutral": 12, "positive": 12}
    assert not set(train["text"]) & set(held_out["text"])
    again = write_feedback_source(feedback.sample(frac=1.0, random_state=3), str(tmp_path / "data"), 0.25, 0)
    assert again.train_uri == source.train_uri  # the same labels are the same version


def test_feedback_source_on_s3(s3_endpoint: str) -> None:
    from minio import Minio

    Minio(s3_endpoint, access_key="testing", secret_key="testing", secure=False).make_bucket("sources")
    source = write_feedback_source(sentiment_frame(), "s3://sources/feedback", 0.25, seed=0)
    assert source.holdout_uri.startswith("s3://sources/feedback/feedback-")
    assert len(read_source(source.holdout_uri)) == 36


def record(client: mlflow.MlflowClient, hours_ago: float, status: str = "FINISHED") -> str:
    experiment = client.get_experiment_by_name(RETRAIN_EXPERIMENT) or client.get_experiment(
        client.create_experiment(RETRAIN_EXPERIMENT)
    )
    run = client.create_run(experiment.experiment_id, start_time=int((time.time() - hours_ago * HOUR) * 1000))
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_guards_one_at_a_time_cooldown_and_weekly_limit(tracking_uri: str) -> None:
    client, now = mlflow.MlflowClient(tracking_uri), time.time()
    assert hold_off(client, config(), now) is None  # nothing started yet
    running = record(client, hours_ago=30, status="RUNNING")
    assert hold_off(client, config(max_training_hours=48), now).startswith("a retraining is in progress")
    assert running in hold_off(client, config(max_training_hours=48), now)
    assert hold_off(client, config(), now) is None  # started 30 h ago: stale, not in progress
    record(client, hours_ago=2)
    assert hold_off(client, config(), now).startswith("cooldown: the last retraining started 2.0 h ago")
    assert hold_off(client, config(cooldown_hours=1), now) is None
    record(client, hours_ago=1.5, status="FAILED")
    assert hold_off(client, config(cooldown_hours=1), now) == (
        "3 retrainings started in the last 7 days (the limit is 3)"
    )


RETRAIN = {
    "model_name": "sentiment",
    "model_version": "4",
    "drifted": [],
    "retrain": True,
    "reasons": ["drift"],
}


def test_a_start_is_recorded_with_its_reason_and_data_and_the_guards_then_hold(
    tracking_uri: str, tmp_path
) -> None:
    feedback = sentiment_frame()
    settings = config(data_root=str(tmp_path / "data"))
    calls = []

    def train(extra_train: list[str], extra_out_of_domain: list[str]) -> dict:
        calls.append((extra_train, extra_out_of_domain))
        return {"promoted": True, "reason": "beats the champion"}

    assert not retrain_if_needed(
        RETRAIN | {"retrain": False}, feedback, settings, tracking_uri, 0, train
    ).started
    few = retrain_if_needed(RETRAIN, feedback.head(10), settings, tracking_uri, 0, train)
    assert not few.started and few.reason == "retraining wanted, but 10 labelled answers (it needs 30)"
    outcome = retrain_if_needed(RETRAIN, feedback, settings, tracking_uri, 0, train)
    assert (
        outcome.started
        and outcome.training["promoted"]
        and calls == [([outcome.feedback.train_uri], [outcome.feedback.holdout_uri])]
    )
    run = mlflow.MlflowClient(tracking_uri).get_run(outcome.record_run_id)
    assert run.info.status == "FINISHED"
    assert (run.data.tags["reason"], run.data.tags["monitored_version"], run.data.tags["outcome"]) == (
        "drift",
        "4",
        "promoted",
    )
    inputs = {i.dataset.name: i.dataset.digest for i in run.inputs.dataset_inputs}
    digest = outcome.feedback.digest[:DATASET_DIGEST_CHARS]
    assert inputs == {"feedback_train": digest, "feedback": digest}
    held = retrain_if_needed(RETRAIN, feedback, settings, tracking_uri, 0, train)
    assert not held.started and held.reason.startswith("held off: cooldown") and len(calls) == 1


def test_a_failed_training_leaves_a_failed_record(tracking_uri: str, tmp_path) -> None:
    def train(extra_train, extra_out_of_domain) -> dict:
        raise RuntimeError("the pipeline failed")

    settings = config(data_root=str(tmp_path / "data"))
    with pytest.raises(RuntimeError, match="the pipeline failed"):
        retrain_if_needed(RETRAIN, sentiment_frame(), settings, tracking_uri, 0, train)
    client = mlflow.MlflowClient(tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name(RETRAIN_EXPERIMENT).experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["reason"] == "drift"
    assert isinstance(pd.read_parquet(run.data.tags["feedback_source"] + "/feedback.parquet"), pd.DataFrame)
