"""Hyper-parameter search for the linear candidates: C and the class-imbalance treatment (class weights,
random oversampling or nothing), tuned with Optuna on the validation split; each trial is a nested MLflow
run."""

import logging

import mlflow
import numpy as np

from core.scores import classification_metrics

logger = logging.getLogger(__name__)

IMBALANCE_TREATMENTS = ("class_weight", "oversample", "none")


def oversample(x, y: list[str], seed: int):
    """Randomly repeat rows of the smaller classes until every class has as many rows as the largest."""
    labels = np.asarray(y)
    classes, counts = np.unique(labels, return_counts=True)
    rng = np.random.default_rng(seed)
    index = []
    for cls in classes:
        rows = np.flatnonzero(labels == cls)
        index += [rows, rng.choice(rows, counts.max() - len(rows))]
    index = np.concatenate(index)
    return x[index], labels[index].tolist()


def fit_classifier(build, c: float, imbalance: str, seed: int, x, y: list[str]):
    """Fit ``build(c, class_weight)`` on (x, y) with the given imbalance treatment."""
    if imbalance not in IMBALANCE_TREATMENTS:
        raise ValueError(f"imbalance must be one of {IMBALANCE_TREATMENTS}, got {imbalance!r}")
    if imbalance == "oversample":
        x, y = oversample(x, y, seed)
    return build(c, "balanced" if imbalance == "class_weight" else None).fit(x, y)


def tune_classifier(
    build, trials: int, metric: str, seed: int, train_x, train_y, validation_x, validation_y, first: dict
) -> dict:
    """Search C (log-uniform 0.01-100) and the imbalance treatment for ``trials`` Optuna trials, each logged
    as a run nested in the active one; return the best ``{"C": ..., "imbalance": ...}``. The first trial is
    ``first`` (the configured values), so the search never ends below them."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        c = trial.suggest_float("C", 1e-2, 1e2, log=True)
        imbalance = trial.suggest_categorical("imbalance", IMBALANCE_TREATMENTS)
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            model = fit_classifier(build, c, imbalance, seed, train_x, train_y)
            metrics = classification_metrics(validation_y, model.predict(validation_x).tolist())
            mlflow.log_params({"C": c, "imbalance": imbalance})
            mlflow.log_metrics({f"validation_{k}": v for k, v in metrics.items()})
        return metrics[metric]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(first)
    study.optimize(objective, n_trials=trials, show_progress_bar=True)
    logger.info(
        "best of %d trials: %s (validation %s %.4f)", trials, study.best_params, metric, study.best_value
    )
    return study.best_params
