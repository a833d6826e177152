"""The embedding drift tests on synthetic embeddings: calibrated when nothing changed (repeated draws),
powerful when the distribution moved, not fooled by repeated texts, and the reference round-trips."""

import numpy as np
import pytest

from monitoring.embedding_drift import (
    EmbeddingReference,
    classifier_test,
    embedding_drift,
    mmd_test,
    traffic_mix,
)


def unit_rows(rng: np.random.Generator, rows: int, shift: float = 0.0) -> np.ndarray:
    """Normalised Gaussian rows in 32 dimensions (like sentence embeddings, on the unit sphere); ``shift``
    moves the mean along the first axis."""
    points = rng.normal(size=(rows, 32))
    points[:, 0] += shift
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def test_false_alarms_stay_near_alpha_on_repeated_draws_from_the_reference_distribution():
    rng = np.random.default_rng(0)
    reference = unit_rows(rng, 400)
    alarms = [
        embedding_drift(reference, unit_rows(rng, 100), 0.05, 200, seed, 0.55).significant
        for seed in range(60)
    ]
    assert np.mean(alarms) <= 0.15  # 5 % expected; 60 draws put 15 % far in the binomial tail


def test_a_moved_distribution_is_detected_by_both_tests():
    rng = np.random.default_rng(1)
    reference, moved = unit_rows(rng, 400), unit_rows(rng, 200, shift=1.0)
    mmd, classifier = mmd_test(reference, moved, 200, 0), classifier_test(reference, moved, 0)
    assert mmd.pvalue < 0.01 and classifier.pvalue < 0.01 and classifier.statistic > 0.7
    assert embedding_drift(reference, moved, 0.05, 200, 0, 0.55).drifted


def test_the_permutation_p_value_never_reaches_zero():
    rng = np.random.default_rng(2)
    assert mmd_test(unit_rows(rng, 100), unit_rows(rng, 100, shift=5.0), 99, 0).pvalue == pytest.approx(0.01)


def test_repeated_texts_do_not_fool_the_classifier():
    """Live traffic that repeats reference texts (each many times) is no drift: copies stay in one half."""
    rng = np.random.default_rng(3)
    reference = unit_rows(rng, 60)
    repeats = reference[rng.integers(0, 60, size=300)]
    assert classifier_test(reference, repeats, 0).pvalue > 0.05


def test_reference_round_trips_through_bytes():
    reference = EmbeddingReference("all-MiniLM-L6-v2", unit_rows(np.random.default_rng(4), 10))
    again = EmbeddingReference.from_bytes(reference.to_bytes())
    assert again.encoder_id == "all-MiniLM-L6-v2" and again.sources is None
    np.testing.assert_array_equal(again.embeddings, reference.embeddings)
    sourced = EmbeddingReference("e", reference.embeddings, np.array(["tweets"] * 5 + ["reddit"] * 5))
    np.testing.assert_array_equal(EmbeddingReference.from_bytes(sourced.to_bytes()).sources, sourced.sources)


def test_the_traffic_mix_estimates_the_share_of_each_source_however_the_reference_was_mixed():
    """Two sources apart in the embedding space, sampled 3:1 in the reference; traffic 30 % like the
    first, 70 % like the second: the estimate is within 0.05 of that (classes weighted equally)."""
    rng = np.random.default_rng(5)
    tweets, reddit = unit_rows(rng, 900, shift=2.0), unit_rows(rng, 300, shift=-2.0)
    named = np.array(["tweets"] * 900 + ["reddit"] * 300)
    reference = EmbeddingReference("e", np.vstack([tweets, reddit]), named)
    live = np.vstack([unit_rows(rng, 150, shift=2.0), unit_rows(rng, 350, shift=-2.0)])
    mix = traffic_mix(reference, live)
    assert set(mix) == {"tweets", "reddit"} and sum(mix.values()) == pytest.approx(1.0)
    assert mix["tweets"] == pytest.approx(0.3, abs=0.05) and mix["reddit"] == pytest.approx(0.7, abs=0.05)
    assert traffic_mix(EmbeddingReference("e", reference.embeddings), live) is None  # no sources kept
    one = EmbeddingReference("e", tweets, np.array(["tweets"] * 900))
    assert traffic_mix(one, live) is None  # one source: nothing to weigh


def test_a_significant_but_immaterial_shift_is_not_drift():
    """A tiny mean shift that 2,000 rows make significant, but no classifier can use: not drifted."""
    rng = np.random.default_rng(5)
    reference, nudged = unit_rows(rng, 2000), unit_rows(rng, 2000, shift=0.12)
    drift = embedding_drift(reference, nudged, 0.05, 200, 0, 0.55)
    assert drift.significant and drift.classifier.statistic < 0.55 and not drift.drifted
