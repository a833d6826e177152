"""KServe's v1 ``:explain`` on the real model server: occlusion attributions point the right way on clear
cases, for the two linear families (the transformer: tests/integration/test_two_families.py), malformed
requests get 4xx, and explanations are counted apart from predictions."""

import httpx
import pytest

from serving.explain import ExplainLimits, without_each_word, words_of
from tests.helpers import HTTP, TEMPLATES, metric_value, scrape_metrics

CLEAR_CASES = [  # (text, its label, a word that pushes towards that label)
    ("I love the new phone", "positive", "love"),
    ("an awful experience with my flight", "negative", "awful"),
    ("the concert is scheduled for 5pm", "neutral", "scheduled"),
    ("so happy with the coffee", "positive", "happy"),
    ("I hate the update", "negative", "hate"),
]


def words_only_in(label: str) -> set[str]:
    """The words of the training templates (tests/helpers.py) of ``label`` and of no other class."""

    def words(name: str) -> set[str]:
        return {w.strip("!.,:()") for template in TEMPLATES[name] for w in template.format("").split()}

    return words(label) - set().union(*(words(other) for other in TEMPLATES if other != label))


def explain(url: str, body, **kwargs) -> httpx.Response:
    return HTTP.post(f"{url}/v1/models/sentiment:explain", json=body, timeout=60, **kwargs)


@pytest.fixture
def tfidf_server(fast_model_server: str) -> str:
    """The session's TF-IDF predictor."""
    return fast_model_server


def test_occlusion_leaves_out_each_word_once() -> None:
    assert without_each_word(words_of("I love  it")) == ["love it", "I it", "I love"]
    assert without_each_word(["one"]) == [""]


@pytest.mark.parametrize("family", ["embeddings", "tfidf"])
def test_attributions_point_the_right_way_on_clear_cases(model_server, tfidf_server, family) -> None:
    url = model_server[0] if family == "embeddings" else tfidf_server
    response = explain(url, {"instances": [text for text, _, _ in CLEAR_CASES]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "occlusion" and body["model_version"] == "1"
    predicted = HTTP.post(
        f"{url}/v1/models/sentiment:predict", json={"instances": [t for t, _, _ in CLEAR_CASES]}
    ).json()["predictions"]
    for (text, label, decisive), explanation, prediction in zip(
        CLEAR_CASES, body["explanations"], predicted, strict=True
    ):
        assert explanation["label"] == prediction["label"] == label, text
        words = {w["word"]: w for w in explanation["words"]}
        assert [w["word"] for w in explanation["words"]] == text.split()
        assert words[decisive]["attributions"][label] > 0, (text, words[decisive])  # it pushes to its class
        top = max(explanation["words"], key=lambda w: w["attribution"])
        assert top["word"] in words_only_in(label), (text, explanation["words"])  # a word of that class
        assert top["attribution"] == pytest.approx(top["attributions"][label])
        assert sum(top["attributions"].values()) == pytest.approx(0.0, abs=1e-5)  # probabilities move, sum 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"instances": ["fine"] * (ExplainLimits().max_texts + 1)},
            400,
            "texts in one request; the limit is 8",
        ),
        ({"instances": [" ".join(["word"] * 65)]}, 400, "has 65 words; :explain takes at most 64"),
        ({"instances": ["   "]}, 400, "instances[0] is empty"),
        ({"instances": [7]}, 400, "instances[0]"),
        ({"instances": []}, 400, "non-empty list"),
        ({"texts": ["hi"]}, 400, '"instances"'),
        (["hi"], 400, '"instances"'),
    ],
)
def test_malformed_explain_requests_get_4xx_with_a_message(tfidf_server, body, status, message) -> None:
    response = explain(tfidf_server, body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_explain_refuses_bodies_it_cannot_read(tfidf_server) -> None:
    url = tfidf_server
    not_json = HTTP.post(
        f"{url}/v1/models/sentiment:explain", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert 400 <= not_json.status_code < 500, not_json.text
    wrong_type = HTTP.post(
        f"{url}/v1/models/sentiment:explain", content=b"hi", headers={"content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    assert HTTP.post(f"{url}/v1/models/other:explain", json={"instances": ["hi"]}).status_code == 404


def test_explanations_are_counted_apart_from_predictions(tfidf_server) -> None:
    before = scrape_metrics(tfidf_server)
    assert explain(tfidf_server, {"instances": ["I love it"]}).status_code == 200
    assert explain(tfidf_server, {"instances": []}).status_code == 400
    after = scrape_metrics(tfidf_server)

    def delta(sample: str, **labels) -> float:
        return metric_value(after, sample, **labels) - metric_value(before, sample, **labels)

    assert delta("sentiment_explanations_total", model_version="1", code="200") == 1
    assert delta("sentiment_explanations_total", model_version="1", code="400") == 1
    assert delta("sentiment_explain_duration_seconds_count", model_version="1") == 2
    assert delta("sentiment_requests_total", protocol="v1", model_version="1", code="200") == 0
