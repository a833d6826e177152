"""Steady traffic for a predictor at a bounded rate: what a canary analysis needs to reach a verdict
(``min_requests`` per version per window: about 2,000 requests per 5 minutes at a 10 % canary, so RPS=10).

A real client: v1 REST requests, one every 1/RPS seconds on a fixed schedule (never faster; slower only
when ``--max-in-flight`` requests are already waiting), texts drawn at random from a file or a built-in
mix of positive, neutral and negative ones. Prints a JSON summary: requests sent, answers by status and by
``model_version`` (the share each version got), latency percentiles.

    python -m rollout.load --url http://localhost:8089 --host sentiment-mlops.example.com --rps 10
    make load RPS=10 SECONDS=300            # through the Gateway (port-forwarded), as make predict
    make load URL=http://127.0.0.1:8080     # make serve's predictor
"""

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
from tqdm import tqdm

# A mix of classes and lengths, for traffic without a file of one's own.
BUILT_IN_TEXTS = (
    "I love this, best purchase I've made all year!",
    "worst customer service ever, never again",
    "the meeting has been moved to 3pm on Thursday",
    "Absolutely thrilled with how the concert went tonight",
    "my flight got cancelled and nobody will tell us why",
    "New episode drops tomorrow at noon",
    "this update broke everything, so frustrating",
    "thanks so much for the quick help, you're amazing",
    "The store opens at 9 and closes at 6 on weekends",
    "not bad, but I expected more for the price",
    "what a beautiful morning for a run :)",
    "I can't believe they raised the fees again",
    "Reminder: the library is closed on Monday",
    "so proud of my team, we won the final!",
    "the app keeps crashing whenever I open the camera",
    "Weather forecast says light rain this afternoon",
)


def read_texts(path: Path | None) -> list[str]:
    """Texts from a CSV, Parquet or JSON-lines file with a ``text`` column, or one text per line of any
    other file; the built-in mix without a file."""
    if path is None:
        return list(BUILT_IN_TEXTS)
    import pandas as pd

    readers = {
        ".csv": pd.read_csv,
        ".parquet": pd.read_parquet,
        ".jsonl": lambda p: pd.read_json(p, lines=True),
    }
    reader = readers.get(path.suffix)
    texts = path.read_text().splitlines() if reader is None else reader(path)["text"].tolist()
    texts = [t for t in map(str, texts) if t.strip()]
    if not texts:
        raise SystemExit(f"{path}: no texts")
    return texts


async def send_load(
    url: str,
    model: str,
    texts: list[str],
    rps: float,
    seconds: float,
    host: str | None = None,
    max_in_flight: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Send ``rps * seconds`` v1 requests (one text each) on a fixed schedule; return the summary."""
    total = int(rps * seconds)
    rng = random.Random(seed)
    statuses, versions, latencies = Counter(), Counter(), []
    slots = asyncio.Semaphore(max_in_flight)
    headers = {"Host": host} if host else {}
    endpoint = f"{url.rstrip('/')}/v1/models/{model}:predict"
    bar = tqdm(total=total, unit="req", disable=not progress, desc="load")

    async def one(client: httpx.AsyncClient, text: str) -> None:
        started = time.perf_counter()
        try:
            answer = await client.post(endpoint, json={"instances": [text]}, headers=headers)
            statuses[str(answer.status_code)] += 1
            if answer.status_code == 200:
                versions[str(answer.json().get("model_version"))] += 1
        except httpx.HTTPError as exc:
            statuses[type(exc).__name__] += 1
        finally:
            latencies.append(time.perf_counter() - started)
            slots.release()
            bar.update()

    async with httpx.AsyncClient(timeout=30.0) as client:
        start, tasks = time.perf_counter(), []
        for i in range(total):
            delay = start + i / rps - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()  # at most max_in_flight waiting: the rate drops, it never bursts
            tasks.append(asyncio.create_task(one(client, rng.choice(texts))))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    bar.close()
    p50, p99 = (np.quantile(latencies, [0.5, 0.99]) * 1000).round(1).tolist() if latencies else (None, None)
    return {
        "url": endpoint,
        "requests": total,
        "seconds": round(elapsed, 2),
        "rate_per_second": round(total / elapsed, 2) if elapsed else None,
        "statuses": dict(statuses),
        "versions": dict(versions),
        "latency_ms": {"p50": p50, "p99": p99},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from core.config import params_section

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url", required=True, help="the predictor or the Gateway, e.g. http://localhost:8089"
    )
    parser.add_argument(
        "--host", help="the Host header the route matches (the Gateway's), e.g. sentiment-mlops.example.com"
    )
    parser.add_argument("--model", default=params_section("run")["model_name"])
    parser.add_argument("--rps", type=float, default=10.0, help="requests per second (at most)")
    parser.add_argument("--seconds", type=float, default=300.0, help="for how long")
    parser.add_argument(
        "--texts", type=Path, help="CSV/Parquet/JSON-lines with a text column, or a text per line"
    )
    parser.add_argument("--max-in-flight", type=int, default=64, help="requests waiting at once, at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, help="also write the summary (JSON) here")
    args = parser.parse_args(argv)
    if args.rps <= 0 or args.seconds <= 0 or args.max_in_flight < 1:
        parser.error("--rps and --seconds must be positive, --max-in-flight at least 1")
    return args


def run(args: argparse.Namespace) -> None:
    """``python -m rollout.load`` with its parsed ``args`` (:func:`parse_args`)."""
    summary = asyncio.run(
        send_load(
            args.url,
            args.model,
            read_texts(args.texts),
            args.rps,
            args.seconds,
            args.host,
            args.max_in_flight,
            args.seed,
        )
    )
    printed = json.dumps(summary, indent=2)
    print(printed)
    if args.output:
        args.output.write_text(printed + "\n")


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
