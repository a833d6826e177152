"""evaluate: score the logged model on the held-out sets (the test split, one set per source when it
holds several, and each out-of-domain set) and log metrics and plots to MLflow."""

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import mlflow
import pandas as pd
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from components import component
from components.model_card import MODEL_CARD_ARTIFACT, render_model_card, single_text_latency_ms
from components.scores import (
    classification_metrics,
    confusion_matrix_figure,
    label_confusion_matrix,
    per_source_metrics,
    source_sets,
)
from core.artifacts import EMBEDDING_REFERENCE_ARTIFACT, REFERENCE_ARTIFACT
from core.labels import probability_columns
from core.lineage import content_digest
from core.tracking import use_tracking
from monitoring.drift import build_reference

logger = logging.getLogger(__name__)

TEST_DIGEST_TAG = "test_set_digest"
OOD_DIGEST_TAG = "ood_set_digest"
OOD_DOMAINS_TAG = "ood_domains"
TEST_SETS_TAG = "test_sets"
PREDICTIONS_ARTIFACT = "evaluation/test_predictions.parquet"
OOD_PREDICTIONS_ARTIFACT = "evaluation/ood_predictions.parquet"


@dataclass(frozen=True)
class Candidate:
    """An evaluated candidate as the gate sees it: its run, its model and what it predicted for every row
    of every scored set (columns text, label, set (see :func:`test_sets`, or ``ood_<domain>``),
    predicted)."""

    run_id: str
    model_uri: str
    predictions: pd.DataFrame


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    confusion_matrix: list[list[int]]
    test_digest: str
    model_card: str
    per_source: dict[str, float]
    out_of_domain: dict[str, dict[str, float]]
    candidate: Candidate


def test_sets(test: pd.DataFrame) -> pd.Series:
    """Each test row's held-out set: ``test``, or ``test_<source>`` when the split holds several sources."""
    return source_sets("test", test)


def _score_out_of_domain(
    model, ood: pd.DataFrame, folder: Path
) -> tuple[dict[str, dict[str, float]], pd.DataFrame]:
    """Predict every out-of-domain text in one call, log per-domain metrics, tags and predictions; return
    the scores and the predictions."""
    predicted = ood.assign(predicted=model.predict(ood[["text"]])["label"].tolist())
    scores = {}
    for domain, rows in predicted.groupby("domain", sort=True):
        metrics = classification_metrics(rows["label"].tolist(), rows["predicted"].tolist())
        scores[domain] = {"rows": float(len(rows))} | metrics
        mlflow.log_metrics({f"ood_{domain}_{k}": v for k, v in scores[domain].items()})
    mlflow.set_tags({OOD_DIGEST_TAG: content_digest(ood), OOD_DOMAINS_TAG: ",".join(scores)})
    path = folder / Path(OOD_PREDICTIONS_ARTIFACT).name
    predicted.to_parquet(path, index=False)
    mlflow.log_artifact(str(path), "evaluation")
    return scores, predicted


def _score_int8_variant(
    model: mlflow.pyfunc.PyFuncModel, model_path: str, test: pd.DataFrame, truth: list[str]
) -> dict[str, float]:
    """Score the INT8 runtime of ``model`` (loaded from ``model_path``; see models/onnx_runtime.py and
    models/int8_encoder.py) on the test split: its ``test_int8_*`` metrics and single-text
    latency. Empty for models without a ``runtime`` setting."""
    if "runtime" not in (model.model_config or {}):
        return {}
    int8 = mlflow.pyfunc.load_model(model_path, model_config={"runtime": "int8"})
    metrics = classification_metrics(truth, int8.predict(test[["text"]])["label"].tolist())
    return {f"test_int8_{k}": v for k, v in metrics.items()} | {
        "int8_latency_ms_per_text": single_text_latency_ms(int8, test["text"].tolist())
    }


def evaluate_model(
    run_id: str,
    model_uri: str,
    test_path: str,
    tracking_uri: str,
    confusion_png: str | IO[bytes] | None = None,
    ood_path: str | None = None,
    embedding_reference_path: str | None = None,
) -> Evaluation:
    """Score ``model_uri`` on ``test_path`` and log ``test_*`` metrics (and ``test_<source>_*`` per source
    when it holds several; tag ``test_sets`` names the sets), the confusion matrix and the
    per-class report, the per-text predictions (for the gate's paired test), single-text latency, model
    size, the model card and the drift reference (monitoring/drift.py) to the training run ``run_id``;
    also write the matrix PNG to ``confusion_png``.
    With ``ood_path`` (see components/prepare_out_of_domain.py), also score each out-of-domain set
    (``ood_<domain>_*`` metrics and predictions). A model with an INT8 runtime also gets ``test_int8_*``.
    With ``embedding_reference_path`` (components/embedding_reference.py), log it for the monitor step.
    """
    use_tracking(tracking_uri)
    test = pd.read_parquet(test_path)
    local_model = mlflow.artifacts.download_artifacts(artifact_uri=model_uri)
    model = mlflow.pyfunc.load_model(local_model)
    output = model.predict(test[["text"]])
    predicted, truth = output["label"].tolist(), test["label"].tolist()
    reference = build_reference(
        test["text"].tolist(), predicted, output[probability_columns()].max(axis=1).tolist()
    )
    metrics, matrix = classification_metrics(truth, predicted), label_confusion_matrix(truth, predicted)
    digest = content_digest(test)
    figure = confusion_matrix_figure(matrix, f"test confusion matrix (n={len(test)})")
    ood = pd.read_parquet(ood_path) if ood_path else pd.DataFrame()
    int8_metrics = _score_int8_variant(model, local_model, test, truth)
    per_source = per_source_metrics("test", test, predicted)
    with mlflow.start_run(run_id=run_id), tempfile.TemporaryDirectory() as tmp:
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()} | per_source | int8_metrics)
        mlflow.log_metrics(
            {
                "latency_ms_per_text": single_text_latency_ms(model, test["text"].tolist()),
                "model_mb": sum(f.stat().st_size for f in Path(local_model).rglob("*") if f.is_file())
                / 2**20,
            }
        )
        sets = test_sets(test)
        mlflow.set_tags(
            {
                TEST_DIGEST_TAG: digest,
                "test_rows": str(len(test)),
                TEST_SETS_TAG: ",".join(sorted(sets.unique())),
            }
        )
        mlflow.log_figure(figure, "evaluation/confusion_matrix_test.png")
        report = Path(tmp) / "test_report.json"
        report.write_text(json.dumps({"metrics": metrics, "confusion_matrix": matrix}, indent=2))
        mlflow.log_artifact(str(report), "evaluation")
        test_predictions = test[["text", "label"]].assign(set=sets, predicted=predicted)
        path = Path(tmp) / Path(PREDICTIONS_ARTIFACT).name
        test_predictions.drop(columns="set").to_parquet(path, index=False)
        mlflow.log_artifact(str(path), "evaluation")
        out_of_domain, ood_predictions = (
            _score_out_of_domain(model, ood, Path(tmp)) if len(ood) else ({}, None)
        )
        card = render_model_card(mlflow.MlflowClient().get_run(run_id), matrix)
        mlflow.log_text(card, MODEL_CARD_ARTIFACT)
        mlflow.log_text(reference.to_json(), REFERENCE_ARTIFACT)
        if embedding_reference_path:
            saved = Path(tmp) / Path(EMBEDDING_REFERENCE_ARTIFACT).name
            shutil.copyfile(embedding_reference_path, saved)
            mlflow.log_artifact(str(saved), str(Path(EMBEDDING_REFERENCE_ARTIFACT).parent))
    if confusion_png is not None:
        figure.savefig(confusion_png, format="png")
    logger.info(
        "test macro recall %.4f, macro F1 %.4f, accuracy %.4f",
        metrics["macro_recall"],
        metrics["macro_f1"],
        metrics["accuracy"],
    )
    for domain, scores in out_of_domain.items():
        logger.info("out of domain, %s: macro recall %.4f", domain, scores["macro_recall"])
    scored = [test_predictions]
    if ood_predictions is not None:
        scored.append(ood_predictions.assign(set="ood_" + ood_predictions["domain"]).drop(columns="domain"))
    candidate = Candidate(run_id, model_uri, pd.concat(scored, ignore_index=True))
    return Evaluation(metrics, matrix, digest, card, per_source, out_of_domain, candidate)


@component
def evaluate(
    model: Input[Model],
    test: Input[Dataset],
    out_of_domain: Input[Dataset],
    embedding_reference: Input[Artifact],
    tracking_uri: str,
    predictions: Output[Dataset],
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    confusion_matrix: Output[HTML],
    model_card: Output[Markdown],
):
    """Score the logged model on the test split and the out-of-domain sets; metrics and the model card go
    to MLflow and to KFP, and every prediction to the gate (``predictions``)."""
    import base64
    import io

    from components.evaluate import evaluate_model
    from core.labels import LABELS

    png = io.BytesIO()
    run_id, model_uri = model.metadata["run_id"], model.metadata["model_uri"]
    result = evaluate_model(
        run_id, model_uri, test.path, tracking_uri, png, out_of_domain.path, embedding_reference.path
    )
    result.candidate.predictions.to_parquet(predictions.path, index=False)
    predictions.metadata.update(
        {"run_id": run_id, "model_uri": model_uri, "family": model.metadata["family"]}
    )
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    for name, value in result.per_source.items():
        metrics.log_metric(name, value)
    for domain, scores in result.out_of_domain.items():
        for name, value in scores.items():
            metrics.log_metric(f"ood_{domain}_{name}", value)
    classification.log_confusion_matrix(list(LABELS), result.confusion_matrix)
    image = base64.b64encode(png.getvalue()).decode("ascii")
    with open(confusion_matrix.path, "w") as page:
        page.write(f'<img alt="test confusion matrix" src="data:image/png;base64,{image}">')
    with open(model_card.path, "w") as card:
        card.write(result.model_card)
