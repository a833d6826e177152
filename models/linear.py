"""The linear family's served model: sentence embeddings or TF-IDF n-grams + a linear classifier, packaged
as an MLflow pyfunc.

Training and serving both go through :func:`featurize`, so a text is normalised and encoded the same way
in both; an embeddings model carries its encoder weights, so it loads with no model hub, and the
encoder's INT8 runtime (models/int8_encoder.py), chosen by the model config's ``runtime``.
"""

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from core.hub import resolve_model
from core.text import normalize_text
from models.int8_encoder import Int8Encoder, export_encoder_int8
from models.onnx_runtime import MODEL_RUNTIMES
from models.output import probabilities_frame, texts_of
from models.packaging import log_sentiment_model

REQUIREMENTS = ("sentence-transformers", "scikit-learn", "skops", "onnxruntime")
TRUSTED_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")


def load_encoder(model_id: str):
    """Load a SentenceTransformer by id or folder, on the GPU when there is one."""
    import torch
    from sentence_transformers import SentenceTransformer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return SentenceTransformer(resolve_model(model_id), device=device)


def embed_texts(encoder, texts: list[str], batch_size: int, progress: bool = False) -> np.ndarray:
    """Normalise and encode texts in batches; the one featurisation used by training and serving."""
    normalized = [normalize_text(t) for t in texts]
    return encoder.encode(
        normalized,
        batch_size=batch_size,
        show_progress_bar=progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )


def featurize(encoder, texts: list[str], batch_size: int, progress: bool = False):
    """Embeddings when there is an encoder; else the normalised texts (a TF-IDF pipeline vectorises them)."""
    if encoder is not None:
        return embed_texts(encoder, texts, batch_size, progress)
    return [normalize_text(t) for t in texts]


def save_classifier(classifier, path: str) -> None:
    import skops.io

    skops.io.dump(classifier, path)


def classifier_types(path: str) -> list[str]:
    """The types of the skops file at ``path`` that skops does not trust by default; an error when any is
    outside scikit-learn/numpy/scipy (never arbitrary pickles)."""
    import skops.io

    types = skops.io.get_untrusted_types(file=path)
    check_types(path, types)
    return types


def check_types(path: str, types: list[str]) -> None:
    foreign = [t for t in types if not t.startswith(TRUSTED_MODULE_PREFIXES)]
    if foreign:
        raise ValueError(f"{path} holds types outside scikit-learn/numpy/scipy: {foreign}")


def load_classifier(path: str, types: list[str] | None = None):
    """Load a skops file trusting only scikit-learn/numpy/scipy types: ``types``, recorded when the model
    was logged (checked against those modules again; skops refuses any other type it meets while it
    loads), so the file is not scanned twice; a model logged without them is scanned first."""
    import skops.io

    if types is None:
        return skops.io.load(path, trusted=classifier_types(path))
    check_types(path, types)
    return skops.io.load(path, trusted=types)


class LinearSentimentModel(mlflow.pyfunc.PythonModel):
    """Features + linear classifier; ``predict`` returns :func:`probabilities_frame`."""

    family = "linear"

    def load_context(self, context) -> None:
        config = context.model_config or {}
        runtime = config.get("runtime", "fp32")
        if runtime not in MODEL_RUNTIMES:
            raise ValueError(f"runtime must be one of {MODEL_RUNTIMES}, got {runtime!r}")
        encoder = context.artifacts.get("encoder")
        if encoder and runtime == "int8":
            import torch

            self.encoder = Int8Encoder(Path(encoder), torch.get_num_threads())
        else:
            self.encoder = load_encoder(encoder) if encoder else None
        self.classifier = load_classifier(context.artifacts["classifier"], config.get("classifier_types"))
        self.batch_size = int(config.get("batch_size", 64))
        self.prior_scale = config.get("prior_scale")

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        features = featurize(self.encoder, texts_of(model_input), self.batch_size)
        probabilities = self.classifier.predict_proba(features)
        return probabilities_frame(list(self.classifier.classes_), probabilities, self.prior_scale)


def log_linear_model(
    encoder, classifier, workdir: Path, batch_size: int, prior_scale: list[float] | None
) -> str:
    """Log the classifier (and the encoder's weights and INT8 runtime, if any; the prior correction,
    components/imbalance.py, if any) as a pyfunc model in the active run; return its URI."""
    classifier_path = workdir / "classifier.skops"
    save_classifier(classifier, str(classifier_path))
    artifacts = {"classifier": str(classifier_path)}
    config = {"batch_size": batch_size, "classifier_types": classifier_types(str(classifier_path))}
    config |= {"prior_scale": prior_scale} if prior_scale else {}
    if encoder is not None:
        encoder.save(str(workdir / "encoder"))
        artifacts["encoder"] = str(workdir / "encoder")
        if export_encoder_int8(encoder, workdir / "encoder"):
            config["runtime"] = "fp32"  # evaluate also scores "int8"; the gate rules on it
    return log_sentiment_model(LinearSentimentModel(), artifacts, config, REQUIREMENTS)
