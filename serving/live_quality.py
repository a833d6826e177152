"""Live quality: the last labelled answers of each model version (serving/feedback.py), scored as macro
recall and accuracy with 95 % bootstrap intervals when Prometheus scrapes (never on the request path)."""

import threading
from collections import OrderedDict

from core.scores import ScoreInterval, score_interval

METRICS = ("macro_recall", "accuracy")


class LiveQuality:
    """A sliding window of the last ``size`` labelled answers per model version (a relabelled answer
    counts once, with its latest label); scores once a version has ``min_labels``."""

    def __init__(self, size: int, min_labels: int, samples: int = 1000):
        self.size, self.min_labels, self.samples = size, min_labels, samples
        self._windows: dict[str, OrderedDict[str, tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def add(self, version: str, answer_id: str, label: str, predicted: str) -> None:
        with self._lock:
            window = self._windows.setdefault(version, OrderedDict())
            window.pop(answer_id, None)
            window[answer_id] = (label, predicted)
            while len(window) > self.size:
                window.popitem(last=False)

    def labelled(self) -> dict[str, int]:
        """Labelled answers in the window, per version."""
        with self._lock:
            return {version: len(window) for version, window in self._windows.items()}

    def scores(self) -> dict[str, dict[str, ScoreInterval]]:
        """Per version with enough labels, each metric (METRICS) with its 95 % interval."""
        with self._lock:
            pairs = {v: list(w.values()) for v, w in self._windows.items() if len(w) >= self.min_labels}
        result = {}
        for version, rows in pairs.items():
            truth, predicted = [t for t, _ in rows], [p for _, p in rows]
            result[version] = {
                metric: score_interval(truth, predicted, metric, self.samples) for metric in METRICS
            }
        return result
