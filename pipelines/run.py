"""Run the pipeline: submit it to KFP with ``kfp.Client`` when ``KFP_HOST`` is set, otherwise run the same
definition through KFP's local runner (``kfp.local``, SubprocessRunner). Always compiles the IR YAML first.

    python -m pipelines.run [--data PATH|s3://...|HF_ID ...] [--ood SOURCE ...] [--max-rows-per-split N]
                            [--compile-only]
    python -m pipelines.run --monitor PREDICTIONS     # the monitoring pipeline, on the prediction log
"""

import argparse
import json
import logging
import os
import re
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

from core.config import step_mapping
from core.decisions import GateDecision
from core.registry import CHAMPION_ALIAS
from pipelines.params import DEFAULT_PARAMS_FILE, PipelineParams
from pipelines.pipeline import (
    MONITORING_PIPELINE_NAME,
    PIPELINE_NAME,
    compile_pipeline,
    monitoring_pipeline,
    training_pipeline,
)

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        action="append",
        metavar="SOURCE",
        help="a training data source (repeat for more, each with its own test slice); overrides "
        "`ingest.sources`",
    )
    parser.add_argument(
        "--ood",
        action="append",
        metavar="SOURCE",
        help="an out-of-domain set to score every candidate on (repeat for more); overrides `ood_sources`",
    )
    parser.add_argument("--max-rows-per-split", type=int, help="sample N rows per split")
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS_FILE)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(os.environ.get("MLOPS_HOME", ".mlops")),
        help="where local runs keep KFP outputs, MLflow data and the compiled YAML",
    )
    parser.add_argument(
        "--accelerator",
        metavar="RESOURCE",
        help="fine-tune the transformer on this accelerator on a cluster (e.g. nvidia.com/gpu); overrides "
        "`cluster.accelerator.type`",
    )
    parser.add_argument("--compile-only", action="store_true", help="only write the IR YAML")
    parser.add_argument(
        "--wait-hours",
        type=float,
        default=0.0,
        help="with KFP_HOST, wait up to this long for the run to end and fail unless it succeeded",
    )
    parser.add_argument(
        "--monitor",
        metavar="PREDICTIONS",
        help="instead of training, run the monitoring pipeline on the predictor's prediction log "
        "(a folder or s3:// prefix) for the champion",
    )
    return parser.parse_args(argv)


def pipeline_arguments(params: PipelineParams, tracking_uri: str) -> dict:
    """The pipeline's arguments: the ``run`` section, every other section as ``<section>_config``, where
    MLflow is, the flat lineage and the data sources' fingerprints (refusing sources that overlap:
    PipelineParams.check_sources)."""
    params.check_sources()
    sections = params.step_sections()
    return {
        "run": sections.pop("run"),
        **{
            f"{name}_config": values
            for name, values in sections.items()
            if name not in ("retrain", "batch_score")  # the other pipelines' sections
        },
        "tracking_uri": tracking_uri,
        "lineage": params.lineage(),
        "data_fingerprints": params.data_fingerprints(),
    }


def local_tracking_uri(workdir: Path, experiment: str) -> str:
    """MLFLOW_TRACKING_URI if set; else a sqlite store and artifact folder under ``workdir``."""
    from core.tracking import ensure_experiment

    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{workdir / 'mlflow.db'}"
    artifacts = None if "MLFLOW_TRACKING_URI" in os.environ else (workdir / "mlartifacts").as_uri()
    ensure_experiment(uri, experiment, artifacts)
    return uri


def init_local_runner(workdir: Path) -> None:
    """kfp.local's SubprocessRunner in this environment, with its outputs under ``workdir``."""
    from kfp import local

    tmp = workdir / "tmp"  # kfp.local leaves one temp dir per task: keep them out of /tmp
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = None
    os.environ.setdefault("TQDM_MININTERVAL", "10")  # progress bars become log lines: one per 10 s
    # The SubprocessRunner warns that it ignores the steps' base image: this venv is that image's twin.
    warnings.filterwarnings("ignore", message="You may be attemping to run a task", category=RuntimeWarning)
    # Caching on: the steps pipelines/task_settings.py marks cacheable come from the cache on a rerun.
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(workdir / "kfp"),
        enable_caching=True,
    )


def run_locally(params: PipelineParams, workdir: Path, tracking_uri: str) -> GateDecision:
    """Run every step as a local subprocess with kfp.local; return the gate's decision."""
    init_local_runner(workdir)
    task = training_pipeline(params.cluster)(**pipeline_arguments(params, tracking_uri))
    return GateDecision.from_json(task.output)


def monitoring_arguments(params: PipelineParams, predictions: str, tracking_uri: str) -> dict:
    """The monitoring pipeline's arguments for the champion of ``params.run.model_name``: the monitor's and
    the retraining's sections, and the training pipeline's arguments for a retraining (its data
    fingerprints come from the retraining's own data)."""
    training = pipeline_arguments(params, tracking_uri)
    del training["data_fingerprints"]
    return {
        "predictions": predictions,
        "model_uri": f"models:/{params.run.model_name}@{CHAMPION_ALIAS}",
        "retrain_config": step_mapping(params.retrain),
        **training,
    }


def cluster_tracking_uri(params: PipelineParams) -> str:
    """MLflow as runs on the cluster reach it: MLFLOW_TRACKING_URI, else params.yaml's in-cluster service."""
    return os.environ.get("MLFLOW_TRACKING_URI", params.cluster.endpoints.tracking_uri)


def cluster_params(params: PipelineParams) -> PipelineParams:
    """``params`` as runs on the cluster use them: the in-cluster Pushgateway and data root."""
    endpoints = params.cluster.endpoints
    return params.override("run", pushgateway=params.run.pushgateway or endpoints.pushgateway).override(
        "retrain", data_root=params.retrain.data_root or endpoints.data_root
    )


def run_monitoring(predictions: str, params: PipelineParams, workdir: Path, host: str | None) -> str:
    """Run the monitoring pipeline on the logs at ``predictions`` for the champion: on the cluster
    (``host``) or locally (a retraining it starts runs here too); return what to tell the user."""
    pipeline = monitoring_pipeline(params.cluster)
    package = compile_pipeline(str(workdir / "monitoring_pipeline.yaml"), pipeline)
    if host:
        import kfp

        tracking_uri = cluster_tracking_uri(params)
        arguments = monitoring_arguments(cluster_params(params), predictions, tracking_uri)
        run = kfp.Client(host=host).create_run_from_pipeline_package(
            package,
            arguments=arguments,
            run_name=f"{MONITORING_PIPELINE_NAME}-{time.strftime('%Y%m%d-%H%M%S')}",
            experiment_name=params.run.experiment,
        )
        return f"submitted monitoring run {run.run_id} to {host}"
    from components.monitor import MONITOR_EXPERIMENT
    from components.retrain import RETRAIN_EXPERIMENT

    init_local_runner(workdir)
    for experiment in (params.run.experiment, RETRAIN_EXPERIMENT):  # the retraining's, under workdir
        local_tracking_uri(workdir, experiment)
    tracking_uri = local_tracking_uri(workdir, MONITOR_EXPERIMENT)
    params = params.override("retrain", data_root=params.retrain.data_root or str(workdir / "data"))
    outcome = json.loads(pipeline(**monitoring_arguments(params, predictions, tracking_uri)).output)
    verdict = f"{'retraining started' if outcome['started'] else 'no retraining'}: {outcome['reason']}"
    if outcome["started"]:
        verdict += f"\ngate on the retrained candidates: {outcome['gate_reason']}"
    experiments = f"'{MONITOR_EXPERIMENT}' and '{RETRAIN_EXPERIMENT}'"
    return f"{verdict}\nreports: MLflow experiments {experiments} at {tracking_uri}"


def submit_to_cluster(host: str, package_path: str, params: PipelineParams) -> str:
    """Submit the compiled pipeline to the KFP API at ``host``; return the run id."""
    import kfp

    tracking_uri = cluster_tracking_uri(params)
    params = cluster_params(params)
    client = kfp.Client(host=host)
    result = client.create_run_from_pipeline_package(
        package_path,
        arguments=pipeline_arguments(params, tracking_uri),
        run_name=f"{PIPELINE_NAME}-{time.strftime('%Y%m%d-%H%M%S')}",
        experiment_name=params.run.experiment,
    )
    return result.run_id


def candidate_name(params: dict) -> str:
    """A short name for a training run from its logged params: linear-embeddings, linear-tfidf,
    transformer, ensemble."""
    return "linear-" + params["featurizer"] if params["model_family"] == "linear" else params["model_family"]


def summary(decision: GateDecision, tracking_uri: str, seconds: float) -> str:
    """What was trained, each candidate's metrics, the gate's decision and how to serve it."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    names = ("macro_recall", "macro_f1", "accuracy")
    lines = [
        f"pipeline finished in {seconds:.0f} s",
        f"{'candidate':<16}{'split':<30}" + "".join(f"{n:>14}" for n in names),
    ]
    model_name = None
    for run_id in decision.candidate_scores:
        run = client.get_run(run_id)
        model_name = run.data.params["pipeline.run.model_name"]
        tests = [name for name in run.data.tags.get("test_sets", "").split(",") if name not in ("", "test")]
        domains = [d for d in run.data.tags.get("ood_domains", "").split(",") if d]
        for split in ["validation", "test", *tests, *(f"ood_{d}" for d in domains)]:
            values = "".join(f"{run.data.metrics[f'{split}_{n}']:>14.4f}" for n in names)
            lines.append(f"{candidate_name(run.data.params):<16}{split:<30}{values}")
    weights = ", ".join(f"{name} {weight:g}" for name, weight in decision.weights.items())
    lines.append(f"gate score: {decision.metric} weighted by set ({weights})")
    for name, (gain, low, high) in decision.set_comparisons.items():
        role = "target" if name in decision.target else "guard"
        lines.append(f"vs champion on {name:<24}{gain:+.4f}  interval [{low:+.4f}, {high:+.4f}]  ({role})")
    for run_id, score in decision.candidate_scores.items():
        lines.append(f"{candidate_name(client.get_run(run_id).data.params):<16}{score:>12.4f}")
    chosen = candidate_name(client.get_run(decision.run_id).data.params)
    verdict = "PROMOTED to champion" if decision.promoted else "rejected"
    lines.append(f"best candidate: {chosen} (MLflow run {decision.run_id})")
    lines.append(f"gate: {verdict}: {decision.reason}")
    if decision.promoted:
        lines.append(f"serve it: make serve  (loads models:/{model_name}@champion from {tracking_uri})")
    return "\n".join(lines)


def load_params(args: argparse.Namespace) -> PipelineParams:
    """The params file with the command line's and the environment's overrides (SERVE_IMAGE, PUSHGATEWAY)."""
    params = environment_overrides(
        PipelineParams.load(args.params)
        .override("ingest", sources=args.data, max_rows_per_split=args.max_rows_per_split)
        .override("out_of_domain", sources=args.ood)
    )
    if args.accelerator:
        accelerator = replace(params.cluster.accelerator, type=args.accelerator)
        params = replace(params, cluster=replace(params.cluster, accelerator=accelerator))
    return params


def environment_overrides(params: PipelineParams) -> PipelineParams:
    """``params`` with SERVE_IMAGE and PUSHGATEWAY from the environment where set (make passes the serve
    image `make images` built; the training image is TRAIN_IMAGE, read by components/__init__.py)."""
    return params.override("deploy", serve_image=os.environ.get("SERVE_IMAGE")).override(
        "run", pushgateway=os.environ.get("PUSHGATEWAY")
    )


def check_sources_exist(params: PipelineParams) -> None:
    """Exit with one line naming the first DATA or OOD source that does not exist, before anything runs."""
    from components.ingest import DataSourceError, check_source

    for flag, sources in (("DATA", params.ingest.sources), ("OOD", params.out_of_domain.sources)):
        for source in sources:
            try:
                check_source(source)
            except DataSourceError as exc:
                raise SystemExit(f"{flag}: {exc}") from None


def run(args: argparse.Namespace) -> None:
    """``python -m pipelines.run`` with its parsed ``args`` (:func:`parse_args`)."""
    params = load_params(args)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    host = os.environ.get("KFP_HOST")
    if args.monitor:  # its sources are read only if it retrains
        print(run_monitoring(args.monitor, params, workdir, host))
        return
    if not (host or args.compile_only):  # a cluster reads s3:// sources in its pods, where MinIO is
        check_sources_exist(params)
    package = compile_pipeline(str(workdir / "sentiment_pipeline.yaml"), training_pipeline(params.cluster))
    logger.info("compiled %s", package)
    if args.compile_only:
        return
    if host:
        run_id = submit_to_cluster(host, package, params)
        print(f"submitted run {run_id} to {host}: follow it at {host.rstrip('/')}/#/runs/details/{run_id}")
        if args.wait_hours:
            import kfp

            client = kfp.Client(host=host)
            state = client.wait_for_run_completion(run_id, timeout=int(args.wait_hours * 3600)).state
            if state != "SUCCEEDED":
                raise SystemExit(f"run {run_id} ended {state}")
        return
    started = time.perf_counter()
    tracking_uri = local_tracking_uri(workdir, params.run.experiment)
    try:
        decision = run_locally(params, workdir, tracking_uri)
    except (
        RuntimeError
    ) as exc:  # kfp.local: "Pipeline ... finished with status FAILURE. Inner task failed: ..."
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
        raise SystemExit(f"{message} Its error is in the step's log above.") from exc
    print(summary(decision, tracking_uri, time.perf_counter() - started))


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    run(parse_args(argv))


if __name__ == "__main__":
    main()
