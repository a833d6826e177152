"""The transformer's optimised runtime: the fine-tuned classifier exported to ONNX and quantised to INT8
(ONNX Runtime dynamic quantisation: per-channel INT8 weights, activations quantised on the fly).

Chosen by measurement on a 2-core AVX2 CPU (fine-tuned MiniLM, TweetEval validation, docs/results.md): torch
dynamic INT8 of the Linear layers is 1.4x faster but loses 2.6 points of macro recall (1.3 per-channel);
ONNX Runtime INT8 with 7-bit weights (``reduce_range``, advised for CPUs without VNNI) is about 1.5x
faster and loses about 0.1 point.

**One text per run.** Dynamic quantisation takes each activation's range from the tensor it quantises,
that is from the whole batch, padding included: batched with other texts, a text's answer moved (4-5 %
of labels between two batchings). So the INT8 runtimes run each text alone (:data:`INT8_BATCH_SIZE`): a
text's answer is then the same whatever the predictor or a batch-scoring shard batched it with, and the
same the gate scored. It costs little: a tweet alone needs no padding, and on 2 cores one text per run
keeps 87 % of the batched throughput (bench/int8_batching.py). Static quantisation (ranges calibrated at
training) would allow batching, but was slower and lost more than the gate's bound (docs/results.md).
"""

from pathlib import Path

import numpy as np

MODEL_RUNTIMES = ("fp32", "int8")  # a model config's ``runtime``: as trained, or this INT8 runtime
INT8_FILE = "model-int8.onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
INT8_BATCH_SIZE = 1  # texts per ONNX run of a dynamically quantised model: see above


def export_onnx(model, tokenizer, path: Path, output: str) -> None:
    """Export the Hugging Face ``model`` to ONNX at ``path``: its inputs are ``tokenizer``'s tensors, its one
    output the model output's ``output`` field ("logits", "last_hidden_state"); batch and token axes are
    dynamic."""
    import torch

    example = tokenizer(["an example", "a longer example text"], padding=True, return_tensors="pt")
    names = [name for name in INPUTS if name in example]

    class ByKeyword(torch.nn.Module):
        """The exporter traces positional inputs; the model is called with them by keyword (an encoder's
        signature has other parameters between them)."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            return getattr(self.model(**dict(zip(names, inputs, strict=True))), output)

    output_axes = {0: "batch", 1: "tokens"} if output == "last_hidden_state" else {0: "batch"}
    torch.onnx.export(
        ByKeyword().eval(),
        tuple(example[name] for name in names),
        str(path),
        input_names=names,
        output_names=[output],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in names} | {output: output_axes},
        opset_version=17,
        dynamo=False,
    )


def quantize_int8(fp32: Path, target: Path, **extra_options) -> Path:
    """Quantise the ONNX model ``fp32`` to ``target`` the way this runtime does; return ``target``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        fp32,
        target,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        extra_options=extra_options or None,
    )
    return target


def export_int8(model_dir: Path) -> Path:
    """Export the Hugging Face classifier saved in ``model_dir`` to ONNX, quantise it to INT8, and write
    it as ``model_dir / INT8_FILE``; return that path."""
    import tempfile

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        export_onnx(model, AutoTokenizer.from_pretrained(model_dir), fp32, "logits")
        return quantize_int8(fp32, model_dir / INT8_FILE)


def onnx_session(path: Path, threads: int):
    """An ONNX Runtime CPU session over the model file ``path`` with ``threads`` intra-op threads that
    sleep when idle: spinning waiters burn a pod's CPU quota and starve other processes on the node."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def session_logits(session):
    """``batch -> logits`` for a tokenizer's numpy batch, on an ONNX Runtime session."""
    names = [i.name for i in session.get_inputs()]

    def logits(batch) -> np.ndarray:
        return session.run(None, {name: batch[name].astype(np.int64) for name in names})[0]

    return logits
