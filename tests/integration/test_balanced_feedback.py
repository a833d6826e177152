"""Live labels behind a real load balancer: three predictor replicas (the TF-IDF champion, one shared
answer key, as a Kubernetes Secret gives every pod) behind nginx round-robin, as a Service spreads
requests over pods. Answers are asked through the balancer, their labels posted back through it, 20 rows
a request: every row is accepted whichever replica answered, and counted once across the replicas. (Before
answer ids were signed, 0 of 400 rows were stored this way: each replica knew only its own answers.)"""

import secrets
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.helpers import (
    free_port,
    metric_value,
    scrape_metrics,
    sentiment_frame,
    start_model_server,
    stop_process,
    wait_for_http,
)

REPLICAS = 3
NGINX_CONFIG = """
pid {root}/nginx.pid;
error_log {root}/error.log;
worker_processes 1;
events {{}}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream predictors {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://predictors; }}
    }}
}}
"""


@pytest.fixture
def balanced(fast_champion_store: str, tmp_path: Path):
    """nginx on a free port round-robin over three predictors sharing an answer key; yields (balancer
    URL, the replicas' URLs)."""
    nginx = shutil.which("nginx") or shutil.which("/usr/sbin/nginx")
    if nginx is None:
        pytest.fail("nginx is not installed: `apt-get install nginx-light` (.ci/run does)")
    key = {"ANSWER_KEY": secrets.token_hex(32)}
    with ThreadPoolExecutor(REPLICAS) as pool:
        started = list(
            pool.map(
                lambda i: start_model_server(fast_champion_store, tmp_path / f"replica-{i}.log", env=key),
                range(REPLICAS),
            )
        )
    port = free_port()
    servers = "\n".join(f"        server {url.removeprefix('http://')};" for _, url, _ in started)
    (tmp_path / "nginx.conf").write_text(NGINX_CONFIG.format(root=tmp_path, servers=servers, port=port))
    balancer = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/v2/models/sentiment/ready", balancer, timeout_s=30)
        yield url, [replica_url for _, replica_url, _ in started]
    finally:
        stop_process(balancer)
        for process, _, _ in started:
            stop_process(process)


def accepted(url: str) -> float:
    return metric_value(scrape_metrics(url), "sentiment_feedback_rows_total", outcome="accepted")


def test_every_label_posted_through_the_balancer_is_stored_once(balanced) -> None:
    url, replicas = balanced
    frame = sentiment_frame()
    texts = (frame["text"].tolist() * 10)[:400]
    truth = (frame["label"].tolist() * 10)[:400]
    before = [accepted(replica) for replica in replicas]
    ids = []
    for start in range(0, len(texts), 10):
        response = httpx.post(
            f"{url}/v1/models/sentiment:predict", json={"instances": texts[start : start + 10]}
        )
        assert response.status_code == 200, response.text
        ids += [p["id"] for p in response.json()["predictions"]]
    rows = [{"id": i, "label": label} for i, label in zip(ids, truth, strict=True)]
    stored = 0
    for start in range(0, len(rows), 20):
        response = httpx.post(f"{url}/v1/models/sentiment:feedback", json=rows[start : start + 20])
        assert response.status_code == 200, response.text
        assert response.json()["refused"] == []
        stored += response.json()["accepted"]
    assert stored == 400
    per_replica = [accepted(replica) - b for replica, b in zip(replicas, before, strict=True)]
    assert sum(per_replica) == 400 and all(n > 0 for n in per_replica)  # spread, and counted once
