"""Training speed of the transformer step on this machine, side by side in one run: the real
``train_transformer`` for the same number of steps on the same texts, once with random batches (each padded
to its longest text) and once with length-grouped batches (the default). Prints seconds per step (training
time, one 200-text evaluation included, over the steps), the padding each way and the speed-up, and writes
them as JSON.

    python bench/transformer_batching.py [--data ../shared/data/tweeteval_sentiment] [--steps 110]
"""

import argparse
import json
import logging
import os
import platform
import tempfile
from pathlib import Path

import mlflow
import numpy as np
from transformers import AutoTokenizer
from transformers.trainer_pt_utils import LengthGroupedSampler

from components.ingest import read_source
from components.train_transformer import train_transformer
from core.hub import resolve_model
from core.text import normalize_text

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
DEFAULT_DATA = Path(__file__).resolve().parents[1] / "../shared/data/tweeteval_sentiment"
MODEL_ID, BATCH_SIZE, MAX_LENGTH = "all-MiniLM-L6-v2", 32, 64


def padded_tokens_per_text(lengths: list[int], order: list[int]) -> float:
    """Mean tokens per text when ``order`` is cut into batches, each padded to its longest text."""
    batches = [order[i : i + BATCH_SIZE] for i in range(0, len(order), BATCH_SIZE)]
    return float(np.mean([max(lengths[i] for i in batch) for batch in batches]))


def padding(texts: list[str], seed: int) -> dict[str, float]:
    """Tokens per text (normalised, as trained): unpadded, in random batches, in length-grouped batches."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(MODEL_ID))
    encoded = tokenizer([normalize_text(t) for t in texts], truncation=True, max_length=MAX_LENGTH)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    random_order = np.random.default_rng(seed).permutation(len(texts)).tolist()
    grouped_order = list(LengthGroupedSampler(BATCH_SIZE, lengths=lengths))
    return {
        "unpadded": float(np.mean(lengths)),
        "random_batches": padded_tokens_per_text(lengths, random_order),
        "grouped_batches": padded_tokens_per_text(lengths, grouped_order),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="a source with a train split")
    parser.add_argument("--steps", type=int, default=110)
    parser.add_argument("--output", default="bench/results/transformer-batching.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    frame = read_source(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        train = Path(tmp) / "train.parquet"
        validation = Path(tmp) / "validation.parquet"
        frame[frame["split"] == "train"][["text", "label"]].to_parquet(train)
        frame[frame["split"] == "validation"][["text", "label"]].head(200).to_parquet(validation)
        tracking_uri, seconds = f"sqlite:///{tmp}/mlflow.db", {}
        for grouped in (False, True):
            result = train_transformer(
                str(train),
                str(validation),
                tracking_uri,
                "bench",
                model_id=MODEL_ID,
                batch_size=BATCH_SIZE,
                max_length=MAX_LENGTH,
                max_steps=args.steps,
                eval_steps=args.steps,
                length_grouping=grouped,
            )
            run = mlflow.MlflowClient(tracking_uri).get_run(result.run_id)
            seconds["grouped_batches" if grouped else "random_batches"] = (
                run.data.metrics["train_seconds"] / args.steps
            )
    tokens = padding(frame[frame["split"] == "train"]["text"].tolist(), seed=42)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "steps": args.steps,
        "batch_size": BATCH_SIZE,
        "seconds_per_step": seconds,
        "tokens_per_text": tokens,
        "speedup": seconds["random_batches"] / seconds["grouped_batches"],
    }
    for name in ("random_batches", "grouped_batches"):
        print(f"{name:16} {seconds[name]:.3f} s/step, {tokens[name]:.1f} tokens/text padded")
    print(f"unpadded         {tokens['unpadded']:.1f} tokens/text")
    print(f"length grouping: {report['speedup']:.2f}x faster steps")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
