"""What the three training steps (train_linear, train_transformer, ensemble) share: the candidate's MLflow
run and what a step hands on to the next ones through KFP: a Model artifact pointing at the logged
model, its validation probabilities (a Dataset) and its validation metrics."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import mlflow
import pandas as pd

from components.label_checks import LabelChecks
from components.scores import classification_metrics, per_source_metrics
from core.artifacts import LABEL_CHECKS_TAG_PREFIX, MACHINE_LABELLED_TAG
from core.lineage import log_sources, sources_of
from core.tracking import use_tracking

REPORTED_METRICS = ("macro_recall", "macro_f1", "accuracy")


@dataclass(frozen=True)
class TrainResult:
    """A logged candidate: its run, its model and its predictions on the validation split (text, label,
    and the predicted label and class probabilities of :func:`models.output.probabilities_frame`)."""

    run_id: str
    model_uri: str
    validation_metrics: dict[str, float]
    validation_predictions: pd.DataFrame


@contextmanager
def candidate_run(
    tracking_uri: str, experiment: str, run_name: str, lineage: dict, params: dict, data: pd.DataFrame
) -> Iterator[str]:
    """An MLflow run for one candidate, holding the pipeline's parameters (``pipeline.*``, for lineage),
    the candidate's own ``params`` and, as dataset inputs, the sources ``data`` (a split) came from;
    yields the run id."""
    use_tracking(tracking_uri, experiment)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({f"pipeline.{k}": v for k, v in lineage.items()})
        mlflow.log_params(params)
        sources = sources_of(data)
        log_sources(sources)
        mlflow.set_tags(label_check_tags(sources))
        yield run.info.run_id


def label_check_tags(sources: list[dict]) -> dict[str, str]:
    """What ingest's label checks found in each source (components/label_checks.py), as run tags:
    ``label_checks.<source>`` (one line each) and ``data.machine_labelled`` (the flagged sources)."""
    checks = {s["name"]: LabelChecks(**s["label_checks"]) for s in sources if "label_checks" in s}
    if not checks:
        return {}
    flagged = [name for name, c in checks.items() if c.machine_labelled]
    return {f"{LABEL_CHECKS_TAG_PREFIX}{name}": c.summary() for name, c in checks.items()} | {
        MACHINE_LABELLED_TAG: ", ".join(flagged) or "none"
    }


def finish_candidate(
    run_id: str, model_uri: str, validation: pd.DataFrame, output: pd.DataFrame, metrics: dict[str, float]
) -> TrainResult:
    """Score ``output`` (the model's answer for each ``validation`` row) and log the validation metrics
    (in all, and per source when there are several), ``metrics`` (timings) and the model's URI to the
    active run."""
    predicted = output["label"].tolist()
    scores = classification_metrics(validation["label"].tolist(), predicted)
    per_source = per_source_metrics("validation", validation, predicted)
    mlflow.log_metrics(metrics | {f"validation_{k}": v for k, v in scores.items()} | per_source)
    mlflow.set_tag("model_uri", model_uri)
    predictions = pd.concat(
        [validation[["text", "label"]].reset_index(drop=True), output.rename(columns={"label": "predicted"})],
        axis=1,
    )
    return TrainResult(run_id, model_uri, scores, predictions)


def record_candidate(result: TrainResult, family: str, model, predictions, validation_metrics) -> None:
    """Fill a training step's ``Output[Model]`` (metadata + a file holding the model URI), its
    ``Output[Dataset]`` of validation predictions and its ``Output[Metrics]``."""
    model.metadata.update({"run_id": result.run_id, "model_uri": result.model_uri, "family": family})
    with open(model.path, "w") as pointer:
        pointer.write(result.model_uri)
    result.validation_predictions.to_parquet(predictions.path, index=False)
    for name in REPORTED_METRICS:
        validation_metrics.log_metric(name, result.validation_metrics[name])
