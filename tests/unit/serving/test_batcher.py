"""The adaptive batcher with a recording stand-in for the model (a function of the texts, so every
answer can be checked against its own request)."""

import asyncio
import threading
import time

import pandas as pd
import pytest

from serving.batcher import AdaptiveBatcher, BatchStats


class RecordingModel:
    """Answers each text with its upper-case form after ``seconds``; records each call's texts."""

    def __init__(self, seconds: float = 0.02, fail_on: str | None = None):
        self.seconds, self.fail_on = seconds, fail_on
        self.calls: list[list[str]] = []
        self.lock = threading.Lock()

    def __call__(self, texts: list[str]) -> pd.DataFrame:
        with self.lock:
            self.calls.append(list(texts))
        time.sleep(self.seconds)
        if self.fail_on in texts:
            raise RuntimeError("model failure")
        return pd.DataFrame({"label": [t.upper() for t in texts]})


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_callers_share_calls_and_each_gets_its_own_rows() -> None:
    model, stats = RecordingModel(), []
    batcher = AdaptiveBatcher(model, max_batch_size=16, on_batch=stats.append)

    async def main():
        requests = [[f"r{i}-a", f"r{i}-b"] if i % 3 else [f"r{i}-a"] for i in range(60)]
        answers = await asyncio.gather(*(batcher.predict(texts) for texts in requests))
        return requests, answers

    requests, answers = run(main())
    for texts, answer in zip(requests, answers, strict=True):
        assert answer["label"].tolist() == [t.upper() for t in texts]
    assert len(model.calls) < len(requests) / 3  # batched
    assert max(len(call) for call in model.calls) <= 16
    assert sum(s.texts for s in stats) == sum(len(t) for t in requests)
    assert all(isinstance(s, BatchStats) and s.compute_seconds > 0 for s in stats)


def test_with_no_wait_a_lone_request_does_not_wait_for_company() -> None:
    model = RecordingModel(seconds=0)
    batcher = AdaptiveBatcher(model, max_batch_size=64, max_wait_ms=0)

    async def main():
        first = asyncio.create_task(batcher.predict(["first"]))
        await asyncio.sleep(0.02)
        return await asyncio.gather(first, batcher.predict(["second"]))

    run(main())
    assert model.calls == [["first"], ["second"]]


def test_max_wait_gathers_requests_that_arrive_close_together() -> None:
    model = RecordingModel(seconds=0)
    batcher = AdaptiveBatcher(model, max_batch_size=64, max_wait_ms=200)

    async def main():
        first = asyncio.create_task(batcher.predict(["first"]))
        await asyncio.sleep(0.02)
        return await asyncio.gather(first, batcher.predict(["second"]))

    answers = run(main())
    assert [a["label"].tolist() for a in answers] == [["FIRST"], ["SECOND"]]
    assert model.calls == [["first", "second"]]


def test_a_failing_model_call_fails_only_its_own_batch() -> None:
    model = RecordingModel(seconds=0.05, fail_on="poison")
    batcher = AdaptiveBatcher(model, max_batch_size=2)

    async def main():
        # All four queue before the batcher runs: calls [neighbour, poison] and [other, another].
        texts = ["neighbour", "poison", "other", "another"]
        results = await asyncio.gather(*(batcher.predict([t]) for t in texts), return_exceptions=True)
        return results, await batcher.predict(["after"])

    (neighbour, poison, other, another), after = run(main())
    assert isinstance(neighbour, RuntimeError) and isinstance(poison, RuntimeError)
    assert other["label"].tolist() == ["OTHER"] and another["label"].tolist() == ["ANOTHER"]
    assert after["label"].tolist() == ["AFTER"]
    assert model.calls == [["neighbour", "poison"], ["other", "another"], ["after"]]


def test_a_request_bigger_than_the_batch_runs_alone_and_whole() -> None:
    model = RecordingModel(seconds=0)
    batcher = AdaptiveBatcher(model, max_batch_size=4)
    texts = [f"t{i}" for i in range(10)]
    assert run(batcher.predict(texts))["label"].tolist() == [t.upper() for t in texts]
    assert model.calls == [texts]


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        AdaptiveBatcher(RecordingModel(), max_batch_size=0)
