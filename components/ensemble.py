"""ensemble: a soft-voting candidate that averages the class probabilities of the other candidates'
models, with equal weights or with weights tuned on the validation split, logged to MLflow as a pyfunc
model that carries its members. Its ``runtime`` config (``fp32`` or ``int8``) passes on to the members
that have one (the transformer).

Tuned weights are chosen on the validation split, so the ensemble's validation score is cross-fitted, not
in-sample: each validation row is voted with weights tuned on the other folds (stratified, seeded), and
the in-sample score is logged beside it (``validation_in_sample_<metric>``)."""

import itertools
import logging
import time
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import component
from components.candidate import TrainResult, candidate_run, finish_candidate
from components.scores import classification_metrics
from core.config import RunConfig
from core.labels import LABELS, probability_columns
from models.ensemble import SoftVotingSentimentModel, log_ensemble_model
from models.output import probabilities_frame

logger = logging.getLogger(__name__)

WEIGHT_STEP = 0.1
CROSS_FIT_FOLDS = 5
WEIGHTINGS = ("tuned", "equal")


@dataclass(frozen=True)
class EnsembleConfig:
    """params.yaml ``ensemble``: see the comments there."""

    weighting: str


@dataclass(frozen=True)
class Member:
    """A trained candidate: its logged model and its predictions on the validation split."""

    model_uri: str
    validation_predictions: pd.DataFrame


def simplex_grid(size: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector of ``size`` multiples of ``step`` that sums to 1."""
    units = round(1 / step)
    combos = itertools.product(range(units + 1), repeat=size)
    return [tuple(c / units for c in combo) for combo in combos if sum(combo) == units]


def tune_weights(probabilities: list[np.ndarray], truth: list[str], metric: str) -> tuple[float, ...]:
    """The grid weights whose weighted vote scores best on ``metric``; ties go to the most even weights."""
    stacked = np.stack(probabilities)
    even = np.full(len(probabilities), 1 / len(probabilities))

    def rank(weights: tuple[float, ...]) -> tuple[float, float]:
        votes = np.tensordot(weights, stacked, axes=1).argmax(axis=1)
        score = classification_metrics(truth, [LABELS[i] for i in votes])[metric]
        return round(score, 9), -float(np.abs(np.array(weights) - even).sum())

    return max(simplex_grid(len(probabilities), WEIGHT_STEP), key=rank)


def cross_fitted_votes(
    probabilities: list[np.ndarray], truth: list[str], metric: str, seed: int
) -> tuple[np.ndarray, int]:
    """Each row's weighted vote with weights tuned (:func:`tune_weights`) on the other folds of a
    stratified split: out-of-sample answers for the rows the weights are tuned on. Returns the votes and
    the number of folds (CROSS_FIT_FOLDS, or fewer when a class has fewer rows)."""
    from sklearn.model_selection import StratifiedKFold

    folds = min(CROSS_FIT_FOLDS, *pd.Series(truth).value_counts())
    if folds < 2:
        raise ValueError(
            f"a class has {folds} validation row(s): too few to cross-fit the ensemble's weights"
        )
    stacked = np.stack(probabilities)
    votes = np.empty_like(stacked[0])
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for rest, held in splitter.split(np.zeros(len(truth)), truth):
        weights = tune_weights([p[rest] for p in probabilities], [truth[i] for i in rest], metric)
        votes[held] = np.tensordot(weights, stacked[:, held], axes=1)
    return votes, folds


def ensemble_model(
    members: list[Member],
    validation_path: str,
    config: EnsembleConfig,
    run: RunConfig,
    tracking_uri: str,
    lineage: dict,
) -> TrainResult:
    """Log the soft-voting ensemble of ``members`` as a candidate, from the validation predictions they
    made in training (no member runs again).

    ``weighting="tuned"`` searches member weights in steps of 0.1 for the best validation ``run.metric``
    and drops members whose weight is 0 (its validation answers and score are cross-fitted:
    :func:`cross_fitted_votes`); ``"equal"`` averages all members alike.
    """
    if config.weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, not {config.weighting!r}")
    validation = pd.read_parquet(validation_path)
    for member in members:
        given = member.validation_predictions[["text", "label"]]
        if not given.reset_index(drop=True).equals(validation[["text", "label"]].reset_index(drop=True)):
            raise ValueError(f"{member.model_uri}: its validation predictions are for other rows")
    truth = validation["label"].tolist()
    probabilities = [m.validation_predictions[probability_columns()].to_numpy() for m in members]
    started = time.perf_counter()
    weights = tune_weights(probabilities, truth, run.metric) if config.weighting == "tuned" else None
    kept = [i for i in range(len(members)) if weights is None or weights[i] > 0]
    kept_weights = [weights[i] for i in kept] if weights else None
    params = {
        "model_family": "ensemble",
        "members": ",".join(members[i].model_uri for i in kept),
        "voting": "soft",
        "weighting": config.weighting,
        "weights": ",".join(f"{w:g}" for w in kept_weights) if kept_weights else "equal",
        "train_rows": "n/a",
        "validation_rows": len(validation),
    }
    with candidate_run(tracking_uri, run.experiment, "ensemble", lineage, params, validation) as run_id:
        paths = [mlflow.artifacts.download_artifacts(members[i].model_uri) for i in kept]
        model_uri = log_ensemble_model(paths, kept_weights)
        votes = np.average([probabilities[i] for i in kept], axis=0, weights=kept_weights)
        extra = {"train_seconds": time.perf_counter() - started}
        if weights is not None:
            in_sample = classification_metrics(truth, [LABELS[i] for i in votes.argmax(axis=1)])
            extra |= {f"validation_in_sample_{name}": value for name, value in in_sample.items()}
            votes, folds = cross_fitted_votes(probabilities, truth, run.metric, run.seed)
            mlflow.log_param("validation_scoring", f"cross-fitted, {folds} folds")
        output = probabilities_frame(list(LABELS), votes)
        result = finish_candidate(run_id, model_uri, validation, output, extra)
    logger.info(
        "ensemble of %d (weights %s): validation macro recall %.4f",
        len(kept),
        kept_weights or "equal",
        result.validation_metrics["macro_recall"],
    )
    return result


@component
def ensemble(
    linear_embeddings: Input[Model],
    linear_embeddings_predictions: Input[Dataset],
    linear_tfidf: Input[Model],
    linear_tfidf_predictions: Input[Dataset],
    transformer: Input[Model],
    transformer_predictions: Input[Dataset],
    validation: Input[Dataset],
    config: dict,
    run: dict,
    tracking_uri: str,
    lineage: str,
    model: Output[Model],
    validation_predictions: Output[Dataset],
    validation_metrics: Output[Metrics],
):
    """Soft-voting ensemble of the other candidates (params.yaml ``ensemble``), logged to MLflow; the Model
    artifact points at it."""
    import json

    import pandas as pd

    from components.candidate import record_candidate
    from components.ensemble import EnsembleConfig, Member, ensemble_model
    from core.config import RunConfig, from_mapping

    pairs = [
        (linear_embeddings, linear_embeddings_predictions),
        (linear_tfidf, linear_tfidf_predictions),
        (transformer, transformer_predictions),
    ]
    members = [Member(m.metadata["model_uri"], pd.read_parquet(p.path)) for m, p in pairs]
    result = ensemble_model(
        members,
        validation.path,
        from_mapping(EnsembleConfig, config, "ensemble"),
        from_mapping(RunConfig, run, "run"),
        tracking_uri,
        json.loads(lineage),
    )
    record_candidate(result, "ensemble", model, validation_predictions, validation_metrics)


# The class path that the pickles of ensembles registered before models/ existed name (see
# components/sentiment_model.py).
SoftVotingClassifier = SoftVotingSentimentModel
