"""The MLOps loop, end to end, with real parts: the training pipeline (kfp.local) promotes a champion; the
real predictor serves it, logs its answers and takes live labels on ``:feedback``; shifted traffic (real
YouTube and Reddit comments) with its true labels makes the monitoring pipeline detect text drift and a
quality drop and start exactly one retraining on the original data plus the feedback, which the gate
judges on the test split and the held-out feedback; then in-domain traffic, labelled, starts none.
Small data and budgets: this checks the loop; bench/retraining_loop.py runs it on TweetEval."""

import json
import re
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from components.ingest import read_source
from components.retrain import RETRAIN_EXPERIMENT
from components.validate import find_bad_rows
from monitoring.live_quality import quality_from_counts, version_counts
from pipelines import run
from tests.conftest import shared_dataset
from tests.helpers import (
    HTTP,
    sentiment_frame,
    start_model_server,
    stop_process,
    write_params,
)
from tests.integration.test_pipeline_runs import BUDGET

LOOP = {
    **BUDGET,
    "monitor": {"window_rows": 200, "consecutive_windows": 2, "permutations": 200, "quality_window": 400},
    "retrain": {"min_feedback_rows": 100},
}


def serve_and_label(tracking_uri: str, predictions: Path, frame: pd.DataFrame, log: Path) -> dict[str, float]:
    """Serve the champion, send it ``frame``'s texts (50 per request), post their true labels as feedback,
    and return the live quality of the version that answered, from the server's live confusion counts;
    stop the server (which flushes the logs)."""
    process, url, _ = start_model_server(
        tracking_uri,
        log,
        extra_args=("--prediction_log", str(predictions), "--prediction_log_sample", "1.0"),
    )
    try:
        for start in range(0, len(frame), 50):
            batch = frame.iloc[start : start + 50]
            answers = HTTP.post(
                f"{url}/v1/models/sentiment:predict", json={"instances": batch["text"].tolist()}
            )
            assert answers.status_code == 200, answers.text
            rows = [
                {"id": p["id"], "label": y}
                for p, y in zip(answers.json()["predictions"], batch["label"], strict=True)
            ]
            labelled = HTTP.post(f"{url}/v1/models/sentiment:feedback", json=rows)
            assert labelled.status_code == 200, labelled.text
        counts = version_counts(HTTP.get(f"{url}/metrics").text, answers.json()["model_version"])
        live = quality_from_counts(counts)
        return {"value": live.macro_recall, "lower": live.lower, "upper": live.upper} | {
            "labelled": live.labelled
        }
    finally:
        stop_process(process)


def monitor(predictions: Path, source: Path, params: Path, workdir: Path, capsys) -> str:
    """``make monitor`` with the training data of ``make pipeline-run`` (a retraining starts from it)."""
    run.main(
        [
            "--monitor",
            str(predictions),
            "--data",
            str(source),
            "--params",
            str(params),
            "--workdir",
            str(workdir),
        ]
    )
    return capsys.readouterr().out


@pytest.mark.slow  # about 6 minutes on 2 cores: `make test-slow` runs it
def test_shifted_traffic_retrains_once_and_in_domain_traffic_does_not(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.delenv("KFP_HOST", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    source, workdir, predictions = (
        tmp_path / "tweets.csv",
        tmp_path / "mlops",
        tmp_path / "mlops" / "predictions",
    )
    sentiment_frame().to_csv(source, index=False)
    params = write_params(tmp_path / "params.yaml", **LOOP)
    run.main(["--data", str(source), "--params", str(params), "--workdir", str(workdir)])
    assert "gate: PROMOTED to champion: first model" in capsys.readouterr().out
    tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri)
    offline = client.get_run(client.get_model_version_by_alias("sentiment", "champion").run_id).data.metrics

    # 1. a shifted domain: real comments, with their true labels as feedback
    comments = pd.concat(
        [
            frame[find_bad_rows(frame, 500) == ""].sample(n=300, random_state=0)
            for frame in (
                read_source(str(shared_dataset(n)))
                for n in ("youtube_comments_sentiment", "reddit_sentiment")
            )
        ]
    ).sample(frac=1.0, random_state=1)
    live = serve_and_label(tracking_uri, predictions, comments, tmp_path / "serve-1.log")
    assert live["labelled"] == 600 and live["lower"] <= live["value"] <= live["upper"]
    assert live["upper"] < offline["test_macro_recall"] - 0.05  # the gauges see the drop the alert fires on
    printed = monitor(predictions, source, params, workdir, capsys)
    assert "retraining started: text drift in 2 consecutive windows of 200 texts" in printed, printed
    assert "live macro recall" in printed
    retrainings = client.search_runs([client.get_experiment_by_name(RETRAIN_EXPERIMENT).experiment_id])
    assert len(retrainings) == 1 and retrainings[0].info.status == "FINISHED"
    decision = json.loads(
        Path(client.download_artifacts(retrainings[0].info.run_id, "retrain/gate_decision.json")).read_text()
    )
    assert set(decision["weights"]) == {"test", "ood_feedback"}  # the gate decided on both sets
    assert decision["interval"] is not None and decision["champion_version"] == "1"
    assert all(
        set(scores) == {"test", "ood_feedback"} for scores in decision["candidate_set_scores"].values()
    )
    retrained = client.get_run(decision["run_id"])
    assert {i.dataset.name for i in retrained.inputs.dataset_inputs} == {"tweets", "feedback_train"}
    assert f"gate on the retrained candidates: {decision['reason']}" in printed

    again = monitor(predictions, source, params, workdir, capsys)  # the same logs once more: no second start
    assert re.search(
        r"no retraining: (held off: cooldown|no logged predictions for sentiment version 2)", again
    ), again
    assert len(client.search_runs([retrainings[0].info.experiment_id])) == 1

    # 2. in-domain traffic (the first run's training texts), labelled: no reason to retrain
    (first_train,) = sorted((workdir / "kfp").glob("sentiment-training-*/preprocess/train"))[:1]
    in_domain = pd.read_parquet(first_train).sample(n=400, replace=True, random_state=2)
    live = serve_and_label(tracking_uri, predictions, in_domain, tmp_path / "serve-2.log")
    assert live["labelled"] == 400 and live["lower"] > 0.8  # the answers are right again
    printed = monitor(predictions, source, params, workdir, capsys)
    assert "no retraining: the monitor found no reason to retrain" in printed, printed
    assert len(client.search_runs([retrainings[0].info.experiment_id])) == 1


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
