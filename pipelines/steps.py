"""Thin KFP components: each turns artifact paths into arguments, calls the plain function of the same
name in ``components/`` and records outputs. No logic lives here.

Every step runs in the training image (``TRAIN_IMAGE``), which carries this package and kfp, so nothing
is pip-installed at run time; kfp.local's SubprocessRunner runs the same code in this environment.
"""

import os

from kfp import dsl
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

TRAIN_IMAGE = os.environ.get("TRAIN_IMAGE", "sentiment-mlops-train:latest")
component = dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)


@component
def ingest(source: str, seed: int, dataset: Output[Dataset], max_rows_per_split: int = 0):
    """Read a local path, s3:// URI or Hugging Face id into a text/label/split parquet.

    Args:
        source: Where the data is (path, s3://bucket/key, or owner/name[:config] on the HF hub).
        seed: Seed of the optional per-split sample.
        dataset: The normalised data set.
        max_rows_per_split: Keep at most this many rows per split; 0 keeps every row.
    """
    from components.ingest import ingest as ingest_data

    counts = ingest_data(source, dataset.path, max_rows_per_split or None, seed)
    dataset.metadata.update({"source": source, "rows": counts})


@component
def validate(
    raw: Input[Dataset],
    max_bad_fraction: float,
    max_text_chars: int,
    clean: Output[Dataset],
    quarantine: Output[Dataset],
    report: Output[Metrics],
):
    """Quarantine bad rows with their reasons; fail when too many are bad or a class is missing."""
    from components.validate import validate as validate_data

    result = validate_data(raw.path, clean.path, quarantine.path, max_bad_fraction, max_text_chars)
    report.log_metric("rows_in", result.rows_in)
    report.log_metric("rows_clean", result.rows_clean)
    for reason, count in result.quarantined.items():
        report.log_metric(f"quarantined_{reason}", count)


@component
def preprocess(
    clean: Input[Dataset],
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    train: Output[Dataset],
    validation: Output[Dataset],
    test: Output[Dataset],
    split_sizes: Output[Metrics],
):
    """Normalise texts and split into train/validation/test (keeping the source's own splits)."""
    from components.preprocess import preprocess as preprocess_data

    sizes = preprocess_data(
        clean.path, train.path, validation.path, test.path, validation_fraction, test_fraction, seed
    )
    for name, size in sizes.items():
        split_sizes.log_metric(f"{name}_rows", size)


@component
def train_svm(
    train: Input[Dataset],
    validation: Input[Dataset],
    tracking_uri: str,
    experiment: str,
    encoder_id: str,
    classifier: str,
    c: float,
    class_weight: str,
    batch_size: int,
    seed: int,
    run_params: str,
    model: Output[Model],
    validation_metrics: Output[Metrics],
):
    """Sentence embeddings + linear classifier, logged to MLflow; the Model artifact points at it."""
    from components.train_svm import train_svm as train_svm_model

    result = train_svm_model(
        train.path,
        validation.path,
        tracking_uri,
        experiment,
        encoder_id,
        classifier,
        c,
        None if class_weight == "none" else class_weight,
        batch_size,
        seed,
        run_params,
    )
    model.metadata.update({"run_id": result.run_id, "model_uri": result.model_uri, "family": "svm"})
    with open(model.path, "w") as pointer:
        pointer.write(result.model_uri)
    for name in ("macro_recall", "macro_f1", "accuracy"):
        validation_metrics.log_metric(name, result.validation_metrics[name])


@component
def evaluate(
    model: Input[Model],
    test: Input[Dataset],
    tracking_uri: str,
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    confusion_matrix: Output[HTML],
):
    """Score the logged model on the test split; metrics go to MLflow and to KFP."""
    import base64
    import io

    from components.evaluate import evaluate as evaluate_model
    from components.labels import LABELS

    png = io.BytesIO()
    result = evaluate_model(
        model.metadata["run_id"], model.metadata["model_uri"], test.path, tracking_uri, png
    )
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    classification.log_confusion_matrix(list(LABELS), result.confusion_matrix)
    image = base64.b64encode(png.getvalue()).decode("ascii")
    with open(confusion_matrix.path, "w") as page:
        page.write(f'<img alt="test confusion matrix" src="data:image/png;base64,{image}">')


@component
def gate(
    model: Input[Model],
    test: Input[Dataset],
    tracking_uri: str,
    model_name: str,
    metric: str,
    min_improvement: float,
    min_score: float,
) -> str:
    """Promote the candidate to the registry's ``champion`` alias only if it beats the champion.

    Returns the decision (with the candidate's run id) as JSON.
    """
    import json
    from dataclasses import asdict

    from components.gate import gate as gate_model

    result = gate_model(
        model.metadata["run_id"],
        model.metadata["model_uri"],
        test.path,
        tracking_uri,
        model_name,
        metric,
        min_improvement,
        min_score,
    )
    return json.dumps({**asdict(result), "run_id": model.metadata["run_id"]})
