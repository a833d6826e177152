"""Training and serving see the same text: raw texts sent to the running predictor get the answers the
registered champion gives to the texts the training path's preprocess step wrote (it normalises:
entities, escapes, URLs, handles, whitespace). The encoder's embeddings of raw and normalised texts
differ, so a predictor that stopped normalising would fail here."""

import numpy as np
import pandas as pd

from components.preprocess import preprocess_rows
from core.labels import LABELS, probability_columns
from core.text import normalize_text
from models.linear import load_encoder
from tests.helpers import HTTP, PARAMS

RAW = [
    "@alice I LOVE this phone!!! https://shop.example.com/p?id=1 &lt;3",
    "worst   flight\tever @united_airlines \\u2639 www.united.com",
    "the concert is at 5pm &amp; doors open at 4 @venue",
    "Meh.\n\nIt's fine I guess http://t.co/xyz",
]


def training_path_texts(tmp_path, texts: list[str]) -> set[str]:
    """The texts the pipeline's preprocess step writes for ``texts`` (every split together)."""
    clean = tmp_path / "clean.parquet"
    frame = pd.DataFrame(
        {"text": texts, "label": ["neutral"] * len(texts), "split": "train", "source": "raw"}
    )
    frame.to_parquet(clean)
    paths = [str(tmp_path / f"{split}.parquet") for split in ("train", "validation", "test")]
    # carves 1 + 1; one source, so the mix keeps every row
    preprocess_rows(
        str(clean), *paths, validation_fraction=0.25, test_fraction=0.25, mix_exponent=0.5, seed=0
    )
    return {text for path in paths for text in pd.read_parquet(path)["text"]}


def test_the_predictor_answers_raw_text_as_the_model_answers_the_training_paths_text(
    model_server, champion_model, tmp_path
) -> None:
    url, _ = model_server
    training_text = {raw: normalize_text(raw) for raw in RAW}
    assert training_path_texts(tmp_path, RAW) == set(training_text.values())  # the step's own output
    assert all(raw != text for raw, text in training_text.items())

    served = HTTP.post(f"{url}/v1/models/sentiment:predict", json={"instances": RAW}, timeout=60).json()
    expected = champion_model.predict(pd.DataFrame({"text": [training_text[raw] for raw in RAW]}))
    served_probabilities = [[p["probabilities"][label] for label in LABELS] for p in served["predictions"]]
    np.testing.assert_allclose(served_probabilities, expected[probability_columns()].to_numpy(), atol=1e-5)

    # Sensitive: the encoder tells raw from normalised text apart.
    encoder = load_encoder(PARAMS.train_linear.encoder_id)
    raw_vectors = encoder.encode(RAW, normalize_embeddings=True)
    normalised_vectors = encoder.encode(list(training_text.values()), normalize_embeddings=True)
    assert (np.abs(raw_vectors - normalised_vectors).max(axis=1) > 1e-3).all()
