"""The paired bootstrap of a metric's difference between two models' predictions (components/scores.py)."""

import numpy as np
import pytest

from components.scores import PairedSet, paired_bootstrap


def test_paired_bootstrap_interval() -> None:
    truth = ["negative", "neutral", "positive"] * 100
    rng = np.random.default_rng(1)
    noisy = [label if rng.random() < 0.7 else "neutral" for label in truth]
    slightly_different = [t if i % 50 else "negative" for i, t in enumerate(noisy)]
    assert paired_bootstrap([PairedSet(1.0, truth, noisy, noisy)], "macro_recall") == (0.0, 0.0, 0.0)
    gain, low, high = paired_bootstrap([PairedSet(1.0, truth, truth, noisy)], "macro_f1", samples=500)
    assert 0 < low < gain < high
    gain, low, high = paired_bootstrap([PairedSet(1.0, truth, slightly_different, noisy)], "accuracy", 500)
    assert low < 0 < high


def test_paired_bootstrap_weighs_each_set() -> None:
    """A clear gain on one set and a tie on another: the observed gain is the weighted sum, and the
    weight scales the interval with it."""
    truth = ["negative", "neutral", "positive"] * 100
    worse = [t if i % 4 else "neutral" for i, t in enumerate(truth)]
    gain_set, tie_set = PairedSet(0.25, truth, truth, worse), PairedSet(0.75, truth, worse, worse)
    full_gain, full_low, _ = paired_bootstrap([PairedSet(1.0, truth, truth, worse)], "accuracy", 200)
    gain, low, high = paired_bootstrap([gain_set, tie_set], "accuracy", 200)
    assert gain == pytest.approx(0.25 * full_gain) and 0 < low < gain < high
    assert low == pytest.approx(0.25 * full_low)
