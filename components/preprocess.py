"""Preprocess and split: normalise texts (the same function serving uses) and produce
train/validation/test, per source (keeping a source's own splits where it has them), then mix the sources'
training rows by a documented scheme (:func:`mix_counts`). Validation and test keep every source's
slice whole: the trainers select on the validation mix, the gate judges every test slice.
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


def split_source(
    frame: pd.DataFrame, validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, pd.DataFrame]:
    """One source's train/validation/test: keep its splits; carve whichever of validation/test it lacks
    from train. A source with no splits at all is split three ways, stratified and seeded."""
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
    return {"train": train, **{name: given[name] for name in ("validation", "test")}}


def mix_counts(sizes: dict[str, int], exponent: float) -> dict[str, int]:
    """Training rows per source in the mix: shares proportional to ``size ** exponent``, the total kept.
    1 keeps the sources' own proportions, 0 gives every source the same number of rows; in between a
    small source is upsampled and a large one downsampled (temperature sampling, as in multilingual
    training: Conneau et al., 2020)."""
    if not 0 <= exponent <= 1:
        raise ValueError(f"preprocess.mix_exponent must be in [0, 1], got {exponent}")
    weights = {name: size**exponent for name, size in sizes.items()}
    total, weight_sum = sum(sizes.values()), sum(weights.values())
    exact = {name: total * weight / weight_sum for name, weight in weights.items()}
    counts = {name: int(share) for name, share in exact.items()}
    by_remainder = sorted(exact, key=lambda name: (counts[name] - exact[name], name))
    for name in by_remainder[: total - sum(counts.values())]:  # the largest remainders round up
        counts[name] += 1
    return counts


def resample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """``rows`` rows of ``frame``: a seeded sample without replacement when fewer than it has; else
    every row as many whole times as fit, and a seeded sample for the rest."""
    repeats, rest = divmod(rows, len(frame))
    return pd.concat([frame] * repeats + [frame.sample(n=rest, random_state=seed)], ignore_index=True)


def split_frame(
    frame: pd.DataFrame, validation_fraction: float, test_fraction: float, seed: int, mix_exponent: float
) -> dict[str, pd.DataFrame]:
    """Split each source on its own (:func:`split_source`), so that every source has its own validation
    and test slice; mix the sources' training rows by :func:`mix_counts`; then add the ``extra_train``
    sources' rows (split EXTRA_TRAIN_SPLIT) to train, as they are."""
    is_extra = (frame["split"] == EXTRA_TRAIN_SPLIT).fillna(False)
    extra, frame = frame[is_extra], frame[~is_extra]
    parts = {
        name: split_source(rows, validation_fraction, test_fraction, seed)
        for name, rows in frame.groupby("source", sort=True)
    }
    counts = mix_counts({name: len(p["train"]) for name, p in parts.items()}, mix_exponent)
    mixed = {"train": [resample(p["train"], counts[name], seed) for name, p in parts.items()] + [extra]}
    mixed |= {split: [p[split] for p in parts.values()] for split in ("validation", "test")}
    splits = {name: pd.concat(mixed[name], ignore_index=True).assign(split=name) for name in SPLITS}
    for split in splits.values():
        split.attrs = dict(frame.attrs)  # the sources' lineage travels on (core/lineage.py)
    return splits


@dataclass(frozen=True)
class PreprocessConfig:
    """params.yaml ``preprocess``: see the comments there."""

    validation_fraction: float
    test_fraction: float
    mix_exponent: float


def preprocess_rows(
    clean_path: str,
    train_path: str,
    validation_path: str,
    test_path: str,
    validation_fraction: float,
    test_fraction: float,
    mix_exponent: float,
    seed: int,
) -> dict[str, int]:
    """Normalise the clean rows and write the three splits as parquet; return their sizes, in all
    (``<split>_rows``) and per source (``<split>_<source>_rows``)."""
    frame = pd.read_parquet(clean_path)
    frame["text"] = frame["text"].map(normalize_text)
    splits = split_frame(frame, validation_fraction, test_fraction, seed, mix_exponent)
    sizes = {}
    for name, path in zip(SPLITS, (train_path, validation_path, test_path), strict=True):
        splits[name].to_parquet(path, index=False)
        sizes[f"{name}_rows"] = len(splits[name])
        for source, rows in splits[name]["source"].value_counts(sort=False).items():
            sizes[f"{name}_{source}_rows"] = int(rows)
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
        settings.mix_exponent,
        from_mapping(RunConfig, run, "run").seed,
    )
    for name, size in sizes.items():
        split_sizes.log_metric(name, size)
    keep_metrics(split_sizes)
