"""Behavioural tests of a trained champion (Made-With-ML style tables): invariance (what the text
normalisation should make irrelevant does not change the label), directional (a negation removes
positivity) and minimum functionality (plain examples of each class).

The champion is trained by the real train_linear -> evaluate -> gate steps on a sample of TweetEval
(../shared/data; CI has it): sentence embeddings + logistic regression, the pipeline's first candidate.
"""

from dataclasses import replace

import mlflow
import pandas as pd
import pytest

from components.evaluate import evaluate_model
from components.gate import gate_candidates
from components.train_linear import train_linear_model
from core.tracking import ensure_experiment
from pipelines.params import PipelineParams
from tests.conftest import shared_dataset
from tests.registry import sqlite_store

PARAMS = PipelineParams.load()
# Enough for the cases' margins: with 1,200 training tweets the closest case still wins by 0.25 (with
# 2,000 and 600/600 held out, by 0.13), and the least negation lowers the positive probability by 0.34.
ROWS = {"train": 1200, "validation": 300, "test": 400}


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> mlflow.pyfunc.PyFuncModel:
    """The champion a gate promoted after training on TweetEval's train split (sampled), scored on a
    held-out part of its validation split."""
    source = shared_dataset("tweeteval_sentiment/hf_parquet")
    root = tmp_path_factory.mktemp("behaviour")
    uri = sqlite_store(root / "mlflow.db")
    ensure_experiment(uri, PARAMS.run.experiment, (root / "artifacts").as_uri())
    labels = ("negative", "neutral", "positive")
    paths = {}
    validation = pd.read_parquet(source / "validation.parquet").sample(frac=1.0, random_state=0)
    frames = {
        "train": pd.read_parquet(source / "train.parquet").sample(n=ROWS["train"], random_state=0),
        "validation": validation.iloc[: ROWS["validation"]],
        "test": validation.iloc[ROWS["validation"] : ROWS["validation"] + ROWS["test"]],
    }
    for name, frame in frames.items():
        paths[name] = str(root / f"{name}.parquet")
        frame.assign(label=frame["label"].map(dict(enumerate(labels)))).to_parquet(paths[name])
    config = replace(PARAMS.train_linear, trials=0)
    trained = train_linear_model(
        paths["train"], paths["validation"], "embeddings", config, PARAMS.run, uri, {}
    )
    evaluation = evaluate_model(trained.run_id, trained.model_uri, paths["test"], uri)
    decision = gate_candidates([evaluation.candidate], paths["test"], None, PARAMS.gate, PARAMS.run, uri)
    assert decision.promoted, decision.reason
    return mlflow.pyfunc.load_model(f"models:/{PARAMS.run.model_name}@champion")


def predict(model: mlflow.pyfunc.PyFuncModel, texts: list[str]) -> pd.DataFrame:
    return model.predict(pd.DataFrame({"text": texts}))


INVARIANCE = [  # (text, the same text with what should not matter changed)
    ("@jack I love this song so much", "@maria_88 I love this song so much"),
    ("Terrible service again today @delta", "Terrible service again today @united"),
    ("Great news, read it here https://t.co/abc123", "Great news, read it here http://example.org/news?id=7"),
    ("the   new phone   is out on friday", "the new phone is out on friday"),
    ("Fish &amp; chips tonight, can't wait!", "Fish & chips tonight, can't wait!"),
]

DIRECTIONAL = [  # (text, its negation: must be less positive)
    ("I love this phone", "I don't love this phone"),
    ("The movie was good", "The movie was not good"),
    ("This is a great idea", "This is not a great idea"),
    ("I am happy with the result", "I am not happy with the result"),
    ("She liked the concert", "She did not like the concert"),
]

MINIMUM_FUNCTIONALITY = [  # (text, label)
    ("I love this so much, best day ever!", "positive"),
    ("Thank you all, this is wonderful", "positive"),
    ("So excited to see you tomorrow, have a great day", "positive"),
    ("This is the worst service I have ever had", "negative"),
    ("I hate this, it is awful and disgusting", "negative"),
    ("Really sad and angry about the news today", "negative"),
    ("The meeting is scheduled for Tuesday at 3pm", "neutral"),
    ("The store opens at 9 tomorrow", "neutral"),
    ("The new album comes out on Friday", "neutral"),
]


@pytest.mark.parametrize(("text", "changed"), INVARIANCE)
def test_invariance_a_handle_url_spacing_or_entity_does_not_change_the_answer(
    champion, text, changed
) -> None:
    original, variant = predict(champion, [text, changed]).itertuples(index=False)
    assert variant.label == original.label
    assert variant.prob_positive == pytest.approx(original.prob_positive, abs=1e-6)


@pytest.mark.parametrize(("text", "negated"), DIRECTIONAL)
def test_directional_a_negation_lowers_the_positive_probability(champion, text, negated) -> None:
    original, negation = predict(champion, [text, negated]).itertuples(index=False)
    assert negation.prob_positive < original.prob_positive


@pytest.mark.parametrize(("text", "label"), MINIMUM_FUNCTIONALITY)
def test_minimum_functionality_plain_examples_get_their_class(champion, text, label) -> None:
    assert predict(champion, [text])["label"].item() == label
