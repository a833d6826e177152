"""The batch-scoring pipeline: plan -> score each shard (``dsl.ParallelFor``, at most ``parallelism`` at
once) -> publish (components/batch_score.py). Run it through kfp.local here, or on KFP when ``KFP_HOST``
is set:

    python -m pipelines.batch --input PATH|s3://... --output PATH|s3://...
                              [--model models:/sentiment@champion]
"""

import argparse
import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

from kfp import dsl

from components.batch_score import BATCH_EXPERIMENT, batch_plan, batch_publish, batch_score
from core import storage
from core.config import step_mapping
from core.registry import CHAMPION_ALIAS
from pipelines.params import DEFAULT_PARAMS_FILE, PipelineParams
from pipelines.pipeline import compile_pipeline, with_object_store
from pipelines.task_settings import ClusterConfig, configure

BATCH_PIPELINE_NAME = "sentiment-batch-scoring"


def batch_pipeline(cluster: ClusterConfig, parallelism: int):
    """The batch pipeline, scoring at most ``parallelism`` shards at once, its tasks configured by
    ``cluster``."""

    @dsl.pipeline(
        name=BATCH_PIPELINE_NAME,
        description="Score a corpus with one pinned registry version, shard by shard in parallel.",
    )
    def sentiment_batch_scoring(
        input_uri: str,
        output_uri: str,
        model_uri: str,
        batch_config: dict,
        validate_config: dict,
        tracking_uri: str,
    ) -> str:
        """Score the corpus at ``input_uri`` with ``model_uri`` into ``output_uri`` (params.yaml
        ``batch_score``; ``validate``'s text limit); returns the summary as JSON."""
        planned = batch_plan(
            input_uri=input_uri,
            output_uri=output_uri,
            model_uri=model_uri,
            config=batch_config,
            validate=validate_config,
            tracking_uri=tracking_uri,
        )
        with dsl.ParallelFor(planned.output, parallelism=parallelism) as order:
            scored = batch_score(order=order, config=batch_config)
            with_object_store(configure(scored, "batch_score", cluster))
        published = batch_publish(results=dsl.Collected(scored.output), tracking_uri=tracking_uri)
        for step, task in (("batch_plan", planned), ("batch_publish", published)):
            with_object_store(configure(task, step, cluster))
        return published.output

    return sentiment_batch_scoring


def batch_arguments(
    params: PipelineParams, input_uri: str, output_uri: str, model_uri: str, tracking_uri: str
):
    """The batch pipeline's arguments: the corpus, the output, the model and the two params sections."""
    return {
        "input_uri": input_uri,
        "output_uri": output_uri,
        "model_uri": model_uri,
        "batch_config": step_mapping(params.batch_score),
        "validate_config": step_mapping(params.validate),
        "tracking_uri": tracking_uri,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--input", required=True, help="the corpus: a CSV, TSV, parquet or .jsonl file or s3:// object"
    )
    parser.add_argument(
        "--output", required=True, help="a folder or s3:// prefix for the scores and the summary"
    )
    parser.add_argument(
        "--model", help="the registry version to score with (default models:/<model_name>@champion)"
    )
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS_FILE)
    parser.add_argument(
        "--parallelism", type=int, help="shards scored at once; overrides batch_score.parallelism"
    )
    parser.add_argument("--shard-rows", type=int, help="rows per shard; overrides batch_score.shard_rows")
    parser.add_argument(
        "--accelerator",
        metavar="RESOURCE",
        help="on a cluster, score each shard on this accelerator (e.g. nvidia.com/gpu) in FP32 (INT8 is the "
        "CPU runtime); overrides `cluster.accelerator.type`",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(os.environ.get("MLOPS_HOME", ".mlops")),
        help="where local runs keep KFP outputs, MLflow data and the compiled YAML",
    )
    return parser.parse_args(argv)


def batch_params(args: argparse.Namespace) -> PipelineParams:
    """The params file with the command line's overrides; an accelerator means FP32 (the GPU's runtime)."""
    params = PipelineParams.load(args.params).override(
        "batch_score", parallelism=args.parallelism, shard_rows=args.shard_rows
    )
    if args.accelerator:
        params = params.override("batch_score", runtime="fp32")
        accelerator = replace(params.cluster.accelerator, type=args.accelerator)
        params = replace(params, cluster=replace(params.cluster, accelerator=accelerator))
    return params


def run(args: argparse.Namespace) -> None:
    """``python -m pipelines.batch`` with its parsed ``args`` (:func:`parse_args`)."""
    from pipelines.run import cluster_tracking_uri, init_local_runner, local_tracking_uri

    params = batch_params(args)
    model_uri = args.model or f"models:/{params.run.model_name}@{CHAMPION_ALIAS}"
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    pipeline = batch_pipeline(params.cluster, params.batch_score.parallelism)
    package = compile_pipeline(str(workdir / "batch_pipeline.yaml"), pipeline)
    host = os.environ.get("KFP_HOST")
    if host:
        import kfp

        local = [uri for uri in (args.input, args.output) if not storage.is_remote(uri)]
        if local:
            raise SystemExit(
                f"on a cluster the corpus and the output must be s3:// URIs (each step runs in a pod of its "
                f"own, and MinIO is what they share): {local}"
            )

        tracking_uri = cluster_tracking_uri(params)
        submitted = kfp.Client(host=host).create_run_from_pipeline_package(
            package,
            arguments=batch_arguments(params, args.input, args.output, model_uri, tracking_uri),
            run_name=f"{BATCH_PIPELINE_NAME}-{time.strftime('%Y%m%d-%H%M%S')}",
            experiment_name=BATCH_EXPERIMENT,
        )
        url = f"{host.rstrip('/')}/#/runs/details/{submitted.run_id}"
        print(f"submitted batch run {submitted.run_id} to {host}: follow it at {url}")
        return
    init_local_runner(workdir)
    tracking_uri = local_tracking_uri(workdir, BATCH_EXPERIMENT)
    output, corpus = storage.absolute(args.output), storage.absolute(args.input)
    task = pipeline(**batch_arguments(params, corpus, output, model_uri, tracking_uri))
    summary = json.loads(task.output)
    print(
        f"scored {summary['rows_scored']} rows ({summary['rows_quarantined']} quarantined: "
        f"{summary['quarantined']}) with {summary['model']['uri']} in {summary['model']['runtime']}: "
        f"{summary['rows_per_second']} rows/s, {summary['failed_attempts']} failed attempts retried\n"
        f"class shares {summary['class_shares']}\noutput {output} (summary.json; MLflow run "
        f"{summary['mlflow_run_id']} in '{BATCH_EXPERIMENT}' at {tracking_uri})"
    )


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    run(parse_args(argv))


if __name__ == "__main__":
    main()
