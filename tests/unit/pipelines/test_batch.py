"""The batch pipeline's command line: its overrides of params.yaml and its arguments."""

from pathlib import Path

import pytest
import yaml

from pipelines.batch import batch_arguments, batch_params, batch_pipeline, main, parse_args
from pipelines.pipeline import compile_pipeline
from tests.helpers import PARAMS


def test_the_command_line_overrides_the_batch_section() -> None:
    args = parse_args(["--input", "c.csv", "--output", "out", "--parallelism", "8", "--shard-rows", "1000"])
    params = batch_params(args)
    assert (params.batch_score.parallelism, params.batch_score.shard_rows) == (8, 1000)
    assert params.batch_score.runtime == PARAMS.batch_score.runtime and not params.cluster.accelerator.type


def test_an_accelerator_scores_in_fp32() -> None:
    params = batch_params(
        parse_args(["--input", "c.csv", "--output", "o", "--accelerator", "nvidia.com/gpu"])
    )
    assert params.cluster.accelerator.type == "nvidia.com/gpu" and params.batch_score.runtime == "fp32"


def test_the_arguments_are_the_pipelines_inputs(tmp_path) -> None:
    package = compile_pipeline(str(tmp_path / "batch.yaml"), batch_pipeline(PARAMS.cluster, 2))
    spec = next(yaml.safe_load_all(Path(package).read_text()))
    arguments = batch_arguments(PARAMS, "c.csv", "out", "models:/sentiment@champion", "http://mlflow")
    assert set(arguments) == set(spec["root"]["inputDefinitions"]["parameters"])


def test_a_cluster_run_needs_s3_for_the_corpus_and_the_output(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KFP_HOST", "http://127.0.0.1:9")  # refused before any call to it
    with pytest.raises(SystemExit, match=r"must be s3:// URIs.*\['scored/'\]"):
        main(["--input", "s3://corpora/c.csv", "--output", "scored/", "--workdir", str(tmp_path)])
