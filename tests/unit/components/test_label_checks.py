"""The label checks at ingest: empty texts with a label and conflicting duplicates counted, lexicon
agreement measured, and a source whose labels a lexicon reproduces flagged; on ../shared/data, the Reddit
set (labelled by TextBlob's polarity, as its 100 % agreement shows) is flagged and the human-labelled sets
are not."""

import numpy as np
import pandas as pd
import pytest

from components.candidate import label_check_tags
from components.ingest import read_source
from components.label_checks import check_labels, lexicon_labeller, wilson_lower
from tests.conftest import shared_dataset
from tests.helpers import PARAMS, sentiment_frame

ROWS, THRESHOLD = PARAMS.ingest.label_check_rows, PARAMS.ingest.machine_label_agreement


def test_empty_labelled_texts_and_conflicting_duplicates_are_counted() -> None:
    frame = pd.DataFrame(
        {
            "text": ["", "  ", None, "good day", "good day", "Good day ", "bad day", "fine"],
            "label": ["neutral", "neutral", "positive", "positive", "negative", "positive", "negative", None],
        }
    )
    checks = check_labels(frame, ROWS, THRESHOLD, seed=0)
    assert checks.rows == 8
    assert checks.empty_labelled == {"neutral": 2, "positive": 1}
    assert checks.conflicting_texts == 1  # "good day" (exact text after stripping; case kept)
    assert checks.checked_rows == 4  # the labelled, non-empty texts


def test_labels_a_lexicon_wrote_are_flagged_and_shuffled_ones_are_not() -> None:
    texts = sentiment_frame()["text"]
    by_textblob = pd.DataFrame({"text": texts, "label": texts.map(lexicon_labeller("textblob"))})
    flagged = check_labels(by_textblob, ROWS, THRESHOLD, seed=0)
    assert flagged.agreement["textblob"] == 1.0 and flagged.machine_labelled
    assert "probably machine-labelled" in flagged.summary()
    rng = np.random.default_rng(0)
    shuffled = by_textblob.assign(label=rng.permutation(by_textblob["label"].to_numpy()))
    assert not check_labels(shuffled, ROWS, THRESHOLD, seed=0).machine_labelled


def test_the_flag_needs_enough_texts_to_be_sure() -> None:
    """Agreement on every one of 20 texts is not enough evidence at 0.95 (Wilson lower bound 0.84)."""
    texts = sentiment_frame()["text"].head(20)
    few = pd.DataFrame({"text": texts, "label": texts.map(lexicon_labeller("vader"))})
    checks = check_labels(few, ROWS, THRESHOLD, seed=0)
    assert checks.agreement["vader"] == 1.0 and not checks.machine_labelled
    assert checks.agreement_lower["vader"] == pytest.approx(0.839, abs=1e-3)


def test_wilson_lower_bound() -> None:
    assert wilson_lower(50, 100) == pytest.approx(0.4038, abs=1e-4)
    assert wilson_lower(0, 0) == 0.0


@pytest.mark.parametrize(
    ("relative", "flagged"),
    [
        ("reddit_sentiment/Reddit_Data.csv", True),
        ("youtube_comments_sentiment/YoutubeCommentsDataSet.csv", False),
        ("tweeteval_sentiment", False),
    ],
)
def test_shared_sources_reddit_is_machine_labelled_the_others_are_not(relative: str, flagged: bool) -> None:
    checks = check_labels(read_source(str(shared_dataset(relative))), ROWS, THRESHOLD, seed=0)
    assert checks.machine_labelled is flagged, checks.summary()
    if flagged:
        assert checks.agreement["textblob"] > 0.99
    else:
        assert max(checks.agreement.values()) < 0.8


def test_each_candidate_run_is_tagged_with_its_sources_checks() -> None:
    texts = sentiment_frame()["text"]
    flagged = check_labels(
        pd.DataFrame({"text": texts, "label": texts.map(lexicon_labeller("vader"))}), 500, 0.95, 0
    )
    sources = [
        {"name": "tweets", "label_checks": flagged.to_dict()},
        {"name": "feedback", "label_checks": check_labels(sentiment_frame().head(3), 500, 0.95, 0).to_dict()},
        {"name": "older"},  # ingested before the checks: nothing to say
    ]
    tags = label_check_tags(sources)
    assert tags == {
        "label_checks.tweets": flagged.summary(),
        "label_checks.feedback": check_labels(sentiment_frame().head(3), 500, 0.95, 0).summary(),
        "data.machine_labelled": "tweets",
    }
    assert label_check_tags([{"name": "older"}]) == {}
