"""The sentence encoder's INT8 runtime, for the linear family's embeddings models: the encoder's
transformer exported to ONNX and quantised as the classifier's is (models/onnx_runtime.py), then its
pooling and the L2 normalisation in numpy.

Training writes it into the saved encoder's folder (:func:`export_encoder_int8`); the model loads it
(:class:`Int8Encoder`) when its model config says ``runtime: int8``. Evaluate scores that variant and the
gate accepts it only within its loss bound, as for the transformer.
"""

import json
import tempfile
from pathlib import Path

import numpy as np

from models.onnx_runtime import INT8_BATCH_SIZE, export_onnx, onnx_session, quantize_int8

ENCODER_INT8_FILE = "encoder-int8.onnx"
ENCODER_INT8_CONFIG = "encoder-int8.json"
POOLINGS = ("mean", "cls")


def int8_pooling(encoder) -> str | None:
    """The pooling of a SentenceTransformer made of a transformer, mean or CLS pooling and (optionally)
    normalisation, as all-MiniLM-L6-v2 is; None for any other make-up (no INT8 runtime for it)."""
    kinds = [type(module).__name__ for module in encoder]
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        return None
    pooling = encoder[1].get_config_dict().get("pooling_mode")
    return pooling if pooling in POOLINGS else None


def export_encoder_int8(encoder, folder: Path) -> bool:
    """Write ``encoder``'s INT8 runtime into ``folder`` (where ``encoder.save`` wrote it); return whether
    it has one (see :func:`int8_pooling`)."""
    pooling = int8_pooling(encoder)
    if pooling is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "encoder.onnx"
        model = encoder[0].auto_model.cpu()  # exported on the CPU, where it runs
        export_onnx(model, encoder.tokenizer, fp32, "last_hidden_state")
        quantize_int8(fp32, folder / ENCODER_INT8_FILE)
    config = {"pooling": pooling, "max_length": encoder.max_seq_length}
    (folder / ENCODER_INT8_CONFIG).write_text(json.dumps(config))
    return True


class Int8Encoder:
    """The INT8 runtime of an encoder saved with :func:`export_encoder_int8`; its ``encode`` answers as
    ``SentenceTransformer.encode`` does for what ``models.linear.embed_texts`` asks (a numpy array of
    L2-normalised embeddings), one text per run (models/onnx_runtime.py: its embedding then does not
    depend on the other texts asked with it)."""

    def __init__(self, folder: Path, threads: int):
        from transformers import AutoTokenizer

        config = json.loads((folder / ENCODER_INT8_CONFIG).read_text())
        self.pooling, self.max_length = config["pooling"], int(config["max_length"])
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.session = onnx_session(folder / ENCODER_INT8_FILE, threads)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.dimension = self.session.get_outputs()[0].shape[-1]

    def _embed(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        hidden = self.session.run(None, {name: batch[name].astype(np.int64) for name in self.inputs})[0]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = batch["attention_mask"][..., None].astype(hidden.dtype)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def encode(
        self,
        texts: list[str],
        batch_size: int,
        show_progress_bar: bool = False,
        convert_to_numpy: bool = True,
        normalize_embeddings: bool = True,
    ) -> np.ndarray:
        """Embeddings of ``texts``, :data:`INT8_BATCH_SIZE` at a time whatever ``batch_size`` asks; always
        numpy and normalised (the last two arguments are the ones ``embed_texts`` passes to either
        encoder)."""
        from tqdm.auto import tqdm

        embeddings = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in tqdm(range(0, len(texts), INT8_BATCH_SIZE), disable=not show_progress_bar):
            embeddings[start : start + INT8_BATCH_SIZE] = self._embed(texts[start : start + INT8_BATCH_SIZE])
        return embeddings
