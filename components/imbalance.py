"""Class-imbalance treatments shared by the candidates. Macro recall weighs every class alike, so a model
trained on a skewed label mix must correct for it, during training (loss or sample weights) or after it
(prior correction, also called logit adjustment: the probabilities are divided by the training prior).

- ``class_weight``: each class weighs n / (k * n_class) (scikit-learn's "balanced").
- ``softened``: the square root of those weights, half-way between ``none`` and ``class_weight``.
- ``prior_correction``: unweighted training; predicted probabilities are divided by the class shares of
  the training labels and renormalised (Menon et al., 2021, "Long-tail learning via logit adjustment").
- ``none``: unweighted, uncorrected.
"""

import numpy as np

from core.labels import LABELS

IMBALANCE_TREATMENTS = ("class_weight", "softened", "prior_correction", "none")
_WEIGHT_POWER = {"class_weight": 1.0, "softened": 0.5}


def check_treatment(treatment: str, allowed: tuple[str, ...] = IMBALANCE_TREATMENTS) -> None:
    if treatment not in allowed:
        raise ValueError(f"imbalance must be one of {allowed}, got {treatment!r}")


def class_shares(labels: list[str]) -> np.ndarray:
    """Each class's share of ``labels``, in LABELS order (a class with no row counts as one row)."""
    counts = np.array([max(1, sum(1 for y in labels if y == label)) for label in LABELS], dtype=float)
    return counts / counts.sum()


def loss_weights(labels: list[str], treatment: str) -> dict[str, float]:
    """Per-class loss weights for ``treatment`` (1.0 for every class unless it weighs the loss)."""
    check_treatment(treatment)
    power = _WEIGHT_POWER.get(treatment, 0.0)
    balanced = 1.0 / (len(LABELS) * class_shares(labels))
    return {label: float(w**power) for label, w in zip(LABELS, balanced, strict=True)}


def prior_scale(labels: list[str], treatment: str) -> list[float] | None:
    """What the model multiplies its probabilities by (LABELS order) before it renormalises them: the
    inverse class shares for ``prior_correction``; None for any other treatment."""
    if treatment != "prior_correction":
        return None
    return (1.0 / class_shares(labels)).tolist()
