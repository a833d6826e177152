"""train_linear: features (sentence embeddings, computed once per split in batches, or TF-IDF word and
character n-grams) + logistic regression or a calibrated linear SVM, with a class-imbalance treatment
(components/imbalance.py) and its C optionally tuned by Optuna (components/tune_linear.py), logged to
MLflow as a self-contained pyfunc model (models/linear.py).
"""

import logging
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import mlflow
import pandas as pd
from kfp.dsl import Dataset, Input, Metrics, Model, Output
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from components import component
from components.candidate import TrainResult, candidate_run, finish_candidate
from components.imbalance import prior_scale
from components.tune_linear import fit_classifier, tune_classifier
from core.config import RunConfig
from models.linear import featurize, load_encoder, log_linear_model
from models.output import probabilities_frame

logger = logging.getLogger(__name__)

CLASSIFIERS = ("logreg", "linear_svc")
FEATURIZERS = ("embeddings", "tfidf")


@dataclass(frozen=True)
class LinearConfig:
    """params.yaml ``train_linear``: see the comments there."""

    encoder_id: str
    classifier: str
    trials: int
    c: float
    imbalance: str
    batch_size: int


def build_classifier(kind: str, c: float, class_weight: str | None, seed: int):
    """A probabilistic linear classifier: logistic regression, or a calibrated linear SVM."""
    if kind == "logreg":
        return LogisticRegression(C=c, class_weight=class_weight, max_iter=2000, random_state=seed)
    if kind == "linear_svc":
        svc = LinearSVC(C=c, class_weight=class_weight, random_state=seed)
        return CalibratedClassifierCV(svc, cv=3)
    raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {kind!r}")


def tfidf_features() -> FeatureUnion:
    """Word 1-2-grams and character 2-5-grams (within words), sublinear TF-IDF."""
    return FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)),
        ]
    )


def train_linear_model(
    train_path: str,
    validation_path: str,
    featurizer: str,
    config: LinearConfig,
    run: RunConfig,
    tracking_uri: str,
    lineage: dict,
) -> TrainResult:
    """Fit on ``train_path``, score on ``validation_path``, and log params, metrics and the model.

    ``featurizer`` is ``embeddings`` (the sentence encoder ``config.encoder_id``) or ``tfidf``; the
    classes are balanced by ``config.imbalance`` (components/imbalance.py, or ``oversample``). With
    ``config.trials`` > 0, Optuna tunes C on the validation ``run.metric`` (nested runs), starting from
    ``config.c``. Features are computed once,
    whatever the number of trials. ``lineage`` (the pipeline's parameters) is logged to the run.
    """
    if featurizer not in FEATURIZERS:
        raise ValueError(f"featurizer must be one of {FEATURIZERS}, got {featurizer!r}")
    if config.classifier not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {config.classifier!r}")
    build = partial(build_classifier, config.classifier, seed=run.seed)
    train, validation = pd.read_parquet(train_path), pd.read_parquet(validation_path)
    train_y, validation_y = train["label"].tolist(), validation["label"].tolist()
    params = {
        "model_family": "linear",
        "featurizer": featurizer,
        "encoder": config.encoder_id if featurizer == "embeddings" else "none",
        "classifier": config.classifier,
        "trials": config.trials,
        "train_rows": len(train),
        "validation_rows": len(validation),
    }
    run_name = f"linear-{featurizer}-{config.classifier}"
    with (
        candidate_run(tracking_uri, run.experiment, run_name, lineage, params, train) as run_id,
        tempfile.TemporaryDirectory() as tmp,
    ):
        started = time.perf_counter()
        logger.info(
            "featurising %d train and %d validation texts (%s)", len(train), len(validation), featurizer
        )
        encoder = load_encoder(config.encoder_id) if featurizer == "embeddings" else None
        train_x = featurize(encoder, train["text"].tolist(), config.batch_size, progress=True)
        validation_x = featurize(encoder, validation["text"].tolist(), config.batch_size, progress=True)
        vectorizer = None
        if encoder is None:
            vectorizer = tfidf_features().fit(train_x)
            train_x, validation_x = vectorizer.transform(train_x), vectorizer.transform(validation_x)
        featurize_seconds = time.perf_counter() - started
        c, scale = config.c, prior_scale(train_y, config.imbalance)
        if config.trials:
            data = (train_x, train_y, validation_x, validation_y)
            c = tune_classifier(build, config.trials, run.metric, run.seed, config.imbalance, scale, data, c)
        model = fit_classifier(build, c, config.imbalance, run.seed, train_x, train_y)
        output = probabilities_frame(list(model.classes_), model.predict_proba(validation_x), scale)
        if vectorizer is not None:
            model = Pipeline([("features", vectorizer), ("classifier", model)])
        mlflow.log_params({"C": c, "imbalance": config.imbalance})
        model_uri = log_linear_model(encoder, model, Path(tmp), config.batch_size, scale)
        timings = {"featurize_seconds": featurize_seconds, "train_seconds": time.perf_counter() - started}
        result = finish_candidate(run_id, model_uri, validation, output, timings)
    logger.info(
        "validation macro recall %.4f, macro F1 %.4f",
        result.validation_metrics["macro_recall"],
        result.validation_metrics["macro_f1"],
    )
    return result


@component
def train_linear(
    train: Input[Dataset],
    validation: Input[Dataset],
    featurizer: str,
    config: dict,
    run: dict,
    tracking_uri: str,
    lineage: str,
    model: Output[Model],
    validation_predictions: Output[Dataset],
    validation_metrics: Output[Metrics],
):
    """Embeddings or TF-IDF + a linear classifier (params.yaml ``train_linear``), logged to MLflow; the
    Model artifact points at it."""
    import json

    from components.candidate import record_candidate
    from components.train_linear import LinearConfig, train_linear_model
    from core.config import RunConfig, from_mapping

    result = train_linear_model(
        train.path,
        validation.path,
        featurizer,
        from_mapping(LinearConfig, config, "train_linear"),
        from_mapping(RunConfig, run, "run"),
        tracking_uri,
        json.loads(lineage),
    )
    record_candidate(result, f"linear-{featurizer}", model, validation_predictions, validation_metrics)
