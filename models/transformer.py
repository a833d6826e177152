"""The transformer family's served model: a fine-tuned sequence classifier packaged as an MLflow pyfunc.

It answers like the linear family's model (:func:`models.linear.probabilities_frame`), so the
predictor serves either. Texts are normalised as in training, sorted by length and run in padded batches:
one forward pass per batch, not one per text.

The model config's ``runtime`` picks how it executes: ``fp32`` (torch, as trained; the GPU when there is
one) or ``int8`` (ONNX Runtime on the INT8 export that training writes next to the weights, see
models/onnx_runtime.py; CPU). The INT8 variant is the same logged model loaded with
``model_config={"runtime": "int8"}``: evaluate scores it and the gate accepts it only if it loses at most
``gate_int8_max_loss`` of the metric.
"""

from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from scipy.special import softmax

from core.text import normalize_text
from models.onnx_runtime import (
    INT8_BATCH_SIZE,
    INT8_FILE,
    MODEL_RUNTIMES,
    export_int8,
    onnx_session,
    session_logits,
)
from models.output import probabilities_frame, texts_of
from models.packaging import log_sentiment_model, save_sentiment_model

REQUIREMENTS = ("transformers", "onnxruntime", "scipy")


def predict_probabilities(
    logits_of: Callable[[dict], np.ndarray], tokenizer, texts: list[str], max_length: int, batch_size: int
) -> np.ndarray:
    """Class probabilities for ``texts`` (already normalised), batched by similar length to cut padding;
    ``logits_of`` maps a tokenizer batch (numpy arrays) to logits."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    probabilities = None
    for start in range(0, len(texts), batch_size):
        index = order[start : start + batch_size]
        batch = tokenizer(
            [texts[i] for i in index],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="np",
        )
        batch_probabilities = softmax(logits_of(batch), axis=-1)
        if probabilities is None:
            probabilities = np.empty((len(texts), batch_probabilities.shape[1]), dtype=np.float32)
        probabilities[index] = batch_probabilities
    return probabilities


def torch_logits(model):
    """``batch -> logits`` for a tokenizer's numpy batch, on a torch model (on its device)."""
    import torch

    device = next(model.parameters()).device

    def logits(batch) -> np.ndarray:
        with torch.inference_mode():
            inputs = {name: torch.from_numpy(values).to(device) for name, values in batch.items()}
            return model(**inputs).logits.float().cpu().numpy()

    return logits


class TransformerSentimentModel(mlflow.pyfunc.PythonModel):
    """A Hugging Face sequence classifier; ``predict`` returns label + per-class probabilities."""

    family = "transformer"

    def load_context(self, context) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        folder = Path(context.artifacts["model"])
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        config = context.model_config or {}
        self.runtime = config.get("runtime", "fp32")
        if self.runtime not in MODEL_RUNTIMES:
            raise ValueError(f"runtime must be one of {MODEL_RUNTIMES}, got {self.runtime!r}")
        if self.runtime == "int8":
            self.logits_of = session_logits(onnx_session(folder / INT8_FILE, torch.get_num_threads()))
        else:
            model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
            self.logits_of = torch_logits(model.to("cuda") if torch.cuda.is_available() else model)
        label_of = AutoConfig.from_pretrained(folder).id2label
        self.max_length = int(config.get("max_length", 128))
        # INT8: one text per run, so that its answer does not depend on the texts batched with it
        self.batch_size = INT8_BATCH_SIZE if self.runtime == "int8" else int(config.get("batch_size", 32))
        self.prior_scale = config.get("prior_scale")
        self.classes = [label_of[i] for i in range(len(label_of))]

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        texts = [normalize_text(t) for t in texts_of(model_input)]
        probabilities = predict_probabilities(
            self.logits_of, self.tokenizer, texts, self.max_length, self.batch_size
        )
        return probabilities_frame(self.classes, probabilities, self.prior_scale)


def log_transformer_models(
    model_dirs: list[Path], max_length: int, batch_size: int, prior_scale: list[float] | None, workdir: Path
) -> str:
    """Log saved model+tokenizer folders (and the prior correction, components/imbalance.py, if any) as a
    pyfunc model in the active run; return its URI. One folder is the model; several (one per seed) are each
    saved as a member pyfunc under ``workdir`` and logged as their equal-weight soft vote
    (models/ensemble.py, which passes the runtime on to them). Each folder gets its INT8 runtime's ONNX
    file first (:func:`export_int8`), logged with the weights."""
    from models.ensemble import log_ensemble_model

    for folder in model_dirs:
        export_int8(folder)
    config = {"max_length": max_length, "batch_size": batch_size, "runtime": "fp32"}
    config |= {"prior_scale": prior_scale} if prior_scale else {}
    if len(model_dirs) == 1:
        return log_sentiment_model(
            TransformerSentimentModel(), {"model": str(model_dirs[0])}, config, REQUIREMENTS
        )
    members = [
        save_sentiment_model(
            TransformerSentimentModel(), {"model": str(folder)}, config, REQUIREMENTS, workdir / f"member-{n}"
        )
        for n, folder in enumerate(model_dirs)
    ]
    return log_ensemble_model([str(path) for path in members], None)
