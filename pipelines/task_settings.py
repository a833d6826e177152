"""What each pipeline step asks a Kubernetes cluster for, compiled into the pipeline's IR: CPU and memory
requests and limits, an accelerator for the transformer's fine-tuning, retries, and caching.

The values come from params.yaml's ``cluster`` section (:class:`ClusterConfig`, which also says where the
in-cluster services are); the two policies below
are choices about the steps themselves, so they live with the code. kfp.local honours the retries and
the caching and ignores the rest.
"""

import functools
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.config import from_mapping

if TYPE_CHECKING:  # kfp's DSL is imported where pipelines compile; inside a running step it has no tasks
    from kfp import dsl

# Caching: on where a step's outputs are a pure function of its inputs. Ingest's inputs carry the
# sources' content fingerprints (core/lineage.source_fingerprint), so a changed source is a new cache key;
# validate, preprocess, the out-of-domain sets and the embedding reference are seeded functions of what
# they are given. Off for the rest: training runs on a wall-clock budget and logs to MLflow, evaluate logs
# to its candidate's run, the gate registers, deploy and analyze change the cluster, monitor and the
# retraining's steps read and write the world as it is now, and batch scoring pins a registry alias that
# may move and stages every run's shards in a folder of its own.
CACHED_STEPS = frozenset({"ingest", "validate", "preprocess", "prepare_out_of_domain", "embedding_reference"})
# Retries: on the steps that talk to S3 or MLflow, where a failure can be a passing hiccup. Validate and
# preprocess read and write only their artifacts: a failure there is the data's, and would fail again.
RETRIED_STEPS = frozenset(
    {
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
)
# The steps whose code uses a GPU when present: the fine-tuning, and the batch shards (a model in FP32
# runs on the GPU it sees; pipelines/batch.py scores in FP32 when given an accelerator).
ACCELERATED_STEPS = frozenset({"train_transformer", "batch_score"})


@dataclass(frozen=True)
class Resources:
    """Kubernetes quantities for one step's container."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


@dataclass(frozen=True)
class Accelerator:
    """The transformer's fine-tuning on an accelerator: ``type`` None (CPU) or a resource name such as
    ``nvidia.com/gpu``, ``count`` of them, and how to reach the nodes that have them."""

    type: str | None
    count: int
    node_selector: dict
    tolerations: list


@dataclass(frozen=True)
class Retry:
    """Retries of the steps in RETRIED_STEPS: ``retries`` more attempts, waiting ``backoff_seconds``, then
    ``backoff_factor`` times longer each time, at most ``max_backoff_seconds``."""

    retries: int
    backoff_seconds: int
    backoff_factor: float
    max_backoff_seconds: int


@dataclass(frozen=True)
class Endpoints:
    """Where the in-cluster services are (params.yaml ``cluster.endpoints``)."""

    tracking_uri: str
    pushgateway: str
    data_root: str
    predictions: str


@dataclass(frozen=True)
class ClusterConfig:
    """params.yaml ``cluster``: ``resources`` per step (``default`` for any step not named), the
    accelerator, the in-cluster services and the retry policy."""

    resources: dict[str, Resources]
    accelerator: Accelerator
    endpoints: Endpoints
    retry: Retry

    @classmethod
    def from_config(cls, values: dict, where: str = "cluster") -> "ClusterConfig":
        names = {"resources", "accelerator", "endpoints", "retry"}
        if set(values) != names:
            raise ValueError(f"{where}: expected the keys {sorted(names)}, got {sorted(values)}")
        resources = {
            step: from_mapping(Resources, spec, f"{where}.resources.{step}")
            for step, spec in values["resources"].items()
        }
        if "default" not in resources:
            raise ValueError(f"{where}.resources: needs a 'default' entry for the steps it does not name")
        accelerator = from_mapping(Accelerator, values["accelerator"], f"{where}.accelerator")
        endpoints = from_mapping(Endpoints, values["endpoints"], f"{where}.endpoints")
        return cls(resources, accelerator, endpoints, from_mapping(Retry, values["retry"], f"{where}.retry"))

    def resources_of(self, step: str) -> Resources:
        return self.resources.get(step, self.resources["default"])


CONTAINER_ONLY = (  # kfp's own words
    "can only be used on single-step components, not pipelines used as components, or special components"
    " like importers."
)


@functools.cache
def _check_container_tasks_cheaply() -> None:
    """kfp 2.17.3's ``PipelineTask._ensure_container_spec_exists``, which every resource setter calls,
    names its caller with ``inspect.stack()``: that reads the source of every frame on the stack, about
    0.1 s a call in a deep stack with many modules loaded (a test worker), four to six calls a task. The
    same check with the same message, the caller's name read from its frame."""
    from kfp.dsl.pipeline_task import PipelineTask

    def ensure_container_spec_exists(self) -> None:
        if self.container_spec is None:
            raise ValueError(f"{sys._getframe(1).f_code.co_name} {CONTAINER_ONLY}")

    PipelineTask._ensure_container_spec_exists = ensure_container_spec_exists


def configure(task: "dsl.PipelineTask", step: str, cluster: ClusterConfig) -> "dsl.PipelineTask":
    """Give ``task`` (an instance of the step ``step``) its resources, accelerator, retries and caching."""
    from kfp import kubernetes

    _check_container_tasks_cheaply()
    resources = cluster.resources_of(step)
    task.set_cpu_request(resources.cpu_request).set_cpu_limit(resources.cpu_limit)
    task.set_memory_request(resources.memory_request).set_memory_limit(resources.memory_limit)
    accelerator = cluster.accelerator
    if step in ACCELERATED_STEPS and accelerator.type:
        task.set_accelerator_type(accelerator.type).set_accelerator_limit(accelerator.count)
        for key, value in accelerator.node_selector.items():
            kubernetes.add_node_selector(task, label_key=key, label_value=str(value))
        for toleration in accelerator.tolerations:
            kubernetes.add_toleration(task, **toleration)
    if step in RETRIED_STEPS and cluster.retry.retries > 0:
        retry = cluster.retry
        task.set_retry(
            retry.retries,
            backoff_duration=f"{retry.backoff_seconds}s",
            backoff_factor=retry.backoff_factor,
            backoff_max_duration=f"{retry.max_backoff_seconds}s",
        )
    return task.set_caching_options(enable_caching=step in CACHED_STEPS)
