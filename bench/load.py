"""The load generator of bench/serve.py: ``concurrency`` clients, each sending one text per request as
soon as its previous answer arrives, for a duration or a number of requests. Runs in its own process
(light imports: it must not compete with the server for more CPU than it needs)."""

import asyncio
import time

import httpx
import numpy as np

BODIES = {
    "v1": lambda text: {"instances": [text]},
    "plain": lambda text: {"text": text},
}


def summary(latencies: list[float], errors: int, seconds: float) -> dict:
    """Requests per second, p50/p99 latency in ms, error count."""
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {
        "requests": len(latencies) + errors,
        "errors": errors,
        "seconds": round(seconds, 2),
        "throughput_rps": round(len(latencies) / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def drive(
    url: str,
    path: str,
    body: str,
    texts: list[str],
    concurrency: int,
    seconds: float | None = None,
    requests: int | None = None,
) -> dict:
    """Send requests from ``concurrency`` concurrent clients until ``seconds`` pass or ``requests`` are
    sent; return :func:`summary`. A non-200 answer or a transport error counts as an error."""
    make_body = BODIES[body]

    async def run() -> dict:
        latencies, errors, sent = [], 0, 0
        started = time.perf_counter()
        stop_at = started + seconds if seconds else float("inf")
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

            async def client_loop(first: int) -> None:
                nonlocal errors, sent
                index = first
                while time.perf_counter() < stop_at and (requests is None or sent < requests):
                    sent += 1
                    text = texts[index % len(texts)]
                    index += concurrency
                    began = time.perf_counter()
                    try:
                        ok = (await client.post(path, json=make_body(text))).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    if ok:
                        latencies.append(time.perf_counter() - began)
                    else:
                        errors += 1

            await asyncio.gather(*(client_loop(k) for k in range(concurrency)))
        return summary(latencies, errors, time.perf_counter() - started)

    return asyncio.run(run())
