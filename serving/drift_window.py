"""Live drift: the last ``size`` answered texts (length, confidence, predicted class) compared with the
served model's drift reference (monitoring/drift.py), as PSI per feature. Scores are computed when
Prometheus scrapes (``sentiment_drift_psi{feature}``), not on the request path."""

import threading
from collections import deque

import numpy as np

from monitoring.drift import DriftReference, drift_scores


class DriftWindow:
    """A sliding window of the last ``size`` answers; scores once it holds ``min_texts``."""

    def __init__(self, size: int, min_texts: int):
        self.size, self.min_texts = size, min_texts
        self._rows: deque[tuple[int, float, str]] = deque(maxlen=size)
        self._reference: DriftReference | None = None
        self._lock = threading.Lock()

    def use_reference(self, reference: DriftReference | None) -> None:
        """Compare with ``reference`` from now on (a new model version): the window starts empty."""
        with self._lock:
            self._reference = reference
            self._rows.clear()

    def add(self, texts: list[str], labels: list[str], confidences: list[float]) -> None:
        with self._lock:
            self._rows.extend(zip((len(t) for t in texts), confidences, labels, strict=True))

    def __len__(self) -> int:
        return len(self._rows)

    def scores(self) -> dict[str, float] | None:
        """PSI per feature of the window against the reference; None before ``min_texts`` answers or
        without a reference."""
        with self._lock:
            if self._reference is None or len(self._rows) < self.min_texts:
                return None
            lengths, confidences, labels = zip(*self._rows, strict=True)
            reference = self._reference
        return drift_scores(reference, np.array(lengths, float), np.array(confidences, float), list(labels))
