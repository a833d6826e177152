"""Live labels: remembering answers, joining feedback to them, and scoring live quality per version."""

import base64

import pytest
from kserve.errors import InvalidInput

from serving.answer_ids import AnswerSigner, ForgedId, text_digest
from serving.feedback import Answer, RecentAnswers, join_feedback

SIGNER = AnswerSigner(b"k" * 32)


def answer(i: int, text: str | None = None, predicted: str = "positive", version: str = "1") -> Answer:
    text = text or f"text {i}"
    return Answer(
        SIGNER.issue(text, predicted, 0.9, version, 1000.0 + i), text, predicted, 0.9, version, 1000.0 + i
    )


def test_recent_answers_forget_the_oldest_and_find_by_id_or_latest_text():
    answers = RecentAnswers(capacity=3)
    first, second, third = answer(0, "same"), answer(1), answer(2, "same", predicted="negative")
    answers.add([first, second, third])
    assert answers.find(None, "same").id == third.id
    answers.add([answer(3), answer(4)])
    assert len(answers) == 3
    assert answers.find(first.id, None) is None and answers.find(second.id, None) is None
    assert answers.find(None, "same").predicted == "negative"
    answers.add([answer(5), answer(6)])
    assert answers.find(None, "same") is None  # its last answer aged out


def test_an_id_carries_its_answer_and_any_replica_with_the_key_verifies_it():
    issued = SIGNER.issue("I hate mondays", "negative", 0.8125, "2", 1234.5)
    signed = AnswerSigner(b"k" * 32).verify(issued)  # another replica: same key, no shared memory
    assert (signed.model_version, signed.predicted, signed.confidence, signed.time) == (
        "2",
        "negative",
        0.8125,
        1234.5,
    )
    assert signed.text_digest == text_digest("I hate mondays")
    assert SIGNER.issue("I hate mondays", "negative", 0.8125, "2", 1234.5) != issued  # each answer its own id
    fields, signature = issued.split(".")
    altered = (
        base64.urlsafe_b64encode(base64.urlsafe_b64decode(fields + "==").replace(b"negative", b"positive"))
        .rstrip(b"=")
        .decode()
    )
    # its first character changed: the signature's first 6 bits (changing the last ones could leave the
    # decoded bytes as they were, in about one run of 250)
    resigned = ("B" if signature[0] == "A" else "A") + signature[1:]
    for forged in (f"{altered}.{signature}", f"{fields}.{resigned}", "no-such-answer", ""):
        with pytest.raises(ForgedId):
            SIGNER.verify(forged)
    with pytest.raises(ForgedId, match="signature"):
        AnswerSigner(b"x" * 32).verify(issued)  # another service's key


def test_feedback_joins_labels_by_signed_id_on_any_replica_and_by_text_on_the_one_that_answered():
    answered_here, elsewhere = RecentAnswers(capacity=10), RecentAnswers(capacity=10)
    first, second = answer(0), answer(1, "I hate mondays", predicted="negative", version="2")
    answered_here.add([first, second])
    rows = [{"id": first.id, "label": "neutral"}, {"text": "I hate mondays", "label": "negative"}]
    joined, refused = join_feedback(rows, SIGNER, answered_here, 5)
    assert refused == []
    assert [(r.answer.id, r.answer.predicted, r.label, r.answer.model_version) for r in joined] == [
        (first.id, "positive", "neutral", "1"),
        (second.id, "negative", "negative", "2"),
    ]
    record = joined[1].as_record()
    assert record["text"] == "I hate mondays" and record["labelled_at"] >= record["time"]
    # a replica that never saw the answer joins it by id: version and prediction from the id, text unknown
    # unless the row brings it (checked against the id)
    (by_id,), _ = join_feedback([{"id": second.id, "label": "negative"}], SIGNER, elsewhere, 5)
    assert (by_id.answer.model_version, by_id.answer.predicted, by_id.answer.text) == ("2", "negative", None)
    (with_text,), _ = join_feedback(
        {"feedback": [{"id": second.id, "text": "I hate mondays", "label": "positive"}]}, SIGNER, elsewhere, 5
    )
    assert with_text.answer.text == "I hate mondays" and with_text.label == "positive"


def test_each_bad_row_is_refused_on_its_own_with_why():
    answers = RecentAnswers(capacity=10)
    good = answer(0)
    answers.add([good])
    rows = [
        {"id": good.id, "label": "positive"},
        {"id": "nope", "label": "neutral"},
        {"id": good.id, "label": "great"},
        {"id": good.id, "text": "another text", "label": "neutral"},
        {"text": "never asked", "label": "neutral"},
        {"id": 3, "label": "positive"},
        7,
    ]
    joined, refused = join_feedback(rows, SIGNER, answers, max_rows=10)
    assert [r.answer.id for r in joined] == [good.id]
    assert [(r["row"], r["reason"]) for r in refused] == [
        (1, "id 'nope' refused: not an answer id of this service"),
        (2, "label 'great' is not one of negative, neutral, positive"),
        (3, "its text is not the text this id answered"),
        (4, "text 'never asked' was not answered recently by this replica: send the answer's id"),
        (5, '"id" and "text" must be strings'),
        (6, 'must be an object with "label" and "id" (or "text")'),
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "non-empty JSON list"),
        ({"id": "x", "label": "positive"}, "non-empty JSON list"),
        ("positive", "non-empty JSON list"),
        ([{"id": "x", "label": "positive"}] * 6, "6 feedback rows in one request; the limit is 5"),
    ],
)
def test_a_body_that_is_not_a_list_of_rows_is_refused_as_a_whole(payload, message):
    with pytest.raises(InvalidInput, match="nothing stored") as refused:
        join_feedback(payload, SIGNER, RecentAnswers(capacity=10), max_rows=5)
    assert message in str(refused.value)
