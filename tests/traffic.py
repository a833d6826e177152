"""Closed-loop client traffic for tests of the serving path under change and faults."""

import threading
import time
from collections import Counter

import httpx

from tests.helpers import HTTP

V1 = "/v1/models/sentiment:predict"


class ClosedLoopClients:
    """``count`` client threads, each sending one v1 request at a time on a new connection (so a refused
    connection means "not taken", and any other error a failed request). Records each answer as
    ``(status, model_version)``, when it was sent and how long it took, and every failure."""

    def __init__(self, url: str, count: int = 4):
        self.url = url
        self.answers: Counter = Counter()
        self.refused = 0
        self.failures: list[str] = []
        self.timings: list[tuple[float, float]] = []  # (monotonic time sent, seconds to answer)
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._send, args=(i,), daemon=True) for i in range(count)]

    def _send(self, client_id: int) -> None:
        while not self.stopping.is_set():
            try:
                sent = time.monotonic()
                body = {"instances": [f"client {client_id} loves this"]}
                response = HTTP.post(f"{self.url}{V1}", json=body, timeout=30)
                self.timings.append((sent, time.monotonic() - sent))
                ok = response.status_code == 200
                self.answers[(response.status_code, response.json()["model_version"] if ok else None)] += 1
                if not ok:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")
            except httpx.ConnectError:
                self.refused += 1
                time.sleep(0.05)
            except httpx.HTTPError as error:
                self.failures.append(repr(error))

    def answered(self, version: str | None = None) -> int:
        """How many requests got a 200 (from ``version``, when given)."""
        return sum(n for (status, v), n in self.answers.items() if status == 200 and version in (None, v))

    def wait_for(self, answers: int, version: str | None = None, timeout_s: float = 60) -> None:
        """Wait until ``answered(version)`` reaches ``answers``."""
        deadline = time.monotonic() + timeout_s
        while self.answered(version) < answers:
            assert time.monotonic() < deadline, f"only {self.answers} after {timeout_s} s"
            time.sleep(0.05)

    def slowest_since(self, since: float) -> float:
        """The longest answer time of the requests sent since ``since`` (monotonic)."""
        return max((seconds for sent, seconds in self.timings if sent >= since), default=0.0)

    def __enter__(self) -> "ClosedLoopClients":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)
