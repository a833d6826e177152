from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from minio import Minio

from components.ingest import DataSourceError, IngestConfig, ingest_source, read_source
from core.labels import LABELS
from core.lineage import content_digest, sources_of
from tests.conftest import shared_dataset
from tests.helpers import PARAMS, sentiment_frame


def test_csv_with_signed_labels_and_other_column_names(tmp_path: Path) -> None:
    path = tmp_path / "reddit_like.csv"
    path.write_text('clean_comment,category\n"good stuff, really",1\nmeh,0\nbad,-1\n')
    frame = read_source(str(path))
    assert frame["text"].tolist() == ["good stuff, really", "meh", "bad"]
    assert frame["label"].tolist() == ["positive", "neutral", "negative"]
    assert frame["split"].isna().all()


def test_parquet_file_named_by_split(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 1, 2]}).to_parquet(path)
    frame = read_source(str(path))
    assert frame["label"].tolist() == list(LABELS)
    assert set(frame["split"]) == {"train"}


def test_tweeteval_layout_keeps_its_splits(tmp_path: Path) -> None:
    (tmp_path / "train_text.txt").write_text("good day \nbad day \nsome day \n")
    (tmp_path / "train_labels.txt").write_text("2\n0\n1\n")
    (tmp_path / "val_text.txt").write_text("fine \n")
    (tmp_path / "val_labels.txt").write_text("2\n")
    frame = read_source(str(tmp_path))
    assert frame.to_dict("list") == {
        "text": ["good day", "bad day", "some day", "fine"],
        "label": ["positive", "negative", "neutral", "positive"],
        "split": ["train", "train", "train", "validation"],
    }


def test_undecodable_bytes_become_replacement_chars(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"text,label\ncaf\xe9 au lait,positive\nok,neutral\n")
    assert read_source(str(path))["text"][0] == "caf\ufffd au lait"


def test_huggingface_dataset_folder_uses_class_label_names(tmp_path: Path) -> None:
    """A folder of split files goes through `datasets.load_dataset`, as a hub id does."""
    frame = sentiment_frame()
    frame.iloc[:100].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[100:].to_csv(tmp_path / "test.csv", index=False)
    loaded = read_source(str(tmp_path))
    assert loaded["split"].value_counts().to_dict() == {"train": 100, "test": 44}
    assert loaded["label"].tolist() == frame["label"].tolist()


def test_missing_local_path_is_a_clear_error() -> None:
    with pytest.raises(DataSourceError, match="no such file"):
        read_source("./does/not/exist.csv")


def test_unreachable_hub_fails_fast_saying_how_to_pass_data() -> None:
    """Offline here: the hub cannot be reached. Online: the id does not exist. Both must say DATA=."""
    with pytest.raises(DataSourceError, match="make pipeline-run DATA="):
        read_source("sentiment-mlops-tests/no-such-dataset")


def ingest_config(
    sources: list[Path], max_rows: int | None = None, extra_train: tuple[Path, ...] = ()
) -> IngestConfig:
    """params.yaml's ingest section with these sources, sample size and extra training sources."""
    return replace(
        PARAMS.ingest,
        sources=[str(s) for s in sources],
        extra_train=[str(s) for s in extra_train],
        max_rows_per_split=max_rows,
    )


def test_sample_per_split_is_seeded(tmp_path: Path) -> None:
    source = tmp_path / "all.csv"
    sentiment_frame().to_csv(source, index=False)
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert ingest_source(ingest_config([source], 20), str(first), 7) == {"unsplit": 20}
    ingest_source(ingest_config([source], 20), str(second), 7)
    pd.testing.assert_frame_equal(pd.read_parquet(first), pd.read_parquet(second))


def test_extra_sources_join_the_training_split_and_every_source_is_recorded(tmp_path: Path) -> None:
    frame = sentiment_frame()
    source, extra = tmp_path / "tweets.csv", tmp_path / "feedback_train.parquet"
    frame.iloc[:100].to_csv(source, index=False)
    frame.iloc[100:].to_parquet(extra)
    output = tmp_path / "ingested.parquet"
    counts = ingest_source(ingest_config([source], extra_train=(extra,)), str(output), 7)
    assert counts == {"unsplit": 100, "train_extra": 44}
    ingested = pd.read_parquet(output)
    assert ingested[ingested["text"].isin(frame["text"].iloc[100:])]["split"].eq("train_extra").all()
    assert ingested["source"].value_counts().to_dict() == {"tweets": 100, "feedback_train": 44}
    described = [{k: s[k] for k in ("name", "uri", "rows", "digest")} for s in sources_of(ingested)]
    assert described == [
        {"name": "tweets", "uri": str(source), "rows": 100, "digest": content_digest(frame.iloc[:100])},
        {"name": "feedback_train", "uri": str(extra), "rows": 44, "digest": content_digest(frame.iloc[100:])},
    ]
    assert [s["label_checks"]["rows"] for s in sources_of(ingested)] == [100, 44]
    with pytest.raises(DataSourceError, match="same name"):
        ingest_source(ingest_config([source], extra_train=(source,)), str(output), 7)


def test_s3_object_and_prefix(s3_endpoint: str, tmp_path: Path) -> None:
    client = Minio(s3_endpoint, access_key="testing", secret_key="testing", secure=False)
    client.make_bucket("data")
    frame = sentiment_frame()
    frame.iloc[:100].to_parquet(tmp_path / "train.parquet")
    frame.iloc[100:].to_parquet(tmp_path / "validation.parquet")
    for name in ("train.parquet", "validation.parquet"):
        client.fput_object("data", f"tweets/{name}", str(tmp_path / name))

    single = read_source("s3://data/tweets/train.parquet")
    assert len(single) == 100 and set(single["split"]) == {"train"}
    folder = read_source("s3://data/tweets/")
    assert folder["split"].value_counts().to_dict() == {"train": 100, "validation": 44}
    with pytest.raises(DataSourceError, match="nothing found"):
        read_source("s3://data/elsewhere/")


@pytest.mark.parametrize(
    ("relative", "rows", "splits"),
    [
        ("tweeteval_sentiment", 47_615, {"train": 45_615, "validation": 2_000}),
        ("tweeteval_sentiment/hf_parquet", 47_615, {"train": 45_615, "validation": 2_000}),
        ("reddit_sentiment/Reddit_Data.csv", 37_249, {}),
        ("youtube_comments_sentiment/YoutubeCommentsDataSet.csv", 18_408, {}),
    ],
)
def test_shared_data_sets(relative: str, rows: int, splits: dict) -> None:
    frame = read_source(str(shared_dataset(relative)))
    assert len(frame) == rows
    assert set(frame["label"]) == set(LABELS)
    assert frame["split"].value_counts().to_dict() == splits


def test_several_sources_are_read_each_row_named_by_its_source_and_each_sampled(tmp_path: Path) -> None:
    frame = sentiment_frame()
    tweets, comments = tmp_path / "tweets.csv", tmp_path / "comments.csv"
    frame.iloc[:100].to_csv(tweets, index=False)
    frame.iloc[100:].rename(columns={"text": "Comment", "label": "Sentiment"}).to_csv(comments, index=False)
    output = tmp_path / "ingested.parquet"
    assert ingest_source(ingest_config([tweets, comments], 30), str(output), 7) == {"unsplit": 60}
    ingested = pd.read_parquet(output)
    assert ingested["source"].value_counts().to_dict() == {"tweets": 30, "comments": 30}
    assert [s["rows"] for s in sources_of(ingested)] == [100, 44]  # the lineage describes each whole source
    with pytest.raises(DataSourceError, match="no data source"):
        ingest_source(ingest_config([]), str(output), 7)
