"""The transformer family's served model: a fine-tuned sequence classifier packaged as an MLflow pyfunc.

It answers like the SVM family's model (:func:`components.sentiment_model.probabilities_frame`), so the
predictor serves either. Texts are normalised as in training, sorted by length and run in padded batches:
one forward pass per batch, not one per text.

The model config's ``runtime`` picks how it executes: ``fp32`` (as trained) or ``int8`` (torch dynamic
quantisation of every Linear layer: INT8 weights, activations quantised on the fly; CPU only). The INT8
variant is the same logged model loaded with ``model_config={"runtime": "int8"}``: evaluate scores it and
the gate accepts it only if it loses at most ``int8_max_loss`` of the metric.
"""

import logging
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from components.sentiment_model import probabilities_frame, texts_of
from components.text import normalize_text

logger = logging.getLogger(__name__)

RUNTIMES = ("fp32", "int8")
SERVING_REQUIREMENTS = ["torch==2.13.0", "transformers==5.24.0", "pandas==2.3.3", "mlflow==3.17.2"]


def predict_probabilities(model, tokenizer, texts: list[str], max_length: int, batch_size: int) -> np.ndarray:
    """Class probabilities for ``texts`` (already normalised), batched by similar length to cut padding."""
    import torch

    order = np.argsort([len(t) for t in texts], kind="stable")
    probabilities = np.empty((len(texts), model.config.num_labels), dtype=np.float32)
    device = next(model.parameters()).device
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            index = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in index],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            probabilities[index] = torch.softmax(model(**batch).logits, dim=-1).float().cpu().numpy()
    return probabilities


class TransformerClassifier(mlflow.pyfunc.PythonModel):
    """A Hugging Face sequence classifier; ``predict`` returns label + per-class probabilities."""

    family = "transformer"

    def load_context(self, context) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = context.artifacts["model"]
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        config = context.model_config or {}
        self.runtime = config.get("runtime", "fp32")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {self.runtime!r}")
        if self.runtime == "int8":
            self.model = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, torch.qint8)
        elif torch.cuda.is_available():
            self.model.to("cuda")
        self.max_length = int(config.get("max_length", 128))
        self.batch_size = int(config.get("batch_size", 32))
        self.classes = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        texts = [normalize_text(t) for t in texts_of(model_input)]
        probabilities = predict_probabilities(
            self.model, self.tokenizer, texts, self.max_length, self.batch_size
        )
        return probabilities_frame(self.classes, probabilities)


def log_transformer_model(model_dir: Path, max_length: int, batch_size: int) -> str:
    """Log a saved model+tokenizer folder as a pyfunc model in the active run; return its URI."""
    from mlflow.models import infer_signature

    from components.labels import LABELS

    example = pd.DataFrame({"text": ["what a great day", "this is awful"]})
    output = probabilities_frame(list(LABELS), np.full((2, len(LABELS)), 1.0 / len(LABELS)))
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=TransformerClassifier(),
        artifacts={"model": str(model_dir)},
        code_paths=[str(Path(__file__).parent)],
        model_config={"max_length": max_length, "batch_size": batch_size, "runtime": "fp32"},
        signature=infer_signature(example, output),
        pip_requirements=SERVING_REQUIREMENTS,
    )
    logger.info("logged model %s", info.model_uri)
    return info.model_uri
