"""``make schedule`` / ``make unschedule`` against a stand-in for the KFP API (no KFP server can run
here): the recurring run is created once, left alone when nothing changed, replaced when something did,
and deleted; the package it carries is the real compiled monitoring pipeline."""

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipelines.params import PipelineParams
from pipelines.pipeline import compile_pipeline, monitoring_pipeline
from pipelines.run import cluster_params, monitoring_arguments
from pipelines.schedule import HOURLY, SCHEDULE_NAME, schedule, unschedule
from tests.helpers import PARAMS


@dataclass
class Recurring:
    recurring_run_id: str
    display_name: str
    description: str
    cron: str
    max_concurrency: int
    no_catchup: bool
    params: dict
    package: dict


@dataclass
class KfpStandIn:
    """A stand-in for the KFP API server's experiments and recurring runs (kfp.Client's methods the
    schedule uses, with their signatures), in memory: a KFP API server cannot run here."""

    experiments: dict = field(default_factory=dict)
    runs: dict = field(default_factory=dict)
    created: int = 0

    def get_experiment(self, experiment_name: str):
        if experiment_name not in self.experiments:
            raise ValueError(f"No experiment is found with name {experiment_name}")
        return self.experiments[experiment_name]

    def create_experiment(self, name: str):
        self.experiments[name] = type("Experiment", (), {"experiment_id": f"exp-{len(self.experiments)}"})
        return self.experiments[name]

    def list_recurring_runs(self, experiment_id: str, page_size: int):
        return type("Listed", (), {"recurring_runs": list(self.runs.values()) or None})

    def create_recurring_run(self, experiment_id, job_name, description, cron_expression, max_concurrency,
                             no_catchup, params, pipeline_package_path):  # fmt: skip
        self.created += 1
        run_id = f"rr-{self.created}"
        package, _platform = yaml.safe_load_all(Path(pipeline_package_path).read_text())
        self.runs[run_id] = Recurring(
            run_id, job_name, description, cron_expression, max_concurrency, no_catchup, params, package
        )

    def delete_recurring_run(self, recurring_run_id: str) -> dict:
        del self.runs[recurring_run_id]
        return {}


def test_schedule_is_idempotent_replaces_on_change_and_unschedules(tmp_path: Path) -> None:
    client, params = KfpStandIn(), cluster_params(PipelineParams.load())
    package = compile_pipeline(str(tmp_path / "monitoring.yaml"), monitoring_pipeline(PARAMS.cluster))
    arguments = monitoring_arguments(params, "s3://predictions/sentiment", "http://mlflow")
    assert schedule(client, package, arguments, HOURLY, "sentiment") == "created"
    (created,) = client.runs.values()
    assert (created.display_name, created.cron, created.max_concurrency, created.no_catchup) == (
        SCHEDULE_NAME,
        HOURLY,
        1,
        True,
    )
    assert created.package["pipelineInfo"]["name"] == "sentiment-monitoring"
    assert created.params["tracking_uri"] == "http://mlflow"
    assert created.params["retrain_config"]["data_root"] == "s3://sources/feedback"
    assert schedule(client, package, arguments, HOURLY, "sentiment") == "unchanged"
    assert list(client.runs) == ["rr-1"]
    assert schedule(client, package, arguments, "0 30 * * * *", "sentiment") == "replaced"
    assert list(client.runs) == ["rr-2"]
    assert unschedule(client, "sentiment") == 1 and not client.runs
    assert unschedule(client, "sentiment") == 0
