"""Unit tests for serving.payload: decoding v1/v2 requests into texts and encoding v1/v2 answers."""

import numpy as np
import pandas as pd
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest

from serving.payload import (
    Predictions,
    RequestLimits,
    texts_from_v1,
    texts_from_v2,
    v1_response,
    v2_response,
)

SMALL = RequestLimits(max_instances=2, max_text_chars=5)


def v2_request(shape, data, datatype="BYTES", request_id="req-1"):
    return InferRequest("sentiment", [InferInput("text", shape, datatype, data)], request_id=request_id)


def test_v1_accepts_strings_objects_and_unicode():
    payload = {"instances": ["I love it", {"text": "héllo 😀"}]}
    assert texts_from_v1(payload) == ["I love it", "héllo 😀"]


def test_v1_limits_are_inclusive():
    assert texts_from_v1({"instances": ["abcde", "ab"]}, SMALL) == ["abcde", "ab"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"instances": ["a"]}', "Content-Type: application/json"),
        (b"raw", "Content-Type: application/json"),
        (["a"], '"instances": a list of texts'),
        ({"texts": ["a"]}, '"instances": a list of texts'),
        ({"instances": []}, "non-empty list"),
        ({"instances": "a"}, "non-empty list"),
        ({"instances": [{"body": "a"}]}, 'instances[0] is an object without a "text" field'),
        ({"instances": ["ok", 3]}, "instances[1] must be a string, got int"),
        ({"instances": ["ok", "  \n"]}, "instances[1] is empty"),
        ({"instances": ["abcdef"]}, "instances[0] has 6 characters; the limit is 5"),
        ({"instances": ["a", "b", "c"]}, "3 texts in one request; the limit is 2"),
    ],
)
def test_v1_rejects_bad_payloads(payload, message):
    with pytest.raises(InvalidInput) as caught:
        texts_from_v1(payload, SMALL)
    assert message in str(caught.value)


def test_v2_accepts_flat_and_column_shapes():
    assert texts_from_v2(v2_request([2], ["a", "héllo"])) == ["a", "héllo"]
    assert texts_from_v2(v2_request([2, 1], ["a", "b"])) == ["a", "b"]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (InferRequest("m", []), "exactly one input tensor of texts, got 0"),
        (v2_request([1], [1.0], datatype="FP32"), 'input "text" must have datatype BYTES, got FP32'),
        (v2_request([-1], ["a"]), "a request needs sizes >= 0"),
        (v2_request([3], ["a", "b"]), 'input "text" does not match its shape'),
        (v2_request([0], []), "must have shape [n] with n >= 1, got [0]"),
        (v2_request([1, 2], ["a", "b"]), "got [1, 2]"),
        (v2_request([1], [b"\xff"]), "text[0] is not valid UTF-8"),
        (v2_request([1], ["abcdef"]), "text[0] has 6 characters; the limit is 5"),
        (v2_request([3], ["a", "b", "c"]), "3 texts in one request; the limit is 2"),
    ],
)
def test_v2_rejects_bad_requests(request_, message):
    with pytest.raises(InvalidInput) as caught:
        texts_from_v2(request_, SMALL)
    assert message in str(caught.value)


def predictions():
    frame = pd.DataFrame(
        {
            "label": ["positive", "negative"],
            "prob_negative": [0.1, 0.7],
            "prob_neutral": [0.2, 0.2],
            "prob_positive": [0.7, 0.1],
        }
    )
    return Predictions.from_frame(frame, version="3")


def test_predictions_from_frame_and_slicing():
    answers = predictions()
    assert len(answers) == 2 and answers.probabilities.dtype == np.float32
    second = answers[1:]
    assert (second.labels, second.version, second.probabilities.shape) == (["negative"], "3", (1, 3))
    np.testing.assert_allclose(second.probabilities[0], [0.7, 0.2, 0.1])


def test_v1_response_maps_probabilities_to_labels_and_carries_ids():
    answer = v1_response(predictions(), ["a1", "a2"])
    assert answer["model_version"] == "3"
    assert [p["label"] for p in answer["predictions"]] == ["positive", "negative"]
    assert [p["id"] for p in answer["predictions"]] == ["a1", "a2"]
    assert answer["predictions"][1]["probabilities"] == pytest.approx(
        {"negative": 0.7, "neutral": 0.2, "positive": 0.1}
    )


def test_v2_response_has_label_probability_and_id_outputs():
    response = v2_response(predictions(), "sentiment", "req-1", ["req-1-0", "req-1-1"])
    assert (response.id, response.model_name, response.model_version) == ("req-1", "sentiment", "3")
    label, ids, probs = response.outputs
    assert (label.name, label.shape, label.datatype, label.data) == (
        "label",
        [2],
        "BYTES",
        ["positive", "negative"],
    )
    assert (ids.name, ids.datatype, ids.data) == ("id", "BYTES", ["req-1-0", "req-1-1"])
    assert (probs.name, probs.shape, probs.datatype) == ("probabilities", [2, 3], "FP32")
    assert probs.data == pytest.approx([0.1, 0.2, 0.7, 0.7, 0.2, 0.1])
    assert response.parameters["labels"] == "negative,neutral,positive"
