"""The linear classifier's skops file: loaded trusting only scikit-learn/numpy/scipy types, with the types
recorded when the model was logged (no second scan at load) or, for an older model, its own scan; a file
holding any other type is refused either way."""

from pathlib import Path

import numpy as np
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from models.linear import classifier_types, load_classifier, save_classifier


def not_sklearn(x):
    return x


def test_a_file_loads_with_the_recorded_types_and_another_type_is_refused(tmp_path: Path) -> None:
    plain = make_pipeline(LogisticRegression()).fit(np.eye(6), [0, 1, 2, 0, 1, 2])
    save_classifier(plain, str(tmp_path / "plain.skops"))
    recorded = classifier_types(str(tmp_path / "plain.skops"))
    loaded = load_classifier(str(tmp_path / "plain.skops"), recorded)
    np.testing.assert_array_equal(loaded.predict(np.eye(6)), plain.predict(np.eye(6)))

    foreign = make_pipeline(FunctionTransformer(not_sklearn), LogisticRegression())
    foreign.fit(np.eye(6), [0, 1, 2] * 2)
    skops.io.dump(foreign, tmp_path / "foreign.skops")
    with pytest.raises(skops.io.exceptions.UntrustedTypesFoundException, match="not_sklearn"):
        load_classifier(str(tmp_path / "foreign.skops"), recorded)  # swapped in after logging
    with pytest.raises(ValueError, match="outside scikit-learn/numpy/scipy"):
        load_classifier(str(tmp_path / "foreign.skops"))  # an older model: scanned first
    with pytest.raises(ValueError, match="outside scikit-learn/numpy/scipy"):
        load_classifier(str(tmp_path / "foreign.skops"), ["test_linear_classifier_file.not_sklearn"])
