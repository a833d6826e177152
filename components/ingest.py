"""Ingest: read one or more labelled text data sets, each from a local path, an s3:// URI or a Hugging
Face dataset id, and normalise them to the columns ``text``, ``label`` (negative/neutral/positive),
``split`` and ``source`` (the source's short name); sources named in ``extra_train`` (e.g. the labelled
feedback the monitor collected) join the training split. Every source read is recorded with its content
digest (core/lineage.py).
"""

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from kfp.dsl import Dataset, Output

from components import component
from components.label_checks import LabelChecks, check_labels
from core import storage
from core.hub import hub_unreachable
from core.labels import normalize_labels
from core.lineage import SOURCES_ATTR, describe_source, source_name, sources_of

logger = logging.getLogger(__name__)

TEXT_COLUMNS = ("text", "clean_comment", "comment", "sentence", "tweet", "review", "content")
LABEL_COLUMNS = ("label", "labels", "category", "sentiment", "class", "target")
SPLIT_NAMES = {
    "train": "train",
    "validation": "validation",
    "val": "validation",
    "dev": "validation",
    "valid": "validation",
    "test": "test",
}
TABLE_SUFFIXES = {".csv", ".tsv", ".parquet", ".jsonl"}
# The split of the ``extra_train`` sources' rows: preprocess adds them to train after it has carved any
# missing validation or test split from the main source, so those stay the main source's.
EXTRA_TRAIN_SPLIT = "train_extra"


class DataSourceError(RuntimeError):
    """The data source could not be read; the message says how to fix it."""


def pick_column(columns: list[str], candidates: tuple[str, ...], what: str) -> str:
    by_lower = {c.lower(): c for c in columns}
    for candidate in candidates:
        if candidate in by_lower:
            return by_lower[candidate]
    raise DataSourceError(f"no {what} column: expected one of {candidates}, found {columns}")


def _normalise_frame(frame: pd.DataFrame, split: str | None) -> pd.DataFrame:
    """Rename the source's text/label columns and map its labels onto the shared label set."""
    columns = [str(c) for c in frame.columns]
    text_column = pick_column(columns, TEXT_COLUMNS, "text")
    label_column = pick_column(columns, LABEL_COLUMNS, "label")
    labels = frame[label_column].tolist()
    return pd.DataFrame(
        {
            "text": frame[text_column].astype("string"),
            "label": pd.Series(normalize_labels(labels), index=frame.index, dtype="string"),
            "split": pd.Series(split, index=frame.index, dtype="string"),
        }
    )


def read_table(path: Path) -> pd.DataFrame:
    """Read one CSV/TSV/parquet/JSON-lines file; undecodable bytes become U+FFFD so validation can flag
    them."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False, encoding_errors="replace")
    separator = "\t" if path.suffix == ".tsv" else ","
    # keep_default_na=False: an empty text stays "" (validation quarantines it), not NaN.
    return pd.read_csv(
        path,
        sep=separator,
        encoding_errors="replace",
        keep_default_na=False,
        quoting=3 if separator == "\t" else 0,
    )


def _split_of(path: Path) -> str | None:
    return SPLIT_NAMES.get(path.stem.split("_")[0].split("-")[0].lower())


def _read_tweeteval_dir(folder: Path) -> pd.DataFrame:
    """TweetEval's layout: ``<split>_text.txt`` and ``<split>_labels.txt`` aligned by line."""
    frames = []
    for text_file in sorted(folder.glob("*_text.txt")):
        prefix = text_file.name.removesuffix("_text.txt")
        label_file = folder / f"{prefix}_labels.txt"
        if not label_file.exists():
            raise DataSourceError(f"{text_file} has no matching {label_file.name}")
        texts = text_file.read_bytes().decode("utf-8", errors="replace").splitlines()
        labels = label_file.read_text().split()
        if len(texts) != len(labels):
            raise DataSourceError(f"{text_file.name} has {len(texts)} lines, {label_file.name} {len(labels)}")
        frame = pd.DataFrame({"text": [t.strip() for t in texts], "label": labels})
        frames.append(_normalise_frame(frame, SPLIT_NAMES.get(prefix, prefix)))
    return pd.concat(frames, ignore_index=True)


def _from_datasets(dataset_dict) -> pd.DataFrame:
    """Convert a ``datasets.DatasetDict``; ClassLabel features give the label names."""
    frames = []
    for split_name, dataset in dataset_dict.items():
        frame = dataset.to_pandas()
        label_column = pick_column(list(frame.columns), LABEL_COLUMNS, "label")
        feature = dataset.features.get(label_column)
        if hasattr(feature, "int2str"):
            frame[label_column] = [feature.int2str(int(v)) for v in frame[label_column]]
        frames.append(_normalise_frame(frame, SPLIT_NAMES.get(split_name, split_name)))
    return pd.concat(frames, ignore_index=True)


def _read_local(path: Path) -> pd.DataFrame:
    if path.is_file():
        if path.suffix not in TABLE_SUFFIXES:
            raise DataSourceError(f"{path}: unsupported file type (use {sorted(TABLE_SUFFIXES)})")
        return _normalise_frame(read_table(path), _split_of(path))
    if any(path.glob("*_text.txt")):
        return _read_tweeteval_dir(path)
    import datasets

    return _from_datasets(datasets.load_dataset(str(path)))


HUB_HINT = (
    "With no network, pass a local path or an s3:// URI instead, e.g. "
    "`make pipeline-run DATA=../shared/data/tweeteval_sentiment` (or set HF_HUB_OFFLINE=1 "
    "to use a copy already in the Hugging Face cache)."
)


def _check_hub(dataset_id: str) -> None:
    """Raise DataSourceError, in seconds, when the hub that holds ``dataset_id`` cannot be reached."""
    problem = hub_unreachable()
    if problem:
        raise DataSourceError(f"cannot load '{dataset_id}' from the Hugging Face hub: {problem}. {HUB_HINT}")


def _read_hub(dataset_id: str) -> pd.DataFrame:
    """``owner/name`` or ``owner/name:config`` from the Hugging Face hub, through ``datasets``."""
    import datasets

    name, _, config = dataset_id.partition(":")
    _check_hub(dataset_id)
    try:
        return _from_datasets(datasets.load_dataset(name, config or None))
    except Exception as exc:
        raise DataSourceError(
            f"could not load '{dataset_id}' from the Hugging Face hub ({type(exc).__name__}: {exc}). "
            + HUB_HINT
        ) from exc


def _is_path(source: str) -> bool:
    """True when ``source`` names a local file or folder rather than a Hugging Face dataset id."""
    return source.startswith((".", "/", "~")) or Path(source).suffix in TABLE_SUFFIXES


def check_source(source: str) -> None:
    """Raise DataSourceError, in seconds, when ``source`` is a local path that does not exist, an s3://
    URI with nothing under it, or a hub id whose hub cannot be reached."""
    if storage.is_remote(source):
        try:
            found = storage.exists(source)  # an object or a prefix
        except OSError as exc:  # unreachable endpoint, refused credentials: say which source
            raise DataSourceError(f"{source}: cannot be read ({exc})") from exc
        if not found:
            raise DataSourceError(f"{source}: nothing found there")
    elif not Path(source).expanduser().exists():
        if _is_path(source):
            raise DataSourceError(f"{source}: no such file or folder")
        _check_hub(source)


def read_source(source: str) -> pd.DataFrame:
    """Read any supported source into columns text, label, split (split is null when it has none)."""
    if storage.is_remote(source):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                return _read_local(storage.local_copy(source, Path(tmp)))
            except FileNotFoundError as exc:
                raise DataSourceError(str(exc)) from exc
    path = Path(source).expanduser()
    if path.exists():
        return _read_local(path)
    if _is_path(source):
        raise DataSourceError(f"{source}: no such file or folder")
    return _read_hub(source)


@dataclass(frozen=True)
class IngestConfig:
    """params.yaml ``ingest``: see the comments there."""

    sources: list[str]
    extra_train: list[str]
    max_rows_per_split: int | None
    label_check_rows: int
    machine_label_agreement: float

    def __post_init__(self) -> None:
        if self.max_rows_per_split is not None and self.max_rows_per_split < 1:
            raise ValueError("ingest.max_rows_per_split must be at least 1, or null for every row")


def _sample_splits(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """A seeded random sample of at most ``max_rows`` rows of each split (or of the unsplit rows)."""
    return (
        frame.groupby(frame["split"].fillna(""), group_keys=False, sort=False)
        .apply(lambda g: g.sample(n=min(len(g), max_rows), random_state=seed))
        .reset_index(drop=True)
    )


def ingest_source(config: IngestConfig, output_path: str, seed: int) -> dict[str, int]:
    """Read every one of ``config.sources`` (and every ``extra_train`` source, all of whose rows join the
    training split) and write them as one parquet to ``output_path``, each row with its source's name,
    and the sources with their digests and label checks (components/label_checks.py) in its metadata;
    return the row count per split.

    ``max_rows_per_split`` > 0 keeps a seeded random sample of each split of each of the sources (for
    quick runs and tests); ``extra_train`` is kept whole. The labels are checked on every row read.
    """
    if not config.sources:
        raise DataSourceError("no data source: name at least one (params.yaml ingest.sources, or DATA=)")
    named = [(source_name(uri), uri, read_source(uri)) for uri in config.sources]
    extras = [
        (source_name(uri), uri, read_source(uri).assign(split=EXTRA_TRAIN_SPLIT))
        for uri in config.extra_train
    ]
    lineage = [
        describe_source(name, uri, frame)
        | {"label_checks": source_label_checks(name, frame, config, seed).to_dict()}
        for name, uri, frame in named + extras
    ]
    if len({s["name"] for s in lineage}) < len(lineage):
        raise DataSourceError(f"two data sources have the same name: {[s['name'] for s in lineage]}")
    if config.max_rows_per_split:
        named = [
            (name, uri, _sample_splits(frame, config.max_rows_per_split, seed)) for name, uri, frame in named
        ]
    frame = pd.concat([f.assign(source=name) for name, _, f in named + extras], ignore_index=True)
    frame["split"] = frame["split"].astype("string")
    frame["source"] = frame["source"].astype("string")
    frame.attrs[SOURCES_ATTR] = lineage
    frame.to_parquet(output_path, index=False)
    counts = {str(k or "unsplit"): int(v) for k, v in frame["split"].fillna("").value_counts().items()}
    logger.info("ingested %d rows from %s: %s", len(frame), ", ".join(config.sources), counts)
    return counts


def source_label_checks(name: str, frame: pd.DataFrame, config: IngestConfig, seed: int) -> LabelChecks:
    """The label checks of the source ``name``, logged (a warning when it looks machine-labelled)."""
    checks = check_labels(frame, config.label_check_rows, config.machine_label_agreement, seed)
    log = logger.warning if checks.machine_labelled else logger.info
    log("labels of %s: %s", name, checks.summary())
    return checks


def label_summary(path: str) -> dict:
    """The label checks of the sources of the ingested parquet at ``path``, for the step's metadata: the
    sources flagged as machine-labelled and each source's lexicon agreement."""
    checks = {source["name"]: source["label_checks"] for source in sources_of(pd.read_parquet(path))}
    return {
        "machine_labelled": sorted(name for name, c in checks.items() if c["machine_labelled"]),
        "lexicon_agreement": {name: c["agreement"] for name, c in checks.items()},
    }


@component
def ingest(config: dict, run: dict, fingerprints: str, dataset: Output[Dataset]):
    """Read local paths, s3:// URIs or Hugging Face ids (params.yaml ``ingest``) into one
    text/label/split/source parquet, ``dataset``. ``fingerprints`` (what the sources held at submission,
    PipelineParams.data_fingerprints) is not read here: it is part of the step's cache key."""
    from components.ingest import IngestConfig, ingest_source, label_summary
    from core.config import RunConfig, from_mapping

    settings = from_mapping(IngestConfig, config, "ingest")
    counts = ingest_source(settings, dataset.path, from_mapping(RunConfig, run, "run").seed)
    dataset.metadata.update(
        {"sources": settings.sources, "extra_train": settings.extra_train, "rows": counts}
        | label_summary(dataset.path)
    )
