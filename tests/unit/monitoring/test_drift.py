"""Drift detection: the PSI statistics, the predictor's sliding window, the sampled prediction log (to a
folder and to a real S3 API) and the monitor step against a champion trained by the real steps."""

import json
import threading
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from components.monitor import MonitorError, monitor, read_prediction_log
from monitoring.drift import (
    REFERENCE_ARTIFACT,
    SIGNIFICANT_PSI,
    DriftReference,
    build_reference,
    drift_scores,
    psi,
)
from serving.drift_window import DriftWindow
from serving.prediction_log import PredictionLog
from serving.prometheus_metrics import PREDICTION_LOG_RECORDS
from tests.helpers import write_splits

LONG_RANT = "this is a very long complaint that goes on and on about nothing in particular " * 4


def synthetic(
    rng: np.random.Generator, n: int, scale: float = 1.0
) -> tuple[list[str], list[str], list[float]]:
    """Texts with log-normal lengths, a 30/40/30 class mix and beta confidences."""
    lengths = np.clip(rng.lognormal(4.0, 0.5, n) * scale, 1, 2000).astype(int)
    labels = rng.choice(["negative", "neutral", "positive"], size=n, p=[0.3, 0.4, 0.3]).tolist()
    return ["x" * length for length in lengths], labels, rng.beta(5, 2, n).tolist()


def scores_of(reference: DriftReference, texts: list[str], labels: list[str], confidences: list[float]):
    lengths = np.array([len(t) for t in texts], float)
    return drift_scores(reference, lengths, np.asarray(confidences), labels)


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    reference = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(reference, reference) == pytest.approx(0.0)
    small, large = psi(reference, [0.3, 0.2, 0.25, 0.25]), psi(reference, [0.7, 0.1, 0.1, 0.1])
    assert 0 < small < 0.1 < SIGNIFICANT_PSI < large
    assert np.isfinite(psi(reference, [1.0, 0.0, 0.0, 0.0]))  # an empty bin stays finite


def test_same_distribution_stays_low_and_a_shift_is_significant() -> None:
    rng = np.random.default_rng(0)
    reference = build_reference(*synthetic(rng, 3000))
    assert len(reference.length_edges) == 9 and sum(reference.length_shares) == pytest.approx(1.0)
    assert max(scores_of(reference, *synthetic(rng, 1000)).values()) < 0.1
    longer = scores_of(reference, *synthetic(rng, 1000, scale=3.0))
    assert longer["input_length"] > SIGNIFICANT_PSI and longer["predicted_class"] < 0.1
    texts, _, confidences = synthetic(rng, 1000)
    all_negative = scores_of(reference, texts, ["negative"] * 1000, confidences)
    assert all_negative["predicted_class"] > SIGNIFICANT_PSI and all_negative["input_length"] < 0.1


def test_reference_round_trips_through_json() -> None:
    reference = build_reference(*synthetic(np.random.default_rng(1), 100))
    assert DriftReference.from_json(reference.to_json()) == reference
    assert len(reference.length_edges) <= 4  # 100 rows: at most 5 bins of about 20 rows


def test_window_scores_only_with_a_reference_and_enough_texts() -> None:
    rng = np.random.default_rng(2)
    window = DriftWindow(size=50, min_texts=20)
    texts, labels, confidences = synthetic(rng, 30)
    window.add(texts, labels, confidences)
    assert window.scores() is None  # no reference yet
    window.use_reference(build_reference(*synthetic(rng, 500)))
    assert len(window) == 0  # a new reference starts an empty window
    window.add(texts[:10], labels[:10], confidences[:10])
    assert window.scores() is None
    window.add(*synthetic(rng, 100))
    assert len(window) == 50 and set(window.scores()) == {"input_length", "confidence", "predicted_class"}


def logged_counts() -> dict[str, float]:
    return {o: PREDICTION_LOG_RECORDS.labels(outcome=o)._value.get() for o in ("written", "dropped")}


def test_prediction_log_writes_a_sample_in_parts(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "log"), sample_rate=1.0, flush_rows=40, flush_seconds=60)
    texts = [f"text {i}" for i in range(100)]
    log.record(texts, ["positive"] * 100, [0.9] * 100, "3")
    log.close()
    parts = sorted((tmp_path / "log").glob("predictions-*.jsonl"))
    assert len(parts) == 3  # 40 + 40 + the 20 written at close
    logged = read_prediction_log(str(tmp_path / "log"))
    assert logged["text"].tolist() == texts and set(logged["model_version"].astype(str)) == {"3"}
    none = PredictionLog(str(tmp_path / "none"), sample_rate=0.0)
    none.record(texts, ["positive"] * 100, [0.9] * 100, "3")
    none.close()
    assert not list((tmp_path / "none").iterdir())


def test_prediction_log_never_blocks_a_request(tmp_path: Path, monkeypatch) -> None:
    """A stuck writer: the request path drops (and counts) what does not fit, and returns at once."""
    release = threading.Event()
    monkeypatch.setattr(PredictionLog, "_write", lambda self, rows: release.wait(30))
    log = PredictionLog(str(tmp_path), sample_rate=1.0, flush_rows=1, queue_size=5)
    before = logged_counts()["dropped"]
    started = time.perf_counter()
    log.record([f"t{i}" for i in range(50)], ["neutral"] * 50, [0.5] * 50, "1")
    assert time.perf_counter() - started < 0.5
    assert logged_counts()["dropped"] - before >= 40
    release.set()
    log.close()


def test_prediction_log_to_s3(s3_endpoint: str) -> None:
    from minio import Minio

    Minio(s3_endpoint, access_key="testing", secret_key="testing", secure=False).make_bucket("predictions")
    log = PredictionLog("s3://predictions/sentiment/", sample_rate=1.0)
    log.record(["good", "bad"], ["positive", "negative"], [0.8, 0.7], "2")
    log.close()
    logged = read_prediction_log("s3://predictions/sentiment")
    assert logged[["text", "label", "confidence"]].values.tolist() == [
        ["good", "positive", 0.8], ["bad", "negative", 0.7]
    ]  # fmt: skip


def log_predictions(folder: Path, model, texts: list[str], version: str) -> None:
    output = model.predict(pd.DataFrame({"text": texts}))
    log = PredictionLog(str(folder), sample_rate=1.0)
    confidences = output[[c for c in output.columns if c.startswith("prob_")]].max(axis=1).tolist()
    log.record(texts, output["label"].tolist(), confidences, version)
    log.close()


def test_monitor_reports_drift_only_when_inputs_shift(champion_store: str, tmp_path: Path) -> None:
    mlflow.set_tracking_uri(champion_store)
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias("sentiment", "champion")
    reference = DriftReference.from_json(
        mlflow.artifacts.load_text(f"runs:/{champion.run_id}/{REFERENCE_ARTIFACT}")
    )
    assert reference.rows == 36  # evaluate profiled the test split
    model = mlflow.pyfunc.load_model("models:/sentiment@champion")
    rng = np.random.default_rng(3)
    test_texts = pd.read_parquet(write_splits(tmp_path, seed=2)["test"])["text"].tolist()  # the fixture's
    same = rng.choice(test_texts, size=400).tolist()  # same distribution as the reference
    log_predictions(tmp_path / "same", model, same, champion.version)
    stable = monitor(str(tmp_path / "same"), "models:/sentiment@champion", champion_store)
    assert stable.rows == 400 and stable.drifted == []
    assert client.get_model_version("sentiment", champion.version).tags["drift"] == "stable"
    shifted = [f"{text} {LONG_RANT}" for text in same]
    log_predictions(tmp_path / "shifted", model, shifted, champion.version)
    drifted = monitor(str(tmp_path / "shifted"), f"models:/sentiment/{champion.version}", champion_store)
    assert "input_length" in drifted.drifted and drifted.psi["input_length"] > SIGNIFICANT_PSI
    assert drifted.ks_pvalues["input_length"] < 1e-6
    run = client.get_run(drifted.run_id)
    assert run.data.tags["drift"] == "drifted" and run.data.metrics["psi_input_length"] > SIGNIFICANT_PSI
    assert (
        json.loads(mlflow.artifacts.load_text(f"runs:/{drifted.run_id}/drift/drift_report.json"))["rows"]
        == 400
    )
    assert "**drifted**" in mlflow.artifacts.load_text(f"runs:/{drifted.run_id}/drift/drift_report.md")
    assert client.get_model_version("sentiment", champion.version).tags["drift"] == "drifted"
    log_predictions(tmp_path / "other", model, same, "999")
    with pytest.raises(MonitorError, match="no logged predictions"):
        monitor(str(tmp_path / "other"), "models:/sentiment@champion", champion_store)


def test_monitoring_pipeline_runs_locally(champion_store: str, tmp_path: Path, monkeypatch) -> None:
    """The same monitoring pipeline the cluster schedules, through kfp.local (``pipelines.run --monitor``)."""
    from pipelines.params import PipelineParams
    from pipelines.run import run_monitoring

    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion_store)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # restored after the test; the runner points it elsewhere
    mlflow.set_tracking_uri(champion_store)
    champion = mlflow.MlflowClient().get_model_version_by_alias("sentiment", "champion")
    model = mlflow.pyfunc.load_model("models:/sentiment@champion")
    texts = pd.read_parquet(write_splits(tmp_path, seed=2)["test"])["text"].tolist()
    log_predictions(tmp_path / "log", model, [f"{text} {LONG_RANT}" for text in texts * 5], champion.version)
    (tmp_path / "work").mkdir()
    message = run_monitoring(str(tmp_path / "log"), PipelineParams.load(), tmp_path / "work", None)
    assert message.startswith("DRIFT in input_length"), message
    runs = mlflow.search_runs(
        experiment_names=["sentiment-monitoring"], filter_string="tags.drift = 'drifted'"
    )
    assert len(runs) >= 1
