from pathlib import Path

import pandas as pd
import pytest

from components.preprocess import mix_counts, preprocess_rows, resample, split_frame
from core.lineage import SOURCES_ATTR, sources_of
from tests.helpers import sentiment_frame


def frame_with_splits(*splits: str | None, source: str = "tweets") -> pd.DataFrame:
    frame = sentiment_frame().assign(source=source)
    frame["split"] = pd.Series([splits[i % len(splits)] for i in range(len(frame))], dtype="string")
    return frame


def test_source_splits_are_kept() -> None:
    frame = frame_with_splits("train", "validation", "test")
    splits = split_frame(frame, 0.1, 0.1, seed=1, mix_exponent=0.5)
    assert {name: len(part) for name, part in splits.items()} == {"train": 48, "validation": 48, "test": 48}


def test_missing_test_split_is_carved_from_train_stratified() -> None:
    frame = frame_with_splits("train", "train", "validation")
    splits = split_frame(frame, 0.1, 0.25, seed=1, mix_exponent=0.5)
    assert len(splits["validation"]) == 48
    assert len(splits["test"]) == 24 and len(splits["train"]) == 72
    assert splits["test"]["label"].value_counts().to_dict() == {"positive": 8, "negative": 8, "neutral": 8}
    assert not set(splits["test"]["text"]) & set(splits["train"]["text"])


def test_unsplit_source_gets_a_seeded_stratified_three_way_split() -> None:
    frame = frame_with_splits(None)
    first, again, other = (split_frame(frame, 0.25, 0.25, seed=s, mix_exponent=0.5) for s in (3, 3, 4))
    assert {name: len(part) for name, part in first.items()} == {"train": 72, "validation": 36, "test": 36}
    for name in first:
        pd.testing.assert_frame_equal(first[name], again[name])
        assert first[name]["label"].value_counts().nunique() == 1  # every class equally represented
    assert first["test"]["text"].tolist() != other["test"]["text"].tolist()


def test_splits_without_train_are_rejected() -> None:
    with pytest.raises(ValueError, match="have no 'train'"):
        split_frame(frame_with_splits("validation", "test"), 0.1, 0.1, seed=1, mix_exponent=0.5)


def test_preprocess_writes_normalised_splits(tmp_path: Path) -> None:
    frame = frame_with_splits(None)
    frame.loc[0, "text"] = "@bob loves it https://t.co/x &amp; more"
    frame.to_parquet(tmp_path / "clean.parquet")
    paths = [str(tmp_path / f"{name}.parquet") for name in ("train", "validation", "test")]
    sizes = preprocess_rows(str(tmp_path / "clean.parquet"), *paths, 0.25, 0.25, 0.5, seed=3)
    assert sizes == {
        **{"train_rows": 72, "validation_rows": 36, "test_rows": 36},
        **{"train_tweets_rows": 72, "validation_tweets_rows": 36, "test_tweets_rows": 36},
    }
    texts = pd.concat(pd.read_parquet(p) for p in paths)["text"].tolist()
    assert "@user loves it http & more" in texts


def test_extra_training_rows_join_train_after_the_carving() -> None:
    frame = frame_with_splits("train", "train", "validation", "train_extra")
    splits = split_frame(frame, 0.1, 0.25, seed=1, mix_exponent=0.5)
    extra = set(frame[frame["split"] == "train_extra"]["text"])
    assert extra <= set(splits["train"]["text"])
    assert not extra & (set(splits["test"]["text"]) | set(splits["validation"]["text"]))
    assert (len(splits["train"]), len(splits["validation"]), len(splits["test"])) == (54 + 36, 36, 18)


def test_rows_with_and_without_a_split_are_rejected_not_dropped() -> None:
    with pytest.raises(ValueError, match="some rows have a split and some have none"):
        split_frame(frame_with_splits("train", None, "validation"), 0.1, 0.1, seed=1, mix_exponent=0.5)


def test_the_data_sources_travel_with_every_split(tmp_path: Path) -> None:
    frame = frame_with_splits(None)
    frame.attrs[SOURCES_ATTR] = [{"name": "tweets", "uri": "x.csv", "rows": 144, "digest": "d"}]
    frame.to_parquet(tmp_path / "clean.parquet")
    paths = [str(tmp_path / f"{name}.parquet") for name in ("train", "validation", "test")]
    preprocess_rows(str(tmp_path / "clean.parquet"), *paths, 0.25, 0.25, 0.5, seed=3)
    assert all(sources_of(pd.read_parquet(p)) == frame.attrs[SOURCES_ATTR] for p in paths)


def test_each_source_keeps_its_own_slices_and_training_rows_are_mixed_by_the_exponent() -> None:
    """A split source and an unsplit one: each keeps (or gets) its own validation and test slice; their
    training rows are mixed with shares proportional to rows ** exponent, the total kept."""
    tweets = frame_with_splits("train", "train", "train", "validation", "test", source="tweets")
    comments = frame_with_splits(None, source="comments").iloc[::2]  # 72 rows
    comments = comments.assign(text="comment: " + comments["text"])
    frame = pd.concat([tweets, comments], ignore_index=True)
    natural, equal = (split_frame(frame, 0.25, 0.25, seed=1, mix_exponent=e) for e in (1.0, 0.0))
    for splits in (natural, equal):
        for split in ("validation", "test"):
            assert splits[split]["source"].value_counts().to_dict() == {
                "tweets": (tweets["split"] == split).sum(),
                "comments": 18,
            }
        assert not set(splits["test"]["text"]) & set(splits["train"]["text"])
    assert natural["train"]["source"].value_counts().to_dict() == {"tweets": 87, "comments": 36}
    assert equal["train"]["source"].value_counts().to_dict() == {"tweets": 61, "comments": 62}


def test_mix_counts_keep_the_total_and_interpolate_between_natural_and_equal_shares() -> None:
    sizes = {"big": 9000, "small": 1000}
    assert mix_counts(sizes, 1.0) == sizes
    assert mix_counts(sizes, 0.0) == {"big": 5000, "small": 5000}
    assert mix_counts(sizes, 0.5) == {"big": 7500, "small": 2500}
    assert sum(mix_counts({"a": 87, "b": 36}, 0.0).values()) == 123  # rounding keeps the total
    with pytest.raises(ValueError, match="mix_exponent"):
        mix_counts(sizes, 1.5)


def test_resample_uses_every_row_before_repeating_any() -> None:
    frame = pd.DataFrame({"text": list("abcde")})
    up, down = resample(frame, 12, seed=0), resample(frame, 3, seed=0)
    assert len(up) == 12 and sorted(up["text"].value_counts()) == [2, 2, 2, 3, 3]
    assert len(down) == 3 and down["text"].is_unique
