"""train_linear and evaluate on small real data, with the real encoder and a real MLflow store."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from components.evaluate import TEST_DIGEST_TAG, evaluate_model
from components.train_linear import build_classifier, train_linear_model
from components.tune_linear import oversample
from core.labels import LABELS, probability_columns
from core.lineage import content_digest
from tests.helpers import PARAMS, linear_config, run_config, write_splits


@pytest.fixture
def splits(tmp_path: Path) -> dict[str, str]:
    return write_splits(tmp_path, seed=5)


@pytest.mark.parametrize(("featurizer", "classifier"), [("embeddings", "logreg"), ("tfidf", "linear_svc")])
def test_train_linear_logs_a_model_that_serves_and_evaluates(
    featurizer: str, classifier: str, splits, tracking_uri, tmp_path: Path
) -> None:
    lineage = json.loads(PARAMS.override("run", seed=5).lineage())
    config = linear_config(classifier=classifier)
    result = train_linear_model(
        splits["train"], splits["validation"], featurizer, config, run_config(), tracking_uri, lineage
    )
    assert result.validation_metrics["macro_recall"] > 0.8

    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(result.run_id)
    assert (run.data.params["featurizer"], run.data.params["classifier"]) == (featurizer, classifier)
    assert run.data.params["pipeline.run.seed"] == "5"
    assert run.data.params["train_rows"] == "72"
    assert run.data.metrics["validation_macro_recall"] == pytest.approx(
        result.validation_metrics["macro_recall"]
    )

    model = mlflow.pyfunc.load_model(result.model_uri)
    texts = ["I love the album!", "I hate my flight.", "the hotel is scheduled for 5pm"]
    answer = model.predict(pd.DataFrame({"text": texts}))
    assert answer["label"].tolist() == ["positive", "negative", "neutral"]
    assert answer[probability_columns()].sum(axis=1).round(6).eq(1).all()
    has_int8 = featurizer == "embeddings"  # the encoder's INT8 runtime (models/int8_encoder.py)
    assert ("runtime" in (model.model_config or {})) is has_int8
    if has_int8:
        int8 = mlflow.pyfunc.load_model(result.model_uri, model_config={"runtime": "int8"})
        assert type(int8.unwrap_python_model().encoder).__name__ == "Int8Encoder"
        int8_answer = int8.predict(pd.DataFrame({"text": texts}))
        assert int8_answer["label"].tolist() == answer["label"].tolist()
        np.testing.assert_allclose(
            int8_answer[probability_columns()], answer[probability_columns()], atol=0.1
        )

    png = tmp_path / "cm.png"
    evaluation = evaluate_model(result.run_id, result.model_uri, splits["test"], tracking_uri, str(png))
    test = pd.read_parquet(splits["test"])
    assert sum(map(sum, evaluation.confusion_matrix)) == len(test) == 36
    assert evaluation.metrics["macro_recall"] > 0.8
    assert png.read_bytes().startswith(b"\x89PNG")
    run = client.get_run(result.run_id)
    assert run.data.tags[TEST_DIGEST_TAG] == content_digest(test)
    assert {f"test_{label}_f1" for label in LABELS} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "evaluation")}
    assert artifacts == {
        "evaluation/confusion_matrix_test.png",
        "evaluation/test_report.json",
        "evaluation/test_predictions.parquet",
    }
    assert run.data.metrics["latency_ms_per_text"] > 0 and run.data.metrics["model_mb"] > 0
    assert ("test_int8_macro_recall" in run.data.metrics) is has_int8  # for the gate to rule on
    card = mlflow.artifacts.load_text(f"runs:/{result.run_id}/model_card.md")
    assert card == evaluation.model_card
    assert f"# Model card: linear-{featurizer}" in card and f"- classifier: `{classifier}`" in card
    assert "- rows: train 72, validation 36, test 36" in card
    matrix_rows = [line for line in card.splitlines() if line.startswith(tuple(f"| {x} |" for x in LABELS))]
    assert len(matrix_rows) == 6  # per-class metrics and confusion matrix, one row per class each


def test_unknown_classifier_or_featurizer_is_rejected(splits, tracking_uri) -> None:
    with pytest.raises(ValueError, match="classifier must be one of"):
        build_classifier("random_forest", 1.0, None, 0)
    with pytest.raises(ValueError, match="featurizer must be one of"):
        train_linear_model(
            splits["train"],
            splits["validation"],
            "bag_of_words",
            linear_config(),
            run_config(),
            tracking_uri,
            {},
        )


def test_optuna_search_tunes_c_alone_in_nested_trials_with_the_configured_treatment(
    splits, tracking_uri
) -> None:
    config = linear_config(trials=3, c=0.3, imbalance="oversample")
    result = train_linear_model(
        splits["train"], splits["validation"], "tfidf", config, run_config(), tracking_uri, {}
    )
    client = mlflow.MlflowClient(tracking_uri)
    parent = client.get_run(result.run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert sorted(run.info.run_name for run in children) == ["trial-0", "trial-1", "trial-2"]
    first = next(run for run in children if run.info.run_name == "trial-0")
    assert first.data.params == {"C": "0.3", "imbalance": "oversample"}  # the search starts from the config
    assert {run.data.params["imbalance"] for run in children} == {
        "oversample"
    }  # the treatment is not searched
    best = max(children, key=lambda run: run.data.metrics["validation_macro_recall"])
    assert parent.data.params["imbalance"] == "oversample"
    assert best.data.metrics["validation_macro_recall"] == pytest.approx(
        parent.data.metrics["validation_macro_recall"]
    )


def test_a_prior_corrected_model_carries_its_correction_and_answers_with_it(splits, tracking_uri) -> None:
    """prior_correction trains unweighted and divides the answers by the training prior: the served model
    gives the probabilities the uncorrected one gives, times the inverse shares, renormalised."""
    train = pd.read_parquet(splits["train"])
    skewed = pd.concat([train] + [train[train["label"] == "positive"]] * 2, ignore_index=True)
    skewed.to_parquet(splits["train"])  # positive: 3/5 of the rows
    runs = {
        imbalance: train_linear_model(
            splits["train"],
            splits["validation"],
            "tfidf",
            linear_config(trials=0, imbalance=imbalance),
            run_config(),
            tracking_uri,
            {},
        )
        for imbalance in ("none", "prior_correction")
    }
    texts = pd.DataFrame({"text": pd.read_parquet(splits["test"])["text"]})
    plain, corrected = (mlflow.pyfunc.load_model(r.model_uri) for r in runs.values())
    assert corrected.model_config["prior_scale"] == pytest.approx([5.0, 5.0, 5 / 3])
    scaled = plain.predict(texts)[probability_columns()].to_numpy() * np.array([3.0, 3.0, 1.0])
    np.testing.assert_allclose(
        corrected.predict(texts)[probability_columns()], scaled / scaled.sum(axis=1, keepdims=True), rtol=1e-6
    )


def test_oversampling_balances_classes() -> None:
    x = np.arange(6).reshape(6, 1)
    balanced_x, balanced_y = oversample(x, ["a", "a", "a", "a", "b", "c"], seed=0)
    assert sorted(balanced_y) == ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    assert set(balanced_x[np.array(balanced_y) == "b"].ravel()) == {4}
