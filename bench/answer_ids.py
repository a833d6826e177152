"""What signing answer ids costs: per answered text, the signed id (serving/answer_ids.py: SHA-256 of the
text, HMAC-SHA256, base64) against the random UUID it replaced, and verifying one, in-process, side by
side in one run; then that cost against the predictor's own time per request (``--request-ms``, e.g. the
p50 of bench/serve.py at one text, and at 20 texts per request).

    python bench/answer_ids.py [--request-ms 37] [--texts-per-request 20]

Writes bench/results/answer-ids.json.
"""

import argparse
import json
import time
import timeit
from pathlib import Path

from kserve.utils.utils import generate_uuid

from rollout.load import BUILT_IN_TEXTS
from serving.answer_ids import AnswerSigner

ROUNDS = 5


def per_call_us(statement, number: int) -> float:
    """Median over ROUNDS of the microseconds one call takes."""
    times = sorted(timeit.repeat(statement, number=number, repeat=ROUNDS))
    return times[ROUNDS // 2] / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--request-ms", type=float, default=37.0, help="the predictor's p50 per request")
    parser.add_argument("--texts-per-request", type=int, default=20)
    parser.add_argument("--output", type=Path, default=Path("bench/results/answer-ids.json"))
    args = parser.parse_args()

    signer = AnswerSigner(b"k" * 32)
    texts = list(BUILT_IN_TEXTS)
    now, issued = time.time(), signer.issue(texts[0], "positive", 0.91, "3", time.time())
    state = {"i": 0}

    def sign() -> str:
        state["i"] = (state["i"] + 1) % len(texts)
        return signer.issue(texts[state["i"]], "positive", 0.91, "3", now)

    figures = {
        "uuid_us_per_text": round(per_call_us(generate_uuid, 20_000), 2),
        "signed_id_us_per_text": round(per_call_us(sign, 20_000), 2),
        "verify_us_per_id": round(per_call_us(lambda: signer.verify(issued), 20_000), 2),
        "id_characters": len(issued),
    }
    extra_ms = (figures["signed_id_us_per_text"] - figures["uuid_us_per_text"]) / 1000
    for texts_per_request in (1, args.texts_per_request):
        figures[f"share_of_a_{args.request_ms:g}_ms_request_at_{texts_per_request}_texts"] = round(
            extra_ms * texts_per_request / args.request_ms, 5
        )
    print(json.dumps(figures, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
