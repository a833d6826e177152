"""Soak benchmark (not a test): the predictor (`python -m serving`, its defaults, so INT8 where the gate
accepted it) under closed-loop load at one concurrency for a long time, driven from a second process
(bench/load.py), in one-minute slices: errors, throughput and latency per slice, and the server's
resident memory sampled every 5 s, with its least-squares slope (MiB per minute) over the run after the
first slice (warm-up). Flat memory means a slope near 0. The predictor's bounded buffers fill first: the
answers kept for feedback (``--remembered_answers``, 100,000 by default, about 0.6 KiB each) grow memory
until they are full; a small one (``--server-args "--remembered_answers 5000"``) is full within the
warm-up, so what remains is any leak.

    python bench/soak.py [--tracking-uri sqlite:///.mlops/mlflow.db] [--minutes 10] [--concurrency 64] \
        [--output bench/results/soak.json]
"""

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.load import drive  # noqa: E402
from bench.serve import benchmark_texts  # noqa: E402
from tests.helpers import SHARED_DATA, start_model_server, stop_process  # noqa: E402

V1 = "/v1/models/sentiment:predict"


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` and its children, from /proc (MiB)."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if int(fields.get("Pid", 0)) == pid or int(fields.get("PPid", 0)) == pid:
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tracking-uri", default=f"sqlite:///{REPO / '.mlops' / 'mlflow.db'}")
    parser.add_argument("--data", default=str(SHARED_DATA / "tweeteval_sentiment"))
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "soak.json")
    parser.add_argument(
        "--server-args", default="", help='extra predictor flags, e.g. "--remembered_answers 5000"'
    )
    args = parser.parse_args()
    texts = benchmark_texts(args.data)

    with tempfile.TemporaryDirectory() as scratch:
        process, url, _ = start_model_server(
            args.tracking_uri, Path(scratch) / "server.log", extra_args=tuple(args.server_args.split())
        )
        samples: list[tuple[float, float]] = []
        stopping = threading.Event()
        started = time.monotonic()

        def sample() -> None:
            while not stopping.wait(5):
                samples.append(((time.monotonic() - started) / 60, rss_mib(process.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        slices = []
        try:
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                for minute in range(args.minutes):
                    result = pool.submit(drive, url, V1, "v1", texts, args.concurrency, 60.0).result()
                    slices.append({"minute": minute + 1, **result})
                    print(json.dumps(slices[-1]), flush=True)
        finally:
            stopping.set()
            sampler.join()
            stop_process(process)

    after_warmup = [(t, rss) for t, rss in samples if t >= 1.0]
    minutes, rss = np.array(after_warmup).T if after_warmup else (np.array([0.0]), np.array([0.0]))
    slope = float(np.polyfit(minutes, rss, 1)[0]) if len(minutes) > 1 else 0.0
    results = {
        "tracking_uri": args.tracking_uri,
        "minutes": args.minutes,
        "concurrency": args.concurrency,
        "server_args": args.server_args,
        "requests": sum(s["requests"] for s in slices),
        "errors": sum(s["errors"] for s in slices),
        "slices": slices,
        "rss_mib": {"first": round(samples[0][1], 1), "last": round(samples[-1][1], 1)},
        "rss_slope_mib_per_minute_after_warmup": round(slope, 2),
        "rss_samples": [[round(t, 2), round(r, 1)] for t, r in samples],
    }
    print(json.dumps({k: v for k, v in results.items() if k not in ("slices", "rss_samples")}, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
