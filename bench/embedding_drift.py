"""False-alarm and detection rates of the embedding drift tests (monitoring/embedding_drift.py) on real
data: a reference of 2,000 TweetEval training tweets (what training saves), then windows drawn from
TweetEval's validation split (in domain: every alarm is false) and from the Reddit and YouTube comment
sets (shifted domains: every alarm is a detection), at window sizes 100, 300 and 1,000.

    python bench/embedding_drift.py [--draws 100] [--data ../shared/data]
                                    [--output bench/results/embedding-drift.json]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from components.ingest import read_source
from components.validate import find_bad_rows
from monitoring.embedding_drift import embed, embedding_drift
from pipelines.params import PipelineParams

WINDOWS = (100, 300, 1000)
RULE = "either (the monitor's rule)"


def texts_of(source: str, split: str | None, limit: int, seed: int) -> list[str]:
    frame = read_source(source)
    if split:
        frame = frame[frame["split"] == split]
    frame = frame[
        find_bad_rows(frame, PipelineParams.load().validate.max_text_chars) == ""
    ]  # as validate does
    return frame.sample(n=min(limit, len(frame)), random_state=seed)["text"].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--draws", type=int, default=100, help="windows drawn per set and size")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--output", type=Path, default=Path("bench/results/embedding-drift.json"))
    args = parser.parse_args()
    monitor = PipelineParams.load().monitor
    seed = 0
    sets = {
        "reference (tweeteval train)": (args.data / "tweeteval_sentiment", "train", monitor.reference_rows),
        "tweeteval validation (in domain)": (args.data / "tweeteval_sentiment", "validation", 2000),
        "reddit (shifted)": (args.data / "reddit_sentiment", None, 3000),
        "youtube (shifted)": (args.data / "youtube_comments_sentiment", None, 3000),
    }
    started = time.perf_counter()
    embedded = {
        name: embed(texts_of(str(path), split, limit, seed), monitor.encoder_id)
        for name, (path, split, limit) in sets.items()
    }
    embed_seconds = time.perf_counter() - started
    reference = embedded.pop("reference (tweeteval train)")
    rng = np.random.default_rng(seed)
    results, test_seconds = {}, []
    for name, pool in embedded.items():
        for size in WINDOWS:
            counts = {"mmd": 0, "classifier": 0, RULE: 0}
            for draw in tqdm(range(args.draws), desc=f"{name}, n={size}", mininterval=5):
                window = pool[rng.choice(len(pool), size=size, replace=False)]
                tic = time.perf_counter()
                drift = embedding_drift(reference, window, monitor.alpha, monitor.permutations, seed=draw)
                test_seconds.append(time.perf_counter() - tic)
                counts["mmd"] += drift.mmd.pvalue < monitor.alpha / 2
                counts["classifier"] += drift.classifier.pvalue < monitor.alpha / 2
                counts[RULE] += drift.drifted
            results.setdefault(name, {})[str(size)] = {k: v / args.draws for k, v in counts.items()}
    report = {
        "alpha": monitor.alpha,
        "permutations": monitor.permutations,
        "reference_rows": len(reference),
        "draws": args.draws,
        "alarm_rate": results,
        "embed_seconds": round(embed_seconds, 1),
        "seconds_per_window_test": {
            "median": round(float(np.median(test_seconds)), 3),
            "max": round(float(np.max(test_seconds)), 3),
        },
    }
    print(f"alarm rate at alpha {monitor.alpha} (either test at alpha/2), {args.draws} windows per cell")
    print(f"{'set':<36}" + "".join(f"{f'n={n}':>10}" for n in WINDOWS))
    for name, by_size in results.items():
        print(f"{name:<36}" + "".join(f"{by_size[str(n)][RULE]:>10.2f}" for n in WINDOWS))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
