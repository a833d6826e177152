"""train_transformer with tiny budgets on small real data (the bundled MiniLM weights, a real MLflow
store)."""

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from components.train_transformer import _weighted_loss, fine_tune
from core.labels import probability_columns
from tests.helpers import TINY, run_config, train_transformer, transformer_config, write_splits


@pytest.fixture
def splits(tmp_path: Path) -> dict[str, str]:
    return write_splits(tmp_path, seed=2)


def test_fine_tuned_model_is_logged_with_its_curve_and_serves(trained_transformer) -> None:
    """The session's fine-tuning (conftest.py: 24 steps, label smoothing 0.1), read back from its registry
    (read only: no copy needed)."""
    registry, result, _ = trained_transformer
    mlflow.set_tracking_uri(registry.url)
    assert result.validation_metrics["macro_recall"] > 0.8
    client = mlflow.MlflowClient(registry.url)
    run = client.get_run(result.run_id)
    params = run.data.params
    assert params["model_family"] == "transformer" and params["label_smoothing"] == "0.1"
    assert params["imbalance"] == "class_weight"
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
    columns = probability_columns()
    np.testing.assert_allclose(int8_answer[columns], answer[columns], atol=0.1)


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
    softened = torch.sqrt(weights)
    assert _weighted_loss(labels, "softened", 0.0)(outputs, targets).item() == pytest.approx(
        ((softened * per_text).sum() / softened.sum()).item()
    )
    with pytest.raises(ValueError, match="imbalance"):
        _weighted_loss(labels, "oversample", 0.0)


def test_one_seed_trains_one_model(trained_transformer, tmp_path: Path) -> None:
    """The new classification head is seeded too: the session's fine-tuning (conftest.py), run again with
    the same seed and settings, gives the same validation probabilities."""
    _, result, splits = trained_transformer
    train, validation = pd.read_parquet(splits["train"]), pd.read_parquet(splits["validation"])
    config = transformer_config(max_steps=24, label_smoothing=0.1, **TINY)
    again = fine_tune(train, validation, config, run_config().seed, tmp_path / "model", None)
    first = result.validation_predictions[probability_columns()].to_numpy()
    assert again.validation_probabilities.shape == first.shape == (len(validation), 3)
    # an unseeded head moves them by a hundredth or more
    np.testing.assert_allclose(again.validation_probabilities, first, rtol=0, atol=1e-6)


def test_wall_clock_budget_stops_training(splits, tmp_path: Path) -> None:
    """The budget is checked after every step: one step, however many epochs were asked for."""
    train, validation = pd.read_parquet(splits["train"]), pd.read_parquet(splits["validation"])
    config = transformer_config(epochs=50, max_minutes=0.001, **TINY)
    tuned = fine_tune(train, validation, config, 42, tmp_path / "model", None)
    assert tuned.stopped_by == "time_budget" and tuned.steps == 1


def test_several_seeds_give_an_equal_weight_seed_ensemble(splits, tracking_uri) -> None:
    """seeds: 2 fine-tunes with seeds run.seed and run.seed + 1 and logs their soft vote: its validation
    answers are the served model's, each member has its own curve, and the INT8 runtime reaches both."""
    result = train_transformer(
        splits["train"],
        splits["validation"],
        tracking_uri,
        max_steps=8,
        seeds=2,
        imbalance="prior_correction",
        **TINY,
    )
    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(result.run_id)
    seed = run_config().seed
    assert run.data.params["seed_members"] == f"{seed},{seed + 1}" and run.data.metrics["train_steps"] == 16
    curves = {a.path for a in client.list_artifacts(result.run_id, "training")}
    assert curves == {f"training/curve_seed_{s}.png" for s in (seed, seed + 1)}
    model = mlflow.pyfunc.load_model(result.model_uri)
    members = model.unwrap_python_model().members
    assert len(members) == 2 and all(m.model_config["prior_scale"] for m in members)
    validation = pd.read_parquet(splits["validation"])
    first, second = (m.predict(validation[["text"]])[probability_columns()].to_numpy() for m in members)
    assert np.abs(second - first).max() > 1e-3  # the seed reaches the training: two different models
    served = model.predict(validation[["text"]])
    np.testing.assert_allclose(
        served[probability_columns()], result.validation_predictions[probability_columns()], atol=1e-5
    )
    assert served["label"].tolist() == result.validation_predictions["predicted"].tolist()
    int8 = mlflow.pyfunc.load_model(result.model_uri, model_config={"runtime": "int8"})
    assert {m.unwrap_python_model().runtime for m in int8.unwrap_python_model().members} == {"int8"}
