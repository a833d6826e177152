"""The INT8 runtime, served for real: the embeddings champion's predictor with ``--runtime int8`` gives a
text the same label and probabilities whether it comes alone or inside requests of other texts, which the
predictor's batcher merges further (the runtime runs one text per ONNX run: models/onnx_runtime.py)."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core.labels import LABELS
from tests.helpers import HTTP, scrape_metrics, sentiment_frame, start_model_server, stop_process

TEXTS = sentiment_frame()["text"].tolist()


def answers(url: str, texts: list[str]) -> list[dict]:
    response = HTTP.post(f"{url}/v1/models/sentiment:predict", json={"instances": texts}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_an_int8_answer_does_not_depend_on_the_texts_batched_with_it(
    champion_store: str, tmp_path: Path
) -> None:
    process, url, _ = start_model_server(
        champion_store, tmp_path / "server.log", extra_args=("--runtime", "int8", "--max_batch_wait_ms", "20")
    )
    try:
        served = [
            dict(labels)
            for (name, labels), value in scrape_metrics(url).items()
            if name == "sentiment_model_info"
        ]
        assert [info["runtime"] for info in served] == ["int8"]
        probes = TEXTS[:40]
        alone = {text: answers(url, [text])[0] for text in probes}
        rng = np.random.default_rng(0)
        requests = []
        for _ in range(3):  # each probe inside three 32-text requests of random company
            for start in range(0, len(probes), 8):
                company = rng.choice(TEXTS, size=24).tolist()
                requests.append([*probes[start : start + 8], *company])
        with ThreadPoolExecutor(4) as pool:  # concurrent, so that the batcher merges requests too
            batched = list(pool.map(lambda texts: (texts, answers(url, texts)), requests))
        columns = LABELS
        compared = 0
        for texts, predicted in batched:
            for text, answer in zip(texts, predicted, strict=True):
                if text in alone:
                    assert answer["label"] == alone[text]["label"], text
                    np.testing.assert_allclose(
                        [answer["probabilities"][c] for c in columns],
                        [alone[text]["probabilities"][c] for c in columns],
                        atol=1e-6,
                    )
                    compared += 1
        assert compared >= 3 * len(probes)
    finally:
        stop_process(process)
