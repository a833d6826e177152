"""The retraining steps' parts on a real MLflow store: feedback written as a versioned data source (folder
and S3), the guards, the record of each start and its close, and the training pipeline's inputs a start
changes. The monitoring pipeline nesting the training pipeline runs in tests/integration (the full loop,
with real training, is the slow tests/integration/test_retraining_loop.py)."""

import json
import time
from pathlib import Path

import mlflow
import pandas as pd

from components.ingest import read_source
from components.retrain import (
    RETRAIN_EXPERIMENT,
    RetrainConfig,
    finish_retraining_record,
    hold_off,
    retraining_inputs,
    start_retraining,
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
    assert client.get_run(running).info.status == "RUNNING"
    # started 30 h ago, 6 h allowed: it ended without a verdict; closed as FAILED, not in progress
    assert hold_off(client, config(), now) is None
    stale = client.get_run(running)
    assert (stale.info.status, stale.data.tags["outcome"]) == ("FAILED", "no verdict within 6.0 h")
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
INGEST = {"sources": ["data.csv"], "extra_train": []}  # as a step receives it: max_rows_per_split null
OUT_OF_DOMAIN = {"sources": ["reddit.csv"]}
LINEAGE = json.dumps({"ingest.sources": '["data.csv"]', "ingest.extra_train": "[]", "run.seed": 0})


def test_a_start_is_recorded_with_its_reason_and_data_then_closed_with_the_verdict_and_the_guards_hold(
    tracking_uri: str, tmp_path
) -> None:
    feedback = sentiment_frame()
    settings = config(data_root=str(tmp_path / "data"))
    quiet = start_retraining(RETRAIN | {"retrain": False}, feedback, settings, tracking_uri, 0)
    assert not quiet.started
    assert retraining_inputs(quiet, INGEST, OUT_OF_DOMAIN, LINEAGE) == {
        "start": False,
        "ingest": INGEST,
        "out_of_domain": OUT_OF_DOMAIN,
        "lineage": LINEAGE,
        "data_fingerprints": "{}",
    }
    few = start_retraining(RETRAIN, feedback.head(10), settings, tracking_uri, 0)
    assert not few.started and few.reason == "retraining wanted, but 10 labelled answers (it needs 30)"

    outcome = start_retraining(RETRAIN, feedback, settings, tracking_uri, 0)
    assert outcome.started and outcome.reason == "drift"
    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(outcome.record_run_id)
    assert run.info.status == "RUNNING"  # while the nested training runs
    assert (run.data.tags["reason"], run.data.tags["monitored_version"]) == ("drift", "4")
    assert run.data.params["train_rows"] == str(outcome.feedback.train_rows)
    inputs = {i.dataset.name: i.dataset.digest for i in run.inputs.dataset_inputs}
    digest = outcome.feedback.digest[:DATASET_DIGEST_CHARS]
    assert inputs == {"feedback_train": digest, "feedback": digest}

    # what the training pipeline is handed: the feedback added to its data, lineage and fingerprints
    inputs = retraining_inputs(outcome, INGEST, OUT_OF_DOMAIN, LINEAGE)
    train_uri, holdout_uri = outcome.feedback.train_uri, outcome.feedback.holdout_uri
    assert inputs["start"]
    assert inputs["ingest"] == INGEST | {"extra_train": [train_uri]}
    assert inputs["out_of_domain"] == {"sources": ["reddit.csv", holdout_uri]}
    lineage = json.loads(inputs["lineage"])
    assert lineage["ingest.extra_train"] == json.dumps([train_uri]) and lineage["run.seed"] == 0
    assert lineage["out_of_domain.sources"] == json.dumps(["reddit.csv", holdout_uri])
    assert set(json.loads(inputs["data_fingerprints"])) == {"data.csv", "reddit.csv", train_uri, holdout_uri}

    assert finish_retraining_record(
        outcome.record_run_id, {"promoted": True, "reason": "beats"}, tracking_uri
    ) == ("promoted")
    run = client.get_run(outcome.record_run_id)
    assert (run.info.status, run.data.tags["outcome"], run.data.tags["gate.reason"]) == (
        "FINISHED",
        "promoted",
        "beats",
    )
    assert mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/retrain/gate_decision.json")["promoted"]
    held = start_retraining(RETRAIN, feedback, settings, tracking_uri, 0)
    assert not held.started and held.reason.startswith("held off: cooldown")


def test_a_training_that_ends_without_a_verdict_leaves_a_record_closed_as_failed(
    tracking_uri: str, tmp_path
) -> None:
    """The nested training failed (finish_retraining never ran): the record stays RUNNING, the guard
    counts it in progress for max_training_hours, and the next start's check closes it as FAILED."""
    settings = config(data_root=str(tmp_path / "data"))
    outcome = start_retraining(RETRAIN, sentiment_frame(), settings, tracking_uri, 0)
    client = mlflow.MlflowClient(tracking_uri)
    assert hold_off(client, settings, time.time()).startswith("a retraining is in progress")
    assert hold_off(client, config(max_training_hours=0.0), time.time()).startswith("cooldown")
    run = client.get_run(outcome.record_run_id)
    assert run.info.status == "FAILED" and run.data.tags["reason"] == "drift"
    assert isinstance(pd.read_parquet(run.data.tags["feedback_source"] + "/feedback.parquet"), pd.DataFrame)
