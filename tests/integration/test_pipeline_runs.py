"""Whole pipelines through kfp.local: the README's local commands (``make pipeline-run``, ``make serve``,
``make batch-score``, ``make monitor``) as a user types them, into a sqlite MLflow, and the monitoring
pipeline on a champion's prediction log."""

import json
import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from components.batch_score import read_scores
from components.ingest import read_source
from core.lineage import DATASET_DIGEST_CHARS, content_digest
from tests.helpers import (
    HTTP,
    REPO,
    TEMPLATES,
    free_port,
    make,
    sentiment_frame,
    stop_process,
    user_environment,
    wait_for_http,
    write_comment_sets,
    write_params,
    write_splits,
)
from tests.unit.components.test_monitor import LONG_RANT, answers_of, log_predictions

# The transformer (the bundled MiniLM, whatever the network) gets a few steps and the linear models two
# trials: these tests check wiring, not scores.
BUDGET = {
    "train_transformer": {"model_id": "all-MiniLM-L6-v2", "max_steps": 12, "eval_steps": 6, "batch_size": 16},
    "train_linear": {"trials": 2},
}


def product_comments(path: Path) -> None:
    """A second training source, YouTube-style (Comment, Sentiment): 96 comments on other topics than
    :func:`tests.helpers.sentiment_frame`'s."""
    topics = [
        "the blender",
        "the kettle",
        "the headphones",
        "the charger",
        "the lamp",
        "the desk",
        "the mug",
        "the fan",
    ]
    rows = [(t.format(topic), label) for label, ts in TEMPLATES.items() for t in ts for topic in topics]
    pd.DataFrame(rows, columns=["Comment", "Sentiment"]).to_csv(path, index=False)


def test_the_readmes_local_commands_as_a_user_types_them(tmp_path: Path) -> None:
    """`make pipeline-run` on two training sources and two out-of-domain sets (every step under kfp.local,
    into a sqlite MLflow; each source's test slice a held-out set of its own), then `make serve`, `make
    batch-score` and `make monitor` on what it registered: each typed in the repository root, with no
    project variable in the environment, with the documented make variables only (MLOPS_HOME keeps the
    run's store out of the checkout's .mlops; PARAMS gives small budgets)."""
    if subprocess.run(["make", "-q", "install"], cwd=REPO).returncode != 0:
        pytest.fail("the venv is out of date: run `make install` first (these commands would reinstall it)")
    env = user_environment(tmp_path / "home")
    source, comments = tmp_path / "data.csv", tmp_path / "comments.csv"
    sentiment_frame().to_csv(source, index=False)
    product_comments(comments)
    workdir = tmp_path / "mlops"
    reddit, youtube = write_comment_sets(tmp_path)
    params = write_params(tmp_path / "params.yaml", **BUDGET)
    home = [f"MLOPS_HOME={workdir}", f"PARAMS={params}"]

    printed = make("pipeline-run", f"DATA={source} {comments}", f"OOD={reddit} {youtube}", *home, env=env)
    for name in ("linear-embeddings", "linear-tfidf", "transformer", "ensemble"):
        assert f"{name:<16}{'test':<30}" in printed
    assert f"{'ensemble':<16}ood_reddit_sentiment" in printed and f"{'ensemble':<16}test_comments" in printed
    assert "weighted by set (test_data 1)" in printed  # the target: the first DATA source's test slice
    assert "gate: PROMOTED to champion: first model" in printed
    assert "serve it: make serve" in printed
    assert (workdir / "sentiment_pipeline.yaml").exists()
    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("sentiment", "champion")
    run_data = client.get_run(champion.run_id).data
    assert run_data.metrics["test_macro_recall"] > 0.8
    assert json.loads(run_data.params["pipeline.ingest.sources"]) == [str(source), str(comments)]
    assert {
        "test_data_macro_recall",
        "test_comments_macro_recall",
        "validation_comments_macro_recall",
    } <= set(run_data.metrics)
    assert run_data.tags["gate.decision"] == "promoted"
    # the version traces to its exact data: the source as a dataset input with its content digest
    inputs = {i.dataset.name: i.dataset for i in client.get_run(champion.run_id).inputs.dataset_inputs}
    assert sorted(inputs) == ["comments", "data"]
    assert json.loads(inputs["data"].source)["uri"] == str(source)
    assert inputs["data"].digest == content_digest(read_source(str(source)))[:DATASET_DIGEST_CHARS]
    assert client.list_artifacts(champion.run_id, "monitoring")  # drift and embedding references
    assert list((workdir / "mlartifacts").iterdir())  # artifacts stay under the work dir
    cards = [path.read_text() for path in (workdir / "kfp").glob("sentiment-training-*/evaluate*/model_card")]
    assert len(cards) == 4 and all(card.startswith("# Model card:") for card in cards)
    assert all("| youtubecommentsdataset | 12 |" in card for card in cards)
    assert all("| test_comments | " in card and "| held-out mean | " in card for card in cards)
    # both fixtures are written from templates whose words carry their labels: ingest's label checks say so
    flagged = "- probably machine-labelled (a lexicon reproduces their labels): data, comments"
    assert all(flagged in card and "  - `comments`: 0 empty texts with a label" in card for card in cards)
    # the deploy step, with no cluster, leaves the InferenceService and route it would create as its
    # artifact; the analyze step has no canary to judge
    (manifest,) = (workdir / "kfp").glob("sentiment-training-*/deploy/manifest")
    isvc, route = yaml.safe_load_all(manifest.read_text())
    assert isvc["kind"] == "InferenceService" and isvc["spec"]["predictor"]["name"] == "v1"
    assert route["kind"] == "HTTPRoute"

    # make serve: the champion it registered answers, and its answers are logged for the monitor
    predictions, http_port = tmp_path / "predictions", free_port()
    ports = [f"HTTP_PORT={http_port}", f"GRPC_PORT={free_port()}"]
    serve = subprocess.Popen(
        ["make", "serve", *home, *ports, f"PREDICTIONS={predictions}"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    texts = sentiment_frame()["text"].tolist()
    try:
        wait_for_http(f"http://127.0.0.1:{http_port}/v2/models/sentiment/ready", serve, timeout_s=180)
        for start in range(0, len(texts), 16):
            body = {"instances": texts[start : start + 16]}
            answer = HTTP.post(f"http://127.0.0.1:{http_port}/v1/models/sentiment:predict", json=body)
            assert answer.status_code == 200 and answer.json()["model_version"] == str(champion.version)
    finally:
        stop_process(serve)  # SIGTERM: the prediction log writes what it holds
    assert [path for path in predictions.rglob("*") if path.is_file()]  # the sampled answers

    # make batch-score: every row scored by the same version, _SUCCESS last
    scored = tmp_path / "scored"
    printed = make("batch-score", f"INPUT={source}", f"OUTPUT={scored}", *home, env=env)
    assert f"scored {len(texts)} rows (0 quarantined" in printed
    assert (scored / "_SUCCESS").exists()
    assert set(read_scores(str(scored))["model_version"]) == {str(champion.version)}

    # make monitor: the monitoring pipeline judges what make serve logged
    printed = make("monitor", *home, f"PREDICTIONS={predictions}", f"DATA={source} {comments}", env=env)
    assert "no retraining: " in printed and "reports: MLflow experiments" in printed
    # the traffic's mix of the two training sources, recorded for the gate's target "traffic"
    (monitored,) = client.search_runs([client.get_experiment_by_name("sentiment-monitoring").experiment_id])
    mix = json.loads(monitored.data.tags["traffic_mix"])
    assert set(mix) == {"data", "comments"} and sum(mix.values()) == pytest.approx(1.0)
    assert mix["data"] > mix["comments"]  # make serve was sent the first source's texts


# slow: the README test's `make monitor` runs this same pipeline through kfp.local in the default suite, and
# test_monitor.py tests its decision on drifted PSI features (no reason to retrain)
@pytest.mark.slow
def test_monitoring_pipeline_runs_locally(
    champion_store: str, champion_model, tmp_path: Path, monkeypatch
) -> None:
    """The same monitoring pipeline the cluster schedules, through kfp.local (``pipelines.run --monitor``)."""
    from pipelines.params import PipelineParams
    from pipelines.run import run_monitoring

    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion_store)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # restored after the test; the runner points it elsewhere
    mlflow.set_tracking_uri(champion_store)
    champion = mlflow.MlflowClient().get_model_version_by_alias("sentiment", "champion")
    model = champion_model
    texts = pd.read_parquet(write_splits(tmp_path, seed=2)["test"])["text"].tolist()
    ranting = [f"{text} {LONG_RANT}" for text in texts * 5]
    log_predictions(tmp_path / "log", ranting, answers_of(model, ranting), champion.version)
    (tmp_path / "work").mkdir()
    before = drifted_runs()  # other tests' monitors write to this registry too
    message = run_monitoring(str(tmp_path / "log"), PipelineParams.load(), tmp_path / "work", None)
    # the PSI features drifted, but that alone is no reason to retrain (text drift or a quality drop is)
    assert message.startswith("no retraining: the monitor found no reason to retrain"), message
    assert len(drifted_runs() - before) == 1  # this run's monitor found the drift


def drifted_runs() -> set[str]:
    """The ids of the monitoring runs that found drift, in the current registry."""
    runs = mlflow.search_runs(
        experiment_names=["sentiment-monitoring"], filter_string="tags.drift = 'drifted'"
    )
    return set(runs.get("run_id", []))
