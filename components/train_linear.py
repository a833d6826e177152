"""train_linear: features (sentence embeddings, computed once per split in batches, or TF-IDF word and
character n-grams) + a linear SVM or logistic regression, its C and class-imbalance treatment optionally
tuned by Optuna, logged to MLflow as a self-contained pyfunc model.
"""

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import mlflow
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from core.scores import classification_metrics
from models.linear import featurize, load_encoder, log_sentiment_model
from core.tracking import use_tracking
from components.tune_linear import fit_classifier, tune_classifier

logger = logging.getLogger(__name__)

CLASSIFIERS = ("logreg", "linear_svc")
FEATURIZERS = ("embeddings", "tfidf")


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_uri: str
    validation_metrics: dict[str, float]


def build_classifier(kind: str, c: float, class_weight: str | None, seed: int = 0):
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


def train_linear(
    train_path: str,
    validation_path: str,
    tracking_uri: str,
    experiment: str,
    featurizer: str = "embeddings",
    encoder_id: str = "all-MiniLM-L6-v2",
    classifier: str = "logreg",
    c: float = 1.0,
    imbalance: str = "class_weight",
    trials: int = 0,
    metric: str = "macro_recall",
    batch_size: int = 64,
    seed: int = 42,
    run_params: str = "{}",
) -> TrainResult:
    """Fit on ``train_path``, score on ``validation_path``, and log params, metrics and the model.

    ``featurizer`` is ``embeddings`` (the sentence encoder ``encoder_id``) or ``tfidf``. With ``trials`` > 0,
    Optuna tunes C and the imbalance treatment on the validation ``metric`` (nested runs), starting from
    ``c`` and ``imbalance`` and replacing them with the best. Features are computed once, whatever the
    number of trials.
    ``run_params`` is the pipeline's whole parameter set (JSON), logged to the run for lineage.
    """
    if featurizer not in FEATURIZERS:
        raise ValueError(f"featurizer must be one of {FEATURIZERS}, got {featurizer!r}")
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {classifier!r}")
    build = partial(build_classifier, classifier, seed=seed)
    train, validation = pd.read_parquet(train_path), pd.read_parquet(validation_path)
    train_y, validation_y = train["label"].tolist(), validation["label"].tolist()
    use_tracking(tracking_uri, experiment)
    with (
        mlflow.start_run(run_name=f"linear-{featurizer}-{classifier}") as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        mlflow.log_params({f"pipeline.{k}": v for k, v in json.loads(run_params).items()})
        mlflow.log_params(
            {
                "model_family": "linear",
                "featurizer": featurizer,
                "encoder": encoder_id if featurizer == "embeddings" else "none",
                "classifier": classifier,
                "trials": trials,
                "train_rows": len(train),
                "validation_rows": len(validation),
            }
        )
        started = time.perf_counter()
        logger.info(
            "featurising %d train and %d validation texts (%s)", len(train), len(validation), featurizer
        )
        encoder = load_encoder(encoder_id) if featurizer == "embeddings" else None
        train_x = featurize(encoder, train["text"].tolist(), batch_size, progress=True)
        validation_x = featurize(encoder, validation["text"].tolist(), batch_size, progress=True)
        vectorizer = None
        if encoder is None:
            vectorizer = tfidf_features().fit(train_x)
            train_x, validation_x = vectorizer.transform(train_x), vectorizer.transform(validation_x)
        featurize_seconds = time.perf_counter() - started
        if trials:
            best = tune_classifier(
                build, trials, metric, seed, train_x, train_y, validation_x, validation_y,
                first={"C": c, "imbalance": imbalance},
            )  # fmt: skip
            c, imbalance = best["C"], best["imbalance"]
        mlflow.log_params({"C": c, "imbalance": imbalance})
        model = fit_classifier(build, c, imbalance, seed, train_x, train_y)
        metrics = classification_metrics(validation_y, model.predict(validation_x).tolist())
        if vectorizer is not None:
            model = Pipeline([("features", vectorizer), ("classifier", model)])
        mlflow.log_metrics(
            {
                "featurize_seconds": featurize_seconds,
                "train_seconds": time.perf_counter() - started,
                **{f"validation_{k}": v for k, v in metrics.items()},
            }
        )
        model_uri = log_sentiment_model(encoder, model, Path(tmp), batch_size)
        mlflow.set_tag("model_uri", model_uri)
    logger.info("validation macro recall %.4f, macro F1 %.4f", metrics["macro_recall"], metrics["macro_f1"])
    return TrainResult(run.info.run_id, model_uri, metrics)
