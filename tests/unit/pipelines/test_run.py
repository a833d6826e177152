"""``python -m pipelines.run`` with KFP_HOST set: the compiled package goes to kfp.Client."""

import json
from pathlib import Path

import kfp

from pipelines import run


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
    run.main(["--data", "s3://data/tweets/", "--data", "s3://data/comments/", "--workdir", str(tmp_path)])

    assert "submitted run run-123" in capsys.readouterr().out
    assert submitted["host"] == "http://localhost:8888"
    kfp.components.load_component_from_file(submitted["package"])
    assert submitted["arguments"]["ingest_config"]["sources"] == ["s3://data/tweets/", "s3://data/comments/"]
    assert submitted["arguments"]["tracking_uri"] == run.CLUSTER_TRACKING_URI
    lineage = json.loads(submitted["arguments"]["lineage"])
    assert json.loads(lineage["ingest.sources"]) == ["s3://data/tweets/", "s3://data/comments/"]
