"""The soft-voting ensemble candidate, over small rule-based member models in a real MLflow store."""

import zlib
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from components.ensemble import (
    EnsembleConfig,
    Member,
    cross_fitted_votes,
    ensemble_model,
    simplex_grid,
    tune_weights,
)
from components.scores import classification_metrics
from core.labels import LABELS, probability_columns
from models.output import probabilities_frame
from tests.helpers import run_config, sentiment_frame
from tests.unit.components.test_gate import CONSTANT, PARTIAL, PERFECT, KeywordModel


def log_member(model, tracking_uri: str, validation_path: str) -> Member:
    """Log ``model`` and hand it on as a training step does: with its predictions on the validation split."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("sentiment")
    with mlflow.start_run():
        uri = mlflow.pyfunc.log_model(name="model", python_model=model, pip_requirements=[]).model_uri
    validation = pd.read_parquet(validation_path)
    output = mlflow.pyfunc.load_model(uri).predict(validation[["text"]])
    predictions = pd.concat(
        [validation[["text", "label"]].reset_index(drop=True), output.rename(columns={"label": "predicted"})],
        axis=1,
    )
    return Member(uri, predictions)


def ensemble(members: list[Member], validation_path: str, tracking_uri: str, weighting: str):
    """The ensemble step (params.yaml's ``run`` section: its metric is macro_recall)."""
    return ensemble_model(members, validation_path, EnsembleConfig(weighting), run_config(), tracking_uri, {})


@pytest.fixture
def validation_path(tmp_path: Path) -> str:
    path = tmp_path / "validation.parquet"
    sentiment_frame().to_parquet(path)
    return str(path)


def test_ensemble_averages_its_members_probabilities(tracking_uri, validation_path) -> None:
    members = [log_member(model, tracking_uri, validation_path) for model in (PERFECT, PARTIAL, CONSTANT)]
    result = ensemble(members, validation_path, tracking_uri, weighting="equal")
    texts = pd.DataFrame({"text": ["I hate my flight.", "I love the album!", "reading an article about it"]})

    answer = mlflow.pyfunc.load_model(result.model_uri).predict(texts)
    expected = np.mean(
        [
            mlflow.pyfunc.load_model(m.model_uri).predict(texts)[probability_columns()].to_numpy()
            for m in members
        ],
        axis=0,
    )
    np.testing.assert_allclose(answer[probability_columns()].to_numpy(), expected)
    # negative: 1 of 3 votes vs 2 of 3 for neutral; positive: 2 of 3 votes
    assert answer["label"].tolist() == ["neutral", "positive", "neutral"]
    run = mlflow.MlflowClient(tracking_uri).get_run(result.run_id)
    assert run.data.params["model_family"] == "ensemble" and run.data.params["members"] == ",".join(
        m.model_uri for m in members
    )
    assert run.data.metrics["validation_macro_recall"] == pytest.approx(
        result.validation_metrics["macro_recall"]
    )


def test_tuned_weights_let_the_strong_member_outvote_two_weak_ones(tracking_uri, validation_path) -> None:
    members = [log_member(model, tracking_uri, validation_path) for model in (PERFECT, CONSTANT, CONSTANT)]
    equal = ensemble(members, validation_path, tracking_uri, weighting="equal")
    tuned = ensemble(members, validation_path, tracking_uri, weighting="tuned")
    assert equal.validation_metrics["macro_recall"] == pytest.approx(1 / 3)  # two neutral votes win
    assert tuned.validation_metrics["macro_recall"] == pytest.approx(1.0)
    # the most even weights that score best: the perfect member needs more than half of the vote
    assert mlflow.MlflowClient(tracking_uri).get_run(tuned.run_id).data.params["weights"] == "0.6,0.2,0.2"
    texts = pd.DataFrame({"text": ["I hate my flight.", "I love the album!", "reading an article about it"]})
    answer = mlflow.pyfunc.load_model(tuned.model_uri).predict(texts)
    assert answer["label"].tolist() == ["negative", "positive", "neutral"]
    np.testing.assert_allclose(answer[probability_columns()].sum(axis=1), 1.0)


class Hesitant(KeywordModel):
    """PERFECT's labels, held with 0.4 probability against 0.3 for each other class."""

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        one_hot = super().predict(context, model_input)[probability_columns()].to_numpy()
        return probabilities_frame(list(LABELS), 0.3 + 0.1 * one_hot)


def test_members_weighted_zero_are_left_out(tracking_uri, validation_path) -> None:
    contrary = KeywordModel(positive=("hate", "terrible", "angry", "awful"), negative=("love", "amazing"))
    members = [log_member(model, tracking_uri, validation_path) for model in (Hesitant(), contrary)]
    result = ensemble(members, validation_path, tracking_uri, weighting="tuned")
    params = mlflow.MlflowClient(tracking_uri).get_run(result.run_id).data.params
    assert (
        params["weights"] == "1" and params["members"] == members[0].model_uri
    )  # any share of the contrary flips
    assert result.validation_metrics["macro_recall"] == pytest.approx(1.0)


def test_simplex_grid_covers_every_weighting_that_sums_to_one() -> None:
    grid = simplex_grid(3, 0.1)
    assert len(grid) == 66 and all(sum(weights) == pytest.approx(1.0) for weights in grid)
    assert (0.6, 0.2, 0.2) in grid and (1.0, 0.0, 0.0) in grid


class Noise(mlflow.pyfunc.PythonModel):
    """Probabilities that follow no rule: drawn from a Dirichlet seeded by the text and ``seed``."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        draws = [
            np.random.default_rng([self.seed, zlib.crc32(text.encode())]).dirichlet(np.ones(3))
            for text in model_input["text"]
        ]
        return probabilities_frame(list(LABELS), np.array(draws))


def test_tuned_weights_are_scored_out_of_sample(tracking_uri, validation_path) -> None:
    """The validation score of tuned weights is cross-fitted (the in-sample one is logged beside it): on
    noise members, tuning on every row fits the noise, and the logged score is the lower, cross-fitted one."""
    members = [log_member(Noise(seed), tracking_uri, validation_path) for seed in range(3)]
    tuned = ensemble(members, validation_path, tracking_uri, weighting="tuned")
    run = mlflow.MlflowClient(tracking_uri).get_run(tuned.run_id)
    assert run.data.params["validation_scoring"] == "cross-fitted, 5 folds"
    truth = pd.read_parquet(validation_path)["label"].tolist()
    probabilities = [m.validation_predictions[probability_columns()].to_numpy() for m in members]
    votes, _ = cross_fitted_votes(probabilities, truth, "macro_recall", seed=run_config().seed)
    cross_fitted = classification_metrics(truth, [LABELS[i] for i in votes.argmax(axis=1)])["macro_recall"]
    assert run.data.metrics["validation_macro_recall"] == pytest.approx(cross_fitted)
    assert tuned.validation_metrics["macro_recall"] == pytest.approx(cross_fitted)
    assert cross_fitted < run.data.metrics["validation_in_sample_macro_recall"]


def test_cross_fitting_scores_each_row_with_weights_it_did_not_choose() -> None:
    """Noise members: tuned on all rows, the best grid point fits the noise; cross-fitted, the same search
    scores what it would on new rows, lower."""
    rng = np.random.default_rng(0)
    truth = [LABELS[i] for i in rng.integers(0, 3, 300)]
    probabilities = [rng.dirichlet(np.ones(3), 300) for _ in range(3)]
    weights = tune_weights(probabilities, truth, "macro_recall")
    in_sample = np.tensordot(weights, np.stack(probabilities), axes=1)
    votes, folds = cross_fitted_votes(probabilities, truth, "macro_recall", seed=0)

    def recall(votes: np.ndarray) -> float:
        return classification_metrics(truth, [LABELS[i] for i in votes.argmax(axis=1)])["macro_recall"]

    assert folds == 5 and votes.shape == (300, 3)
    assert recall(votes) < recall(in_sample)
