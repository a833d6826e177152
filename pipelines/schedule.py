"""Run the monitoring pipeline on the cluster as a KFP recurring run: ``make schedule`` creates it (or
replaces it when the pipeline, its arguments or the cron changed; unchanged, it is left alone, so the
target is idempotent), ``make unschedule`` deletes it. At most one run at a time (``max_concurrency``
1) and no catch-up after a pause; a retraining it starts runs inside the same KFP run (the training
pipeline nested in the monitoring pipeline), so the next scheduled run waits for it.

    KFP_HOST=http://localhost:8088 python -m pipelines.schedule [--cron "0 0 * * * *"] [--unschedule]
"""

import argparse
import hashlib
import json
import os
import tempfile
from pathlib import Path

from pipelines.params import DEFAULT_PARAMS_FILE, PipelineParams
from pipelines.pipeline import MONITORING_PIPELINE_NAME, compile_pipeline, monitoring_pipeline
from pipelines.run import (
    cluster_params,
    cluster_tracking_uri,
    environment_overrides,
    monitoring_arguments,
)

SCHEDULE_NAME = f"{MONITORING_PIPELINE_NAME}-schedule"
HOURLY = "0 0 * * * *"  # KFP's cron has a seconds field


def fingerprint(package: str, arguments: dict, cron: str) -> str:
    """What identifies a schedule: the compiled pipeline, its arguments and the cron."""
    content = Path(package).read_text() + json.dumps(arguments, sort_keys=True) + cron
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def _experiment_id(client, name: str) -> str:
    try:
        return client.get_experiment(experiment_name=name).experiment_id
    except Exception:  # kfp raises a bare ValueError / ApiException when it does not exist
        return client.create_experiment(name).experiment_id


def _scheduled(client, experiment_id: str) -> list:
    listed = client.list_recurring_runs(experiment_id=experiment_id, page_size=100)
    return [r for r in (listed.recurring_runs or []) if r.display_name == SCHEDULE_NAME]


def schedule(client, package: str, arguments: dict, cron: str, experiment: str) -> str:
    """Make the recurring run match ``package``, ``arguments`` and ``cron``: ``created``, ``replaced`` or
    ``unchanged``."""
    experiment_id = _experiment_id(client, experiment)
    wanted = fingerprint(package, arguments, cron)
    existing = _scheduled(client, experiment_id)
    if [r.description for r in existing] == [f"fingerprint {wanted}"]:
        return "unchanged"
    for old in existing:
        client.delete_recurring_run(old.recurring_run_id)
    client.create_recurring_run(
        experiment_id,
        SCHEDULE_NAME,
        description=f"fingerprint {wanted}",
        cron_expression=cron,
        max_concurrency=1,
        no_catchup=True,
        params=arguments,
        pipeline_package_path=package,
    )
    return "replaced" if existing else "created"


def unschedule(client, experiment: str) -> int:
    """Delete the recurring run; return how many there were."""
    existing = _scheduled(client, _experiment_id(client, experiment))
    for old in existing:
        client.delete_recurring_run(old.recurring_run_id)
    return len(existing)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cron", default=HOURLY, help="when to run (KFP cron, seconds first)")
    parser.add_argument(
        "--predictions", help="the predictor's log prefix (default: cluster.endpoints.predictions)"
    )
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS_FILE)
    parser.add_argument("--unschedule", action="store_true", help="delete the recurring run")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """``python -m pipelines.schedule`` with its parsed ``args`` (:func:`parse_args`)."""
    host = os.environ.get("KFP_HOST")
    if not host:
        raise SystemExit("set KFP_HOST (e.g. make kfp-ui, then KFP_HOST=http://localhost:8088)")
    import kfp

    client = kfp.Client(host=host)
    params = scheduled_params(args.params)
    if args.unschedule:
        print(f"deleted {unschedule(client, params.run.experiment)} recurring run(s) {SCHEDULE_NAME}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        predictions = args.predictions or params.cluster.endpoints.predictions
        package, arguments = scheduled_run(params, predictions, Path(tmp))
        outcome = schedule(client, package, arguments, args.cron, params.run.experiment)
    print(f"{SCHEDULE_NAME} ({args.cron}): {outcome}")


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


def scheduled_params(params_file: Path) -> PipelineParams:
    """The params a scheduled run uses: the file, the environment's images and the cluster's services."""
    return cluster_params(environment_overrides(PipelineParams.load(params_file)))


def scheduled_run(params: PipelineParams, predictions: str, folder: Path) -> tuple[str, dict]:
    """The compiled monitoring pipeline (in ``folder``) and the arguments of each scheduled run."""
    package = compile_pipeline(str(folder / "monitoring_pipeline.yaml"), monitoring_pipeline(params.cluster))
    return package, monitoring_arguments(params, predictions, cluster_tracking_uri(params))


if __name__ == "__main__":
    main()
