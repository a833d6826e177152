"""train_transformer with tiny budgets on small real data (the bundled MiniLM weights, a real MLflow
store), and the gate choosing between the two families."""

from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from components.evaluate import evaluate
from components.gate import current_champion, gate
from components.train_linear import train_linear
from components.train_transformer import _weighted_loss, train_transformer
from core import hub
from core.labels import probability_columns
from models.bundle import VersionDetails
from serving.predictor import choose_runtime
from tests.helpers import metric_value, scrape_metrics, start_model_server, stop_process, write_splits

TINY = {"model_id": "all-MiniLM-L6-v2", "batch_size": 16, "learning_rate": 1e-4, "eval_steps": 8}


@pytest.fixture
def splits(tmp_path: Path) -> dict[str, str]:
    return write_splits(tmp_path, seed=2)


def test_fine_tuned_model_is_logged_with_its_curve_and_serves(splits, tracking_uri) -> None:
    result = train_transformer(
        splits["train"],
        splits["validation"],
        tracking_uri,
        "sentiment",
        max_steps=24,
        label_smoothing=0.1,
        **TINY,
    )
    assert result.validation_metrics["macro_recall"] > 0.8
    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(result.run_id)
    assert run.data.params["model_family"] == "transformer" and run.data.params["label_smoothing"] == "0.1"
    assert run.data.params["imbalance"] == "class_weight"
    assert (
        run.data.metrics["train_steps"] == 24 and run.data.tags["stopped_by"] == "schedule_or_early_stopping"
    )
    assert len(client.get_metric_history(result.run_id, "curve_validation_macro_recall")) == 3
    assert [a.path for a in client.list_artifacts(result.run_id, "training")] == ["training/curve.png"]

    model = mlflow.pyfunc.load_model(result.model_uri)
    texts = [
        "I love the album!",
        "I hate my flight.",
        "the hotel is scheduled for 5pm",
        "so happy with this book :)",
    ]
    answer = model.predict(pd.DataFrame({"text": texts}))
    assert answer["label"].tolist() == ["positive", "negative", "neutral", "positive"]
    assert answer[probability_columns()].sum(axis=1).round(5).eq(1).all()

    # The INT8 runtime: the ONNX export logged with the weights, run by ONNX Runtime.
    assert (
        Path(mlflow.artifacts.download_artifacts(result.model_uri)) / "artifacts/model/model-int8.onnx"
    ).exists()
    int8 = mlflow.pyfunc.load_model(result.model_uri, model_config={"runtime": "int8"})
    assert int8.unwrap_python_model().runtime == "int8"
    int8_answer = int8.predict(pd.DataFrame({"text": texts}))
    assert int8_answer["label"].tolist() == answer["label"].tolist()
    np.testing.assert_allclose(int8_answer[probability_columns()], answer[probability_columns()], atol=0.1)


def test_class_weighted_loss_weighs_classes_by_inverse_frequency() -> None:
    import torch

    labels = pd.Series(["negative"] * 1 + ["neutral"] * 3 + ["positive"] * 6)
    outputs = {"logits": torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]])}
    targets = torch.tensor([0, 2])  # negative (weight 10/3) and positive (weight 10/18)
    per_text = torch.nn.functional.cross_entropy(outputs["logits"], targets, reduction="none")
    weights = torch.tensor([10 / 3, 10 / 18])
    weighted = _weighted_loss(labels, "class_weight", 0.0)(outputs, targets)
    assert weighted.item() == pytest.approx(((weights * per_text).sum() / weights.sum()).item())
    assert _weighted_loss(labels, "none", 0.0)(outputs, targets).item() == pytest.approx(
        per_text.mean().item()
    )
    with pytest.raises(ValueError, match="imbalance"):
        _weighted_loss(labels, "oversample", 0.0)


def test_one_seed_trains_one_model(splits, tracking_uri) -> None:
    """The new classification head is seeded too: two runs with one seed give the same probabilities."""
    texts = pd.DataFrame({"text": ["I love it", "I hate it", "the shop opens at noon"]})

    def probabilities() -> np.ndarray:
        result = train_transformer(
            splits["train"], splits["validation"], tracking_uri, "sentiment", max_steps=2, **TINY
        )
        return mlflow.pyfunc.load_model(result.model_uri).predict(texts)[probability_columns()].to_numpy()

    np.testing.assert_array_equal(probabilities(), probabilities())


def test_wall_clock_budget_stops_training(splits, tracking_uri) -> None:
    result = train_transformer(
        splits["train"], splits["validation"], tracking_uri, "sentiment", epochs=50, max_minutes=0.001, **TINY
    )
    run = mlflow.MlflowClient(tracking_uri).get_run(result.run_id)
    assert run.data.tags["stopped_by"] == "time_budget"
    assert run.data.metrics["train_steps"] == 1  # the budget is checked after every step


def test_hub_default_falls_back_to_the_bundled_weights_offline(monkeypatch) -> None:
    """The hub's reachability is faked here (both answers), so the test means the same on any network."""
    monkeypatch.setattr(hub, "hub_unreachable", lambda: "no network")
    assert hub.resolve_model("distilbert-base-uncased", "all-MiniLM-L6-v2") == hub.bundled_minilm_path()
    monkeypatch.setattr(hub, "hub_unreachable", lambda: None)
    assert hub.resolve_model("distilbert-base-uncased", "all-MiniLM-L6-v2") == "distilbert-base-uncased"
    assert hub.resolve_model("sentence-transformers/all-MiniLM-L6-v2") == hub.bundled_minilm_path()


def candidate(trained, test_path: str, tracking_uri: str) -> tuple[str, str]:
    evaluate(trained.run_id, trained.model_uri, test_path, tracking_uri)
    return trained.run_id, trained.model_uri


def test_gate_keeps_the_linear_model_against_a_starved_transformer_and_takes_a_trained_one(
    splits, tracking_uri, tmp_path: Path
) -> None:
    few = tmp_path / "few.parquet"  # two texts per class: a weak TF-IDF linear champion
    pd.read_parquet(splits["train"]).groupby("label").head(2).to_parquet(few)
    linear = train_linear(str(few), splits["validation"], tracking_uri, "sentiment", featurizer="tfidf")
    first = gate([candidate(linear, splits["test"], tracking_uri)], splits["test"], tracking_uri, "sentiment")
    assert first.promoted

    starved = train_transformer(
        splits["train"], splits["validation"], tracking_uri, "sentiment", max_steps=1, **TINY
    )
    kept = gate([candidate(starved, splits["test"], tracking_uri)], splits["test"], tracking_uri, "sentiment")
    assert not kept.promoted and kept.candidate_score < kept.champion_score
    assert current_champion(mlflow.MlflowClient(tracking_uri), "sentiment").run_id == linear.run_id

    trained = train_transformer(
        splits["train"],
        splits["validation"],
        tracking_uri,
        "sentiment",
        max_steps=24,
        label_smoothing=0.1,
        **TINY,
    )
    taken = gate(  # any INT8 loss is accepted here, so that the predictor's INT8 path runs below
        [candidate(trained, splits["test"], tracking_uri)], splits["test"], tracking_uri, "sentiment",
        int8_max_loss=1.0,
    )  # fmt: skip
    assert taken.promoted and taken.interval[0] > 0
    client = mlflow.MlflowClient(tracking_uri)
    champion = current_champion(client, "sentiment")
    assert champion.run_id == trained.run_id and str(champion.version) == "2"
    metrics = client.get_run(trained.run_id).data.metrics
    assert taken.int8_loss == pytest.approx(metrics["test_macro_recall"] - metrics["test_int8_macro_recall"])
    assert taken.int8_accepted and champion.tags["int8_accepted"] == "true"
    assert client.get_model_version("sentiment", "1").tags["int8_accepted"] == "false"  # a linear model has none
    assert choose_runtime(VersionDetails.from_registry("sentiment", "1"), "int8") == "fp32"

    # The predictor serves whichever family is champion, with the same answers; here in INT8.
    process, url, _ = start_model_server(
        tracking_uri, tmp_path / "server.log", extra_args=("--runtime", "int8")
    )
    try:
        texts = ["I love the album!", "I hate my flight."]
        body = httpx.post(f"{url}/v1/models/sentiment:predict", json={"instances": texts}, timeout=60).json()
        served = scrape_metrics(url)
    finally:
        stop_process(process)
    expected = mlflow.pyfunc.load_model(trained.model_uri).predict(pd.DataFrame({"text": texts}))
    assert body["model_version"] == "2"
    assert [p["label"] for p in body["predictions"]] == expected["label"].tolist() == ["positive", "negative"]
    info = {"name": "sentiment", "version": "2", "flavour": "transformer", "runtime": "int8"}
    assert metric_value(served, "sentiment_model_info", **info) == 1
