"""The linear classifier's file: a joblib file loaded only if it is the file that was logged (its SHA-256
recorded in the model's config); and the skops file of models logged before, still loaded trusting only
scikit-learn/numpy/scipy types, with the types recorded when the model was logged or, for an older model,
its own scan; a file holding any other type is refused either way."""

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from models.linear import (
    LinearSentimentModel,
    load_classifier,
    load_skops_classifier,
    save_classifier,
    skops_types,
)
from models.packaging import save_sentiment_model


def not_sklearn(x):
    return x


def plain_classifier():
    return make_pipeline(LogisticRegression()).fit(np.eye(6), [0, 1, 2, 0, 1, 2])


def test_a_joblib_file_loads_with_its_recorded_digest_and_a_changed_file_is_refused(tmp_path: Path) -> None:
    plain = plain_classifier()
    recorded = save_classifier(plain, tmp_path / "plain.joblib")
    loaded = load_classifier(str(tmp_path / "plain.joblib"), recorded)
    np.testing.assert_array_equal(loaded.predict(np.eye(6)), plain.predict(np.eye(6)))

    swapped = make_pipeline(FunctionTransformer(not_sklearn), LogisticRegression()).fit(
        np.eye(6), [0, 1, 2] * 2
    )
    save_classifier(swapped, tmp_path / "plain.joblib")  # swapped in after logging
    with pytest.raises(ValueError, match="changed since the model was logged"):
        load_classifier(str(tmp_path / "plain.joblib"), recorded)


def test_a_skops_file_loads_with_the_recorded_types_and_another_type_is_refused(tmp_path: Path) -> None:
    plain = plain_classifier()
    skops.io.dump(plain, tmp_path / "plain.skops")
    recorded = skops_types(str(tmp_path / "plain.skops"))
    loaded = load_skops_classifier(str(tmp_path / "plain.skops"), recorded)
    np.testing.assert_array_equal(loaded.predict(np.eye(6)), plain.predict(np.eye(6)))

    foreign = make_pipeline(FunctionTransformer(not_sklearn), LogisticRegression())
    foreign.fit(np.eye(6), [0, 1, 2] * 2)
    skops.io.dump(foreign, tmp_path / "foreign.skops")
    with pytest.raises(skops.io.exceptions.UntrustedTypesFoundException, match="not_sklearn"):
        load_skops_classifier(str(tmp_path / "foreign.skops"), recorded)  # swapped in after logging
    with pytest.raises(ValueError, match="outside scikit-learn/numpy/scipy"):
        load_skops_classifier(str(tmp_path / "foreign.skops"))  # an older model: scanned first
    with pytest.raises(ValueError, match="outside scikit-learn/numpy/scipy"):
        load_skops_classifier(str(tmp_path / "foreign.skops"), ["test_linear_classifier_file.not_sklearn"])


@pytest.mark.parametrize("recorded_types", [True, False])
def test_a_model_saved_with_a_skops_classifier_still_loads_with_this_code(
    tmp_path: Path, recorded_types
) -> None:
    """What the previous models/linear.py logged (classifier.skops, its types in the config, or none
    before that), loaded by the model class this process has imported, as the gate loads an old
    champion."""
    texts = ["I love it", "I hate it", "it is a phone"] * 2
    classifier = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(
        texts, ["positive", "negative", "neutral"] * 2
    )
    skops.io.dump(classifier, tmp_path / "classifier.skops")
    config = {"batch_size": 8}
    config |= {"classifier_types": skops_types(str(tmp_path / "classifier.skops"))} if recorded_types else {}
    folder = save_sentiment_model(
        LinearSentimentModel(), {"classifier": str(tmp_path / "classifier.skops")}, config, (), tmp_path / "m"
    )
    output = mlflow.pyfunc.load_model(str(folder)).predict(pd.DataFrame({"text": ["I love it", "I hate it"]}))
    assert output["label"].tolist() == ["positive", "negative"]
