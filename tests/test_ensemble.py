"""The soft-voting ensemble candidate, over small rule-based member models in a real MLflow store."""

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from components.ensemble import ensemble
from components.labels import probability_columns
from tests.helpers import sentiment_frame
from tests.test_gate import CONSTANT, PARTIAL, PERFECT


def log_member(model, tracking_uri: str) -> str:
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("sentiment")
    with mlflow.start_run():
        return mlflow.pyfunc.log_model(name="model", python_model=model, pip_requirements=[]).model_uri


@pytest.fixture
def validation_path(tmp_path: Path) -> str:
    path = tmp_path / "validation.parquet"
    sentiment_frame().to_parquet(path)
    return str(path)


def test_ensemble_averages_its_members_probabilities(tracking_uri, validation_path) -> None:
    members = [log_member(model, tracking_uri) for model in (PERFECT, PARTIAL, CONSTANT)]
    result = ensemble(members, validation_path, tracking_uri, "sentiment")
    texts = pd.DataFrame({"text": ["I hate my flight.", "I love the album!", "reading an article about it"]})

    answer = mlflow.pyfunc.load_model(result.model_uri).predict(texts)
    expected = np.mean(
        [mlflow.pyfunc.load_model(uri).predict(texts)[probability_columns()].to_numpy() for uri in members],
        axis=0,
    )
    np.testing.assert_allclose(answer[probability_columns()].to_numpy(), expected)
    # negative: 1 of 3 votes vs 2 of 3 for neutral; positive: 2 of 3 votes
    assert answer["label"].tolist() == ["neutral", "positive", "neutral"]
    run = mlflow.MlflowClient(tracking_uri).get_run(result.run_id)
    assert run.data.params["model_family"] == "ensemble" and run.data.params["members"] == ",".join(members)
    assert run.data.metrics["validation_macro_recall"] == pytest.approx(
        result.validation_metrics["macro_recall"]
    )
