"""retrain: act on the monitor's decision (components/monitor.py). When it says ``retrain``, turn the
labelled feedback into a new, versioned data source and run the training pipeline on the usual data
plus that source, guarded so that a flood of alarms cannot start a flood of trainings:

- **feedback as data**: every labelled answer (latest label per answer id) becomes a folder
  ``<data_root>/feedback-<digest>/`` named by its content digest (the same labels give the same
  version): ``feedback_train.parquet`` joins the training split (ingest ``extra_train``) and a
  stratified ``feedback.parquet`` slice is held out as one more out-of-domain set, on which the gate
  scores challenger and champion (paired bootstrap), so a model that fits the new traffic can win and one
  that forgets the old test split cannot. Both pass the same validation and quarantine as any source.
- **guards**: at least ``min_feedback_rows`` labels; one retraining at a time; a cooldown after each
  start; at most ``max_per_week`` starts in seven days.
- **a record of each start**: an MLflow run in experiment ``sentiment-retraining`` (why, on what data,
  with the feedback source as a dataset input), RUNNING while the training runs, then FINISHED with the
  gate's verdict, or FAILED.

Training runs as ``python -m pipelines.run`` in a fresh process (a KFP step cannot compile a pipeline in
its own): through kfp.local without a KFP host, submitted to KFP and waited for with one.
"""

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import pandas as pd
from sklearn.model_selection import train_test_split

from components import component
from core.decisions import latest_decision
from core.lineage import content_digest, log_sources
from core.object_store import upload_file
from core.tracking import use_tracking

logger = logging.getLogger(__name__)

RETRAIN_EXPERIMENT = "sentiment-retraining"
WEEK_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class RetrainConfig:
    """params.yaml ``retrain``: see the comments there."""

    min_feedback_rows: int
    feedback_holdout: float
    cooldown_hours: float
    max_per_week: int
    max_training_hours: float
    data_root: str


@dataclass(frozen=True)
class FeedbackSource:
    """A versioned data source made of labelled feedback: its training part and its held-out slice."""

    train_uri: str
    holdout_uri: str
    digest: str
    train_rows: int
    holdout_rows: int


@dataclass(frozen=True)
class RetrainOutcome:
    started: bool
    reason: str
    record_run_id: str | None = None
    feedback: FeedbackSource | None = None
    training: dict | None = None  # the gate's decision on the retrained candidates


def write_feedback_source(
    feedback: pd.DataFrame, data_root: str, holdout: float, seed: int
) -> FeedbackSource:
    """Write the labelled ``feedback`` (columns text, label) as a content-addressed data source under
    ``data_root`` (folder or s3:// prefix): a stratified ``holdout`` share held out, the rest to train.
    Labels whose text is unknown (labelled by id on another replica, not in the prediction log) are left
    out."""
    frame = feedback.dropna(subset=["text"])[["text", "label"]].reset_index(drop=True)
    digest = content_digest(frame)
    counts = frame["label"].value_counts()
    stratify = frame["label"] if len(counts) > 1 and counts.min() >= 2 else None
    train, held_out = train_test_split(frame, test_size=holdout, stratify=stratify, random_state=seed)
    folder = f"{data_root.rstrip('/')}/feedback-{digest[:16]}"
    uris = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, part in (("feedback_train", train), ("feedback", held_out)):
            local = Path(tmp) / f"{name}.parquet"
            part.to_parquet(local, index=False)
            uris[name] = f"{folder}/{name}.parquet"
            if folder.startswith("s3://"):
                upload_file(local, uris[name])
            else:
                Path(folder).mkdir(parents=True, exist_ok=True)
                local.replace(uris[name])
    return FeedbackSource(uris["feedback_train"], uris["feedback"], digest, len(train), len(held_out))


def hold_off(client: mlflow.MlflowClient, config: RetrainConfig, now: float) -> str | None:
    """Why not to start a retraining now (one in progress, the cooldown, the weekly limit); None: go."""
    experiment = client.get_experiment_by_name(RETRAIN_EXPERIMENT)
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    ages = [(now - run.info.start_time / 1000, run) for run in runs]
    for age, run in ages:
        if run.info.status == "RUNNING" and age < config.max_training_hours * 3600:
            return (
                f"a retraining is in progress (MLflow run {run.info.run_id}, started {age / 60:.0f} min ago)"
            )
    if ages and ages[0][0] < config.cooldown_hours * 3600:
        return (
            f"cooldown: the last retraining started {ages[0][0] / 3600:.1f} h ago ({config.cooldown_hours} h)"
        )
    recent = sum(age < WEEK_SECONDS for age, _ in ages)
    if recent >= config.max_per_week:
        return f"{recent} retrainings started in the last 7 days (the limit is {config.max_per_week})"
    return None


def retrain_if_needed(
    decision: dict,
    feedback: pd.DataFrame,
    config: RetrainConfig,
    tracking_uri: str,
    seed: int,
    train: Callable[[list[str], list[str]], dict],
) -> RetrainOutcome:
    """Start a retraining if the monitor's ``decision`` asks for one and the guards allow it:
    ``train(extra_train, extra_out_of_domain)`` runs the training pipeline with the feedback source added
    and returns the gate's decision. Every start is recorded in MLflow; a refusal says why."""
    if not decision["retrain"]:
        return RetrainOutcome(False, decision.get("note") or "the monitor found no reason to retrain")
    if len(feedback) < config.min_feedback_rows:
        return RetrainOutcome(
            False,
            f"retraining wanted, but {len(feedback)} labelled answers (it needs {config.min_feedback_rows})",
        )
    use_tracking(tracking_uri, RETRAIN_EXPERIMENT)
    refusal = hold_off(mlflow.MlflowClient(), config, time.time())
    if refusal:
        logger.info("retraining wanted (%s) but held off: %s", decision["reasons"], refusal)
        return RetrainOutcome(False, f"held off: {refusal}")
    source = write_feedback_source(feedback, config.data_root, config.feedback_holdout, seed)
    reason = "; ".join(decision["reasons"])
    with mlflow.start_run(run_name=f"retrain-after-v{decision['model_version']}") as record:
        mlflow.set_tags(
            {
                "reason": reason[:5000],
                "monitored_version": str(decision["model_version"]),
                "feedback_source": source.train_uri.rsplit("/", 1)[0],
                "feedback_digest": source.digest,
            }
        )
        mlflow.log_params(
            asdict(config) | {"train_rows": source.train_rows, "holdout_rows": source.holdout_rows}
        )
        log_sources(
            [
                {"name": "feedback_train", "uri": source.train_uri, "digest": source.digest},
                {"name": "feedback", "uri": source.holdout_uri, "digest": source.digest},
            ],
            context="retraining",
        )
        logger.info("retraining (MLflow run %s): %s; feedback %s", record.info.run_id, reason, source)
        training = train([source.train_uri], [source.holdout_uri])
        verdict = "promoted" if training.get("promoted") else "rejected"
        mlflow.set_tags({"outcome": verdict, "gate.reason": str(training.get("reason", ""))[:5000]})
        mlflow.log_dict(training, "retrain/gate_decision.json")
    return RetrainOutcome(True, reason, record.info.run_id, source, training)


@component
def retrain(
    decision: str,
    predictions: str,
    training: dict,
    config: dict,
    tracking_uri: str,
    kfp_host: str,
    workdir: str,
) -> str:
    """Retrain on the usual data plus the labelled feedback under ``predictions`` when the monitor's
    ``decision`` says so (params.yaml ``retrain``; ``training`` is every other section); kfp.local under
    ``workdir`` without ``kfp_host``, else submitted to KFP there. Returns the outcome as JSON."""
    import json
    from dataclasses import asdict

    from components.monitor import read_feedback
    from components.retrain import RetrainConfig, retrain_if_needed, training_runner
    from core.config import from_mapping

    settings = from_mapping(RetrainConfig, config, "retrain")
    outcome = retrain_if_needed(
        json.loads(decision),
        read_feedback(predictions),
        settings,
        tracking_uri,
        training["run"]["seed"],
        training_runner(training, tracking_uri, kfp_host, workdir, settings.max_training_hours),
    )
    return json.dumps(asdict(outcome))


def with_feedback(training: dict, extra_train: list[str], extra_out_of_domain: list[str]) -> dict:
    """The training params (every params.yaml section, as the monitoring pipeline was given them) with
    the feedback sources added to the training data and the held-out sets."""
    ingest, out_of_domain = training["ingest"], training["out_of_domain"]
    return training | {
        "ingest": ingest | {"extra_train": [*ingest.get("extra_train", []), *extra_train]},
        "out_of_domain": out_of_domain
        | {"sources": [*out_of_domain.get("sources", []), *extra_out_of_domain]},
    }


def training_runner(
    training: dict, tracking_uri: str, kfp_host: str, workdir: str, max_hours: float
) -> Callable[[list[str], list[str]], dict]:
    """``train(extra_train, extra_out_of_domain)`` for :func:`retrain_if_needed`: the training pipeline
    with those sources added to ``training`` (the params sections), run by ``python -m pipelines.run`` in
    a fresh process (a KFP step cannot compile a pipeline in its own; pipelines.run checks the params):
    through kfp.local under ``workdir``, or on KFP at ``kfp_host``, up to ``max_hours``; returns the
    decision its gate logged to MLflow."""

    def train(extra_train: list[str], extra_out_of_domain: list[str]) -> dict:
        updated = with_feedback(training, extra_train, extra_out_of_domain)
        started = time.time()
        run_training(updated, tracking_uri, kfp_host, Path(workdir), max_hours)
        decision = latest_decision(tracking_uri, updated["run"]["experiment"], started)
        if decision is None:
            raise RuntimeError(
                f"no gated run in experiment {updated['run']['experiment']!r} since the training started"
            )
        return asdict(decision)

    return train


def run_training(training: dict, tracking_uri: str, kfp_host: str, workdir: Path, max_hours: float) -> None:
    """``python -m pipelines.run`` with the ``training`` params (waiting up to ``max_hours`` for a KFP
    run), its log in this step's; raises if it fails."""
    import os
    import subprocess

    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    params_file = workdir / f"retrain-params-{time.strftime('%Y%m%dT%H%M%S')}.yaml"
    params_file.write_text(yaml.safe_dump(training, sort_keys=False))
    subprocess.run(
        training_command(params_file, workdir, max_hours),
        cwd=Path(__file__).resolve().parent.parent,
        env=training_environment(dict(os.environ), tracking_uri, kfp_host),
        check=True,
        timeout=max_hours * 3600,
    )


def training_command(params_file: Path, workdir: Path, max_hours: float) -> list[str]:
    """``python -m pipelines.run`` on ``params_file``, waiting up to ``max_hours`` for a KFP run."""
    import sys

    arguments = ["--params", str(params_file), "--workdir", str(workdir), "--wait-hours", str(max_hours)]
    return [sys.executable, "-m", "pipelines.run", *arguments]


def training_environment(environment: dict[str, str], tracking_uri: str, kfp_host: str) -> dict[str, str]:
    """This step's environment (TRAIN_IMAGE included: the pipeline sets it) for the training run, without
    KFP's executor variables, with MLflow and KFP where this step was told they are."""
    kept = {k: v for k, v in environment.items() if not k.startswith("_KFP") and k != "KFP_HOST"}
    return kept | {"MLFLOW_TRACKING_URI": tracking_uri} | ({"KFP_HOST": kfp_host} if kfp_host else {})
