"""The pipeline definition: it compiles with one parameter per params.yaml section, and its data steps run as
KFP tasks under kfp.local."""

import json
import re
import tempfile
from dataclasses import fields
from pathlib import Path

import kfp
import pandas as pd
import pytest
import yaml
from kfp import dsl
from kfp.dsl import Dataset

from components.ingest import ingest
from components.preprocess import preprocess
from components.validate import validate
from core.config import step_mapping
from pipelines.params import PipelineParams
from pipelines.pipeline import compile_pipeline, monitoring_pipeline, training_pipeline
from pipelines.run import init_local_runner, monitoring_arguments, pipeline_arguments
from pipelines.task_settings import configure
from tests.helpers import PARAMS, run_config, sentiment_frame


def test_compiled_yaml_loads_back_with_every_parameter(tmp_path: Path) -> None:
    package = compile_pipeline(str(tmp_path / "pipeline.yaml"), training_pipeline(PARAMS.cluster))
    loaded = kfp.components.load_component_from_file(package)
    # retrain, batch_score: the other pipelines'; cluster: compiled into the tasks
    sections = {f.name for f in fields(PipelineParams)} - {"run", "retrain", "batch_score", "cluster"}
    expected = (
        {"run"} | {f"{name}_config" for name in sections} | {"tracking_uri", "lineage", "data_fingerprints"}
    )
    assert set(loaded.component_spec.inputs) == expected
    assert set(pipeline_arguments(PipelineParams.load(), "http://mlflow")) == expected
    pipeline_spec, _platform_spec = yaml.safe_load_all(Path(package).read_text())
    tasks = pipeline_spec["root"]["dag"]["tasks"]
    assert set(tasks) == {
        "ingest",
        "validate",
        "preprocess",
        "train-linear",
        "train-linear-2",
        "train-transformer",
        "ensemble",
        "prepare-out-of-domain",
        "embedding-reference",
        "evaluate",
        "evaluate-2",
        "evaluate-3",
        "evaluate-4",
        "gate",
        "deploy",
        "analyze",
    }
    assert tasks["analyze"]["dependentTasks"] == ["deploy"]
    assert {"evaluate", "evaluate-2", "evaluate-3", "evaluate-4"} <= set(tasks["gate"]["dependentTasks"])
    assert "embedding-reference" in tasks["evaluate"]["dependentTasks"]


def test_monitoring_pipeline_nests_the_training_pipeline_under_the_retraining_condition(
    tmp_path: Path,
) -> None:
    """monitor -> prepare_retraining -> if it starts one: the training pipeline (a sub-DAG of the same
    run, not a run a step launches) -> finish_retraining on the training's output; else no_retraining.
    The run returns whichever branch's outcome ran."""
    package = compile_pipeline(str(tmp_path / "monitoring.yaml"), monitoring_pipeline(PARAMS.cluster))
    pipeline_spec, platform_spec = yaml.safe_load_all(Path(package).read_text())
    components, tasks = pipeline_spec["components"], pipeline_spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"monitor", "prepare-retraining", "condition-branches-1"}
    assert tasks["prepare-retraining"]["dependentTasks"] == ["monitor"]
    branches = components[tasks["condition-branches-1"]["componentRef"]["name"]]["dag"]["tasks"]
    condition = "inputs.parameter_values['pipelinechannel--prepare-retraining-start'] == true"
    by_condition = {
        task["triggerPolicy"]["condition"]: components[task["componentRef"]["name"]]["dag"]["tasks"]
        for task in branches.values()
    }
    retraining, skipped = by_condition[condition], by_condition[f"!({condition})"]
    assert set(retraining) == {"sentiment-training", "finish-retraining"}
    assert set(skipped) == {"no-retraining"}
    assert retraining["finish-retraining"]["inputs"]["parameters"]["decision"]["taskOutputParameter"] == {
        "outputParameterKey": "Output",
        "producerTask": "sentiment-training",
    }
    training = components[retraining["sentiment-training"]["componentRef"]["name"]]["dag"]["tasks"]
    assert {"ingest", "train-transformer", "gate", "deploy"} <= set(training)
    assert training["ingest"]["inputs"]["parameters"]["config"]["componentInputParameter"] == "ingest_config"
    assert (
        pipeline_spec["root"]["dag"]["outputs"]["parameters"]["Output"]["valueFromParameter"][
            "producerSubtask"
        ]
        == "condition-branches-1"
    )
    # the nested steps keep their object-store env on a cluster
    assert "exec-gate" in platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    arguments = monitoring_arguments(PipelineParams.load(), "s3://predictions/x", "http://mlflow")
    assert set(arguments) == set(pipeline_spec["root"]["inputDefinitions"]["parameters"])


RUN = step_mapping(run_config(seed=1))


@dsl.pipeline
def data_steps(ingest_config: dict, validate_config: dict, data_fingerprints: str) -> Dataset:
    """The training pipeline's first three steps, configured as it configures them."""
    ingested = ingest(config=ingest_config, run=RUN, fingerprints=data_fingerprints)
    validated = validate(raw=ingested.outputs["dataset"], config=validate_config)
    splits = preprocess(
        clean=validated.outputs["clean"],
        config={"validation_fraction": 0.25, "test_fraction": 0.25, "mix_exponent": 0.5},
        run=RUN,
    )
    for step, task in (("ingest", ingested), ("validate", validated), ("preprocess", splits)):
        configure(task, step, PARAMS.cluster)
    return splits.outputs["test"]


def run_data_steps(source: Path, max_bad_fraction: float):
    params = PARAMS.override("ingest", sources=[str(source)]).override("out_of_domain", sources=[])
    return data_steps(
        ingest_config=step_mapping(params.ingest),
        validate_config={"max_bad_fraction": max_bad_fraction, "max_text_chars": 200},
        data_fingerprints=params.data_fingerprints(),
    )


def test_data_steps_run_as_kfp_tasks(kfp_local: Path, tmp_path: Path) -> None:
    source = tmp_path / "data.csv"
    frame = sentiment_frame()
    pd.concat([frame, frame.head(3)]).to_csv(source, index=False)  # three duplicates to quarantine
    test_split = run_data_steps(source, max_bad_fraction=0.1)
    test = pd.read_parquet(test_split.output.path)
    assert len(test) == 36 and set(test["split"]) == {"test"}
    quarantine = pd.read_parquet(next(kfp_local.glob("data-steps-*/validate/quarantine")))
    assert quarantine["reason"].tolist() == ["duplicate_text"] * 3
    executor_output = json.loads(
        next(kfp_local.glob("data-steps-*/validate/executor_output.json")).read_text()
    )
    report = executor_output["artifacts"]["report"]["artifacts"][0]["metadata"]
    assert report["quarantined_duplicate_text"] == 3 and report["rows_clean"] == 144


def test_validate_task_fails_the_run_on_bad_data(kfp_local: Path, tmp_path: Path, capfd) -> None:
    source = tmp_path / "data.csv"
    frame = sentiment_frame()
    pd.concat([frame, frame]).to_csv(source, index=False)  # half the rows are duplicates
    with pytest.raises(RuntimeError) as failed:
        run_data_steps(source, max_bad_fraction=0.1)
    assert re.sub(r"\x1b\[[0-9;]*m", "", str(failed.value)).endswith("Inner task failed: 'validate'.")
    # for the data's reason, in the task's own log: not an import or a wiring error
    assert "ValidationError: 50.0% of rows are bad (limit 10.0%)" in capfd.readouterr().out


def test_the_data_steps_come_from_the_cache_until_the_source_changes(tmp_path: Path, monkeypatch) -> None:
    """kfp.local with caching on, as ``make pipeline-run`` runs: the same source twice is one read (the
    outputs are the first run's); a changed source gets a new fingerprint, so it is read again."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # init_local_runner moves it; restored after the test
    monkeypatch.setattr(tempfile, "tempdir", None)
    init_local_runner(tmp_path)
    source = tmp_path / "data.csv"
    sentiment_frame().to_csv(source, index=False)

    def reads() -> int:
        return len(list((tmp_path / "kfp").glob("data-steps-*/ingest/dataset")))

    first = run_data_steps(source, max_bad_fraction=0.1).output.path
    again = run_data_steps(source, max_bad_fraction=0.1).output.path
    assert again == first and reads() == 1
    extra = pd.DataFrame({"text": ["one more text"], "label": ["neutral"]})
    pd.concat([sentiment_frame(), extra]).to_csv(source, index=False)
    changed = run_data_steps(source, max_bad_fraction=0.1).output.path
    assert changed != first and reads() == 2
