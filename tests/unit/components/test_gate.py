"""The gate's cases on a real MLflow registry, with small rule-based candidate models."""

import json
import time
from dataclasses import fields
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from components.evaluate import Candidate, evaluate_model
from components.gate import (
    GateError,
    decide,
    gate_candidates,
    latest_traffic_mix,
    scored_sets,
    target_source,
)
from core.artifacts import TRAFFIC_MIX_TAG
from core.labels import LABELS
from core.lineage import SOURCES_ATTR
from core.registry import champion
from core.tracking import ensure_experiment
from models.output import probabilities_frame, texts_of
from tests.helpers import PARAMS, gate_config, run_config, sentiment_frame
from tests.registry import sqlite_store

GATE_RUN = run_config(seed=0)  # the bootstrap's seed


class KeywordModel(mlflow.pyfunc.PythonModel):
    """Labels texts by keyword; knowing fewer keywords makes a worse model."""

    def __init__(
        self, positive=("love", "amazing", "happy", "great"), negative=("hate", "terrible", "angry", "awful")
    ):
        self.words = {"positive": positive, "negative": negative}

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        def label(text: str) -> str:
            hits = [name for name, words in self.words.items() if any(w in text for w in words)]
            return hits[0] if hits else "neutral"

        labels = [label(t) for t in texts_of(model_input)]
        one_hot = np.array([[float(name == lab) for name in LABELS] for lab in labels])
        return probabilities_frame(list(LABELS), one_hot)


PERFECT = KeywordModel()  # macro recall 1.0 on the fixture
PARTIAL = KeywordModel(negative=())  # never says negative: macro recall 2/3
CONSTANT = KeywordModel(positive=(), negative=())  # always neutral: macro recall 1/3
# Knows the review words of the out-of-domain fixture, but not the test split's negative words.
BROAD = KeywordModel(positive=("love", "amazing", "happy", "great", "superb"), negative=("dreadful",))


@pytest.fixture
def test_path(tmp_path: Path) -> str:
    path = tmp_path / "test.parquet"
    sentiment_frame().to_parquet(path)
    return str(path)


def reviews_frame() -> pd.DataFrame:
    """18 "reviews" whose words only BROAD knows (PERFECT scores 1/3 there)."""
    topics = ["the play", "the show", "the film", "the opera", "the novel", "the series"]
    rows = [
        row
        for topic in topics
        for row in (
            (f"a superb {topic}", "positive"),
            (f"a dreadful {topic}", "negative"),
            (f"{topic} opens on monday", "neutral"),
        )
    ]
    return pd.DataFrame(rows, columns=["text", "label"])


@pytest.fixture
def ood_path(tmp_path: Path) -> str:
    """The reviews as an out-of-domain set."""
    path = tmp_path / "ood.parquet"
    reviews_frame().assign(domain="reviews").to_parquet(path)
    return str(path)


def candidate(
    model: mlflow.pyfunc.PythonModel, tracking_uri: str, test_path: str | None, ood_path: str | None = None
) -> Candidate:
    """Log ``model`` in a run and (unless ``test_path`` is None: then it has no predictions) evaluate it
    like the pipeline does."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("sentiment")
    with mlflow.start_run() as run:
        uri = mlflow.pyfunc.log_model(name="model", python_model=model, pip_requirements=[]).model_uri
    if test_path:
        return evaluate_model(run.info.run_id, uri, test_path, tracking_uri, ood_path=ood_path).candidate
    return Candidate(run.info.run_id, uri, pd.DataFrame())


def gate(
    candidates: list[Candidate], test_path: str, tracking_uri: str, ood_path: str | None = None, **rules
):
    """The gate on ``candidates`` with :func:`tests.helpers.gate_config` and ``rules``."""
    return gate_candidates(candidates, test_path, ood_path, gate_config(**rules), GATE_RUN, tracking_uri)


def local_store(tmp_path: Path, name: str) -> str:
    """A sqlite MLflow store in ``tmp_path`` whose experiment keeps its artifacts there too (a store
    without an artifact location would write them to ./mlruns, in the checkout)."""
    uri = sqlite_store(tmp_path / f"{name}.db")
    ensure_experiment(uri, "sentiment", (tmp_path / f"{name}-artifacts").as_uri())
    return uri


def champion_version(tracking_uri: str) -> str | None:
    version = champion("sentiment", mlflow.MlflowClient(tracking_uri))
    return str(version.version) if version else None


def promote(model, tracking_uri: str, test_path: str, **rules):
    return gate([candidate(model, tracking_uri, test_path)], test_path, tracking_uri, **rules)


@pytest.mark.parametrize(
    ("candidate_score", "champion_score", "interval", "margin", "promoted"),
    [
        (0.60, None, None, 0.0, True),  # first model over the floor
        (0.40, None, None, 0.0, False),  # first model under the floor
        (0.70, 0.60, (0.05, 0.15), 0.05, True),  # beats by more than the margin, significantly
        (0.70, 0.60, (-0.01, 0.2), 0.05, False),  # beats by the margin, but the interval includes 0
        (0.62, 0.60, (0.01, 0.03), 0.05, False),  # beats significantly, but by less than the margin
        (0.60, 0.60, (0.0, 0.0), 0.0, False),  # a tie never promotes
        (0.55, 0.60, (-0.1, 0.0), 0.0, False),  # worse
        (0.45, 0.30, (0.1, 0.2), 0.0, False),  # better than the champion but under the floor
    ],
)
def test_decision_rule(candidate_score, champion_score, interval, margin, promoted) -> None:
    assert decide(candidate_score, champion_score, interval, margin, min_score=0.5)[0] is promoted


def test_first_model_over_the_floor_becomes_champion(tracking_uri, test_path) -> None:
    decision = promote(PERFECT, tracking_uri, test_path, min_score=0.5)
    assert decision.promoted and decision.registered_version == "1"
    assert champion_version(tracking_uri) == "1"
    tags = mlflow.MlflowClient(tracking_uri).get_model_version("sentiment", "1").tags
    assert tags["gate"] == "promoted" and float(tags["score_macro_recall"]) == pytest.approx(1.0)
    description = mlflow.MlflowClient(tracking_uri).get_model_version("sentiment", "1").description
    assert description.startswith("# Model card:") and "| test | 1.0000 | 1.0000 | 1.0000 |" in description


def test_first_model_under_the_floor_is_not_registered(tracking_uri, test_path) -> None:
    decision = promote(CONSTANT, tracking_uri, test_path, min_score=0.5)
    assert not decision.promoted and "below the floor" in decision.reason
    assert mlflow.MlflowClient(tracking_uri).search_registered_models() == []


def test_better_model_takes_over_and_worse_or_equal_ones_do_not(tracking_uri, test_path) -> None:
    assert promote(PARTIAL, tracking_uri, test_path, min_score=0.5).promoted
    better = promote(PERFECT, tracking_uri, test_path, min_score=0.5, min_improvement=0.1)
    assert better.promoted and better.champion_score == pytest.approx(2 / 3)
    assert champion_version(tracking_uri) == "2"

    worse = promote(PARTIAL, tracking_uri, test_path, min_score=0.5)
    tie = promote(KeywordModel(), tracking_uri, test_path, min_score=0.5)
    assert not worse.promoted and "does not beat" in worse.reason
    assert not tie.promoted and tie.champion_score == tie.candidate_score == pytest.approx(1.0)
    assert champion_version(tracking_uri) == "2"
    run = mlflow.MlflowClient(tracking_uri).get_run(mlflow.last_active_run().info.run_id)
    assert run.data.tags["gate.decision"] == "rejected"


def test_margin_blocks_a_small_gain(tracking_uri, test_path) -> None:
    promote(PARTIAL, tracking_uri, test_path, min_score=0.5)
    decision = promote(PERFECT, tracking_uri, test_path, min_score=0.5, min_improvement=0.5)
    assert not decision.promoted and champion_version(tracking_uri) == "1"


def test_crash_between_register_and_alias_keeps_the_old_champion(
    tracking_uri, test_path, monkeypatch
) -> None:
    """Fault injection: the registry call that moves the alias fails (as a network cut would)."""
    promote(PARTIAL, tracking_uri, test_path, min_score=0.5)

    def fail(*args, **kwargs):
        raise ConnectionError("registry went away")

    monkeypatch.setattr(mlflow.MlflowClient, "set_registered_model_alias", fail)
    with pytest.raises(ConnectionError):
        promote(PERFECT, tracking_uri, test_path, min_score=0.5)
    client = mlflow.MlflowClient(tracking_uri)
    assert champion_version(tracking_uri) == "1"
    assert client.get_model_version("sentiment", "2").tags["gate"] == "pending"


def test_unevaluated_candidate_is_refused(tracking_uri, test_path) -> None:
    promote(PARTIAL, tracking_uri, test_path, min_score=0.5)
    unevaluated = candidate(PERFECT, tracking_uri, test_path=None)
    with pytest.raises(GateError, match="evaluate it first"):
        gate([unevaluated], test_path, tracking_uri)
    assert champion_version(tracking_uri) == "1"


def test_candidate_evaluated_on_another_test_set_is_refused(tracking_uri, test_path, tmp_path: Path) -> None:
    evaluated = candidate(PERFECT, tracking_uri, test_path)
    other = tmp_path / "other_test.parquet"
    sentiment_frame().iloc[:60].to_parquet(other)
    with pytest.raises(GateError, match="no test_macro_recall for this data"):
        gate([evaluated], str(other), tracking_uri)
    assert champion_version(tracking_uri) is None


def test_best_of_several_candidates_is_chosen_and_every_score_recorded(tracking_uri, test_path) -> None:
    runs = [candidate(model, tracking_uri, test_path) for model in (PARTIAL, PERFECT, CONSTANT)]
    decision = gate(runs, test_path, tracking_uri, min_score=0.5)
    assert decision.promoted and decision.run_id == runs[1].run_id
    assert decision.candidate_scores == pytest.approx(
        {runs[0].run_id: 2 / 3, runs[1].run_id: 1.0, runs[2].run_id: 1 / 3}
    )
    run = mlflow.MlflowClient(tracking_uri).get_run(runs[1].run_id)
    assert run.data.tags["gate.decision"] == "promoted"


def test_the_scores_come_from_the_predictions_it_is_handed_not_the_registry(tracking_uri, test_path) -> None:
    """The gate scores each candidate from the predictions evaluate handed it and the test set's labels:
    a metric changed in the registry afterwards changes nothing, and equals what evaluate logged."""
    evaluated = candidate(PARTIAL, tracking_uri, test_path)
    client = mlflow.MlflowClient(tracking_uri)
    logged = client.get_run(evaluated.run_id).data.metrics["test_macro_recall"]
    client.log_metric(evaluated.run_id, "test_macro_recall", 0.0)  # the registry now says otherwise
    decision = gate([evaluated], test_path, tracking_uri, min_score=0.5)
    assert decision.candidate_score == pytest.approx(logged) == pytest.approx(2 / 3)


def test_promotion_records_the_bootstrap_interval(tracking_uri, test_path) -> None:
    promote(PARTIAL, tracking_uri, test_path, min_score=0.5)
    decision = promote(PERFECT, tracking_uri, test_path, min_score=0.5)
    low, high = decision.interval
    assert 0 < low <= high and low - 1e-9 <= 1 / 3 <= high + 1e-9  # the observed gain is 1/3
    metrics = mlflow.MlflowClient(tracking_uri).get_run(decision.run_id).data.metrics
    assert metrics["gate_interval_low"] == pytest.approx(low)


def test_out_of_domain_scores_are_logged_and_carded(tracking_uri, test_path, ood_path) -> None:
    run_id = candidate(PERFECT, tracking_uri, test_path, ood_path).run_id
    run = mlflow.MlflowClient(tracking_uri).get_run(run_id)
    assert run.data.metrics["ood_reviews_macro_recall"] == pytest.approx(1 / 3)
    assert run.data.metrics["ood_reviews_rows"] == 18 and run.data.tags["ood_domains"] == "reviews"
    card = mlflow.artifacts.load_text(f"runs:/{run_id}/model_card.md")
    assert "## Out of domain" in card and "| reviews | 18 | 0.3333 |" in card


def test_out_of_domain_weight_decides_between_candidates_and_against_the_champion(
    tracking_uri, test_path, ood_path
) -> None:
    """PERFECT wins in domain (1.0 vs 2/3); weighing the reviews set at 0.5 makes BROAD the better
    model (0.5 * 2/3 + 0.5 * 1 vs 0.5 * 1 + 0.5 * 1/3), and then the champion PERFECT cannot take back."""
    perfect, broad = (candidate(m, tracking_uri, test_path, ood_path) for m in (PERFECT, BROAD))
    rules = {"ood_path": ood_path, "min_score": 0.5}
    in_domain = gate([perfect, broad], test_path, tracking_uri, **rules | {"min_score": 1.1})
    assert in_domain.run_id == perfect.run_id and in_domain.weights == {"test": 1.0}
    weighed = gate([perfect, broad], test_path, tracking_uri, ood_weight=0.5, **rules)
    assert weighed.promoted and weighed.run_id == broad.run_id
    assert weighed.weights == {"test": 0.5, "ood_reviews": 0.5}
    assert weighed.candidate_set_scores[broad.run_id] == pytest.approx({"test": 2 / 3, "ood_reviews": 1.0})
    assert weighed.candidate_score == pytest.approx(5 / 6)
    challenge = gate([perfect], test_path, tracking_uri, ood_weight=0.5, **rules)
    assert not challenge.promoted and challenge.champion_score == pytest.approx(5 / 6)
    assert champion_version(tracking_uri) == weighed.registered_version


def test_the_default_target_is_the_first_sources_test_slice(tracking_uri, test_path, ood_path) -> None:
    """params.yaml's gate (target first_source): the candidates are ranked on the test split, the served
    traffic, so PERFECT (1 there, 1/3 on the reviews) beats BROAD (2/3 and 1), which the held-out mean
    would have chosen (test_a_challenger_that_wins_the_mean_but_loses_on_the_target_is_rejected)."""
    perfect, broad = (candidate(m, tracking_uri, test_path, ood_path) for m in (PERFECT, BROAD))
    assert (PARAMS.gate.target, PARAMS.gate.score) == ("first_source", "heldout_mean")
    defaults = {f.name: getattr(PARAMS.gate, f.name) for f in fields(PARAMS.gate)}
    decision = gate(
        [perfect, broad], test_path, tracking_uri, ood_path=ood_path, **defaults | {"min_score": 0.5}
    )
    assert decision.run_id == perfect.run_id and decision.weights == {"test": 1.0}
    assert decision.candidate_scores == pytest.approx({perfect.run_id: 1.0, broad.run_id: 2 / 3})
    assert decision.target == ["test"] and decision.rule == "first model"


def test_the_held_out_mean_gives_every_set_one_share() -> None:
    test = sentiment_frame()
    ood = pd.concat([test.head(9).assign(domain="reddit"), test.tail(6).assign(domain="youtube")])
    sets = scored_sets(test, ood, "heldout_mean", ood_weight=0.25)  # ood_weight is the weighted score's
    assert {s.name: s.weight for s in sets} == pytest.approx(
        {"test": 1 / 3, "ood_reddit": 1 / 3, "ood_youtube": 1 / 3}
    )
    assert [s.weight for s in scored_sets(test, None, "heldout_mean", 0.25)] == [1.0]
    weighted = scored_sets(test, ood, "weighted", 0.25)
    assert [s.weight for s in weighted] == [0.75, 0.125, 0.125]
    with pytest.raises(ValueError, match=r"gate\.score must be one of"):
        scored_sets(test, ood, "median", 0.25)


def test_a_test_split_of_several_sources_is_judged_source_by_source(tracking_uri, tmp_path: Path) -> None:
    """Each source's test slice is a held-out set of its own, scored, weighed and compared with the
    champion on its own (the reviews source is one whose words only BROAD knows)."""
    tweets = sentiment_frame().assign(source="tweets")
    reviews = reviews_frame().assign(source="reviews")
    path = tmp_path / "test-two-sources.parquet"
    pd.concat([tweets, reviews], ignore_index=True).to_parquet(path)
    perfect, broad = (candidate(m, tracking_uri, str(path)) for m in (PERFECT, BROAD))
    run = mlflow.MlflowClient(tracking_uri).get_run(broad.run_id)
    assert run.data.tags["test_sets"] == "test_reviews,test_tweets"
    assert run.data.metrics["test_reviews_macro_recall"] == pytest.approx(1.0)
    assert run.data.metrics["test_tweets_negative_recall"] == pytest.approx(0.0)
    first = gate([perfect], str(path), tracking_uri, min_score=0.5)
    assert first.weights == {"test_reviews": 0.5, "test_tweets": 0.5}
    assert first.candidate_score == pytest.approx(2 / 3)
    decision = gate([broad], str(path), tracking_uri, min_score=0.5)
    assert decision.promoted and decision.champion_score == pytest.approx(2 / 3)
    assert decision.candidate_set_scores[broad.run_id] == pytest.approx(
        {"test_reviews": 1.0, "test_tweets": 2 / 3}
    )


def test_the_default_target_passes_over_a_machine_labelled_source(tmp_path: Path) -> None:
    """Ingest flagged the first DATA source (reviews) as probably machine-labelled: first_source takes the
    next one's test slice, and says so; a target declared by name is taken as declared."""
    sources = [reviews_frame().assign(source="reviews"), sentiment_frame().assign(source="tweets")]
    frame = pd.concat(sources, ignore_index=True)
    frame.attrs[SOURCES_ATTR] = [
        {"name": "reviews", "label_checks": {"machine_labelled": True}},
        {"name": "tweets", "label_checks": {"machine_labelled": False}},
    ]
    path = tmp_path / "test.parquet"
    frame.to_parquet(path)
    for target, chosen in (("first_source", "test_tweets"), ("reviews", "test_reviews")):
        uri = local_store(tmp_path, target)
        broad = candidate(BROAD, uri, str(path))
        config = gate_config(min_score=0.5, target=target)
        decision = gate_candidates([broad], str(path), None, config, GATE_RUN, uri, ["reviews", "tweets"])
        assert decision.target == [chosen] and decision.weights == {chosen: 1.0}
        note = "(target tweets: reviews probably machine-labelled)"
        assert (note in decision.reason) is (target == "first_source"), decision.reason


def test_the_traffic_target_weighs_each_sources_slice_by_the_monitors_mix(tmp_path: Path) -> None:
    """gate.target: traffic with the monitor's mix (reviews 0.25, tweets 0.75) weighs the two test slices
    so; before the monitor recorded any mix it falls back to the first source's slice, and says so."""
    sources = [reviews_frame().assign(source="reviews"), sentiment_frame().assign(source="tweets")]
    path = tmp_path / "test.parquet"
    pd.concat(sources, ignore_index=True).to_parquet(path)
    for mix, weights in (
        ({"reviews": 0.25, "tweets": 0.75}, {"test_reviews": 0.25, "test_tweets": 0.75}),
        (None, {"test_reviews": 1.0}),
    ):
        uri = local_store(tmp_path, f"mix-{bool(mix)}")
        broad = candidate(BROAD, uri, str(path))
        config = gate_config(min_score=0.5, target="traffic")
        named = ["reviews", "tweets"]
        decision = gate_candidates([broad], str(path), None, config, GATE_RUN, uri, named, mix)
        assert decision.weights == pytest.approx(weights)
        said = "the traffic mix" if mix else "no traffic mix recorded yet"
        assert f"(target: {said}: " in decision.reason, decision.reason
        version = mlflow.MlflowClient(uri).get_model_version("sentiment", decision.registered_version)
        card = version.description
        assert "## Gate" in card and "Promoted on the target (traffic): test_" in card


def test_the_latest_traffic_mix_of_the_model_is_read_from_the_monitor_runs(tmp_path: Path) -> None:
    uri = local_store(tmp_path, "monitor")
    assert latest_traffic_mix(uri, "sentiment") is None  # no monitor run yet
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("sentiment-monitoring")
    recorded = [("sentiment", {"a": 0.4, "b": 0.6}), ("sentiment", {"a": 0.9, "b": 0.1})]
    recorded.append(("other", {"a": 1.0}))
    for model, mix in recorded:
        client.create_run(experiment, tags={"model_name": model, TRAFFIC_MIX_TAG: json.dumps(mix)})
        time.sleep(0.01)
    client.create_run(experiment, tags={"model_name": "sentiment"})  # a later run without a mix
    assert latest_traffic_mix(uri, "sentiment") == {"a": 0.9, "b": 0.1}


def test_target_source() -> None:
    flagged = [{"name": "a", "label_checks": {"machine_labelled": True}}, {"name": "b"}, {"name": "c"}]
    assert target_source("first_source", ["a", "b", "c"], flagged) == ("b", ["a"])
    assert target_source("first_source", ["b", "a"], flagged) == ("b", [])
    assert target_source("first_source", ["a"], flagged) == ("a", [])  # all flagged: the first
    assert target_source("c", ["a", "b", "c"], flagged) == ("c", [])  # declared
    assert target_source("all", ["a", "b"], flagged) == (None, [])


def test_candidate_scored_on_other_out_of_domain_data_is_refused(tracking_uri, test_path, ood_path) -> None:
    run = candidate(PERFECT, tracking_uri, test_path)  # evaluated without the out-of-domain set
    with pytest.raises(GateError, match="no ood_reviews_macro_recall for this data"):
        gate([run], test_path, tracking_uri, ood_path=ood_path, ood_weight=0.25)


@pytest.mark.parametrize(("int8_loss", "accepted", "served"), [(0.002, True, "int8"), (0.01, False, "fp32")])
def test_an_int8_runtime_beyond_the_loss_bound_is_rejected_and_served_in_fp32(
    tracking_uri, test_path, int8_loss, accepted, served
) -> None:
    """The gate's INT8 bound (0.005 of the test metric) decides the version's tag, and the predictor's
    default runtime (auto) follows the tag."""
    from models.bundle import VersionDetails
    from models.runtime_choice import choose_runtime
    from serving.predictor import ServingOptions

    scored = candidate(PARTIAL, tracking_uri, test_path)
    client = mlflow.MlflowClient(tracking_uri)
    full = client.get_run(scored.run_id).data.metrics["test_macro_recall"]
    client.log_metric(scored.run_id, "test_int8_macro_recall", full - int8_loss)
    decision = gate([scored], test_path, tracking_uri, min_score=0.5, int8_max_loss=0.005)
    assert decision.promoted and decision.int8_accepted is accepted
    assert decision.int8_loss == pytest.approx(int8_loss)
    tags = client.get_model_version("sentiment", "1").tags
    assert tags["int8_accepted"] == str(accepted).lower()
    details = VersionDetails.from_registry("sentiment", "1")
    assert choose_runtime(details, ServingOptions.runtime, has_int8=True)[0] == served


# Knows the reviews' words and the test split's, except "great" and "awful": a champion good everywhere.
ALL_ROUND = KeywordModel(
    positive=("love", "amazing", "happy", "superb"), negative=("hate", "terrible", "angry", "dreadful")
)
TRAFFIC = {"target": "first_source", "score": "heldout_mean", "min_improvement": 0.005}


def challenge(
    uri: str, champion_model, challenger, test_path: str, ood_path: str, target: str = "first_source"
):
    """``champion_model`` made champion (a first model), then the gate's decision on ``challenger`` with
    the traffic rule's settings and ``target``."""
    gate([candidate(champion_model, uri, test_path, ood_path)], test_path, uri, ood_path, **TRAFFIC)
    challengers = [candidate(challenger, uri, test_path, ood_path)]
    return gate(challengers, test_path, uri, ood_path, **TRAFFIC | {"target": target})


def test_a_challenger_that_wins_the_mean_but_loses_on_the_target_is_rejected(
    tmp_path, test_path, ood_path
) -> None:
    """The failure the target rule is for: PERFECT is the champion (test 1.0, reviews 1/3); BROAD, fitted
    to the reviews, wins their mean (0.83 against 0.67) but loses on the test split, the served traffic.
    The mean promotes it; the target rule does not."""
    for target, promoted in (("all", True), ("first_source", False)):
        uri = local_store(tmp_path, target)
        decision = challenge(uri, PERFECT, BROAD, test_path, ood_path, target)
        assert decision.promoted is promoted, decision.reason
    assert decision.target == ["test"] and decision.rule == "target"
    assert decision.reason.startswith("does not beat the champion")
    gain, low, _ = decision.set_comparisons["ood_reviews"]
    assert gain > 0.5 and low > 0  # it is much better on the reviews: not what the traffic looks like


def test_a_challenger_better_on_the_target_but_worse_elsewhere_is_rejected_by_the_guard(
    tmp_path, test_path, ood_path
) -> None:
    uri = local_store(tmp_path, "mlflow")
    decision = challenge(uri, ALL_ROUND, PERFECT, test_path, ood_path)
    assert not decision.promoted and decision.rule == "guard"
    assert "beats the champion" in decision.reason and "on ood_reviews" in decision.reason
    test_gain, test_low, _ = decision.set_comparisons["test"]
    assert test_gain > 0 and test_low > 0 and decision.set_comparisons["ood_reviews"][1] < -0.02
    assert champion_version(uri) == "1"


def test_a_challenger_better_on_the_target_and_no_worse_elsewhere_is_promoted(
    tmp_path, test_path, ood_path
) -> None:
    uri = local_store(tmp_path, "mlflow")
    decision = challenge(uri, PARTIAL, PERFECT, test_path, ood_path)
    assert decision.promoted and decision.rule == "target", decision.reason
    assert decision.set_comparisons["ood_reviews"][0] == 0  # both know none of the reviews' words
    assert champion_version(uri) == "2"
