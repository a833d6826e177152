"""Drift statistics shared by the predictor's live gauges and the monitor step.

A :class:`DriftReference` profiles what a model saw and said on held-out data (evaluate builds it from
the test split and logs it with the model's run): the distribution of input length, of the predicted
class's probability (confidence) and the predicted-class mix. Live traffic is compared with it by the
population stability index, PSI = sum((live - ref) * ln(live / ref)) over the reference's bins: below
0.1 is stable, 0.1-0.25 a moderate shift, above 0.25 a significant one (the alert's threshold).
"""

import json
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from core.labels import LABELS

FEATURES = ("input_length", "confidence", "predicted_class")
SIGNIFICANT_PSI = 0.25
SHARE_FLOOR = 1e-4  # an empty bin counts as this share, so PSI stays finite


@dataclass(frozen=True)
class DriftReference:
    """Bins (interior edges, from reference quantiles) and shares per feature, plus raw samples of the
    numeric features for two-sample tests."""

    rows: int
    length_edges: list[float]
    length_shares: list[float]
    confidence_edges: list[float]
    confidence_shares: list[float]
    class_shares: dict[str, float]
    length_sample: list[float]
    confidence_sample: list[float]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "DriftReference":
        return cls(**json.loads(text))


def quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    """Interior bin edges at the quantiles of ``values`` (ties merge bins, so there may be fewer)."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return edges.tolist()


def bin_shares(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Share of ``values`` in each bin: (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def class_mix(labels: list[str]) -> np.ndarray:
    """Share of each class (in LABELS order) among ``labels``."""
    counts = Counter(labels)
    return np.array([counts[name] for name in LABELS], dtype=float) / max(len(labels), 1)


def psi(reference: np.ndarray, live: np.ndarray) -> float:
    """Population stability index of ``live`` shares against ``reference`` shares (same bins)."""
    ref = np.clip(np.asarray(reference, dtype=float), SHARE_FLOOR, None)
    cur = np.clip(np.asarray(live, dtype=float), SHARE_FLOOR, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def build_reference(
    texts: list[str], labels: list[str], confidences: list[float], seed: int = 0, sample_size: int = 2000
) -> DriftReference:
    """Profile a model's predictions ``labels`` / ``confidences`` on ``texts`` (held-out data). Up to 10
    bins per numeric feature, fewer for small sets (about 20 rows per bin)."""
    lengths = np.array([len(text) for text in texts], dtype=float)
    confidence = np.asarray(confidences, dtype=float)
    bins = max(2, min(10, len(texts) // 20))
    length_edges, confidence_edges = quantile_edges(lengths, bins), quantile_edges(confidence, bins)
    rng = np.random.default_rng(seed)
    keep = rng.choice(len(texts), size=min(sample_size, len(texts)), replace=False)
    return DriftReference(
        rows=len(texts),
        length_edges=length_edges,
        length_shares=bin_shares(lengths, length_edges).tolist(),
        confidence_edges=confidence_edges,
        confidence_shares=bin_shares(confidence, confidence_edges).tolist(),
        class_shares=dict(zip(LABELS, class_mix(labels).tolist(), strict=True)),
        length_sample=lengths[keep].tolist(),
        confidence_sample=confidence[keep].round(4).tolist(),
    )


def drift_scores(
    reference: DriftReference, lengths: np.ndarray, confidences: np.ndarray, labels: list[str]
) -> dict[str, float]:
    """PSI of each feature (FEATURES) of a live sample against ``reference``."""
    return {
        "input_length": psi(reference.length_shares, bin_shares(lengths, reference.length_edges)),
        "confidence": psi(reference.confidence_shares, bin_shares(confidences, reference.confidence_edges)),
        "predicted_class": psi([reference.class_shares[name] for name in LABELS], class_mix(labels)),
    }
