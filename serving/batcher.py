"""Adaptive batching: concurrent requests share one model call.

While the model is busy, arriving requests queue; when it is free, one call takes every queued request,
up to ``max_batch_size`` texts. A request that finds the model idle waits at most ``max_wait_ms`` for
company (0: it runs at once), so a lone request pays nothing and throughput rises with load. Each caller
gets back exactly its own rows; an error in a model call fails only the requests of that call, and a
request's bad input never gets this far (it is rejected when decoded).
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

logger = logging.getLogger(__name__)


class Rows(Protocol):
    """A model's answer for a list of texts: one row per text, sliced by position (``rows[i:j]``)."""

    def __len__(self) -> int: ...

    def __getitem__(self, rows: slice) -> "Rows": ...


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class BatchStats:
    """What one model call did, for metrics: texts in it, each request's queue wait, compute seconds."""

    texts: int
    queue_waits: list[float]
    compute_seconds: float


class AdaptiveBatcher:
    """Gathers concurrent ``predict`` calls into batched calls of ``predict_batch`` (run in one
    dedicated thread)."""

    def __init__(
        self,
        predict_batch: Callable[[list[str]], Rows],
        max_batch_size: int = 16,
        max_wait_ms: float = 0.0,
        on_batch: Callable[[BatchStats], None] = lambda stats: None,
    ):
        if max_batch_size < 1 or max_wait_ms < 0:
            raise ValueError("max_batch_size must be >= 1 and max_wait_ms >= 0")
        self.predict_batch = predict_batch
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch
        # One dedicated thread runs every model call, so calls never overlap and stay on one thread.
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="model")
        self._waiting: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task | None = None

    async def predict(self, texts: list[str]) -> Rows:
        """The model's answer for ``texts`` (rows in the same order), computed in a shared batch."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="adaptive-batcher")
        pending = _Pending(texts, asyncio.get_running_loop().create_future())
        self._waiting.append(pending)
        self._arrived.set()
        return await pending.future

    async def _wait_for_arrival(self, timeout: float | None) -> bool:
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _gather(self) -> list[_Pending]:
        """The next batch: the oldest request, then the next ones while they fit, waiting at most
        ``max_wait`` for more when none is queued. A request too big for this batch starts the next."""
        while not self._waiting:
            await self._wait_for_arrival(None)
        batch = [self._waiting.popleft()]
        size, deadline = len(batch[0].texts), time.perf_counter() + self.max_wait
        while size < self.max_batch_size:
            if not self._waiting:
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or not await self._wait_for_arrival(remaining):
                    break
                continue
            if size + len(self._waiting[0].texts) > self.max_batch_size:
                break
            batch.append(self._waiting.popleft())
            size += len(batch[-1].texts)
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._gather()
            started = time.perf_counter()
            texts = [text for pending in batch for text in pending.texts]
            try:
                loop = asyncio.get_running_loop()
                answer = await loop.run_in_executor(self._model_thread, self.predict_batch, texts)
            except Exception as exc:  # the model failed: fail this batch's callers, keep serving
                logger.exception("model call on a batch of %d texts failed", len(texts))
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            finished = time.perf_counter()
            start = 0
            for pending in batch:
                rows = answer[start : start + len(pending.texts)]
                start += len(pending.texts)
                if not pending.future.done():  # the caller may have gone away
                    pending.future.set_result(rows)
            self.on_batch(BatchStats(len(texts), [started - p.queued_at for p in batch], finished - started))
