"""The transformer's optimised runtime: the fine-tuned classifier exported to ONNX and quantised to INT8
(ONNX Runtime dynamic quantisation: per-channel INT8 weights, activations quantised on the fly).

Chosen by measurement on a 2-core AVX2 CPU (fine-tuned MiniLM, TweetEval validation, docs/results.md): torch
dynamic INT8 of the Linear layers is 1.4x faster but loses 2.6 points of macro recall (1.3 per-channel);
ONNX Runtime INT8 with 7-bit weights (``reduce_range``, advised for CPUs without VNNI) is about 1.5x
faster and loses about 0.1 point.
"""

from pathlib import Path

import numpy as np

INT8_FILE = "model-int8.onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_int8(model_dir: Path) -> Path:
    """Export the Hugging Face classifier saved in ``model_dir`` to ONNX, quantise it to INT8, and write
    it as ``model_dir / INT8_FILE``; return that path."""
    import tempfile

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    example = tokenizer(["an example", "a longer example text"], padding=True, return_tensors="pt")
    names = [name for name in INPUTS if name in example]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        torch.onnx.export(
            model,
            tuple(example[name] for name in names),
            str(fp32),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in names} | {"logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        target = model_dir / INT8_FILE
        quantize_dynamic(fp32, target, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    return target


def int8_session(model_dir: Path, threads: int):
    """An ONNX Runtime session over ``model_dir / INT8_FILE`` with ``threads`` intra-op threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(
        str(model_dir / INT8_FILE), options, providers=["CPUExecutionProvider"]
    )


def session_logits(session):
    """``batch -> logits`` for a tokenizer's numpy batch, on an ONNX Runtime session."""
    names = [i.name for i in session.get_inputs()]

    def logits(batch) -> np.ndarray:
        return session.run(None, {name: batch[name].astype(np.int64) for name in names})[0]

    return logits
