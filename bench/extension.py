"""Extension benchmark (not a test): the Chrome extension in headless Chromium on the fixture watch page
(tests/extension/youtube_page.py), against the predictor serving a registered model, measured in one run:

  (a) the fixture page (its 12 comments, then 4 appended and 3 replies opened): comments labelled,
      requests sent, and the time from navigation start to the last badge (timed inside the page);
  (b) the same page with N real YouTube comments appended at once (../shared/data, or TweetEval texts):
      comments labelled per second, requests sent against the bound ceil(N / maxTexts);
  (c) the predictor asked directly with the same texts in the same batches, one request at a time as the
      extension does: texts per second, the limit for (b); the ratio (b) / (c) is the extension's cost.

    python bench/extension.py [--tracking-uri sqlite:///.mlops/mlflow.db] [--comments 2000] \
        [--output bench/results/extension.json]
"""

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.extension.browser import (  # noqa: E402
    FixtureSite,
    badges,
    configure,
    extension_id,
    extension_limits,
    start_chromium,
    wait_until,
)
from tests.extension.test_chromium import (  # noqa: E402
    Predictor,
    comment,
    fixture_threads,
    later_threads,
    open_video,
    requests_served,
)
from tests.extension.youtube_page import Thread, threads_markup  # noqa: E402

LIMITS = extension_limits()
YOUTUBE = REPO.parent / "shared" / "data" / "youtube_comments_sentiment" / "YoutubeCommentsDataSet.csv"

# Runs in the page's own world before its scripts: the time of each badge the extension adds.
BADGE_CLOCK = """
window.badgeTimes = [];
new MutationObserver((records) => {
  for (const record of records)
    for (const node of record.addedNodes)
      if (node.classList && node.classList.contains("sentiment-lens-badge"))
        window.badgeTimes.push(performance.now());
}).observe(document, {childList: true, subtree: true});
"""


def real_comments(count: int) -> list[str]:
    frame = pd.read_csv(YOUTUBE)
    texts = [t for t in frame["Comment"].dropna().astype(str) if t.strip()]
    return (texts * math.ceil(count / len(texts)))[:count]


def all_labelled(driver, ids: set[str]) -> bool:
    shown = badges(driver)
    return all(shown.get(i) for i in ids)


def fixture_page(driver, site, predictor) -> dict:
    """(a): the fixture page, then comments appended later and replies opened."""
    threads, later = fixture_threads("a"), later_threads("a")
    first = {t.comment.comment_id for t in threads}
    before = requests_served(predictor.url, "v1")
    open_video(driver, site, "benchA", threads, later)
    wait_until(lambda: all_labelled(driver, first), 120, "the fixture page's badges")
    last_badge_ms = driver.execute_script("return Math.max(...window.badgeTimes)")
    loaded_ms = driver.execute_script(
        "return performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
    )
    initial_requests = requests_served(predictor.url, "v1") - before
    driver.execute_script("window.fixture.appendLater(); window.fixture.openReplies('a12')")
    everything = first | {t.comment.comment_id for t in later} | {r.comment_id for r in threads[-1].replies}
    wait_until(lambda: all_labelled(driver, everything), 120, "the later comments' badges")
    return {
        "comments_labelled": len(everything),
        "requests": requests_served(predictor.url, "v1") - before,
        "initial_comments": len(first),
        "initial_requests": initial_requests,
        "dom_content_loaded_ms": round(loaded_ms),
        "navigation_to_last_badge_ms": round(last_badge_ms),
    }


def many_comments(driver, site, predictor, texts: list[str]) -> dict:
    """(b): ``texts`` appended at once to a fixture page."""
    threads = fixture_threads("m")[:1]
    open_video(driver, site, "benchM", threads)
    wait_until(lambda: all_labelled(driver, {threads[0].comment.comment_id}), 60, "the first badge")
    many = [Thread(comment(f"n{i}", text)) for i, text in enumerate(texts)]
    ids = {t.comment.comment_id for t in many}
    before = requests_served(predictor.url, "v1")
    started = time.perf_counter()
    driver.execute_script("window.fixture.appendThreads(arguments[0])", threads_markup(many, "benchM"))
    wait_until(lambda: all_labelled(driver, ids), 1800, f"{len(ids)} badges", interval_s=0.5)
    seconds = time.perf_counter() - started
    distinct = len({t.comment.sent_text for t in many})
    return {
        "comments": len(ids),
        "distinct_texts": distinct,
        "requests": requests_served(predictor.url, "v1") - before,
        "request_bound": math.ceil(distinct / LIMITS["maxTexts"]),
        "seconds": round(seconds, 2),
        "comments_per_s": round(len(ids) / seconds, 1),
    }


def direct(predictor, texts: list[str]) -> dict:
    """(c): the same distinct texts in batches of maxTexts, one request at a time."""
    unique = list(dict.fromkeys(t.strip()[: LIMITS["maxChars"]] for t in texts))
    started = time.perf_counter()
    with httpx.Client(timeout=120) as client:
        for start in range(0, len(unique), LIMITS["maxTexts"]):
            chunk = unique[start : start + LIMITS["maxTexts"]]
            client.post(
                f"{predictor.url}/v1/models/sentiment:predict", json={"instances": chunk}
            ).raise_for_status()
    seconds = time.perf_counter() - started
    return {
        "texts": len(unique),
        "seconds": round(seconds, 2),
        "texts_per_s": round(len(unique) / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tracking-uri", default=f"sqlite:///{REPO / '.mlops' / 'mlflow.db'}")
    parser.add_argument("--comments", type=int, default=2000)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "extension.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        predictor = Predictor(args.tracking_uri, folder)
        site = FixtureSite(folder)
        driver = start_chromium(site.port, folder / "profile")
        try:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": BADGE_CLOCK})
            configure(driver, extension_id(driver), predictorUrl=predictor.url)
            answer = httpx.post(f"{predictor.url}/v1/models/sentiment:predict", json={"instances": ["ok"]})
            texts = real_comments(args.comments)
            results = {
                "model": {"tracking_uri": args.tracking_uri, "version": answer.json()["model_version"]},
                "limits": LIMITS,
                "fixture_page": fixture_page(driver, site, predictor),
                "many_comments": many_comments(driver, site, predictor, texts),
                "direct": direct(predictor, texts),
            }
        finally:
            driver.quit()
            site.close()
            predictor.stop()
    results["extension_over_direct"] = round(
        results["many_comments"]["comments_per_s"] / results["direct"]["texts_per_s"], 2
    )
    print(json.dumps(results, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
