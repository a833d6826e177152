"""embedding_reference: sentence embeddings of a seeded sample of the training split, saved with every
candidate (by evaluate) so that the monitor step can test live texts for drift against what the model
was trained on (monitoring/embedding_drift.py)."""

import pandas as pd
from kfp.dsl import Artifact, Dataset, Input, Output

from components import component
from monitoring.embedding_drift import build_embedding_reference


def save_embedding_reference(train_path: str, output_path: str, encoder_id: str, rows: int, seed: int) -> int:
    """Embed ``rows`` seeded training texts with ``encoder_id`` into ``output_path``, each with its data
    source (the monitor estimates the traffic's mix of sources from them); return the rows."""
    train = pd.read_parquet(train_path)
    sources = train["source"].astype(str).tolist() if "source" in train else None
    reference = build_embedding_reference(train["text"].tolist(), encoder_id, rows, seed, sources)
    with open(output_path, "wb") as out:
        out.write(reference.to_bytes())
    return len(reference.embeddings)


@component
def embedding_reference(train: Input[Dataset], config: dict, run: dict, reference: Output[Artifact]):
    """Embed a sample of the training split (params.yaml ``monitor``: encoder_id, reference_rows)."""
    from components.embedding_reference import save_embedding_reference
    from components.monitor import MonitorConfig
    from core.config import RunConfig, from_mapping

    settings = from_mapping(MonitorConfig, config, "monitor")
    seed = from_mapping(RunConfig, run, "run").seed
    rows = save_embedding_reference(
        train.path, reference.path, settings.encoder_id, settings.reference_rows, seed
    )
    reference.metadata.update({"encoder_id": settings.encoder_id, "rows": rows})
