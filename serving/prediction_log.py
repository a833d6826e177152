"""Sampled prediction logging and the feedback log, for the monitor step (components/monitor.py).

The request path only enqueues, never blocks: a bounded queue is drained by one background thread into
JSON-lines part files (``<prefix>-<UTC time>-<host>-<n>.jsonl``; prefix ``predictions`` or ``feedback``)
in a folder or under an ``s3://`` prefix, one part per ``flush_rows`` records or ``flush_seconds``. When
the queue is full the record is dropped and counted (``sentiment_prediction_log_records_total`` or
``sentiment_feedback_log_records_total``, ``outcome="dropped"``).
"""

import json
import logging
import queue
import random
import socket
import threading
import time
from pathlib import Path

from prometheus_client import Counter

from core import storage
from serving.prometheus_metrics import FEEDBACK_LOG_RECORDS, PREDICTION_LOG_RECORDS

logger = logging.getLogger(__name__)

_STOP = object()
FLUSH_ROWS = 1000  # a part per this many records
FLUSH_SECONDS = 30.0  # or after this long
QUEUE_SIZE = 10_000  # records held while the writer is slow (S3 stalled); beyond, dropped and counted


class JsonLinesLog:
    """Write enqueued records (dicts) as ``<prefix>-*.jsonl`` parts under ``destination``."""

    def __init__(
        self,
        destination: str,
        prefix: str,
        counter: Counter,
        flush_rows: int = FLUSH_ROWS,
        flush_seconds: float = FLUSH_SECONDS,
        queue_size: int = QUEUE_SIZE,
    ):
        self.destination, self.prefix, self.counter = destination.rstrip("/"), prefix, counter
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._parts = 0
        for outcome in ("written", "dropped"):
            counter.labels(outcome=outcome)  # series at 0 from the start, for rate()
        if not storage.is_remote(destination):  # an unwritable folder fails the start, not every part
            Path(destination).mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._drain, name=f"{prefix}-log", daemon=True)
        self._thread.start()

    def enqueue(self, row: dict) -> None:
        """Queue one record for the writer thread; never waits (a full queue drops it, counted)."""
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self.counter.labels(outcome="dropped").inc()

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued and stop the writer thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout_s)

    def _drain(self) -> None:
        rows: list[dict] = []
        deadline = time.monotonic() + self.flush_seconds
        while True:
            try:
                row = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                row = None
            if row is _STOP:
                self._write(rows)
                return
            if row is not None:
                rows.append(row)
            if len(rows) >= self.flush_rows or time.monotonic() >= deadline:
                self._write(rows)
                rows, deadline = [], time.monotonic() + self.flush_seconds

    def _write(self, rows: list[dict]) -> None:
        if not rows:
            return
        self._parts += 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        name = f"{self.prefix}-{stamp}-{socket.gethostname()}-{self._parts:06d}.jsonl"
        data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
        try:
            storage.write_bytes(storage.join(self.destination, name), data)  # never half a part
            self.counter.labels(outcome="written").inc(len(rows))
        except Exception:
            logger.exception("writing %d %s records to %s failed", len(rows), self.prefix, self.destination)
            self.counter.labels(outcome="dropped").inc(len(rows))


class PredictionLog(JsonLinesLog):
    """Log a ``sample_rate`` share of answers (time, id, model version, text, label, confidence)."""

    def __init__(self, destination: str, sample_rate: float, **writer):
        super().__init__(destination, "predictions", PREDICTION_LOG_RECORDS, **writer)
        self.sample_rate = sample_rate
        self._random = random.Random()

    def record(
        self, texts: list[str], labels: list[str], confidences: list[float], version: str, ids: list[str]
    ) -> None:
        """Enqueue a sample of one request's answers (``ids``: the ids they carry); never waits."""
        now = time.time()
        for answer_id, text, label, confidence in zip(ids, texts, labels, confidences, strict=True):
            if self._random.random() < self.sample_rate:
                self.enqueue(
                    {
                        "time": now,
                        "id": answer_id,
                        "model_version": version,
                        "text": text,
                        "label": label,
                        "confidence": round(confidence, 4),
                    }
                )


def feedback_log(destination: str, **writer) -> JsonLinesLog:
    """The feedback log (every labelled answer, serving/feedback.py) beside the prediction log."""
    return JsonLinesLog(destination, "feedback", FEEDBACK_LOG_RECORDS, **writer)
