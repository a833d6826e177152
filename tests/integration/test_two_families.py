"""The gate choosing between the two families (a TF-IDF linear model and a fine-tuned transformer, trained by
the real steps on small real data), then the real predictor serving the transformer champion in INT8."""

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from components.evaluate import Candidate, evaluate_model
from components.gate import gate_candidates
from components.train_linear import train_linear_model
from core import registry
from models.bundle import VersionDetails
from models.runtime_choice import choose_runtime, has_int8_runtime
from tests.helpers import (
    HTTP,
    TINY,
    gate_config,
    linear_config,
    metric_value,
    run_config,
    scrape_metrics,
    start_model_server,
    stop_process,
    train_transformer,
)


@pytest.fixture
def own_registry(trained_transformer):
    """The session's fine-tuning's registry (the transformer trained there, 24 steps, no model registered
    yet; the other tests that use it only read that run); (its URL, the training's result, the splits)."""
    registry, trained, splits = trained_transformer
    return registry.url, trained, splits


def candidate(trained, test_path: str, tracking_uri: str) -> Candidate:
    return evaluate_model(trained.run_id, trained.model_uri, test_path, tracking_uri).candidate


def gate(candidates: list[Candidate], test_path: str, tracking_uri: str, **rules):
    return gate_candidates(
        candidates, test_path, None, gate_config(**rules), run_config(seed=0), tracking_uri
    )


def test_gate_keeps_the_linear_model_against_a_starved_transformer_and_takes_a_trained_one(
    own_registry, tmp_path: Path
) -> None:
    tracking_uri, trained, splits = own_registry
    few = tmp_path / "few.parquet"  # two texts per class: a weak TF-IDF linear champion
    pd.read_parquet(splits["train"]).groupby("label").head(2).to_parquet(few)
    linear = train_linear_model(
        str(few), splits["validation"], "tfidf", linear_config(), run_config(), tracking_uri, {}
    )
    first = gate([candidate(linear, splits["test"], tracking_uri)], splits["test"], tracking_uri)
    assert first.promoted

    starved = train_transformer(splits["train"], splits["validation"], tracking_uri, max_steps=1, **TINY)
    kept = gate([candidate(starved, splits["test"], tracking_uri)], splits["test"], tracking_uri)
    assert not kept.promoted and kept.candidate_score < kept.champion_score
    assert registry.champion("sentiment", mlflow.MlflowClient(tracking_uri)).run_id == linear.run_id

    # the session's fine-tuning (conftest.py: 24 steps), already in this registry
    taken = gate(  # any INT8 loss is accepted here, so that the predictor's INT8 path runs below
        [candidate(trained, splits["test"], tracking_uri)], splits["test"], tracking_uri, int8_max_loss=1.0
    )
    assert taken.promoted and taken.interval[0] > 0
    client = mlflow.MlflowClient(tracking_uri)
    champion = registry.champion("sentiment", client)
    assert champion.run_id == trained.run_id and str(champion.version) == "2"
    metrics = client.get_run(trained.run_id).data.metrics
    assert taken.int8_loss == pytest.approx(metrics["test_macro_recall"] - metrics["test_int8_macro_recall"])
    assert taken.int8_accepted and champion.tags["int8_accepted"] == "true"
    assert (
        client.get_model_version("sentiment", "1").tags["int8_accepted"] == "false"
    )  # a TF-IDF model has none
    linear = VersionDetails.from_registry("sentiment", "1")
    assert choose_runtime(linear, "auto", has_int8_runtime("models:/sentiment/1")) == (
        "fp32",
        "the model has no INT8 runtime",
    )

    # The predictor serves whichever family is champion, with the same answers; by default (--runtime
    # auto) in INT8, which the gate accepted.
    process, url, _ = start_model_server(tracking_uri, tmp_path / "server.log")
    try:
        texts = ["I love the album!", "I hate my flight."]
        body = HTTP.post(f"{url}/v1/models/sentiment:predict", json={"instances": texts}, timeout=60).json()
        explained = HTTP.post(f"{url}/v1/models/sentiment:explain", json={"instances": texts}, timeout=60)
        served = scrape_metrics(url)
    finally:
        stop_process(process)
    expected = mlflow.pyfunc.load_model(trained.model_uri).predict(pd.DataFrame({"text": texts}))
    assert body["model_version"] == "2"
    assert [p["label"] for p in body["predictions"]] == expected["label"].tolist() == ["positive", "negative"]
    love, hate = ({w["word"]: w for w in e["words"]} for e in explained.json()["explanations"])
    assert love["love"]["attributions"]["positive"] > 0 and hate["hate"]["attributions"]["negative"] > 0
    info = {"name": "sentiment", "version": "2", "flavour": "transformer", "runtime": "int8"}
    assert metric_value(served, "sentiment_model_info", **info) == 1
