"""Preprocess and split: normalise texts (the same function serving uses) and produce
train/validation/test, keeping the source's own splits where it has them.
"""

import logging
from dataclasses import dataclass

import pandas as pd
from kfp.dsl import Dataset, Input, Metrics, Output
from sklearn.model_selection import train_test_split

from components import component
from components.ingest import EXTRA_TRAIN_SPLIT
from core.text import normalize_text

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


def _carve(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded, stratified split of ``frame`` into (rest, carved) with ``fraction`` of rows carved."""
    rest, carved = train_test_split(frame, test_size=fraction, stratify=frame["label"], random_state=seed)
    return rest, carved


def split_frame(
    frame: pd.DataFrame, validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, pd.DataFrame]:
    """Keep the source's splits; carve whichever of validation/test it lacks from train; then add the
    ``extra_train`` sources' rows (split EXTRA_TRAIN_SPLIT) to train.

    A source with no splits at all is split into train/validation/test, stratified and seeded.
    """
    is_extra = frame["split"] == EXTRA_TRAIN_SPLIT
    extra, frame = frame[is_extra.fillna(False)], frame[~is_extra.fillna(False)]
    if frame["split"].isna().any() and frame["split"].notna().any():
        raise ValueError("some rows have a split and some have none: give every row a split, or none")
    given = {name: frame[frame["split"] == name] for name in SPLITS if (frame["split"] == name).any()}
    if "train" not in given:
        if not frame["split"].isna().all():
            raise ValueError(f"splits {sorted(frame['split'].dropna().unique())} have no 'train'")
        given = {"train": frame}
    train = given["train"]
    if "test" not in given:
        train, given["test"] = _carve(train, test_fraction, seed)
    if "validation" not in given:
        fraction_of_rest = validation_fraction / (1.0 - test_fraction)
        train, given["validation"] = _carve(train, fraction_of_rest, seed)
    given["train"] = pd.concat([train, extra], ignore_index=True)
    return {name: given[name].assign(split=name).reset_index(drop=True) for name in SPLITS}


@dataclass(frozen=True)
class PreprocessConfig:
    """params.yaml ``preprocess``: see the comments there."""

    validation_fraction: float
    test_fraction: float


def preprocess_rows(
    clean_path: str,
    train_path: str,
    validation_path: str,
    test_path: str,
    validation_fraction: float,
    test_fraction: float,
    seed: int,
) -> dict[str, int]:
    """Normalise the clean rows and write the three splits as parquet; return their sizes."""
    frame = pd.read_parquet(clean_path)
    frame["text"] = frame["text"].map(normalize_text)
    splits = split_frame(frame, validation_fraction, test_fraction, seed)
    for name, path in zip(SPLITS, (train_path, validation_path, test_path), strict=True):
        splits[name].to_parquet(path, index=False)
    sizes = {name: len(split) for name, split in splits.items()}
    logger.info("split sizes: %s", sizes)
    return sizes


@component
def preprocess(
    clean: Input[Dataset],
    config: dict,
    run: dict,
    train: Output[Dataset],
    validation: Output[Dataset],
    test: Output[Dataset],
    split_sizes: Output[Metrics],
):
    """Normalise texts and split into train/validation/test (keeping the source's own splits)."""
    from components import keep_metrics
    from components.preprocess import PreprocessConfig, preprocess_rows
    from core.config import RunConfig, from_mapping

    settings = from_mapping(PreprocessConfig, config, "preprocess")
    sizes = preprocess_rows(
        clean.path,
        train.path,
        validation.path,
        test.path,
        settings.validation_fraction,
        settings.test_fraction,
        from_mapping(RunConfig, run, "run").seed,
    )
    for name, size in sizes.items():
        split_sizes.log_metric(f"{name}_rows", size)
    keep_metrics(split_sizes)
