"""What the compiled pipelines ask a cluster for, read from the IR YAML as KFP's backend reads it:
resources per step, the accelerator on the transformer's fine-tuning and the batch shards only, retries on
the steps that talk to S3 or MLflow, caching where a step's outputs are a pure function of its inputs, and
the batch pipeline's parallelism limit."""

import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from pipelines.batch import batch_pipeline
from pipelines.pipeline import compile_pipeline, monitoring_pipeline, training_pipeline
from pipelines.task_settings import Accelerator, ClusterConfig
from tests.helpers import PARAMS

# What each step must get, written here rather than read from the code under test (docs/cluster.md says
# why): caching where a step's outputs are a pure function of its inputs; retries where it talks to S3
# or MLflow; the accelerator on the fine-tuning and the batch shards.
CACHED_STEPS = {"ingest", "validate", "preprocess", "prepare_out_of_domain", "embedding_reference"}
RETRIED_STEPS = {
    "ingest",
    "prepare_out_of_domain",
    "train_linear",
    "train_transformer",
    "ensemble",
    "evaluate",
    "gate",
    "deploy",
    "analyze",
    "monitor",
    "prepare_retraining",
    "finish_retraining",
    "batch_plan",
    "batch_score",
    "batch_publish",
}
ACCELERATED_STEPS = {"train_transformer", "batch_score"}

GPU = Accelerator(
    type="nvidia.com/gpu",
    count=1,
    node_selector={"nvidia.com/gpu.present": "true"},
    tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
)


def compiled(tmp_path: Path, pipeline) -> tuple[dict, dict]:
    """(pipeline spec, Kubernetes platform spec) of the compiled ``pipeline``."""
    pipeline_spec, platform_spec = yaml.safe_load_all(
        Path(compile_pipeline(str(tmp_path / "p.yaml"), pipeline)).read_text()
    )
    return pipeline_spec, platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def step_of(task: str) -> str:
    """The step a task instantiates: ``train-linear-2`` -> ``train_linear``."""
    return re.sub(r"-\d+$", "", task).replace("-", "_")


def step_tasks(spec: dict) -> dict[str, dict]:
    """Every task that runs a step, in the root DAG and in the DAGs under it (a ParallelFor's body), by
    name; the DAG tasks themselves (the loop) are left out."""
    dags = [spec["root"]["dag"], *(c["dag"] for c in spec["components"].values() if "dag" in c)]
    return {
        name: task
        for dag in dags
        for name, task in dag["tasks"].items()
        if "executorLabel" in spec["components"][task["componentRef"]["name"]]
    }


def executor_of(spec: dict, task: str) -> str:
    component = step_tasks(spec)[task]["componentRef"]["name"]
    return spec["components"][component]["executorLabel"]


def batch_of_four(cluster: ClusterConfig):
    return batch_pipeline(cluster, parallelism=4)


PIPELINES = [training_pipeline, monitoring_pipeline, batch_of_four]


@pytest.mark.parametrize("build", PIPELINES)
def test_every_task_gets_its_steps_resources_retries_and_caching(build, tmp_path: Path) -> None:
    spec, _ = compiled(tmp_path, build(PARAMS.cluster))
    tasks = step_tasks(spec)
    assert tasks
    for task, task_spec in tasks.items():
        step = step_of(task)
        resources = spec["deploymentSpec"]["executors"][executor_of(spec, task)]["container"]["resources"]
        wanted = PARAMS.cluster.resources_of(step)
        assert (resources["resourceCpuRequest"], resources["resourceCpuLimit"]) == (
            wanted.cpu_request,
            wanted.cpu_limit,
        ), task
        assert (resources["resourceMemoryRequest"], resources["resourceMemoryLimit"]) == (
            wanted.memory_request,
            wanted.memory_limit,
        ), task
        assert "accelerator" not in resources, task  # no accelerator configured by default
        cached = task_spec.get("cachingOptions", {}).get("enableCache", False)
        assert cached is (step in CACHED_STEPS), task
        retry = task_spec.get("retryPolicy")
        if step in RETRIED_STEPS:
            assert retry == {
                "maxRetryCount": PARAMS.cluster.retry.retries,
                "backoffDuration": f"{PARAMS.cluster.retry.backoff_seconds}s",
                "backoffFactor": PARAMS.cluster.retry.backoff_factor,
                "backoffMaxDuration": f"{PARAMS.cluster.retry.max_backoff_seconds}s",
            }, task
        else:
            assert retry is None, task


@pytest.mark.parametrize("build", [training_pipeline, batch_of_four])
def test_only_the_fine_tuning_and_the_shards_ask_for_the_accelerator_and_its_nodes(
    build, tmp_path: Path
) -> None:
    spec, platform = compiled(tmp_path, build(replace(PARAMS.cluster, accelerator=GPU)))
    assert {step_of(task) for task in step_tasks(spec)} & ACCELERATED_STEPS
    for task in step_tasks(spec):
        executor = executor_of(spec, task)
        resources = spec["deploymentSpec"]["executors"][executor]["container"]["resources"]
        if step_of(task) in ACCELERATED_STEPS:
            assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
            assert resources["accelerator"]["resourceCount"] == "1"
            assert platform[executor]["nodeSelector"] == {"labels": {"nvidia.com/gpu.present": "true"}}
            assert platform[executor]["tolerations"] == GPU.tolerations
        else:
            assert "accelerator" not in resources, task
            assert "nodeSelector" not in platform.get(executor, {}), task
            assert "tolerations" not in platform.get(executor, {}), task


def test_every_step_named_above_is_a_step_of_a_pipeline(tmp_path: Path) -> None:
    steps = {
        step_of(task)
        for build in PIPELINES
        for task in step_tasks(compiled(tmp_path, build(PARAMS.cluster))[0])
    }
    assert steps >= CACHED_STEPS | RETRIED_STEPS | ACCELERATED_STEPS


def test_the_batch_pipeline_scores_at_most_parallelism_shards_at_once(tmp_path: Path) -> None:
    spec, _ = compiled(tmp_path, batch_pipeline(PARAMS.cluster, parallelism=3))
    [loop] = [task for task in spec["root"]["dag"]["tasks"].values() if "parameterIterator" in task]
    assert loop["iteratorPolicy"] == {"parallelismLimit": 3}
    assert loop["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--batch-plan-Output"
    publish = spec["root"]["dag"]["tasks"]["batch-publish"]
    assert (
        publish["inputs"]["parameters"]["results"]["taskOutputParameter"]["producerTask"]
        == loop["taskInfo"]["name"]
    )


def test_no_retries_when_told_none(tmp_path: Path) -> None:
    none = replace(PARAMS.cluster, retry=replace(PARAMS.cluster.retry, retries=0))
    spec, _ = compiled(tmp_path, training_pipeline(none))
    assert all("retryPolicy" not in task for task in spec["root"]["dag"]["tasks"].values())


def test_the_cluster_section_is_checked() -> None:
    values = PARAMS.as_dict()["cluster"]
    assert ClusterConfig.from_config(values) == PARAMS.cluster
    with pytest.raises(ValueError, match="'default' entry"):
        ClusterConfig.from_config(values | {"resources": {"ingest": values["resources"]["ingest"]}})
    with pytest.raises(ValueError, match="unknown keys \\['gpus'\\]"):
        ClusterConfig.from_config(values | {"accelerator": values["accelerator"] | {"gpus": 2}})
    with pytest.raises(ValueError, match="expected the keys"):
        ClusterConfig.from_config(values | {"priority": "high"})


def test_a_pipeline_used_as_a_component_still_gets_no_resources() -> None:
    """configure() replaces kfp's check behind every resource setter with one that names its caller
    without inspect.stack(); it refuses what kfp's refuses, naming the setter as kfp's does."""
    from kfp import dsl

    from pipelines.task_settings import configure

    @dsl.component
    def step() -> None:
        pass

    @dsl.pipeline
    def inner() -> None:
        step()

    with pytest.raises(ValueError, match=r"^set_cpu_request can only be used on single-step components"):

        @dsl.pipeline
        def outer() -> None:
            configure(inner(), "ingest", PARAMS.cluster)
