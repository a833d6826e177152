from pathlib import Path

import pandas as pd
import pytest

from components.preprocess import preprocess_rows, split_frame
from core.lineage import SOURCES_ATTR, sources_of
from tests.helpers import sentiment_frame


def frame_with_splits(*splits: str | None) -> pd.DataFrame:
    frame = sentiment_frame()
    frame["split"] = pd.Series([splits[i % len(splits)] for i in range(len(frame))], dtype="string")
    return frame


def test_source_splits_are_kept() -> None:
    frame = frame_with_splits("train", "validation", "test")
    splits = split_frame(frame, 0.1, 0.1, seed=1)
    assert {name: len(part) for name, part in splits.items()} == {"train": 48, "validation": 48, "test": 48}


def test_missing_test_split_is_carved_from_train_stratified() -> None:
    frame = frame_with_splits("train", "train", "validation")
    splits = split_frame(frame, 0.1, 0.25, seed=1)
    assert len(splits["validation"]) == 48
    assert len(splits["test"]) == 24 and len(splits["train"]) == 72
    assert splits["test"]["label"].value_counts().to_dict() == {"positive": 8, "negative": 8, "neutral": 8}
    assert not set(splits["test"]["text"]) & set(splits["train"]["text"])


def test_unsplit_source_gets_a_seeded_stratified_three_way_split() -> None:
    frame = frame_with_splits(None)
    first, again, other = (split_frame(frame, 0.25, 0.25, seed=s) for s in (3, 3, 4))
    assert {name: len(part) for name, part in first.items()} == {"train": 72, "validation": 36, "test": 36}
    for name in first:
        pd.testing.assert_frame_equal(first[name], again[name])
        assert first[name]["label"].value_counts().nunique() == 1  # every class equally represented
    assert first["test"]["text"].tolist() != other["test"]["text"].tolist()


def test_splits_without_train_are_rejected() -> None:
    with pytest.raises(ValueError, match="have no 'train'"):
        split_frame(frame_with_splits("validation", "test"), 0.1, 0.1, seed=1)


def test_preprocess_writes_normalised_splits(tmp_path: Path) -> None:
    frame = frame_with_splits(None)
    frame.loc[0, "text"] = "@bob loves it https://t.co/x &amp; more"
    frame.to_parquet(tmp_path / "clean.parquet")
    paths = [str(tmp_path / f"{name}.parquet") for name in ("train", "validation", "test")]
    sizes = preprocess_rows(str(tmp_path / "clean.parquet"), *paths, 0.25, 0.25, seed=3)
    assert sizes == {"train": 72, "validation": 36, "test": 36}
    texts = pd.concat(pd.read_parquet(p) for p in paths)["text"].tolist()
    assert "@user loves it http & more" in texts


def test_extra_training_rows_join_train_after_the_carving() -> None:
    frame = frame_with_splits("train", "train", "validation", "train_extra")
    splits = split_frame(frame, 0.1, 0.25, seed=1)
    extra = set(frame[frame["split"] == "train_extra"]["text"])
    assert extra <= set(splits["train"]["text"])
    assert not extra & (set(splits["test"]["text"]) | set(splits["validation"]["text"]))
    assert (len(splits["train"]), len(splits["validation"]), len(splits["test"])) == (54 + 36, 36, 18)


def test_rows_with_and_without_a_split_are_rejected_not_dropped() -> None:
    with pytest.raises(ValueError, match="some rows have a split and some have none"):
        split_frame(frame_with_splits("train", None, "validation"), 0.1, 0.1, seed=1)


def test_the_data_sources_travel_with_every_split(tmp_path: Path) -> None:
    frame = frame_with_splits(None)
    frame.attrs[SOURCES_ATTR] = [{"name": "tweets", "uri": "x.csv", "rows": 144, "digest": "d"}]
    frame.to_parquet(tmp_path / "clean.parquet")
    paths = [str(tmp_path / f"{name}.parquet") for name in ("train", "validation", "test")]
    preprocess_rows(str(tmp_path / "clean.parquet"), *paths, 0.25, 0.25, seed=3)
    assert all(sources_of(pd.read_parquet(p)) == frame.attrs[SOURCES_ATTR] for p in paths)
