"""Validate: quarantine bad rows with a reason each, and fail when too many are bad or a class is missing."""

import logging
from dataclasses import dataclass

import pandas as pd
from kfp.dsl import Dataset, Input, Metrics, Output

from components import component
from core.labels import LABELS

logger = logging.getLogger(__name__)

# Reasons, in the order they are checked: a row is quarantined for the first that applies.
REASONS = (
    "missing_text",
    "invalid_utf8",
    "too_long",
    "unknown_label",
    "conflicting_labels",
    "duplicate_text",
)


class ValidationError(RuntimeError):
    """The data set is not fit to train on; the message says why."""


@dataclass(frozen=True)
class ValidationReport:
    rows_in: int
    rows_clean: int
    quarantined: dict[str, int]

    @property
    def bad_fraction(self) -> float:
        return (self.rows_in - self.rows_clean) / self.rows_in if self.rows_in else 1.0


def text_checks(text: pd.Series, max_text_chars: int) -> dict[str, pd.Series]:
    """The checks of a text alone (missing, undecodable, too long), by reason: True where it fails.
    Batch scoring quarantines unlabelled texts by these too."""
    text = text.astype("string")
    return {
        "missing_text": text.isna() | (text.str.strip().fillna("") == ""),
        "invalid_utf8": text.fillna("").str.contains("\ufffd", regex=False),
        "too_long": text.fillna("").str.len() > max_text_chars,
    }


def first_failed(checks: dict[str, pd.Series], order: tuple[str, ...]) -> pd.Series:
    """Each row's first failed check in ``order`` ("" where none failed)."""
    reason = pd.Series("", index=next(iter(checks.values())).index, dtype="string")
    for name in order:  # earlier reasons win
        reason = reason.mask((reason == "") & checks[name].fillna(False).astype(bool), name)
    return reason


def find_bad_rows(frame: pd.DataFrame, max_text_chars: int) -> pd.Series:
    """Return the quarantine reason of each row ("" for a good row)."""
    key = frame["text"].astype("string").str.strip().str.lower()
    label_sets = frame.assign(key=key).groupby("key", dropna=True)["label"].transform("nunique")
    checks = {
        **text_checks(frame["text"], max_text_chars),
        "unknown_label": ~frame["label"].isin(LABELS),
        "conflicting_labels": label_sets.fillna(1) > 1,
        "duplicate_text": key.duplicated(keep="first") & key.notna(),
    }
    return first_failed(checks, REASONS)


@dataclass(frozen=True)
class ValidateConfig:
    """params.yaml ``validate``: see the comments there."""

    max_bad_fraction: float
    max_text_chars: int


def validate_rows(
    input_path: str,
    clean_path: str,
    quarantine_path: str,
    max_bad_fraction: float,
    max_text_chars: int,
) -> ValidationReport:
    """Split ``input_path`` into clean rows and quarantined rows (with a ``reason`` column).

    The quarantine is written before any failure, so no row is lost even when the step fails.
    """
    frame = pd.read_parquet(input_path)
    missing = {"text", "label", "split"} - set(frame.columns)
    if missing:
        raise ValidationError(f"schema: missing columns {sorted(missing)} in {input_path}")
    reason = find_bad_rows(frame, max_text_chars)
    bad = reason != ""
    frame[bad].assign(reason=reason[bad]).to_parquet(quarantine_path, index=False)
    clean = frame[~bad].reset_index(drop=True)
    clean.to_parquet(clean_path, index=False)

    counts = reason[bad].value_counts()
    report = ValidationReport(len(frame), len(clean), {r: int(counts.get(r, 0)) for r in REASONS})
    logger.info(
        "validated %d rows: %d clean, quarantined %s", report.rows_in, report.rows_clean, report.quarantined
    )
    if report.bad_fraction > max_bad_fraction:
        raise ValidationError(
            f"{report.bad_fraction:.1%} of rows are bad (limit {max_bad_fraction:.1%}): "
            f"{report.quarantined}; see the quarantine artifact"
        )
    absent = [label for label in LABELS if label not in set(clean["label"])]
    if absent:
        raise ValidationError(f"class(es) {absent} have no clean rows; every class in {LABELS} is needed")
    return report


@component
def validate(
    raw: Input[Dataset],
    config: dict,
    clean: Output[Dataset],
    quarantine: Output[Dataset],
    report: Output[Metrics],
):
    """Quarantine bad rows with their reasons; fail when too many are bad or a class is missing."""
    from components import keep_metrics
    from components.validate import ValidateConfig, validate_rows
    from core.config import from_mapping

    settings = from_mapping(ValidateConfig, config, "validate")
    result = validate_rows(
        raw.path, clean.path, quarantine.path, settings.max_bad_fraction, settings.max_text_chars
    )
    report.log_metric("rows_in", result.rows_in)
    report.log_metric("rows_clean", result.rows_clean)
    for reason, count in result.quarantined.items():
        report.log_metric(f"quarantined_{reason}", count)
    keep_metrics(report)
