"""The linear family's served model: sentence embeddings or TF-IDF n-grams + a linear classifier, packaged
as an MLflow pyfunc.

Training and serving both go through :func:`featurize`, so a text is normalised and encoded the same way
in both; an embeddings model carries its encoder weights, so it loads with no model hub, and the
encoder's INT8 runtime (models/int8_encoder.py), chosen by the model config's ``runtime``.

The classifier is a joblib file, loaded only if it is the file that was logged (its SHA-256 is in the
model's config). Like the model's own ``python_model.pkl``, which MLflow unpickles first, it is a pickle:
whoever can write a model's artifacts can run code where it loads, so the artifact store is what to
protect. Models logged before December 2026 carry a skops file instead (``load_skops_classifier``).
"""

import hashlib
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd

from core.hub import resolve_model
from core.text import normalize_text
from models.int8_encoder import Int8Encoder, export_encoder_int8
from models.onnx_runtime import MODEL_RUNTIMES
from models.output import probabilities_frame, texts_of
from models.packaging import log_sentiment_model

REQUIREMENTS = ("sentence-transformers", "scikit-learn", "joblib", "onnxruntime")
CLASSIFIER_FILE = "classifier.joblib"
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


def save_classifier(classifier, path: Path) -> str:
    """Write ``classifier`` to ``path`` with joblib; return the file's SHA-256, which the model's config
    records."""
    joblib.dump(classifier, path)
    return file_sha256(path)


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def load_classifier(path: str, sha256: str):
    """Load the classifier at ``path`` if its SHA-256 is ``sha256``, recorded when the model was logged: a
    file changed since then is refused before it is unpickled."""
    found = file_sha256(path)
    if found != sha256:
        raise ValueError(f"{path} changed since the model was logged: SHA-256 {found}, recorded {sha256}")
    return joblib.load(path)


def skops_types(path: str) -> list[str]:
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


def load_skops_classifier(path: str, types: list[str] | None = None):
    """A classifier saved with skops (a model logged before December 2026, loaded in a process that has
    this module imported, such as the gate judging an old champion): trusting only scikit-learn/numpy/scipy
    types, ``types`` as recorded when the model was logged (checked again), or the file's own scan."""
    import skops.io

    if types is None:
        return skops.io.load(path, trusted=skops_types(path))
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
        classifier = context.artifacts["classifier"]
        if classifier.endswith(".skops"):
            self.classifier = load_skops_classifier(classifier, config.get("classifier_types"))
        else:
            self.classifier = load_classifier(classifier, config["classifier_sha256"])
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
    classifier_path = workdir / CLASSIFIER_FILE
    config = {"batch_size": batch_size, "classifier_sha256": save_classifier(classifier, classifier_path)}
    artifacts = {"classifier": str(classifier_path)}
    config |= {"prior_scale": prior_scale} if prior_scale else {}
    if encoder is not None:
        encoder.save(str(workdir / "encoder"))
        artifacts["encoder"] = str(workdir / "encoder")
        if export_encoder_int8(encoder, workdir / "encoder"):
            config["runtime"] = "fp32"  # evaluate also scores "int8"; the gate rules on it
    return log_sentiment_model(LinearSentimentModel(), artifacts, config, REQUIREMENTS)
