"""The pipeline definition: it compiles, its steps run as KFP tasks under kfp.local, and both runners."""

import json
import tempfile
from dataclasses import fields
from pathlib import Path

import kfp
import mlflow
import pandas as pd
import pytest
import yaml
from kfp import dsl
from kfp.dsl import Dataset

from pipelines import run
from pipelines.params import PipelineParams
from pipelines.pipeline import compile_pipeline
from pipelines.steps import ingest, preprocess, validate
from tests.helpers import sentiment_frame, write_comment_sets


def test_compiled_yaml_loads_back_with_every_parameter(tmp_path: Path) -> None:
    package = compile_pipeline(str(tmp_path / "pipeline.yaml"))
    loaded = kfp.components.load_component_from_file(package)
    expected = {f.name for f in fields(PipelineParams)} | {"tracking_uri", "run_params"}
    assert set(loaded.component_spec.inputs) == expected
    pipeline_spec, _platform_spec = yaml.safe_load_all(Path(package).read_text())
    tasks = pipeline_spec["root"]["dag"]["tasks"]
    assert set(tasks) == {
        "ingest", "validate", "preprocess", "train-linear", "train-linear-2", "train-transformer", "ensemble",
        "prepare-out-of-domain", "evaluate", "evaluate-2", "evaluate-3", "evaluate-4", "gate", "deploy",
        "analyze",
    }  # fmt: skip
    assert tasks["analyze"]["dependentTasks"] == ["deploy"]
    assert {"evaluate", "evaluate-2", "evaluate-3", "evaluate-4"} <= set(tasks["gate"]["dependentTasks"])


def test_params_file_matches_the_typed_config() -> None:
    params = PipelineParams.load()
    assert params.gate_metric == "macro_recall"
    assert PipelineParams.load(source="elsewhere", max_rows_per_split=None).source == "elsewhere"


def test_params_file_with_unknown_keys_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(Path(run.DEFAULT_PARAMS_FILE).read_text() + "learning_rate: 0.1\n")
    with pytest.raises(ValueError, match=r"unknown keys \['learning_rate'\]"):
        PipelineParams.load(path)


@dsl.pipeline
def data_steps(source: str, max_bad_fraction: float) -> Dataset:
    ingested = ingest(source=source, seed=1, max_rows_per_split=0)
    validated = validate(
        raw=ingested.outputs["dataset"], max_bad_fraction=max_bad_fraction, max_text_chars=200
    )
    splits = preprocess(
        clean=validated.outputs["clean"], validation_fraction=0.25, test_fraction=0.25, seed=1
    )
    return splits.outputs["test"]


def test_data_steps_run_as_kfp_tasks(kfp_local: Path, tmp_path: Path) -> None:
    source = tmp_path / "data.csv"
    frame = sentiment_frame()
    pd.concat([frame, frame.head(3)]).to_csv(source, index=False)  # three duplicates to quarantine
    test_split = data_steps(source=str(source), max_bad_fraction=0.1)
    test = pd.read_parquet(test_split.output.path)
    assert len(test) == 36 and set(test["split"]) == {"test"}
    quarantine = pd.read_parquet(next(kfp_local.glob("data-steps-*/validate/quarantine")))
    assert quarantine["reason"].tolist() == ["duplicate_text"] * 3
    executor_output = json.loads(
        next(kfp_local.glob("data-steps-*/validate/executor_output.json")).read_text()
    )
    report = executor_output["artifacts"]["report"]["artifacts"][0]["metadata"]
    assert report["quarantined_duplicate_text"] == 3 and report["rows_clean"] == 144


def test_validate_task_fails_the_run_on_bad_data(kfp_local: Path, tmp_path: Path) -> None:
    source = tmp_path / "data.csv"
    frame = sentiment_frame()
    pd.concat([frame, frame]).to_csv(source, index=False)  # half the rows are duplicates
    with pytest.raises(RuntimeError, match="validate"):
        data_steps(source=str(source), max_bad_fraction=0.1)


def write_params(tmp_path: Path, **changes) -> Path:
    """params.yaml with ``changes``; the transformer gets a few steps (tests check wiring, not scores)."""
    budget = {
        "transformer_max_steps": 12,
        "transformer_eval_steps": 6,
        "transformer_batch_size": 16,
        "linear_trials": 2,
    }
    values = yaml.safe_load(Path(run.DEFAULT_PARAMS_FILE).read_text()) | budget | changes
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_local_runner_runs_the_whole_pipeline(tmp_path: Path, monkeypatch, capsys) -> None:
    """`python -m pipelines.run` with no KFP_HOST: every step under kfp.local, into a sqlite MLflow."""
    monkeypatch.delenv("KFP_HOST", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    source = tmp_path / "data.csv"
    sentiment_frame().to_csv(source, index=False)
    workdir = tmp_path / "mlops"
    reddit, youtube = write_comment_sets(tmp_path)
    arguments = ["--data", str(source), "--ood", reddit, "--ood", youtube]
    run.main([*arguments, "--params", str(write_params(tmp_path)), "--workdir", str(workdir)])

    printed = capsys.readouterr().out
    for name in ("linear-embeddings", "linear-tfidf", "transformer", "ensemble"):
        assert f"{name:<16}{'test':<30}" in printed
    assert f"{'ensemble':<16}ood_reddit_sentiment" in printed
    weights = "test 0.75, ood_reddit_sentiment 0.125, ood_youtubecommentsdataset 0.125"
    assert f"weighted by set ({weights})" in printed
    assert "gate: PROMOTED to champion: first model" in printed
    assert "serve it: make serve" in printed
    assert (workdir / "sentiment_pipeline.yaml").exists()
    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("sentiment", "champion")
    run_data = client.get_run(champion.run_id).data
    assert run_data.metrics["test_macro_recall"] > 0.8
    assert run_data.params["pipeline.source"] == str(source)
    assert run_data.tags["gate.decision"] == "promoted"
    assert list((workdir / "mlartifacts").iterdir())  # artifacts stay under the work dir
    cards = [path.read_text() for path in (workdir / "kfp").glob("sentiment-training-*/evaluate*/model_card")]
    assert len(cards) == 4 and all(card.startswith("# Model card:") for card in cards)
    assert all("| youtubecommentsdataset | 12 |" in card for card in cards)
    # the deploy step, with no cluster, leaves the InferenceService and route it would create as its
    # artifact; the analyze step has no canary to judge
    (manifest,) = (workdir / "kfp").glob("sentiment-training-*/deploy/manifest")
    isvc, route = yaml.safe_load_all(manifest.read_text())
    assert isvc["kind"] == "InferenceService" and isvc["spec"]["predictor"]["name"] == "v1"
    assert route["kind"] == "HTTPRoute"


def test_cluster_runner_submits_the_compiled_package(tmp_path: Path, monkeypatch, capsys) -> None:
    """KFP_HOST set: the run goes to kfp.Client. No KFP API server can run here, so the client is a
    recording fake; the package it receives is the real compiled YAML."""
    submitted = {}

    class RecordingClient:
        def __init__(self, host: str):
            submitted["host"] = host

        def create_run_from_pipeline_package(self, package_path, arguments, run_name, experiment_name):
            submitted.update(package=package_path, arguments=arguments, experiment=experiment_name)
            return type("Result", (), {"run_id": "run-123"})()

    monkeypatch.setenv("KFP_HOST", "http://localhost:8888")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(kfp, "Client", RecordingClient)
    run.main(["--data", "s3://data/tweets/", "--workdir", str(tmp_path)])

    assert "submitted run run-123" in capsys.readouterr().out
    assert submitted["host"] == "http://localhost:8888"
    kfp.components.load_component_from_file(submitted["package"])
    assert submitted["arguments"]["source"] == "s3://data/tweets/"
    assert submitted["arguments"]["tracking_uri"] == run.CLUSTER_TRACKING_URI
    assert json.loads(submitted["arguments"]["run_params"])["source"] == "s3://data/tweets/"
