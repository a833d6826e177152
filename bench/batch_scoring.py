"""Batch scoring benchmark (not a test): every text in ../shared/data, repeated to ``--rows`` (200,000),
scored through the batch pipeline under kfp.local on this machine, against the same model scoring the same
texts in this process (one process on every core: the limit here). Per model (``--featurizer``: the linear
candidate on sentence embeddings, INT8 where the gate accepts it, and on TF-IDF n-grams), trained on
TweetEval's train split and gated as the pipeline does. Reports rows/s end to end and per shard, their
ratio to the limit, what a cluster would give (per-shard rows/s times the shards scored at once), and each
step's peak memory (bench/step_resources.py's sampler).

    python bench/batch_scoring.py [--rows 200000] [--featurizer tfidf embeddings] [--limit-rows 20000]
        [--train-rows 4000] [--shard-rows 50000] [--output bench/results/batch-scoring.json]

The embeddings model scores about 46 of these texts a second on 2 cores (the Reddit and YouTube comments
are long), so 200,000 rows take over an hour: its figures here come from ``--featurizer embeddings
--rows 20000 --limit-rows 4000 --shard-rows 5000``.
"""

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from bench.step_resources import StepSampler  # noqa: E402
from tests.helpers import PARAMS, SHARED_DATA, gate_config, linear_config, run_config  # noqa: E402

SOURCES = (
    "tweeteval_sentiment",
    "reddit_sentiment/Reddit_Data.csv",
    "youtube_comments_sentiment/YoutubeCommentsDataSet.csv",
    "sst2/train_full.tsv",
    "sst2/dev.tsv",
    "sst2/test.tsv",
)


def corpus_texts(rows: int) -> list[str]:
    """Every text of SOURCES (TweetEval's train and validation splits; its test split is withheld), then
    again from the start until there are ``rows``."""
    from components.ingest import TEXT_COLUMNS, pick_column, read_source, read_table

    texts: list[str] = []
    for source in SOURCES:
        path = SHARED_DATA / source
        frame = read_source(str(path)) if path.is_dir() else read_table(path)
        texts += frame[pick_column(list(frame.columns), TEXT_COLUMNS, "text")].astype(str).tolist()
    repeats = -(-rows // len(texts))
    return (texts * repeats)[:rows]


def register_model(featurizer: str, tracking_uri: str, folder: Path, train_rows: int) -> str:
    """Train the ``featurizer`` linear candidate on ``train_rows`` TweetEval training texts, evaluate it on
    half the validation split and gate it on the other half, as the pipeline does (the gate registers it
    and gives the INT8 verdict); return its registry URI."""
    from components.evaluate import evaluate_model
    from components.gate import gate_candidates
    from components.ingest import read_source
    from components.train_linear import train_linear_model
    from core.tracking import ensure_experiment

    ensure_experiment(tracking_uri, "sentiment", (folder / "mlartifacts").as_uri())
    frame = read_source(str(SHARED_DATA / "tweeteval_sentiment"))
    train = frame[frame["split"] == "train"].sample(n=train_rows, random_state=0)
    validation = frame[frame["split"] == "validation"].sample(frac=1.0, random_state=0)
    paths = {}
    for name, part in {"train": train, "validation": validation[:1000], "test": validation[1000:]}.items():
        paths[name] = str(folder / f"{name}.parquet")
        part.to_parquet(paths[name])
    trained = train_linear_model(
        paths["train"], paths["validation"], featurizer, linear_config(), run_config(), tracking_uri, {}
    )
    evaluation = evaluate_model(trained.run_id, trained.model_uri, paths["test"], tracking_uri)
    decision = gate_candidates(
        [evaluation.candidate], paths["test"], None, gate_config(), run_config(), tracking_uri
    )
    assert decision.promoted, decision.reason
    return f"models:/{run_config().model_name}@champion"


def in_process_rate(model_uri: str, texts: list[str], batch_size: int) -> tuple[float, pd.DataFrame, dict]:
    """Rows/s of the pinned model (in the runtime batch scoring chooses) on ``texts`` in this process,
    its answers, and the pin."""
    from components.batch_score import pin_model, score_frame
    from models.runtime_choice import load_in_runtime

    pinned = pin_model(model_uri, PARAMS.batch_score.runtime)
    model = load_in_runtime(pinned.uri, pinned.runtime)
    score_frame(model, texts[:batch_size], batch_size, "warm-up")
    started = time.perf_counter()
    answers = score_frame(model, texts, batch_size, "in process")
    return len(texts) / (time.perf_counter() - started), answers, asdict(pinned)


def bench_model(featurizer: str, texts: list[str], args: argparse.Namespace) -> dict:
    from components.batch_score import read_scores
    from pipelines.batch import batch_arguments, batch_pipeline
    from pipelines.run import init_local_runner

    folder = args.workdir / featurizer
    folder.mkdir(parents=True, exist_ok=True)
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    model_uri = register_model(featurizer, tracking_uri, folder, args.train_rows)
    corpus = folder / "corpus.parquet"
    pd.DataFrame({"text": texts}).to_parquet(corpus)
    batch_size = PARAMS.batch_score.batch_size
    step = max(1, len(texts) // args.limit_rows)  # every step-th text: the corpus's mix of sources
    limit, limit_answers, pinned = in_process_rate(model_uri, texts[::step][: args.limit_rows], batch_size)
    print(
        f"{featurizer}: {pinned['uri']} in {pinned['runtime']} ({pinned['why']}): "
        f"{limit:.0f} rows/s in process"
    )

    init_local_runner(folder)
    params = PARAMS.override("batch_score", shard_rows=args.shard_rows)
    output = folder / "scored"
    pipeline = batch_pipeline(PARAMS.cluster, args.parallelism)
    started = time.perf_counter()
    with StepSampler() as sampler:
        task = pipeline(**batch_arguments(params, str(corpus), str(output), model_uri, tracking_uri))
    seconds = time.perf_counter() - started
    summary = json.loads(task.output)
    scores = read_scores(str(output)).set_index("row_id")
    assert len(scores) == summary["rows_scored"] == len(texts) - summary["rows_quarantined"]
    positions = [str(i) for i in range(0, len(texts), step)][: len(limit_answers)]
    in_process = limit_answers.set_axis(positions)["label"]
    both = in_process.index.intersection(scores.index)  # less the quarantined texts
    per_shard = summary["rows_per_second_per_shard"]
    return {
        "model": pinned,
        "rows": len(texts),
        "shards": len(summary["shards"]),
        "shard_rows": args.shard_rows,
        "parallelism": args.parallelism,
        "pipeline_seconds": round(seconds, 1),
        "rows_per_second": round(len(texts) / seconds, 1),
        "in_process_rows_per_second": round(limit, 1),
        "ratio_to_in_process": round(len(texts) / seconds / limit, 3),
        "per_shard_rows_per_second": per_shard,
        "per_shard_load_seconds": [shard["load_seconds"] for shard in summary["shards"]],
        "cluster_rows_per_second_at_parallelism": {
            n: round(per_shard * n, 1) for n in (PARAMS.batch_score.parallelism, 8, 16)
        },
        "rows_quarantined": summary["quarantined"],
        "in_process_rows": len(limit_answers),
        # INT8 quantises activations per batch, and the two batch the texts differently
        "labels_equal_to_in_process": round(float((scores.loc[both, "label"] == in_process[both]).mean()), 5),
        "class_shares": summary["class_shares"],
        "peak_task_rss_mib": {step: round(mib) for step, mib in sampler.peak_task_mib.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--featurizer", nargs="+", default=["tfidf", "embeddings"])
    parser.add_argument(
        "--limit-rows",
        type=int,
        default=20_000,
        help="texts scored in process (the limit), spread over the corpus",
    )
    parser.add_argument("--train-rows", type=int, default=4000)
    parser.add_argument("--shard-rows", type=int, default=PARAMS.batch_score.shard_rows)
    parser.add_argument("--parallelism", type=int, default=2, help="shards at once here (2 cores)")
    parser.add_argument("--workdir", type=Path, default=REPO / ".mlops" / "bench-batch-scoring")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "batch-scoring.json")
    args = parser.parse_args()

    texts = corpus_texts(args.rows)
    # one model's results replace its entry and keep the others' (models can be run separately)
    report = json.loads(args.output.read_text()) if args.output.exists() else {"models": {}}
    report["corpus"] = [str(SHARED_DATA / source) for source in SOURCES]
    for featurizer in args.featurizer:
        report["models"][featurizer] = bench_model(featurizer, texts, args)
        print(json.dumps(report["models"][featurizer], indent=2))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
