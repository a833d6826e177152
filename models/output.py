"""What every sentiment model takes and answers: texts in; the predicted label and one probability column
per class (in LABELS order) out."""

import numpy as np
import pandas as pd

from core.labels import LABELS, probability_columns


def probabilities_frame(
    classes: list[str], probabilities: np.ndarray, prior_scale: list[float] | None = None
) -> pd.DataFrame:
    """The model's output: the predicted label and one probability column per class, in LABELS order.
    ``prior_scale`` (LABELS order; components/imbalance.py) multiplies the probabilities, which are then
    renormalised: a prior correction the model carries from training."""
    order = [classes.index(label) for label in LABELS]
    ordered = probabilities[:, order]
    if prior_scale is not None:
        scaled = ordered * np.asarray(prior_scale)
        ordered = scaled / scaled.sum(axis=1, keepdims=True)
    frame = pd.DataFrame(ordered, columns=probability_columns())
    frame.insert(0, "label", [LABELS[i] for i in ordered.argmax(axis=1)])
    return frame


def texts_of(model_input) -> list[str]:
    """Accept a DataFrame with a ``text`` column, a Series or a list of strings."""
    if isinstance(model_input, pd.DataFrame):
        return model_input["text"].tolist()
    return list(model_input)
