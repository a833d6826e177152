"""Fitting the linear candidates with a class-imbalance treatment (components/imbalance.py, or random
oversampling), and the search for C, tuned with Optuna on the validation split; each trial is a nested
MLflow run. The treatment is not searched: chosen on validation it does not transfer to other data
(bench/recipes.py compares the treatments on every held-out set), so it comes from params.yaml."""

import logging

import mlflow
import numpy as np

from components.imbalance import IMBALANCE_TREATMENTS as SHARED_TREATMENTS
from components.imbalance import check_treatment, loss_weights
from components.scores import classification_metrics
from models.output import probabilities_frame

logger = logging.getLogger(__name__)

IMBALANCE_TREATMENTS = (*SHARED_TREATMENTS, "oversample")


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
    """Fit ``build(c, class_weight)`` on (x, y) with the given imbalance treatment (``prior_correction``
    fits unweighted: :func:`predict_labels` corrects the answers)."""
    check_treatment(imbalance, IMBALANCE_TREATMENTS)
    if imbalance == "oversample":
        return build(c, None).fit(*oversample(x, y, seed))
    return build(c, loss_weights(y, imbalance)).fit(x, y)


def predict_labels(model, x, prior_scale: list[float] | None) -> list[str]:
    """The labels ``model`` answers for ``x``, prior-corrected by ``prior_scale`` as the served model is."""
    return probabilities_frame(list(model.classes_), model.predict_proba(x), prior_scale)["label"].tolist()


def tune_classifier(
    build,
    trials: int,
    metric: str,
    seed: int,
    imbalance: str,
    prior_scale: list[float] | None,
    data: tuple,
    first_c: float,
) -> float:
    """Search C (log-uniform 0.01-100) with the ``imbalance`` treatment for ``trials`` Optuna trials on
    ``data`` (train x, train y, validation x, validation y), each logged as a run nested in the active
    one; return the best C. The first trial is ``first_c``, so the search never ends below it."""
    import optuna

    train_x, train_y, validation_x, validation_y = data
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        c = trial.suggest_float("C", 1e-2, 1e2, log=True)
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            model = fit_classifier(build, c, imbalance, seed, train_x, train_y)
            metrics = classification_metrics(validation_y, predict_labels(model, validation_x, prior_scale))
            mlflow.log_params({"C": c, "imbalance": imbalance})
            mlflow.log_metrics({f"validation_{k}": v for k, v in metrics.items()})
        return metrics[metric]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({"C": first_c})
    study.optimize(objective, n_trials=trials, show_progress_bar=True)
    logger.info(
        "best of %d trials: %s (validation %s %.4f)", trials, study.best_params, metric, study.best_value
    )
    return study.best_params["C"]
