"""Data lineage: which sources a training set came from, each with a content digest.

Ingest describes every source it reads; the list travels with the data in the parquet files' metadata
(``DataFrame.attrs``, which pandas stores in parquet) through validate and preprocess to the trainers,
which log each source to their MLflow run as a dataset input. So any registered version's run names
its exact data.
"""

import hashlib
import json
import re
import warnings
from pathlib import Path

import pandas as pd

from core import storage

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


def source_fingerprint(source: str) -> str:
    """What ``source`` holds now, cheaply, for KFP's cache key: a local file's or folder's SHA-256 of its
    files' names and contents; an s3:// object's or prefix's objects' keys, sizes and times written (every
    PUT sets a new time); a Hugging Face id's revision on the hub. Where it cannot be known (the hub or S3
    unreachable) a fingerprint no other run gets, so the source is read again rather than taken from a
    cache."""
    import uuid

    digest = hashlib.sha256()
    path = Path(source).expanduser()
    try:
        if storage.is_remote(source):
            found = storage.files_under(source)
            if not found:
                raise FileNotFoundError(source)
            for item in found:
                digest.update(f"{item.path}\t{item.size}\t{item.mtime_ns}\n".encode())
        elif path.exists():
            files = sorted(f for f in ([path] if path.is_file() else path.rglob("*")) if f.is_file())
            for file in files:
                digest.update(f"{file.relative_to(path.parent)}\n".encode())
                with file.open("rb") as handle:
                    digest.update(hashlib.file_digest(handle, "sha256").digest())
        else:
            from huggingface_hub import HfApi

            from core.hub import hub_unreachable

            if hub_unreachable():
                raise ConnectionError("the hub is unreachable")
            digest.update(f"{source}@{HfApi().dataset_info(source.partition(':')[0]).sha}".encode())
    except Exception as exc:  # any failure means "unknown", which is safe
        return f"unknown ({type(exc).__name__}) {uuid.uuid4().hex}"
    return digest.hexdigest()


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


def log_sources(sources: list[dict], context: str = "training", run_id: str | None = None) -> None:
    """Log each source as a dataset input (name, digest, URI) to the run ``run_id`` (default: the active
    MLflow run). MLflow is imported here, not by the module: the data steps that describe sources never
    log a run, and importing it costs each of their processes about 0.7 s."""
    import mlflow
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = []
    for source in sources:
        digest = source["digest"][:DATASET_DIGEST_CHARS]
        dataset = MetaDataset(_dataset_source(source["uri"]), name=source["name"], digest=digest)
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), [InputTag(MLFLOW_DATASET_CONTEXT, context)]))
    mlflow.MlflowClient().log_inputs(run_id or mlflow.active_run().info.run_id, datasets=inputs)


def sources_fingerprints(sources: list[str]) -> str:
    """Each source with what it holds now (:func:`source_fingerprint`), as JSON: the steps that read the
    sources take it as an input, so KFP's cache key changes when a source does."""
    return json.dumps({source: source_fingerprint(source) for source in sources}, sort_keys=True)


def flat_params(sections: dict[str, dict]) -> dict:
    """Every parameter of ``sections`` as a flat ``section.key`` name (lists and dicts as JSON), as each
    candidate's MLflow run logs them."""
    return {
        f"{section}.{key}": json.dumps(value) if isinstance(value, list | dict) else value
        for section, values in sections.items()
        for key, value in values.items()
    }
