"""Live labels behind a real load balancer: three predictor replicas (the TF-IDF champion, one shared
answer key, as a Kubernetes Secret gives every pod) behind nginx round-robin, as a Service spreads
requests over pods, and a real Prometheus scraping each replica with the project's recording rules.
Answers are asked through the balancer, their labels posted back through it, 20 rows a request: every row
is accepted whichever replica answered, and counted once across the replicas; the live quality the rules
sum from the three replicas' counters is the macro recall and accuracy recomputed here from the same
answers and labels. (Before answer ids were signed, 0 of 400 rows were stored this way: each replica knew
only its own answers; before the counters, each replica scored only the labels that reached it.)"""

import secrets
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sklearn.metrics import recall_score

from core.labels import LABELS
from monitoring.live_quality import quality_from_counts
from rollout.history import live_scores
from rollout.prometheus import Prometheus
from tests.helpers import (
    HTTP,
    REPO,
    free_port,
    metric_value,
    scrape_metrics,
    sentiment_frame,
    start_model_server,
    start_prometheus,
    stop_processes,
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
    """nginx on a free port round-robin over three predictors sharing an answer key, and Prometheus
    scraping each (labelled as the PodMonitor labels pods) with monitoring/alerts.rules.yml; yields
    (balancer URL, the replicas' URLs, Prometheus)."""
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
    replicas = [replica_url for _, replica_url, _ in started]
    targets = [replica.removeprefix("http://") for replica in replicas]
    scraped = None
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/v2/models/sentiment/ready", balancer, timeout_s=30)
        scraped, prometheus_url = start_prometheus(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(REPO / "monitoring" / "alerts.rules.yml")],
                "scrape_configs": [
                    {
                        "job_name": "mlops/sentiment-predictor",
                        "static_configs": [
                            {"targets": targets, "labels": {"namespace": "mlops", "model": "sentiment"}}
                        ],
                    }
                ],
            },
            tmp_path,
        )
        yield url, replicas, Prometheus(prometheus_url)
    finally:
        stop_processes([p for p in (scraped, balancer) if p] + [process for process, _, _ in started])


def accepted(url: str) -> float:
    return metric_value(scrape_metrics(url), "sentiment_feedback_rows_total", outcome="accepted")


def labels_counted(prometheus: Prometheus) -> float:
    answer = prometheus.query('sentiment:live_labelled:1d{model_version="1"}')
    return answer[0][1] if answer else 0.0


def test_every_label_posted_through_the_balancer_is_stored_once_and_summed_into_live_quality(
    balanced,
) -> None:
    url, replicas, prometheus = balanced
    frame = sentiment_frame()
    texts = (frame["text"].tolist() * 10)[:400]
    truth = (frame["label"].tolist() * 10)[:400]
    before = [accepted(replica) for replica in replicas]
    ids, predicted = [], []
    for start in range(0, len(texts), 10):
        response = HTTP.post(
            f"{url}/v1/models/sentiment:predict", json={"instances": texts[start : start + 10]}
        )
        assert response.status_code == 200, response.text
        ids += [p["id"] for p in response.json()["predictions"]]
        predicted += [p["label"] for p in response.json()["predictions"]]
    rows = [{"id": i, "label": label} for i, label in zip(ids, truth, strict=True)]
    stored = 0
    for start in range(0, len(rows), 20):
        response = HTTP.post(f"{url}/v1/models/sentiment:feedback", json=rows[start : start + 20])
        assert response.status_code == 200, response.text
        assert response.json()["refused"] == []
        stored += response.json()["accepted"]
    assert stored == 400
    per_replica = [accepted(replica) - b for replica, b in zip(replicas, before, strict=True)]
    assert sum(per_replica) == 400 and all(n > 0 for n in per_replica)  # spread, and counted once

    # live quality summed across the replicas by the recording rules = recomputed from the same rows
    deadline = time.monotonic() + 60
    while labels_counted(prometheus) < 400 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert labels_counted(prometheus) == 400

    def recorded(rule: str) -> float:
        ((_, value),) = prometheus.query(f'{rule}{{namespace="mlops", model="sentiment", model_version="1"}}')
        return value

    classes = sorted(set(truth))
    assert recorded("sentiment:live_macro_recall:ratio1d") == pytest.approx(
        recall_score(truth, predicted, labels=classes, average="macro")
    )
    assert recorded("sentiment:live_accuracy:ratio1d") == pytest.approx(
        sum(t == p for t, p in zip(truth, predicted, strict=True)) / 400
    )
    counted = {}
    for replica in replicas:  # each replica's own part of the matrix, summed here as the rules sum them
        samples = scrape_metrics(replica)
        for label in LABELS:
            for guess in LABELS:
                key = (label, guess)
                counted[key] = counted.get(key, 0) + metric_value(
                    samples, "sentiment_live_labels_total", model_version="1", label=label, predicted=guess
                )
    live = quality_from_counts(counted)
    assert recorded("sentiment:live_macro_recall_lower:ratio1d") == pytest.approx(live.lower)
    assert recorded("sentiment:live_macro_recall_upper:ratio1d") == pytest.approx(live.upper)
    # the rollout history (make history) shows the same beside each version
    shown = live_scores(prometheus.url, "sentiment")["1"]
    assert shown == f"{live.macro_recall:.3f} [{live.lower:.3f}, {live.upper:.3f}], 400 labels"
