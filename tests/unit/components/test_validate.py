from pathlib import Path

import pandas as pd
import pytest

from components.validate import REASONS, ValidationError, validate_rows


def write(tmp_path: Path, rows: list[tuple]) -> str:
    path = tmp_path / "raw.parquet"
    pd.DataFrame(rows, columns=["text", "label", "split"]).astype("string").to_parquet(path)
    return str(path)


def outputs(tmp_path: Path) -> tuple[str, str]:
    """Where the clean rows and the quarantine go."""
    return str(tmp_path / "c.parquet"), str(tmp_path / "q.parquet")


GOOD = [(f"text number {i}", label, None) for i, label in enumerate(["negative", "neutral", "positive"] * 10)]
BAD = [
    (None, "positive", None),
    ("   ", "neutral", None),  # missing_text x2
    ("caf\ufffd", "positive", None),  # invalid_utf8
    ("x" * 51, "negative", None),  # too_long (limit 50 below)
    ("fine text", "mixed", None),  # unknown_label
    ("same words", "positive", None),
    ("Same words ", "negative", None),  # conflicting_labels x2
    ("text number 0", "negative", None),  # duplicate_text (of GOOD[0])
]


def test_bad_rows_are_quarantined_with_counts_per_reason(tmp_path: Path) -> None:
    clean, quarantine = tmp_path / "clean.parquet", tmp_path / "quarantine.parquet"
    report = validate_rows(
        write(tmp_path, GOOD + BAD), str(clean), str(quarantine), max_bad_fraction=0.3, max_text_chars=50
    )
    assert report.quarantined == {
        "missing_text": 2,
        "invalid_utf8": 1,
        "too_long": 1,
        "unknown_label": 1,
        "conflicting_labels": 2,
        "duplicate_text": 1,
    }
    assert set(report.quarantined) == set(REASONS)
    assert (report.rows_in, report.rows_clean) == (38, 30)
    assert pd.read_parquet(clean)["text"].tolist() == [t for t, _, _ in GOOD]
    quarantined = pd.read_parquet(quarantine)
    assert len(quarantined) == 8 and quarantined["reason"].value_counts()["missing_text"] == 2


def test_too_many_bad_rows_fail_but_the_quarantine_is_kept(tmp_path: Path) -> None:
    quarantine = tmp_path / "quarantine.parquet"
    with pytest.raises(ValidationError, match=r"21\.1% of rows are bad \(limit 10\.0%\)"):
        validate_rows(
            write(tmp_path, GOOD + BAD),
            str(tmp_path / "clean.parquet"),
            str(quarantine),
            max_bad_fraction=0.1,
            max_text_chars=50,
        )
    assert len(pd.read_parquet(quarantine)) == 8


def test_a_missing_class_fails(tmp_path: Path) -> None:
    rows = [row for row in GOOD if row[1] != "neutral"]
    with pytest.raises(ValidationError, match=r"\['neutral'\] have no clean rows"):
        validate_rows(write(tmp_path, rows), *outputs(tmp_path), max_bad_fraction=0.1, max_text_chars=5000)


def test_schema_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "raw.parquet"
    pd.DataFrame({"body": ["a"], "label": ["positive"]}).to_parquet(path)
    with pytest.raises(ValidationError, match=r"missing columns \['split', 'text'\]"):
        validate_rows(str(path), *outputs(tmp_path), max_bad_fraction=0.1, max_text_chars=5000)
