"""Live labels: remembering answers, joining feedback to them, and scoring live quality per version."""

import numpy as np
import pytest
from kserve.errors import InvalidInput

from core.scores import classification_metrics
from serving.feedback import Answer, RecentAnswers, join_feedback
from serving.live_quality import LiveQuality


def answer(i: int, text: str | None = None, predicted: str = "positive", version: str = "1") -> Answer:
    return Answer(f"id-{i}", text or f"text {i}", predicted, 0.9, version, 1000.0 + i)


def test_recent_answers_forget_the_oldest_and_find_by_id_or_latest_text():
    answers = RecentAnswers(capacity=3)
    answers.add([answer(0, "same"), answer(1), answer(2, "same", predicted="negative")])
    assert answers.find(None, "same").id == "id-2"
    answers.add([answer(3), answer(4)])
    assert len(answers) == 3
    assert answers.find("id-0", None) is None and answers.find("id-1", None) is None
    assert answers.find(None, "same").predicted == "negative"
    answers.add([answer(5), answer(6)])
    assert answers.find(None, "same") is None  # its last answer aged out


def test_feedback_joins_labels_to_answers_by_id_and_by_text():
    answers = RecentAnswers(capacity=10)
    answers.add([answer(0), answer(1, "I hate mondays", predicted="negative", version="2")])
    joined = join_feedback(
        [{"id": "id-0", "label": "neutral"}, {"text": "I hate mondays", "label": "negative"}], answers, 5
    )
    assert [(r.answer.id, r.answer.predicted, r.label, r.answer.model_version) for r in joined] == [
        ("id-0", "positive", "neutral", "1"),
        ("id-1", "negative", "negative", "2"),
    ]
    record = joined[1].as_record()
    assert record["text"] == "I hate mondays" and record["labelled_at"] >= record["time"]
    assert (
        join_feedback({"feedback": [{"id": "id-0", "label": "positive"}]}, answers, 5)[0].label == "positive"
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "non-empty JSON list"),
        ({"id": "id-0", "label": "positive"}, "non-empty JSON list"),
        ("positive", "non-empty JSON list"),
        ([{"id": "id-0", "label": "positive"}] * 6, "6 feedback rows in one request; the limit is 5"),
        ([{"id": "id-0"}], '[0] must be an object with "label"'),
        ([7], '[0] must be an object with "label"'),
        ([{"id": "id-0", "label": "great"}], "[0] label 'great' is not one of negative, neutral, positive"),
        ([{"id": 3, "label": "positive"}], '[0] "id" and "text" must be strings'),
        (
            [{"id": "id-0", "label": "positive"}, {"id": "nope", "label": "neutral"}],
            "[1] unknown id 'nope': not among the last 10 answers",
        ),
        ([{"text": "never asked", "label": "neutral"}], "[0] unknown text 'never asked'"),
    ],
)
def test_bad_feedback_is_refused_as_a_whole_with_a_message(payload, message):
    answers = RecentAnswers(capacity=10)
    answers.add([answer(0)])
    with pytest.raises(InvalidInput, match="nothing stored") as refused:
        join_feedback(payload, answers, max_rows=5)
    assert message in str(refused.value)


def test_live_quality_scores_each_version_on_its_last_labels_with_an_interval():
    rng = np.random.default_rng(0)
    quality = LiveQuality(size=300, min_labels=50, samples=500)
    labels = ["negative", "neutral", "positive"]
    truth = rng.choice(labels, size=400).tolist()
    predicted = [t if rng.random() < 0.7 else rng.choice(labels) for t in truth]
    for i, (t, p) in enumerate(zip(truth, predicted, strict=True)):
        quality.add("1", f"a{i}", t, p)
    for i in range(20):
        quality.add("2", f"b{i}", "neutral", "neutral")
    assert quality.labelled() == {"1": 300, "2": 20}
    scores = quality.scores()
    assert set(scores) == {"1"}  # version 2 has fewer than min_labels
    offline = classification_metrics(truth[-300:], predicted[-300:])  # the window: the last 300
    for metric in ("macro_recall", "accuracy"):
        score = scores["1"][metric]
        assert score.value == pytest.approx(offline[metric])
        assert score.lower < score.value < score.upper
        assert 0.05 < score.upper - score.lower < 0.25  # about +-1.96 * sqrt(p(1-p)/n) for n = 300


def test_a_relabelled_answer_counts_once_with_its_latest_label():
    quality = LiveQuality(size=10, min_labels=1, samples=100)
    quality.add("1", "a", "negative", "positive")
    quality.add("1", "a", "positive", "positive")
    assert quality.labelled() == {"1": 1}
    assert quality.scores()["1"]["accuracy"].value == 1.0
