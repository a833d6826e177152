"""INT8 answers that do not depend on their batch: today's runtime (dynamic INT8, one text per ONNX run)
against the batched dynamic runtime it replaced, static INT8 (activation ranges calibrated on 256 training
texts, QDQ on MatMul inputs) batched, attention-fused dynamic INT8 and FP32, side by side in one run, on
the bundled MiniLM:

- the encoder (the linear-embeddings family): a logistic regression fitted on FP32 embeddings of
  ``--train-rows`` TweetEval training texts, then the validation split embedded by each runtime as it
  serves (batched: 16 per run; else one text per run): macro recall, labels changed against FP32, labels
  changed when the same texts are served again in other company (batched: 16 per run in another order;
  one per run: another order), embeddings' cosine to FP32;
- speed: in-process texts/s of each runtime as served (one text per call) and in batches of 64 (random
  order, padded to the longest), 2 intra-op threads.

    python bench/int8_batching.py [--data ../shared/data/tweeteval_sentiment/hf_parquet] [--train-rows 8000]

Writes bench/results/int8-batching.json.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score

from core.config import params_section
from models.linear import embed_texts, load_encoder
from models.onnx_runtime import INPUTS, export_onnx, onnx_session, quantize_int8

THREADS = 2


def batches(tokenizer, texts: list[str], size: int) -> list[dict]:
    encoded = []
    for start in range(0, len(texts), size):
        batch = tokenizer(
            texts[start : start + size], padding=True, truncation=True, max_length=128, return_tensors="np"
        )
        encoded.append({k: batch[k].astype(np.int64) for k in INPUTS if k in batch})
    return encoded


def embeddings(session, encoded: list[dict]) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings (as models/int8_encoder.py computes them)."""
    out = []
    for batch in encoded:
        hidden = session.run(None, batch)[0]
        mask = batch["attention_mask"][..., None].astype(hidden.dtype)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        out.append(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None))
    return np.concatenate(out)


def texts_per_second(session, encoded: list[dict], count: int) -> float:
    session.run(None, encoded[0])
    started = time.perf_counter()
    for batch in encoded:
        session.run(None, batch)
    return count / (time.perf_counter() - started)


def build_runtimes(encoder, folder: Path, calibration: list[str]) -> dict[str, Path]:
    """The encoder's ONNX files: FP32, dynamic INT8 (today's file), static INT8, fused + dynamic INT8."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel

    tokenizer = encoder.tokenizer
    fp32 = folder / "fp32.onnx"
    export_onnx(encoder[0].auto_model.cpu(), tokenizer, fp32, "last_hidden_state")
    quantize_int8(fp32, folder / "dynamic.onnx")

    class Calibration(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches(tokenizer, calibration, 32))

        def get_next(self):
            return next(self.batches, None)

    quantize_static(
        str(fp32), str(folder / "static.onnx"), Calibration(), quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul", "Gemm"], per_channel=True, reduce_range=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )  # fmt: skip
    # attention in the eager form ONNX Runtime's BERT optimizer fuses (the default export uses SDPA)
    eager = AutoModel.from_pretrained(encoder[0].auto_model.name_or_path, attn_implementation="eager").eval()
    export_onnx(eager, tokenizer, folder / "eager.onnx", "last_hidden_state")
    config = eager.config
    fused = optimizer.optimize_model(
        str(folder / "eager.onnx"), model_type="bert", num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size, opt_level=1,
    )  # fmt: skip
    fused.save_model_to_file(str(folder / "fused.onnx"))
    quantize_dynamic(
        folder / "fused.onnx", folder / "fused-dynamic.onnx", weight_type=QuantType.QInt8, per_channel=True,
        reduce_range=True, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )  # fmt: skip
    return {
        "fp32": fp32,
        "dynamic INT8, batched (before)": folder / "dynamic.onnx",
        "dynamic INT8, one text per run (adopted)": folder / "dynamic.onnx",
        "static INT8, batched": folder / "static.onnx",
        "fused attention + dynamic INT8, one text per run": folder / "fused-dynamic.onnx",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data/tweeteval_sentiment/hf_parquet"))
    parser.add_argument("--train-rows", type=int, default=8000)
    parser.add_argument("--speed-texts", type=int, default=640)
    parser.add_argument("--output", type=Path, default=Path("bench/results/int8-batching.json"))
    args = parser.parse_args()

    train = pd.read_parquet(args.data / "train.parquet").sample(args.train_rows, random_state=0)
    validation = pd.read_parquet(args.data / "validation.parquet")
    texts, y = validation["text"].tolist(), validation["label"].to_numpy()
    encoder = load_encoder(params_section("train_linear")["encoder_id"])
    classifier = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(
        embed_texts(encoder, train["text"].tolist(), 64, progress=True), train["label"]
    )
    tokenizer = encoder.tokenizer
    alone, in_16 = batches(tokenizer, texts, 1), batches(tokenizer, texts, 16)
    order = np.random.default_rng(1).permutation(len(texts))
    shuffled_16 = batches(tokenizer, [texts[i] for i in order], 16)
    order_back = np.argsort(order)
    speed_texts = texts[: args.speed_texts]
    speed_alone, speed_64 = batches(tokenizer, speed_texts, 1), batches(tokenizer, speed_texts, 64)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runtimes = build_runtimes(encoder, Path(tmp), train["text"].tolist()[:256])
        reference = embeddings(onnx_session(runtimes["fp32"], THREADS), alone)
        reference_labels = classifier.predict(reference)
        for name, path in runtimes.items():
            session = onnx_session(path, THREADS)
            batched = "batched" in name
            vectors = embeddings(session, in_16 if batched else alone)  # as this runtime serves
            labels = classifier.predict(vectors)
            # the same texts served again in another company: 16 per run in another order when batched;
            # one per run, in reverse order, when not
            other = embeddings(session, shuffled_16) if batched else embeddings(session, alone[::-1])[::-1]
            flips = float((labels != classifier.predict(other[order_back] if batched else other)).mean())
            rows.append(
                {
                    "runtime": name,
                    "macro_recall": round(recall_score(y, labels, average="macro"), 4),
                    "labels_changed_vs_fp32": round(float((labels != reference_labels).mean()), 4),
                    "labels_changed_between_batchings": round(flips, 4),
                    "cosine_to_fp32_mean": round(float((vectors * reference).sum(axis=1).mean()), 4),
                    "texts_per_s_one_per_call": round(
                        texts_per_second(session, speed_alone, len(speed_texts))
                    ),
                    "texts_per_s_batch_64": round(texts_per_second(session, speed_64, len(speed_texts))),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    fp32 = rows[0]
    for row in rows:
        row["speedup_one_per_call"] = round(
            row["texts_per_s_one_per_call"] / fp32["texts_per_s_one_per_call"], 2
        )
        row["speedup_batch_64"] = round(row["texts_per_s_batch_64"] / fp32["texts_per_s_batch_64"], 2)
    results = {"threads": THREADS, "validation_rows": len(texts), "train_rows": args.train_rows, "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
