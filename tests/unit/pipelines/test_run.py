"""``python -m pipelines.run``: with KFP_HOST set the compiled package goes to kfp.Client; without it, its
sources are checked before anything runs."""

import json
import os
import subprocess
from pathlib import Path

import kfp
import pytest

from core import storage
from core.hub import hub_unreachable
from pipelines import run
from tests.helpers import PARAMS, REPO
from tests.registry import make_bucket


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
    in_cluster = "http://mlflow.mlops.svc.cluster.local:5000"  # params.yaml's cluster.endpoints
    assert submitted["arguments"]["tracking_uri"] == in_cluster
    lineage = json.loads(submitted["arguments"]["lineage"])
    assert json.loads(lineage["ingest.sources"]) == ["s3://data/tweets/", "s3://data/comments/"]


def test_a_missing_source_stops_the_run_in_seconds_with_one_line(tmp_path: Path) -> None:
    """`make pipeline-run DATA=<missing file>` as a user types it: one line naming the source, before
    anything is compiled or run (not a traceback from inside the ingest task)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    work = f"MLOPS_HOME={tmp_path / 'm'}"
    done = subprocess.run(
        ["make", "pipeline-run", "DATA=no/such/tweets.csv", f"OOD={tmp_path}", work],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-2] == "DATA: no/such/tweets.csv: no such file or folder"
    assert "Traceback" not in done.stderr and not (tmp_path / "m" / "sentiment_pipeline.yaml").exists()


def test_sources_are_checked_where_they_are(tmp_path: Path, s3_endpoint: str) -> None:
    (tmp_path / "tweets.csv").write_text("text,label\nhi,positive\n")
    make_bucket(s3_endpoint, "data")
    storage.write_bytes("s3://data/comments/part-0.csv", b"text,label\nhi,positive\n")
    found = [str(tmp_path / "tweets.csv"), "s3://data/comments/"]
    checked = PARAMS.override("ingest", sources=found).override("out_of_domain", sources=[str(tmp_path)])
    run.check_sources_exist(checked)
    for missing in ("s3://data/tweets/", "s3://no-bucket/tweets.csv"):
        with pytest.raises(SystemExit, match=f"^OOD: {missing}: nothing found there$"):
            run.check_sources_exist(checked.override("out_of_domain", sources=[missing]))
    hub = PARAMS.override("ingest", sources=["cardiffnlp/tweet_eval:sentiment"])
    if hub_unreachable():  # as on this project's machines: one line that says how to pass data
        with pytest.raises(SystemExit, match=r"^DATA: cannot load 'cardiffnlp/tweet_eval:sentiment' .*DATA="):
            run.check_sources_exist(hub)
    else:
        run.check_sources_exist(hub)


def test_the_readmes_main_command_stops_in_seconds_without_the_hub(tmp_path: Path) -> None:
    """`make pipeline-run` as the README shows it, in a shell with no project variables and no hub: one
    line saying how to pass data, before anything runs (it used to retry the ingest task for 100 s)."""
    if not hub_unreachable():
        pytest.skip("the hub is reachable: the command would download TweetEval and train for an hour")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    done = subprocess.run(
        ["make", "pipeline-run", f"MLOPS_HOME={tmp_path / 'm'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert (
        done.stderr.strip().splitlines()[-2].startswith("DATA: cannot load 'cardiffnlp/tweet_eval:sentiment'")
    )
    assert "make pipeline-run DATA=" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "m" / "sentiment_pipeline.yaml").exists()
