"""Out-of-domain sets: read from files in the two comment-set layouts, cleaned, sampled and labelled by
domain; and the real Reddit and YouTube comment sets in ../shared when present."""

from pathlib import Path

import pandas as pd
import pytest

from components.prepare_out_of_domain import prepare_sources
from core.labels import LABELS
from core.lineage import source_name
from tests.conftest import shared_dataset
from tests.helpers import write_comment_sets


def test_sources_become_one_clean_labelled_frame_by_domain(tmp_path: Path) -> None:
    output = tmp_path / "ood.parquet"
    report = prepare_sources(
        write_comment_sets(tmp_path), str(output), max_rows=12, max_text_chars=5000, seed=3
    )
    assert report == {
        "reddit_sentiment": {"rows": 12, "dropped_missing_text": 1, "dropped_duplicate_text": 1},
        "youtubecommentsdataset": {"rows": 12},
    }
    frame = pd.read_parquet(output)
    assert list(frame.columns) == ["text", "label", "domain"]
    reddit = frame[frame["domain"] == "reddit_sentiment"]
    assert reddit["label"].value_counts().to_dict() == {label: 4 for label in LABELS}  # stratified sample
    assert frame["text"].str.strip().ne("").all() and not frame["text"].duplicated().any()


def test_no_sources_give_an_empty_set(tmp_path: Path) -> None:
    output = tmp_path / "ood.parquet"
    assert prepare_sources([], str(output), max_rows=2000, max_text_chars=5000, seed=42) == {}
    assert pd.read_parquet(output).empty


def test_two_sources_with_one_name_are_refused(tmp_path: Path) -> None:
    sources = write_comment_sets(tmp_path)
    with pytest.raises(ValueError, match="both named 'reddit_sentiment'"):
        prepare_sources(
            [sources[0], sources[0] + "/"],
            str(tmp_path / "ood.parquet"),
            max_rows=2000,
            max_text_chars=5000,
            seed=42,
        )


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("../shared/data/reddit_sentiment", "reddit_sentiment"),
        ("s3://data/youtube/YoutubeCommentsDataSet.csv", "youtubecommentsdataset"),
        ("owner/some-set:config", "some_set"),
    ],
)
def test_domain_names(source: str, name: str) -> None:
    assert source_name(source) == name


def test_real_reddit_and_youtube_comment_sets(tmp_path: Path) -> None:
    sources = [
        str(shared_dataset("reddit_sentiment")),
        str(shared_dataset("youtube_comments_sentiment/YoutubeCommentsDataSet.csv")),
    ]
    report = prepare_sources(
        sources, str(tmp_path / "ood.parquet"), max_rows=600, max_text_chars=5000, seed=1
    )
    # The shared README counts 220 empty Reddit texts, plus one literal "nan" that the folder's CSV
    # reader (datasets) reads as missing, and 44 empty YouTube comments.
    assert report["reddit_sentiment"]["dropped_missing_text"] == 221
    assert report["youtubecommentsdataset"]["dropped_missing_text"] == 44
    frame = pd.read_parquet(tmp_path / "ood.parquet")
    assert frame.groupby("domain")["label"].nunique().to_dict() == {
        "reddit_sentiment": 3,
        "youtubecommentsdataset": 3,
    }
    assert len(frame) == 1200
