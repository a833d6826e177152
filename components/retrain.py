"""retrain: the monitoring pipeline's steps around a retraining (pipelines/pipeline.py). When the monitor
(components/monitor.py) decides to retrain and the guards allow it, ``prepare_retraining`` turns the
labelled feedback into a new, versioned data source and hands the training pipeline its data sections
with that source added; the training pipeline runs nested in the monitoring pipeline (``dsl.If``: a step
never launches a pipeline), and ``finish_retraining`` closes the record with the gate's decision, which
the nested pipeline hands over as its output.

- **feedback as data**: every labelled answer (latest label per answer id) becomes a folder
  ``<data_root>/feedback-<digest>/`` named by its content digest (the same labels give the same
  version): ``feedback_train.parquet`` joins the training split (ingest ``extra_train``) and a
  stratified ``feedback.parquet`` slice is held out as one more out-of-domain set, on which the gate
  scores challenger and champion (paired bootstrap), so a model that fits the new traffic can win and one
  that forgets the old test split cannot. Both pass the same validation and quarantine as any source.
- **guards** (monitoring/retraining.py): at least ``min_feedback_rows`` labels; one retraining at a time;
  a cooldown after each start; at most ``max_per_week`` starts in seven days.
- **a record of each start**: an MLflow run in experiment ``sentiment-retraining`` (why, on what data,
  with the feedback source as a dataset input), RUNNING while the training runs, then FINISHED with the
  gate's verdict; one still running after ``max_training_hours`` ended without a verdict and is closed as
  FAILED by the next start's check.
"""

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import mlflow
import pandas as pd
from mlflow.entities import Param
from sklearn.model_selection import train_test_split

from components import component
from core import storage
from core.lineage import content_digest, flat_params, log_sources, sources_fingerprints
from core.tracking import use_tracking
from monitoring.retraining import RetrainingStart, hold_off_reason, stale_starts

logger = logging.getLogger(__name__)

RETRAIN_EXPERIMENT = "sentiment-retraining"
OUTCOME_TAG = "outcome"


@dataclass(frozen=True)
class RetrainConfig:
    """params.yaml ``retrain``: see the comments there."""

    min_feedback_rows: int
    feedback_holdout: float
    cooldown_hours: float
    max_per_week: int
    max_training_hours: float
    data_root: str | None  # None: the runner's (pipelines/run.py)


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
    """What ``prepare_retraining`` decided: whether a retraining starts, why (or why not), its record and
    the feedback source it trains on."""

    started: bool
    reason: str
    record_run_id: str | None = None
    feedback: FeedbackSource | None = None


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
            storage.put_file(local, uris[name])
    return FeedbackSource(uris["feedback_train"], uris["feedback"], digest, len(train), len(held_out))


def earlier_starts(client: mlflow.MlflowClient, now: float) -> list[RetrainingStart]:
    """The record of every retraining started so far (experiment RETRAIN_EXPERIMENT)."""
    experiment = client.get_experiment_by_name(RETRAIN_EXPERIMENT)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    return [
        RetrainingStart(run.info.run_id, now - run.info.start_time / 1000, run.info.status == "RUNNING")
        for run in runs
    ]


def hold_off(client: mlflow.MlflowClient, config: RetrainConfig, now: float) -> str | None:
    """Why not to start a retraining now (monitoring/retraining.py's guards on the record); None: go.
    A record still running after ``max_training_hours`` is closed as FAILED first: its training ended
    without handing back a verdict."""
    starts = earlier_starts(client, now)
    for stale in stale_starts(starts, config.max_training_hours):
        client.set_tag(stale.record_id, OUTCOME_TAG, f"no verdict within {config.max_training_hours} h")
        client.set_terminated(stale.record_id, "FAILED")
    return hold_off_reason(starts, config.cooldown_hours, config.max_per_week, config.max_training_hours)


def start_retraining(
    decision: dict, feedback: pd.DataFrame, config: RetrainConfig, tracking_uri: str, seed: int
) -> RetrainOutcome:
    """Start a retraining if the monitor's ``decision`` asks for one and the guards allow it: write the
    feedback source and open its record (left RUNNING for :func:`finish_retraining_record`). A refusal
    says why."""
    if not decision["retrain"]:
        return RetrainOutcome(False, decision.get("note") or "the monitor found no reason to retrain")
    if len(feedback) < config.min_feedback_rows:
        return RetrainOutcome(
            False,
            f"retraining wanted, but {len(feedback)} labelled answers (it needs {config.min_feedback_rows})",
        )
    use_tracking(tracking_uri, RETRAIN_EXPERIMENT)
    client = mlflow.MlflowClient()
    experiment_id = client.get_experiment_by_name(RETRAIN_EXPERIMENT).experiment_id
    refusal = hold_off(client, config, time.time())
    if refusal:
        logger.info("retraining wanted (%s) but held off: %s", decision["reasons"], refusal)
        return RetrainOutcome(False, f"held off: {refusal}")
    source = write_feedback_source(feedback, config.data_root, config.feedback_holdout, seed)
    reason = "; ".join(decision["reasons"])
    tags = {
        "reason": reason[:5000],
        "monitored_version": str(decision["model_version"]),
        "feedback_source": source.train_uri.rsplit("/", 1)[0],
        "feedback_digest": source.digest,
    }
    record = client.create_run(
        experiment_id, run_name=f"retrain-after-v{decision['model_version']}", tags=tags
    ).info.run_id
    sizes = {"train_rows": source.train_rows, "holdout_rows": source.holdout_rows}
    client.log_batch(
        record, params=[Param(key, str(value)) for key, value in (asdict(config) | sizes).items()]
    )
    log_sources(
        [
            {"name": "feedback_train", "uri": source.train_uri, "digest": source.digest},
            {"name": "feedback", "uri": source.holdout_uri, "digest": source.digest},
        ],
        context="retraining",
        run_id=record,
    )
    logger.info("retraining (MLflow run %s): %s; feedback %s", record, reason, source)
    return RetrainOutcome(True, reason, record, source)


def with_feedback(ingest: dict, out_of_domain: dict, source: FeedbackSource) -> tuple[dict, dict]:
    """The training pipeline's ``ingest`` and ``out_of_domain`` sections with the feedback ``source``
    added: its training part to the training data, its held-out slice to the held-out sets."""
    return (
        ingest | {"extra_train": [*ingest.get("extra_train", []), source.train_uri]},
        out_of_domain | {"sources": [*out_of_domain.get("sources", []), source.holdout_uri]},
    )


def finish_retraining_record(record_run_id: str, decision: dict, tracking_uri: str) -> str:
    """Close the retraining's record with the gate's ``decision`` on the retrained candidates (tags, the
    decision as an artifact, FINISHED); return the verdict."""
    client = mlflow.MlflowClient(tracking_uri)
    verdict = "promoted" if decision.get("promoted") else "rejected"
    client.set_tag(record_run_id, OUTCOME_TAG, verdict)
    client.set_tag(record_run_id, "gate.reason", str(decision.get("reason", ""))[:5000])
    client.log_dict(record_run_id, decision, "retrain/gate_decision.json")
    client.set_terminated(record_run_id, "FINISHED")
    return verdict


@component
def prepare_retraining(
    decision: str,
    predictions: str,
    config: dict,
    run: dict,
    ingest: dict,
    out_of_domain: dict,
    lineage: str,
    tracking_uri: str,
) -> NamedTuple(
    "Prepared",
    start=bool,
    ingest=dict,
    out_of_domain=dict,
    lineage=str,
    data_fingerprints=str,
    outcome=str,
):
    """When the monitor's ``decision`` says retrain and the guards allow it (params.yaml ``retrain``):
    the labelled feedback under ``predictions`` as a data source, its record opened, and the training
    pipeline's ``ingest`` and ``out_of_domain`` sections with it added (with their ``lineage`` and the
    sources' fingerprints). ``start`` says whether the training runs; ``outcome`` is the JSON to report."""
    import json
    from collections import namedtuple
    from dataclasses import asdict

    from components.monitor import read_feedback
    from components.retrain import RetrainConfig, retraining_inputs, start_retraining
    from core.config import from_mapping

    settings = from_mapping(RetrainConfig, config, "retrain")
    outcome = start_retraining(
        json.loads(decision), read_feedback(predictions), settings, tracking_uri, int(run["seed"])
    )
    values = retraining_inputs(outcome, ingest, out_of_domain, lineage)
    return namedtuple("Prepared", [*values, "outcome"])(**values, outcome=json.dumps(asdict(outcome)))


def retraining_inputs(outcome: RetrainOutcome, ingest: dict, out_of_domain: dict, lineage: str) -> dict:
    """The training pipeline's inputs that a retraining changes (unchanged when none starts)."""
    if not outcome.started:
        return {
            "start": False,
            "ingest": ingest,
            "out_of_domain": out_of_domain,
            "lineage": lineage,
            "data_fingerprints": "{}",
        }
    ingest, out_of_domain = with_feedback(ingest, out_of_domain, outcome.feedback)
    flat = json.loads(lineage) | flat_params({"ingest": ingest, "out_of_domain": out_of_domain})
    sources = [*ingest["sources"], *ingest["extra_train"], *out_of_domain["sources"]]
    return {
        "start": True,
        "ingest": ingest,
        "out_of_domain": out_of_domain,
        "lineage": json.dumps(flat, sort_keys=True),
        "data_fingerprints": sources_fingerprints(sources),
    }


@component
def finish_retraining(outcome: str, decision: str, tracking_uri: str) -> str:
    """Close the record of the retraining ``outcome`` (prepare_retraining's JSON) names with the gate's
    ``decision`` (JSON) on the retrained candidates; return the outcome with the verdict and its reason."""
    import json

    from components.retrain import finish_retraining_record

    started, gate = json.loads(outcome), json.loads(decision)
    verdict = finish_retraining_record(started["record_run_id"], gate, tracking_uri)
    return json.dumps(started | {"verdict": verdict, "gate_reason": gate.get("reason", "")})


@component
def no_retraining(outcome: str) -> str:
    """The monitoring pipeline's branch when no retraining starts: the outcome (why not), unchanged."""
    return outcome
