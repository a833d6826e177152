"""Out-of-domain sets: labelled texts from other sources (e.g. Reddit or YouTube comments) that every
candidate is also scored on, so the report and the gate see how a model holds up beyond its training
domain. Each source is read like the training data, its bad rows are dropped (and counted) by the same
checks, its texts normalised the same way, and a stratified, seeded sample is kept.
"""

import logging
from dataclasses import dataclass

import pandas as pd
from kfp.dsl import Dataset, Metrics, Output
from sklearn.model_selection import train_test_split

from components import component
from components.ingest import read_source
from components.validate import find_bad_rows
from core.lineage import source_name
from core.text import normalize_text

logger = logging.getLogger(__name__)

COLUMNS = ("text", "label", "domain")


def _sample(frame: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    if max_rows is None or len(frame) <= max_rows:
        return frame
    kept, _ = train_test_split(frame, train_size=max_rows, stratify=frame["label"], random_state=seed)
    return kept


@dataclass(frozen=True)
class OutOfDomainConfig:
    """params.yaml ``out_of_domain``: see the comments there."""

    sources: list[str]
    max_rows: int | None

    def __post_init__(self) -> None:
        if self.max_rows is not None and self.max_rows < 1:
            raise ValueError("out_of_domain.max_rows must be at least 1, or null for every row")


def prepare_sources(
    sources: list[str], output_path: str, max_rows: int | None, max_text_chars: int, seed: int
) -> dict[str, dict[str, int]]:
    """Write every source's clean, sampled rows (columns text, label, domain) to one parquet file.

    Returns per domain the rows kept and the rows dropped for each quarantine reason. No sources gives an
    empty file (the candidates are then scored in domain only).
    """
    frames, report = [], {}
    for source in sources:
        name = source_name(source)
        if name in report:
            raise ValueError(f"two out-of-domain sources are both named {name!r}: rename one")
        frame = read_source(source)
        reason = find_bad_rows(frame, max_text_chars)
        clean = frame[reason == ""].assign(text=lambda f: f["text"].map(normalize_text), domain=name)
        kept = _sample(clean, max_rows, seed)
        dropped = reason[reason != ""].value_counts()
        report[name] = {"rows": len(kept), **{f"dropped_{r}": int(n) for r, n in dropped.items()}}
        frames.append(kept[list(COLUMNS)])
        logger.info("out-of-domain %s from %s: %s", name, source, report[name])
    combined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(COLUMNS))
    combined.astype("string").to_parquet(output_path, index=False)
    return report


@component
def prepare_out_of_domain(
    config: dict,
    validate: dict,
    run: dict,
    fingerprints: str,
    out_of_domain: Output[Dataset],
    report: Output[Metrics],
):
    """Read, clean (with validate's text limit) and sample each out-of-domain source (params.yaml
    ``out_of_domain``) into one text/label/domain parquet; ``report`` holds the rows kept and dropped
    (by reason) per domain. ``fingerprints``, as for ingest, is part of the cache key only."""
    from components import keep_metrics
    from components.prepare_out_of_domain import OutOfDomainConfig, prepare_sources
    from components.validate import ValidateConfig
    from core.config import RunConfig, from_mapping

    settings = from_mapping(OutOfDomainConfig, config, "out_of_domain")
    max_text_chars = from_mapping(ValidateConfig, validate, "validate").max_text_chars
    seed = from_mapping(RunConfig, run, "run").seed
    for domain, counts in prepare_sources(
        settings.sources, out_of_domain.path, settings.max_rows, max_text_chars, seed
    ).items():
        for name, count in counts.items():
            report.log_metric(f"{domain}_{name}", count)
    keep_metrics(report)
