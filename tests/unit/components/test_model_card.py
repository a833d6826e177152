"""Unit tests for components.model_card, rendered from runs logged to a real sqlite MLflow store."""

import time

import mlflow
import pytest

from components.model_card import render_model_card, single_text_latency_ms
from core.labels import LABELS

MATRIX = [[10, 2, 0], [1, 11, 3], [0, 1, 12]]


def per_class():
    return {
        f"test_{label}_{m}": v
        for i, label in enumerate(LABELS)
        for m, v in (
            ("precision", 0.8 + i / 100),
            ("recall", 0.7 + i / 100),
            ("f1", 0.75),
            ("support", 12 + i),
        )
    }


@pytest.fixture
def logged_run(tracking_uri):
    def log(params, metrics, tags=None):
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_experiment("sentiment")
        with mlflow.start_run() as run:
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
            mlflow.set_tags(tags or {})
        return mlflow.MlflowClient(tracking_uri).get_run(run.info.run_id)

    return log


LINEAR = {
    "model_family": "linear",
    "featurizer": "tfidf",
    "classifier": "logreg",
    "C": "2.0",
    "pipeline.ingest.sources": '["reddit"]',
    "train_rows": "72",
    "validation_rows": "36",
}
SCORES = {
    "validation_macro_recall": 0.81234,
    "test_macro_recall": 0.8,
    "test_macro_f1": 0.79,
    "test_accuracy": 0.8,
    "train_seconds": 12.4,
    "model_mb": 1.26,
    "latency_ms_per_text": 0.44,
    **per_class(),
}


def test_linear_card_has_name_model_data_and_metric_tables(logged_run):
    run = logged_run(LINEAR, SCORES, {"test_rows": "36"})
    lines = render_model_card(run, MATRIX).splitlines()
    assert lines[0] == "# Model card: linear-tfidf"
    assert f"MLflow run `{run.info.run_id}`." in lines
    assert {"- featurizer: `tfidf`", "- classifier: `logreg`", "- C: `2.0`"} <= set(lines)
    assert "- model_family: `linear`" not in lines  # not a described parameter
    assert "- training time: 12 s" in lines and "- model size: 1.3 MB" in lines
    assert "- rows: train 72, validation 36, test 36" in lines and "- sources: `reddit`" in lines
    assert "- labels: negative, neutral, positive" in lines
    assert "| validation | 0.8123 | n/a | n/a |" in lines
    assert "| test | 0.8000 | 0.7900 | 0.8000 |" in lines
    assert "| neutral | 0.8100 | 0.7100 | 0.7500 | 13 |" in lines
    assert "| positive | 0.8200 | 0.7200 | 0.7500 | 14 |" in lines
    matrix = lines.index("|  | negative | neutral | positive |")
    assert lines[matrix + 2 : matrix + 5] == [
        "| negative | 10 | 2 | 0 |",
        "| neutral | 1 | 11 | 3 |",
        "| positive | 0 | 1 | 12 |",
    ]
    assert "## Out of domain" not in lines
    assert any(line.startswith("- latency per single text: 0.4 ms (median") for line in lines)


def test_out_of_domain_table_only_with_the_tag(logged_run):
    ood = {
        f"ood_{d}_{m}": v
        for d in ("youtube", "twitter")
        for m, v in (("macro_recall", 0.6), ("macro_f1", 0.55), ("accuracy", 0.65), ("rows", 120))
    }
    lines = render_model_card(
        logged_run(LINEAR, {**SCORES, **ood}, {"ood_domains": "youtube,twitter"}), MATRIX
    )
    lines = lines.splitlines()
    table = lines.index("| domain | rows | macro recall | macro F1 | accuracy |")
    assert lines[table + 2 : table + 4] == [
        "| youtube | 120 | 0.6000 | 0.5500 | 0.6500 |",
        "| twitter | 120 | 0.6000 | 0.5500 | 0.6500 |",
    ]
    empty_tag = render_model_card(logged_run(LINEAR, {**SCORES, **ood}, {"ood_domains": ""}), MATRIX)
    assert "## Out of domain" not in empty_tag


def test_transformer_card_names_the_family_and_its_stop(logged_run):
    params = {"model_family": "transformer", "model_id": "tiny-bert", "epochs": "1", "featurizer": "x"}
    card = render_model_card(
        logged_run(params, {**SCORES, "train_steps": 120}, {"stopped_by": "max_minutes", "test_rows": "36"}),
        MATRIX,
    )
    assert card.startswith("# Model card: transformer\n")
    assert "- training time: 12 s (120 steps, stopped by max_minutes)" in card
    assert "- model_id: `tiny-bert`" in card and "- epochs: `1`" in card


def test_missing_family_and_measurements_render_unknown_and_nan(logged_run):
    card = render_model_card(logged_run({"featurizer": "tfidf"}, per_class()), MATRIX)
    assert card.startswith("# Model card: unknown\n")
    assert "- training time: nan s" in card and "- model size: nan MB" in card
    assert "- sources: unknown" in card and "- rows: train None, validation None, test None" in card
    assert "| test | n/a | n/a | n/a |" in card


def test_missing_per_class_metric_or_matrix_row_is_an_error(logged_run):
    run = logged_run(LINEAR, {k: v for k, v in SCORES.items() if k != "test_neutral_recall"})
    with pytest.raises(KeyError, match="test_neutral_recall"):
        render_model_card(run, MATRIX)
    with pytest.raises(ValueError):
        render_model_card(logged_run(LINEAR, SCORES), MATRIX[:2])


class SlowModel:
    def __init__(self):
        self.texts = []

    def predict(self, frame):
        self.texts.append(frame["text"].tolist())
        time.sleep(0.002)


def test_single_text_latency_is_the_median_of_single_text_calls():
    model = SlowModel()
    latency = single_text_latency_ms(model, ["a", "b", "c"], repeats=5)
    assert model.texts == [["a"], ["b"], ["c"], ["a"], ["b"], ["c"]]  # one warm-up, then 5 timed
    assert 2.0 <= latency < 200


def test_the_robustness_table_sets_validation_against_every_held_out_set(logged_run):
    scores = SCORES | {
        "validation_negative_recall": 0.9,
        **{f"ood_reddit_{m}": v for m, v in (("macro_recall", 0.7), ("macro_f1", 0.69), ("accuracy", 0.7))},
        "ood_reddit_rows": 200,
        "ood_reddit_neutral_recall": 0.5,
    }
    run = logged_run(LINEAR, scores, {"test_rows": "36", "ood_domains": "reddit"})
    lines = render_model_card(run, MATRIX).splitlines()
    table = lines.index("| set | macro recall | gap to validation | negative | neutral | positive |")
    assert lines[table + 2 : table + 6] == [
        "| validation | 0.8123 |  | 0.9000 | n/a | n/a |",
        "| test | 0.8000 | -0.0123 | 0.7000 | 0.7100 | 0.7200 |",
        "| ood_reddit | 0.7000 | -0.1123 | n/a | 0.5000 | n/a |",
        "| held-out mean | 0.7500 | -0.0623 |  |  |  |",
    ]


def test_several_sources_get_a_validation_and_a_test_row_each(logged_run):
    sources = {
        "pipeline.ingest.sources": '["data/tweets", "data/comments"]',
        "pipeline.preprocess.mix_exponent": "0.5",
    }
    per_source = {
        f"{split}_{source}_macro_recall": value
        for split, source, value in (
            ("validation", "tweets", 0.85),
            ("validation", "comments", 0.75),
            ("test", "tweets", 0.82),
            ("test", "comments", 0.7),
        )
    }
    run = logged_run(LINEAR | sources, SCORES | per_source, {"test_sets": "test_comments,test_tweets"})
    lines = render_model_card(run, MATRIX).splitlines()
    assert "- sources: `data/tweets`, `data/comments` (training rows mixed with exponent 0.5: " in "\n".join(
        lines
    )
    table = lines.index("| set | macro recall | gap to validation | negative | neutral | positive |")
    assert [line.split(" | ")[:3] for line in lines[table + 2 : table + 8]] == [
        ["| validation", "0.8123", ""],
        ["| validation_comments", "0.7500", ""],
        ["| validation_tweets", "0.8500", ""],
        ["| test_comments", "0.7000", "-0.1123"],
        ["| test_tweets", "0.8200", "+0.0077"],
        ["| held-out mean", "0.7600", "-0.0523"],
    ]


def test_the_label_checks_of_each_source_and_the_flagged_ones_are_shown(logged_run):
    tags = {
        "test_rows": "36",
        "label_checks.reddit": "0 empty texts with a label, ...; probably machine-labelled",
        "label_checks.tweets": "2 empty texts with a label, ...",
        "data.machine_labelled": "reddit",
    }
    lines = render_model_card(logged_run(LINEAR, SCORES, tags), MATRIX).splitlines()
    checks = lines.index("- label checks:")
    assert lines[checks - 1] == "- probably machine-labelled (a lexicon reproduces their labels): reddit"
    assert lines[checks + 1 : checks + 3] == [
        "  - `reddit`: 0 empty texts with a label, ...; probably machine-labelled",
        "  - `tweets`: 2 empty texts with a label, ...",
    ]
    assert "- label checks:" not in render_model_card(logged_run(LINEAR, SCORES, {"test_rows": "36"}), MATRIX)
