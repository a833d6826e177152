"""The monitor step: the sampled prediction log the predictor writes (to a folder and to a real S3 API) read
back, and the drift report against a champion trained by the real steps."""

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from components.ingest import read_source
from components.monitor import MonitorError, monitor_predictions, read_prediction_log
from components.validate import find_bad_rows
from core.artifacts import REFERENCE_ARTIFACT
from core.tracking import ensure_experiment
from monitoring.drift import SIGNIFICANT_PSI, DriftReference
from serving.feedback import Answer, LabelledAnswer
from serving.prediction_log import PredictionLog, feedback_log
from serving.prometheus_metrics import PREDICTION_LOG_RECORDS
from tests.conftest import shared_dataset
from tests.helpers import PARAMS, REPO, numbered, write_splits
from tests.registry import sqlite_store

LONG_RANT = "this is a very long complaint that goes on and on about nothing in particular " * 4


def monitor(predictions: str, model_uri: str, tracking_uri: str, **changes):
    """The monitor step with the dashboards' PSI threshold and params.yaml's ``monitor`` (``changes``)."""
    config = replace(PARAMS.monitor, **changes)
    return monitor_predictions(predictions, model_uri, tracking_uri, SIGNIFICANT_PSI, config)


def logged_counts() -> dict[str, float]:
    return {o: PREDICTION_LOG_RECORDS.labels(outcome=o)._value.get() for o in ("written", "dropped")}


def test_prediction_log_writes_a_sample_in_parts(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "log"), sample_rate=1.0, flush_rows=40, flush_seconds=60)
    texts = [f"text {i}" for i in range(100)]
    log.record(texts, ["positive"] * 100, [0.9] * 100, "3", ids=numbered(texts))
    log.close()
    parts = sorted((tmp_path / "log").glob("predictions-*.jsonl"))
    assert len(parts) == 3  # 40 + 40 + the 20 written at close
    logged = read_prediction_log(str(tmp_path / "log"))
    assert logged["text"].tolist() == texts and set(logged["model_version"].astype(str)) == {"3"}
    none = PredictionLog(str(tmp_path / "none"), sample_rate=0.0)
    none.record(texts, ["positive"] * 100, [0.9] * 100, "3", ids=numbered(texts))
    none.close()
    assert not list((tmp_path / "none").iterdir())


def test_prediction_log_never_blocks_a_request(tmp_path: Path, monkeypatch) -> None:
    """A stuck writer: the request path drops (and counts) what does not fit, and returns at once."""
    release = threading.Event()
    monkeypatch.setattr(PredictionLog, "_write", lambda self, rows: release.wait(30))
    log = PredictionLog(str(tmp_path), sample_rate=1.0, flush_rows=1, queue_size=5)
    before = logged_counts()["dropped"]
    started = time.perf_counter()
    log.record(
        [f"t{i}" for i in range(50)],
        ["neutral"] * 50,
        [0.5] * 50,
        "1",
        ids=numbered([f"t{i}" for i in range(50)]),
    )
    assert time.perf_counter() - started < 0.5
    assert logged_counts()["dropped"] - before >= 40
    release.set()
    log.close()


def test_prediction_log_to_s3(s3_endpoint: str) -> None:
    from minio import Minio

    Minio(s3_endpoint, access_key="testing", secret_key="testing", secure=False).make_bucket("predictions")
    log = PredictionLog("s3://predictions/sentiment/", sample_rate=1.0)
    log.record(["good", "bad"], ["positive", "negative"], [0.8, 0.7], "2", ids=numbered(["good", "bad"]))
    log.close()
    logged = read_prediction_log("s3://predictions/sentiment")
    assert logged[["text", "label", "confidence"]].values.tolist() == [
        ["good", "positive", 0.8],
        ["bad", "negative", 0.7],
    ]


def answers_of(model, texts: list[str]) -> pd.DataFrame:
    """``model``'s answers for ``texts``, each distinct text predicted once (the logs below repeat texts);
    a window's prediction and feedback logs are written from the same answers."""
    distinct = list(dict.fromkeys(texts))
    answers = model.predict(pd.DataFrame({"text": distinct})).set_axis(distinct, axis=0)
    return answers.loc[texts].reset_index(drop=True)


def log_predictions(folder: Path, texts: list[str], output: pd.DataFrame, version: str) -> None:
    """The prediction log after the predictor answered ``texts`` with ``output`` (:func:`answers_of`)."""
    log = PredictionLog(str(folder), sample_rate=1.0)
    confidences = output[[c for c in output.columns if c.startswith("prob_")]].max(axis=1).tolist()
    log.record(texts, output["label"].tolist(), confidences, version, ids=numbered(texts))
    log.close()


def test_monitor_reports_drift_only_when_inputs_shift(
    champion_store: str, champion_model, tmp_path: Path
) -> None:
    mlflow.set_tracking_uri(champion_store)
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias("sentiment", "champion")
    reference = DriftReference.from_json(
        mlflow.artifacts.load_text(f"runs:/{champion.run_id}/{REFERENCE_ARTIFACT}")
    )
    assert reference.rows == 36  # evaluate profiled the test split
    model = champion_model
    rng = np.random.default_rng(3)
    test_texts = pd.read_parquet(write_splits(tmp_path, seed=2)["test"])["text"].tolist()  # the fixture's
    same = rng.choice(test_texts, size=400).tolist()  # same distribution as the reference
    same_answers = answers_of(model, same)
    log_predictions(tmp_path / "same", same, same_answers, champion.version)
    # 400 texts are fewer than one text drift window of 1,000: this judges the PSI features alone
    stable = monitor(str(tmp_path / "same"), "models:/sentiment@champion", champion_store, window_rows=1000)
    assert stable.rows == 400 and stable.drifted == []
    assert client.get_model_version("sentiment", champion.version).tags["drift"] == "stable"
    shifted = [f"{text} {LONG_RANT}" for text in same]
    log_predictions(tmp_path / "shifted", shifted, answers_of(model, shifted), champion.version)
    drifted = monitor(
        str(tmp_path / "shifted"), f"models:/sentiment/{champion.version}", champion_store, window_rows=1000
    )
    assert "input_length" in drifted.drifted and drifted.psi["input_length"] > SIGNIFICANT_PSI
    assert not drifted.retrain and drifted.reasons == []  # PSI drift alone is no reason to retrain
    assert drifted.ks_pvalues["input_length"] < 1e-6
    run = client.get_run(drifted.run_id)
    assert run.data.tags["drift"] == "drifted" and run.data.metrics["psi_input_length"] > SIGNIFICANT_PSI
    assert (
        json.loads(mlflow.artifacts.load_text(f"runs:/{drifted.run_id}/drift/drift_report.json"))["rows"]
        == 400
    )
    assert "**drifted**" in mlflow.artifacts.load_text(f"runs:/{drifted.run_id}/drift/drift_report.md")
    assert client.get_model_version("sentiment", champion.version).tags["drift"] == "drifted"
    log_predictions(tmp_path / "other", same, same_answers, "999")
    with pytest.raises(MonitorError, match="no logged predictions"):
        monitor(str(tmp_path / "other"), "models:/sentiment@champion", champion_store)


def log_feedback(folder: Path, frame: pd.DataFrame, output: pd.DataFrame, version: str) -> None:
    """What the predictor's feedback log holds after clients labelled every answer (``output``) of
    ``frame``."""
    confidences = output[[c for c in output.columns if c.startswith("prob_")]].max(axis=1).tolist()
    log, now = feedback_log(str(folder)), time.time()
    for i, (text, label, predicted, confidence) in enumerate(
        zip(frame["text"], frame["label"], output["label"], confidences, strict=True)
    ):
        answer = Answer(f"{folder.name}-{i}", text, predicted, confidence, version, now)
        log.enqueue(LabelledAnswer(answer, label, now).as_record())
    log.close()


def test_monitor_decides_to_retrain_on_shifted_traffic_and_not_on_in_domain_traffic(
    champion_store: str, champion_model, tmp_path: Path
) -> None:
    """Real YouTube and Reddit comments, labelled, against a champion of templated tweets: text drift in
    both windows and a live-quality drop; the champion's own training texts, labelled: neither."""
    mlflow.set_tracking_uri(champion_store)
    version = mlflow.MlflowClient().get_model_version_by_alias("sentiment", "champion").version
    model = champion_model
    sources = [
        read_source(str(shared_dataset(n))) for n in ("youtube_comments_sentiment", "reddit_sentiment")
    ]
    comments = pd.concat(
        [frame[find_bad_rows(frame, 500) == ""].sample(n=300, random_state=0) for frame in sources]
    ).sample(frac=1.0, random_state=1)
    shifted = tmp_path / "shifted"
    answers = answers_of(model, comments["text"].tolist())
    log_predictions(shifted, comments["text"].tolist(), answers, version)
    log_feedback(shifted, comments, answers, version)
    report = monitor(str(shifted), "models:/sentiment@champion", champion_store)
    assert [w.rows for w in report.windows] == [300, 300] and all(w.drifted for w in report.windows)
    assert report.quality.labelled == 600 and report.quality.fallen
    assert report.retrain and len(report.reasons) == 2, report.reasons
    assert report.decision() == {
        "model_name": "sentiment",
        "model_version": str(version),
        "drifted": report.drifted,
        "retrain": True,
        "reasons": report.reasons,
    }
    run = mlflow.MlflowClient().get_run(report.run_id)
    assert run.data.tags["retrain"] == "true" and run.data.metrics["window1_auc"] > 0.9
    assert "## Decision: **retrain**" in mlflow.artifacts.load_text(
        f"runs:/{report.run_id}/drift/drift_report.md"
    )

    train = pd.read_parquet(write_splits(tmp_path, seed=2)["train"])  # what the reference sampled
    in_domain = train.sample(n=600, replace=True, random_state=0)
    same = tmp_path / "same"
    answers = answers_of(model, in_domain["text"].tolist())
    log_predictions(same, in_domain["text"].tolist(), answers, version)
    log_feedback(same, in_domain, answers, version)
    report = monitor(str(same), "models:/sentiment@champion", champion_store)
    assert len(report.windows) == 2 and not all(w.drifted for w in report.windows)
    assert report.quality.labelled == 600 and not report.quality.fallen
    assert not report.retrain and report.reasons == []


def test_the_alert_and_the_monitor_use_the_same_quality_margin_and_label_minimum() -> None:
    rules = (REPO / "monitoring" / "alerts.rules.yml").read_text()
    assert f"- {PARAMS.monitor.quality_margin})" in rules
    assert f"(sentiment:live_labelled:1d >= {PARAMS.monitor.quality_min_labels})" in rules


def test_a_missing_embedding_reference_is_none_but_an_outage_fails(tmp_path: Path, monkeypatch) -> None:
    """A model trained before embedding references were logged skips the text-drift test; an MLflow that
    does not answer is an error, not a missing reference (which would drop the test silently)."""
    from components.monitor import _embedding_reference

    previous = mlflow.get_tracking_uri()
    uri = sqlite_store(tmp_path / "mlflow.db")
    ensure_experiment(uri, "old-model", (tmp_path / "artifacts").as_uri())
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("old-model")
    with mlflow.start_run() as run:
        mlflow.log_text("{}", "monitoring/other.json")
    assert _embedding_reference(run.info.run_id) is None
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    mlflow.set_tracking_uri("http://127.0.0.1:9")  # the discard port: nothing answers
    try:
        with pytest.raises(Exception, match=r"127\.0\.0\.1"):
            _embedding_reference(run.info.run_id)
    finally:
        mlflow.set_tracking_uri(previous)
