"""The SVM family's served model: sentence embeddings or TF-IDF n-grams + a linear classifier, packaged
as an MLflow pyfunc.

Training and serving both go through :func:`featurize`, so a text is normalised and encoded the same way
in both; an embeddings model carries its encoder weights, so it loads with no model hub.
"""

import logging
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from components.hub import resolve_model
from components.labels import LABELS, probability_columns
from components.text import normalize_text

logger = logging.getLogger(__name__)

SERVING_REQUIREMENTS = [
    "torch==2.13.0",
    "sentence-transformers==6.2.0",
    "scikit-learn==1.9.1",
    "skops==0.16.0",
    "pandas==2.3.3",
    "mlflow==3.17.2",
]
TRUSTED_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")


def load_encoder(model_id: str):
    """Load a SentenceTransformer by id or folder, on the GPU when there is one."""
    import torch
    from sentence_transformers import SentenceTransformer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return SentenceTransformer(resolve_model(model_id), device=device)


def embed_texts(encoder, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """Normalise and encode texts in batches; the one featurisation used by training and serving."""
    normalized = [normalize_text(t) for t in texts]
    return encoder.encode(
        normalized,
        batch_size=batch_size,
        show_progress_bar=progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )


def featurize(encoder, texts: list[str], batch_size: int = 64, progress: bool = False):
    """Embeddings when there is an encoder; else the normalised texts (a TF-IDF pipeline vectorises them)."""
    if encoder is not None:
        return embed_texts(encoder, texts, batch_size, progress)
    return [normalize_text(t) for t in texts]


def save_classifier(classifier, path: str) -> None:
    import skops.io

    skops.io.dump(classifier, path)


def load_classifier(path: str):
    """Load a skops file, trusting only scikit-learn/numpy/scipy types (never arbitrary pickles)."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    foreign = [t for t in untrusted if not t.startswith(TRUSTED_MODULE_PREFIXES)]
    if foreign:
        raise ValueError(f"{path} holds types outside scikit-learn/numpy/scipy: {foreign}")
    return skops.io.load(path, trusted=untrusted)


def probabilities_frame(classes: list[str], probabilities: np.ndarray) -> pd.DataFrame:
    """The model's output: the predicted label and one probability column per class, in LABELS order."""
    order = [classes.index(label) for label in LABELS]
    ordered = probabilities[:, order]
    frame = pd.DataFrame(ordered, columns=probability_columns())
    frame.insert(0, "label", [LABELS[i] for i in ordered.argmax(axis=1)])
    return frame


def texts_of(model_input) -> list[str]:
    """Accept a DataFrame with a ``text`` column, a Series or a list of strings."""
    if isinstance(model_input, pd.DataFrame):
        return model_input["text"].tolist()
    return list(model_input)


class SentimentClassifier(mlflow.pyfunc.PythonModel):
    """Features + linear classifier; ``predict`` returns :func:`probabilities_frame`."""

    family = "svm"

    def load_context(self, context) -> None:
        encoder = context.artifacts.get("encoder")
        self.encoder = load_encoder(encoder) if encoder else None
        self.classifier = load_classifier(context.artifacts["classifier"])
        self.batch_size = int((context.model_config or {}).get("batch_size", 64))

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        features = featurize(self.encoder, texts_of(model_input), self.batch_size)
        return probabilities_frame(list(self.classifier.classes_), self.classifier.predict_proba(features))


def log_sentiment_model(encoder, classifier, workdir: Path, batch_size: int) -> str:
    """Log the classifier (and the encoder's weights, if any) as a pyfunc model in the active run; return
    its URI."""
    from mlflow.models import infer_signature

    classifier_path = workdir / "classifier.skops"
    save_classifier(classifier, str(classifier_path))
    artifacts = {"classifier": str(classifier_path)}
    if encoder is not None:
        encoder.save(str(workdir / "encoder"))
        artifacts["encoder"] = str(workdir / "encoder")
    example = pd.DataFrame({"text": ["what a great day", "this is awful"]})
    output = probabilities_frame(list(LABELS), np.full((2, len(LABELS)), 1.0 / len(LABELS)))
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=SentimentClassifier(),
        artifacts=artifacts,
        code_paths=[str(Path(__file__).parent)],
        model_config={"batch_size": batch_size},
        signature=infer_signature(example, output),
        pip_requirements=SERVING_REQUIREMENTS,
    )
    logger.info("logged model %s", info.model_uri)
    return info.model_uri
