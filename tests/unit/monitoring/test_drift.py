"""Drift statistics (monitoring/drift.py): PSI, and the reference profile evaluate logs and the predictor
and the monitor step compare against."""

import numpy as np
import pytest

from monitoring.drift import SIGNIFICANT_PSI, DriftReference, build_reference, drift_scores, psi


def synthetic(
    rng: np.random.Generator, n: int, scale: float = 1.0
) -> tuple[list[str], list[str], list[float]]:
    """Texts with log-normal lengths, a 30/40/30 class mix and beta confidences."""
    lengths = np.clip(rng.lognormal(4.0, 0.5, n) * scale, 1, 2000).astype(int)
    labels = rng.choice(["negative", "neutral", "positive"], size=n, p=[0.3, 0.4, 0.3]).tolist()
    return ["x" * length for length in lengths], labels, rng.beta(5, 2, n).tolist()


def scores_of(reference: DriftReference, texts: list[str], labels: list[str], confidences: list[float]):
    lengths = np.array([len(t) for t in texts], float)
    return drift_scores(reference, lengths, np.asarray(confidences), labels)


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    reference = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(reference, reference) == pytest.approx(0.0)
    small, large = psi(reference, [0.3, 0.2, 0.25, 0.25]), psi(reference, [0.7, 0.1, 0.1, 0.1])
    assert 0 < small < 0.1 < SIGNIFICANT_PSI < large
    assert np.isfinite(psi(reference, [1.0, 0.0, 0.0, 0.0]))  # an empty bin stays finite


def test_same_distribution_stays_low_and_a_shift_is_significant() -> None:
    rng = np.random.default_rng(0)
    reference = build_reference(*synthetic(rng, 3000))
    assert len(reference.length_edges) == 9 and sum(reference.length_shares) == pytest.approx(1.0)
    assert max(scores_of(reference, *synthetic(rng, 1000)).values()) < 0.1
    longer = scores_of(reference, *synthetic(rng, 1000, scale=3.0))
    assert longer["input_length"] > SIGNIFICANT_PSI and longer["predicted_class"] < 0.1
    texts, _, confidences = synthetic(rng, 1000)
    all_negative = scores_of(reference, texts, ["negative"] * 1000, confidences)
    assert all_negative["predicted_class"] > SIGNIFICANT_PSI and all_negative["input_length"] < 0.1


def test_reference_round_trips_through_json() -> None:
    reference = build_reference(*synthetic(np.random.default_rng(1), 100))
    assert DriftReference.from_json(reference.to_json()) == reference
    assert len(reference.length_edges) <= 4  # 100 rows: at most 5 bins of about 20 rows
