"""INT8 steps benchmark (not a test): what each step past FP32 buys for a registered transformer, measured
side by side in one run, in-process on the same texts:

  fp32                  the torch model, as trained
  int8                  the shipped runtime (models/onnx_runtime.py): ONNX export, dynamic INT8
  fused + int8          ONNX Runtime's transformer graph fusions (attention, LayerNorm, GELU) before the
                        same quantisation
  ... threads           the fused INT8 graph with 1 and with 2 intra-op threads (one worker per pod)
  unsorted batches      the shipped INT8 without grouping a batch's texts by length (what sorting buys)

For each: texts/s at batch 1 and 64 (medians of interleaved rounds) and macro recall on the labelled
test split the gate scored the model on (evaluate's ``evaluation/test_predictions.parquet`` of its run;
``--split validation`` for ``--data``'s validation tweets), its loss against FP32 and whether the gate's
bound (0.5 points of the test metric) would accept it.

    python bench/int8_steps.py [--model models:/sentiment/1] [--tracking-uri sqlite:///.mlops/mlflow.db] \
        [--data ../shared/data/tweeteval_sentiment] [--split test] [--texts N] \
        [--output bench/results/int8-steps.json]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from components.evaluate import PREDICTIONS_ARTIFACT  # noqa: E402
from components.ingest import read_source  # noqa: E402
from components.scores import classification_metrics  # noqa: E402
from core.text import normalize_text  # noqa: E402
from models.onnx_runtime import (  # noqa: E402
    INT8_FILE,
    export_onnx,
    onnx_session,
    quantize_int8,
    session_logits,
)
from models.transformer import predict_probabilities, torch_logits  # noqa: E402
from tests.helpers import SHARED_DATA  # noqa: E402

MAX_LOSS = 0.005  # the gate's int8_max_loss


def fused_int8(model_dir: Path, folder: Path) -> Path:
    """Export to ONNX, apply ONNX Runtime's BERT fusions, then quantise as the shipped runtime does."""
    import onnx
    from onnxruntime.transformers import optimizer
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    fp32 = folder / "model.onnx"
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    export_onnx(model, AutoTokenizer.from_pretrained(model_dir), fp32, "logits")
    config = AutoConfig.from_pretrained(model_dir)
    fused = optimizer.optimize_model(
        str(fp32), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size
    )
    fused_path = folder / "model-fused.onnx"
    fused.save_model_to_file(str(fused_path))
    print("fusions:", fused.get_fused_operator_statistics(), flush=True)
    # the fused ops' outputs are float
    return quantize_int8(
        fused_path, folder / "model-fused-int8.onnx", DefaultTensorType=onnx.TensorProto.FLOAT
    )


def unsorted(logits_of, tokenizer, texts, max_length, batch_size) -> np.ndarray:
    """predict_probabilities without grouping by length: batches in the texts' own order."""
    from scipy.special import softmax

    parts = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="np",
        )
        parts.append(softmax(logits_of(batch), axis=-1))
    return np.concatenate(parts)


def throughput(predict, texts: list[str], batch: int, seconds: float) -> float:
    """texts/s of ``predict`` on consecutive batches of ``batch`` texts for about ``seconds``."""
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        predict([texts[(done + i) % len(texts)] for i in range(batch)], batch)
        done += batch
    return done / (time.perf_counter() - started)


def measure_all(steps: dict, texts: list[str], truth: list[str], classes: list[str], rounds: int = 3) -> dict:
    """For every step: texts/s at batch 1 and 64 (median of ``rounds`` interleaved rounds, so that no step
    gets a quieter machine than another) and macro recall on all ``texts``."""
    for predict in steps.values():
        predict(texts[:8], 8)  # warm up
    speeds = {name: {1: [], 64: []} for name in steps}
    for _ in range(rounds):
        for name, predict in steps.items():
            for batch, seconds in ((1, 4.0), (64, 6.0)):
                speeds[name][batch].append(throughput(predict, texts, batch, seconds))
    results = {}
    for name, predict in steps.items():
        labels = [classes[i] for i in predict(texts, 64).argmax(axis=1)]
        results[name] = {
            "texts_per_s_batch_1": round(float(np.median(speeds[name][1])), 1),
            "texts_per_s_batch_64": round(float(np.median(speeds[name][64])), 1),
            "macro_recall": classification_metrics(truth, labels)["macro_recall"],
        }
        print(name, results[name], flush=True)
    return results


def write_report(model: str, split: str, texts: int, results: dict, output: Path) -> None:
    """Add each step's loss against ``fp32``, the gate's verdict and its speed-ups; print and write it."""
    base = results["fp32"]
    for row in results.values():
        row["loss_points"] = round((base["macro_recall"] - row["macro_recall"]) * 100, 2)
        row["accepted"] = base["macro_recall"] - row["macro_recall"] <= MAX_LOSS
        row["speedup_batch_1"] = round(row["texts_per_s_batch_1"] / base["texts_per_s_batch_1"], 2)
        row["speedup_batch_64"] = round(row["texts_per_s_batch_64"] / base["texts_per_s_batch_64"], 2)
    report = {"model": model, "split": split, "texts": texts, "max_loss_points": MAX_LOSS * 100}
    report["steps"] = results
    print(json.dumps(report, indent=2))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")


def arguments(doc: str, output: str, model: str | None) -> argparse.Namespace:
    """The INT8 benchmarks' options: ``--model`` (``model`` by default; required when None), the registry,
    the data, its split and how many of its texts (0: all), and the results file
    (``bench/results/<output>``)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=model, required=model is None)
    parser.add_argument("--tracking-uri", default=f"sqlite:///{REPO / '.mlops' / 'mlflow.db'}")
    parser.add_argument("--data", default=str(SHARED_DATA / "tweeteval_sentiment"))
    parser.add_argument("--split", choices=("test", "validation"), default="test")
    parser.add_argument("--texts", type=int, default=0)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / output)
    return parser.parse_args()


def labelled_texts(args: argparse.Namespace) -> tuple[list[str], list[str], Path]:
    """(normalised texts, labels) of the first ``--texts`` rows of ``--split`` (``test``: the test split the
    model's run was evaluated on; ``validation``: ``--data``'s), and the folder ``--model`` downloads to
    from ``--tracking-uri``."""
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(args.tracking_uri)
    if args.split == "test":
        run_id = mlflow.models.get_model_info(args.model).run_id
        rows = pd.read_parquet(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{PREDICTIONS_ARTIFACT}"))
    else:
        frame = read_source(args.data)
        rows = frame[frame["split"] == "validation"]
    rows = rows.head(args.texts) if args.texts else rows
    texts = [normalize_text(t) for t in rows["text"]]
    return texts, rows["label"].tolist(), Path(mlflow.artifacts.download_artifacts(args.model))


def main() -> None:
    args = arguments(__doc__, "int8-steps.json", model="models:/sentiment/1")

    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    texts, truth, downloaded = labelled_texts(args)
    model_dir = next(downloaded.rglob(INT8_FILE)).parent  # the weights folder the INT8 export sits in
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    classes = [config.id2label[i] for i in range(len(config.id2label))]
    torch.set_num_threads(2)
    fp32 = torch_logits(AutoModelForSequenceClassification.from_pretrained(model_dir).eval())

    def runner(logits_of, grouped=True):
        method = predict_probabilities if grouped else unsorted
        return lambda batch, size: method(logits_of, tokenizer, batch, 128, size)

    with tempfile.TemporaryDirectory() as scratch:
        fused = fused_int8(model_dir, Path(scratch))
        steps = {
            "fp32": runner(fp32),
            "int8": runner(session_logits(onnx_session(model_dir / INT8_FILE, 2))),
            "fused + int8": runner(session_logits(onnx_session(fused, 2))),
            "fused + int8, 1 thread": runner(session_logits(onnx_session(fused, 1))),
            "int8, unsorted batches": runner(
                session_logits(onnx_session(model_dir / INT8_FILE, 2)), grouped=False
            ),
        }
        results = measure_all(steps, texts, truth, classes)
    write_report(args.model, args.split, len(texts), results, args.output)


if __name__ == "__main__":
    main()
