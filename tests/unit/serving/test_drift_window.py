"""The predictor's sliding window of recent texts, scored against the served version's drift reference."""

import numpy as np

from monitoring.drift import build_reference
from serving.drift_window import DriftWindow
from tests.unit.monitoring.test_drift import synthetic


def test_window_scores_only_with_a_reference_and_enough_texts() -> None:
    rng = np.random.default_rng(2)
    window = DriftWindow(size=50, min_texts=20)
    texts, labels, confidences = synthetic(rng, 30)
    window.add(texts, labels, confidences)
    assert window.scores() is None  # no reference yet
    window.use_reference(build_reference(*synthetic(rng, 500)))
    assert len(window) == 0  # a new reference starts an empty window
    window.add(texts[:10], labels[:10], confidences[:10])
    assert window.scores() is None
    window.add(*synthetic(rng, 100))
    assert len(window) == 50 and set(window.scores()) == {"input_length", "confidence", "predicted_class"}
