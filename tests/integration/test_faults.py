"""Faults injected into the production path with real processes: what users see when Kubernetes stops a
pod under load, when the registry or its object store stops answering, and when the prediction log's
S3 stalls."""

import os
import signal
import threading
import time
from collections import Counter

import httpx

from tests.helpers import start_model_server

V1 = "/v1/models/sentiment:predict"


class ClosedLoopClients:
    """``count`` clients, each sending one v1 request at a time on a new connection (so a refused
    connection means "not taken", and any other error a request that failed)."""

    def __init__(self, url: str, count: int = 8):
        self.url = url
        self.outcomes: Counter = Counter()
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._send, args=(i,), daemon=True) for i in range(count)]

    def _send(self, client_id: int) -> None:
        while not self.stopping.is_set():
            try:
                with httpx.Client(base_url=self.url, timeout=30) as client:
                    response = client.post(V1, json={"instances": [f"client {client_id} loves this"]})
                self.outcomes[response.status_code] += 1
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")
            except httpx.ConnectError:
                self.outcomes["refused"] += 1
                time.sleep(0.05)
            except httpx.HTTPError as error:
                self.failures.append(repr(error))

    def wait_for(self, answers: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while self.outcomes[200] < answers:
            assert time.monotonic() < deadline, f"only {self.outcomes} after {timeout_s} s"
            time.sleep(0.05)

    def __enter__(self) -> "ClosedLoopClients":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)


def test_sigterm_under_load_finishes_every_request_in_flight_then_exits(
    fast_champion_store, tmp_path
) -> None:
    """What Kubernetes sends on every rollout and scale-down. A 200 ms batching window keeps about eight
    requests in flight at the signal; each must get its answer."""
    process, url, _ = start_model_server(
        fast_champion_store, tmp_path / "server.log", extra_args=("--max_batch_wait_ms", "200")
    )
    with ClosedLoopClients(url) as clients:
        clients.wait_for(40)
        time.sleep(0.1)  # the next requests are now halfway through their batching window
        answered_before = clients.outcomes[200]
        os.kill(process.pid, signal.SIGTERM)
        started = time.monotonic()
        process.wait(timeout=60)
        exit_seconds = time.monotonic() - started
        time.sleep(0.5)  # the clients now find nobody listening
    log = (tmp_path / "server.log").read_text()
    assert clients.failures == [], (clients.failures[:5], log[-2000:])
    assert clients.outcomes[200] > answered_before, (
        clients.outcomes
    )  # those in flight at the signal: answered
    assert clients.outcomes["refused"] > 0  # and new work was not taken
    assert process.returncode == 0, log[-2000:]
    assert exit_seconds < 30
