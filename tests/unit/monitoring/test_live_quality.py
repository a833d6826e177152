"""Live quality from summed confusion counts (monitoring/live_quality.py, the recording rules' formulas):
the macro recall and accuracy of the same answers and labels, an interval that agrees with the bootstrap
on the rows, classes without labels left out."""

from collections import Counter

import numpy as np
import pytest
from sklearn.metrics import recall_score

from components.scores import score_interval
from core.labels import LABELS
from monitoring.live_quality import quality_from_counts


def rows(n: int, right: float, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(LABELS, size=n, p=[0.2, 0.5, 0.3]).tolist()
    predicted = [t if rng.random() < right else str(rng.choice(LABELS)) for t in truth]
    return truth, predicted


def test_the_counts_give_the_rows_macro_recall_and_accuracy_and_an_interval_like_the_bootstrap() -> None:
    truth, predicted = rows(2000, 0.7, seed=0)
    replicas = [Counter(zip(truth[i::3], predicted[i::3], strict=True)) for i in range(3)]
    summed = sum(replicas, Counter())  # as the rules sum every replica's counters
    live = quality_from_counts(summed)
    assert live.labelled == 2000
    assert live.macro_recall == pytest.approx(recall_score(truth, predicted, average="macro"))
    assert live.accuracy == pytest.approx(np.mean([t == p for t, p in zip(truth, predicted, strict=True)]))
    bootstrap = score_interval(truth, predicted, "macro_recall", samples=1000)
    assert live.lower == pytest.approx(bootstrap.lower, abs=0.01)
    assert live.upper == pytest.approx(bootstrap.upper, abs=0.01)


def test_a_class_without_labels_is_left_out_and_no_labels_give_none() -> None:
    counts = {("negative", "negative"): 8, ("negative", "neutral"): 2, ("positive", "positive"): 5}
    counts |= {("neutral", "neutral"): 0, ("neutral", "positive"): 0}  # initialised series, never labelled
    live = quality_from_counts(counts)
    assert live.macro_recall == pytest.approx((0.8 + 1.0) / 2) and live.labelled == 15
    assert quality_from_counts({("neutral", "neutral"): 0}) is None
