"""ensemble: a soft-voting candidate that averages the class probabilities of the other candidates'
models, with equal weights or with weights tuned on the validation split, logged to MLflow as a pyfunc
model that carries its members. Its ``runtime`` config (``fp32`` or ``int8``) passes on to the members
that have one (the transformer)."""

import itertools
import json
import logging
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from core.labels import LABELS, probability_columns
from core.scores import classification_metrics
from models.ensemble import log_ensemble_model
from models.output import probabilities_frame
from core.tracking import use_tracking
from components.train_linear import TrainResult

logger = logging.getLogger(__name__)

def simplex_grid(size: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector of ``size`` multiples of ``step`` that sums to 1."""
    units = round(1 / step)
    combos = itertools.product(range(units + 1), repeat=size)
    return [tuple(c / units for c in combo) for combo in combos if sum(combo) == units]


def tune_weights(
    probabilities: list[np.ndarray], truth: list[str], metric: str, step: float = 0.1
) -> tuple[float, ...]:
    """The grid weights whose weighted vote scores best on ``metric``; ties go to the most even weights."""
    stacked = np.stack(probabilities)
    even = np.full(len(probabilities), 1 / len(probabilities))

    def rank(weights: tuple[float, ...]) -> tuple[float, float]:
        votes = np.tensordot(weights, stacked, axes=1).argmax(axis=1)
        score = classification_metrics(truth, [LABELS[i] for i in votes])[metric]
        return round(score, 9), -float(np.abs(np.array(weights) - even).sum())

    return max(simplex_grid(len(probabilities), step), key=rank)


def ensemble(
    member_uris: list[str],
    validation_path: str,
    tracking_uri: str,
    experiment: str,
    run_params: str = "{}",
    weighting: str = "tuned",
    metric: str = "macro_recall",
) -> TrainResult:
    """Log the soft-voting ensemble of ``member_uris`` as a candidate and score it on validation.

    ``weighting="tuned"`` searches member weights in steps of 0.1 for the best validation ``metric`` (its
    validation score is then in-sample; the gate scores it on the test split) and drops members whose
    weight is 0; ``"equal"`` averages all members alike.
    """
    from mlflow.models import infer_signature

    if weighting not in ("tuned", "equal"):
        raise ValueError(f"weighting must be 'tuned' or 'equal', not {weighting!r}")
    use_tracking(tracking_uri, experiment)
    validation = pd.read_parquet(validation_path)
    truth = validation["label"].tolist()
    with mlflow.start_run(run_name="ensemble") as run:
        started = time.perf_counter()
        paths = [mlflow.artifacts.download_artifacts(uri) for uri in member_uris]
        probabilities = [
            mlflow.pyfunc.load_model(path).predict(validation[["text"]])[probability_columns()].to_numpy()
            for path in paths
        ]
        weights = tune_weights(probabilities, truth, metric) if weighting == "tuned" else None
        kept = [i for i in range(len(paths)) if weights is None or weights[i] > 0]
        kept_weights = [weights[i] for i in kept] if weights else None
        members = {f"member_{n}": paths[i] for n, i in enumerate(kept)}
        mlflow.log_params({f"pipeline.{k}": v for k, v in json.loads(run_params).items()})
        mlflow.log_params({"model_family": "ensemble", "members": ",".join(member_uris[i] for i in kept),
                           "voting": "soft", "weighting": weighting,
                           "weights": ",".join(f"{w:g}" for w in kept_weights) if kept_weights else "equal",
                           "train_rows": "n/a", "validation_rows": len(validation)})  # fmt: skip
        votes = np.average([probabilities[i] for i in kept], axis=0, weights=kept_weights)
        output = probabilities_frame(list(LABELS), votes)
        metrics = classification_metrics(truth, output["label"].tolist())
        mlflow.log_metrics({"train_seconds": time.perf_counter() - started,
                            **{f"validation_{k}": v for k, v in metrics.items()}})  # fmt: skip
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=SoftVotingSentimentModel(kept_weights),
            artifacts=members,
            model_config={"runtime": "fp32"},
            code_paths=[str(Path(__file__).parent)],
            signature=infer_signature(validation[["text"]].head(2), output.head(2)),
            pip_requirements=SERVING_REQUIREMENTS,
        )
        mlflow.set_tag("model_uri", info.model_uri)
    logger.info(
        "ensemble of %d (weights %s): validation macro recall %.4f",
        len(kept), kept_weights or "equal", metrics["macro_recall"],
    )  # fmt: skip
    return TrainResult(run.info.run_id, info.model_uri, metrics)
