"""Instant queries against Prometheus' HTTP API: what the canary analysis and the rollout history read."""

import httpx


class PrometheusError(RuntimeError):
    """Prometheus did not answer a query (unreachable, or the query failed)."""


class Prometheus:
    """Instant queries against Prometheus' HTTP API, on one connection pool (a canary analysis asks dozens
    of queries a look; httpx's top-level ``get`` builds a client and its TLS context per call)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.client = httpx.Client(timeout=30)

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        try:
            answer = self.client.get(f"{self.url}/api/v1/query", params={"query": expr}).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise PrometheusError(f"Prometheus at {self.url} did not answer {expr!r}: {exc}") from exc
        if answer.get("status") != "success":
            raise PrometheusError(f"Prometheus refused {expr!r}: {answer.get('error')}")
        return [(r["metric"], float(r["value"][1])) for r in answer["data"]["result"]]
