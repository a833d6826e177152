"""Data lineage: which sources a training set came from, each with a content digest.

Ingest describes every source it reads; the list travels with the data in the parquet files' metadata
(``DataFrame.attrs``, which pandas stores in parquet) through validate and preprocess to the trainers,
which log each source to their MLflow run as a dataset input. So any registered version's run names
its exact data.
"""

import hashlib
import re
import warnings
from pathlib import Path

import mlflow
import pandas as pd

SOURCES_ATTR = "data_sources"
DATASET_DIGEST_CHARS = 32  # MLflow keeps at most 36 characters of a dataset digest: 128 bits of SHA-256


def source_name(source: str) -> str:
    """A short metric-safe name for ``source``: its folder or file stem, or the HF dataset name."""
    location = source.rstrip("/")
    if "://" not in location:
        location = location.partition(":")[0]  # an HF id's config
    stem = Path(location).stem
    return re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_") or "ood"


def content_digest(frame: pd.DataFrame) -> str:
    """A fingerprint of the (text, label) pairs, independent of row order."""
    rows = sorted(f"{t}\t{label}" for t, label in zip(frame["text"], frame["label"], strict=True))
    return hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()


def describe_source(name: str, uri: str, frame: pd.DataFrame) -> dict:
    """What the lineage records of one source: name, URI, rows and content digest."""
    return {"name": name, "uri": uri, "rows": len(frame), "digest": content_digest(frame)}


def sources_of(frame: pd.DataFrame) -> list[dict]:
    """The sources a frame read from a pipeline's parquet came from (empty when unknown)."""
    return list(frame.attrs.get(SOURCES_ATTR, []))


def _dataset_source(uri: str):
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

    local = Path(uri).expanduser()
    if local.exists():
        uri = str(local.resolve())
    elif "://" not in uri and not uri.startswith((".", "/", "~")):  # a Hugging Face id[:config]
        name, _, config = uri.partition(":")
        return HuggingFaceDatasetSource(name, config_name=config or None)
    with warnings.catch_warnings():  # mlflow warns that it guessed the source type
        warnings.simplefilter("ignore")
        return resolve_dataset_source(uri)


def log_sources(sources: list[dict], context: str = "training") -> None:
    """Log each source to the active MLflow run as a dataset input (name, digest, URI)."""
    from mlflow.data.meta_dataset import MetaDataset

    for source in sources:
        digest = source["digest"][:DATASET_DIGEST_CHARS]
        dataset = MetaDataset(_dataset_source(source["uri"]), name=source["name"], digest=digest)
        mlflow.log_input(dataset, context=context)
