"""The class-imbalance treatments' weights and prior correction."""

import numpy as np
import pytest

from components.imbalance import class_shares, loss_weights, prior_scale
from models.output import probabilities_frame

LABELS_1_3_6 = ["negative"] * 1 + ["neutral"] * 3 + ["positive"] * 6


def test_weights_are_balanced_softened_or_even() -> None:
    assert loss_weights(LABELS_1_3_6, "class_weight") == pytest.approx(
        {"negative": 10 / 3, "neutral": 10 / 9, "positive": 10 / 18}
    )
    assert loss_weights(LABELS_1_3_6, "softened") == pytest.approx(
        {"negative": (10 / 3) ** 0.5, "neutral": (10 / 9) ** 0.5, "positive": (10 / 18) ** 0.5}
    )
    for treatment in ("none", "prior_correction"):
        assert set(loss_weights(LABELS_1_3_6, treatment).values()) == {1.0}
    with pytest.raises(ValueError, match="imbalance must be one of"):
        loss_weights(LABELS_1_3_6, "focal")


def test_prior_correction_divides_by_the_training_shares() -> None:
    assert class_shares(LABELS_1_3_6) == pytest.approx([0.1, 0.3, 0.6])
    scale = prior_scale(LABELS_1_3_6, "prior_correction")
    assert scale == pytest.approx([10, 10 / 3, 10 / 6])
    assert prior_scale(LABELS_1_3_6, "class_weight") is None
    # an uncorrected answer that follows the prior becomes uniform, so the argmax changes
    answer = probabilities_frame(
        ["negative", "neutral", "positive"], np.array([[0.1, 0.3, 0.6], [0.2, 0.3, 0.5]]), scale
    )
    np.testing.assert_allclose(answer.iloc[0, 1:].to_numpy(dtype=float), [1 / 3] * 3)
    assert answer["label"].tolist()[1] == "negative"
