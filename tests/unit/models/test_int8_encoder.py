"""The sentence encoder's INT8 runtime against the encoder itself (the bundled all-MiniLM-L6-v2)."""

from pathlib import Path

import numpy as np
import pytest

from models.int8_encoder import Int8Encoder, export_encoder_int8, int8_pooling
from models.linear import embed_texts, load_encoder
from tests.helpers import PARAMS, sentiment_frame

TEXTS = [*sentiment_frame()["text"].sample(40, random_state=0), "", "😀", "a " * 400]


@pytest.fixture(scope="module")
def encoders(tmp_path_factory) -> tuple:
    """(the FP32 SentenceTransformer, its INT8 runtime) as training saves and serving loads them."""
    encoder = load_encoder(PARAMS.train_linear.encoder_id)
    folder = tmp_path_factory.mktemp("int8-encoder") / "encoder"
    encoder.save(str(folder))
    assert export_encoder_int8(encoder, folder)
    return encoder, Int8Encoder(Path(folder), threads=2)


def test_int8_embeddings_point_where_the_encoders_do(encoders) -> None:
    fp32, int8 = (embed_texts(encoder, TEXTS, batch_size=8) for encoder in encoders)
    assert int8.shape == fp32.shape == (len(TEXTS), 384) and int8.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cosine = (fp32 * int8).sum(axis=1)
    assert cosine.min() > 0.95 and cosine.mean() > 0.98, cosine
    nearest = (int8 @ fp32.T).argmax(axis=1)  # each text's INT8 embedding is nearest its own FP32 one
    assert (nearest == np.arange(len(TEXTS))).mean() > 0.95


def test_a_texts_embedding_does_not_depend_on_the_texts_asked_with_it(encoders) -> None:
    """Dynamic INT8 quantises activations with ranges from the whole run: the runtime runs one text at a
    time, so a text asked alone, among 16 or among all 43 gets the same embedding."""
    _, int8 = encoders
    one_by_one = np.vstack([embed_texts(int8, [text], batch_size=1) for text in TEXTS])
    for batch_size in (16, len(TEXTS)):
        np.testing.assert_array_equal(embed_texts(int8, TEXTS, batch_size=batch_size), one_by_one)
    assert embed_texts(int8, [], batch_size=16).shape == (0, 384)


def test_only_encoders_made_of_a_transformer_and_pooling_get_one(encoders) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense

    encoder, _ = encoders
    assert int8_pooling(encoder) == "mean"
    projected = SentenceTransformer(modules=[encoder[0], encoder[1], Dense(384, 16)], device="cpu")
    assert int8_pooling(projected) is None
    assert not export_encoder_int8(projected, Path("/nonexistent"))  # refused before writing anything
