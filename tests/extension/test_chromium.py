"""The Chrome extension, loaded unpacked into real headless Chromium, on a page with YouTube's comment
markup served as https://www.youtube.com/watch, against the real predictor (``python -m serving``) serving
the champion that the real train/evaluate/gate steps registered (the TF-IDF family: the fastest, as
these tests are about the client). Each comment's badge must be the
predictor's own answer for that text; requests stay within the batching bound; failures show in the
panel and never break the page."""

import math
import shutil

import pytest

from tests.conftest import shared_dataset
from tests.extension.browser import (
    CHROMEDRIVER,
    CHROMIUM,
    FixtureSite,
    badges,
    configure,
    extension_id,
    extension_limits,
    panel_state,
    start_chromium,
    wait_until,
)
from tests.extension.youtube_page import Comment, Emoji, Thread, threads_markup, watch_page
from tests.helpers import HTTP, REPO, free_port, scrape_metrics, start_model_server, stop_process

LIMITS = extension_limits()
SCREENSHOT = REPO / ".mlops" / "screenshots" / "extension-fixture.png"

LONG_REVIEW = "Long review: " + "the pacing felt slow at first, but the ending was worth the wait. " * 95


def comment(comment_id: str, *parts, legacy: bool = False) -> Comment:
    return Comment(comment_id, parts, author=f"@viewer-{comment_id}", legacy=legacy)


def fixture_threads(prefix: str) -> list[Thread]:
    """The comments of one fixture video: both renderers, a duplicate text, emoji (as text and as images),
    right-to-left scripts, a multi-line and a very long comment (cut to 5,000 characters when sent), and a
    thread whose replies open later."""
    return [
        Thread(comment(f"{prefix}1", "I love this video, the editing is fantastic!")),
        Thread(comment(f"{prefix}2", "This is the worst tutorial I have ever watched.")),
        Thread(comment(f"{prefix}3", "The video was uploaded at 5pm.")),
        Thread(comment(f"{prefix}4", "I love this video, the editing is fantastic!")),
        Thread(comment(f"{prefix}5", "Best song of the year ", Emoji("😂"), Emoji("🔥"), " ❤️")),
        Thread(comment(f"{prefix}6", "أحببت هذا الفيديو كثيرا، شكرا لك")),
        Thread(comment(f"{prefix}7", "הסרטון הזה נורא ומשעמם")),
        Thread(comment(f"{prefix}8", LONG_REVIEW)),
        Thread(comment(f"{prefix}9", "first line\nsecond line: what a great idea")),
        Thread(comment(f"{prefix}10", "Old layout: I really enjoyed the music", legacy=True)),
        Thread(comment(f"{prefix}11", "Terrible audio, I could not hear anything", legacy=True)),
        Thread(
            comment(f"{prefix}12", "Does anyone know the name of the song at 2:30?"),
            replies=(
                comment(f"{prefix}12r1", "It is awful, do not look it up"),
                comment(f"{prefix}12r2", "Thanks, I found it and it is wonderful"),
                comment(f"{prefix}12r3", "Same question here", legacy=True),
            ),
        ),
    ]


def later_threads(prefix: str) -> list[Thread]:
    """Comments the page appends later, as scrolling does; one repeats an earlier text."""
    return [
        Thread(comment(f"{prefix}l1", "Came back to watch this again, still amazing")),
        Thread(comment(f"{prefix}l2", "Unsubscribed after this one, so disappointing")),
        Thread(comment(f"{prefix}l3", "This is the worst tutorial I have ever watched.")),
        Thread(comment(f"{prefix}l4", "Who is watching in 2026?", legacy=True)),
    ]


def requests_served(url: str, protocol: str) -> int:
    """Inference requests the predictor has answered over ``protocol``, whatever their status."""
    return int(
        sum(
            value
            for (name, labels), value in scrape_metrics(url).items()
            if name == "sentiment_requests_total" and ("protocol", protocol) in labels
        )
    )


def predictor_labels(url: str, texts: list[str]) -> dict[str, str]:
    """The predictor's own answer for each text, asked directly (v1)."""
    unique = list(dict.fromkeys(texts))
    labels: dict[str, str] = {}
    for start in range(0, len(unique), LIMITS["maxTexts"]):
        chunk = unique[start : start + LIMITS["maxTexts"]]
        response = HTTP.post(f"{url}/v1/models/sentiment:predict", json={"instances": chunk}, timeout=60)
        response.raise_for_status()
        labels |= dict(zip(chunk, (p["label"] for p in response.json()["predictions"]), strict=True))
    return labels


def expected_badges(url: str, comments: list[Comment]) -> dict[str, str]:
    labels = predictor_labels(url, [c.sent_text for c in comments])
    return {c.comment_id: labels[c.sent_text] for c in comments}


def counts_of(labels: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    return counts


def bound(*text_groups: list[Comment]) -> int:
    """The most requests the extension may send: each group of comments found at one time needs
    ceil(new distinct texts / maxTexts) requests."""
    sent: set[str] = set()
    total = 0
    for group in text_groups:
        new = {c.sent_text for c in group} - sent
        total += math.ceil(len(new) / LIMITS["maxTexts"])
        sent |= new
    return total


class Predictor:
    """The real model server on fixed ports, so that a test can stop it and start it again."""

    def __init__(self, tracking_uri: str, log_folder, *extra_args: str) -> None:
        self.tracking_uri = tracking_uri
        self.log_folder = log_folder
        self.extra_args = extra_args
        self.ports = (free_port(), free_port())
        self.url = f"http://127.0.0.1:{self.ports[0]}"
        self.process = None
        self.start()

    def start(self) -> None:
        # A request of the extension's largest batch passes; a larger one would be refused (400).
        self.process, _, _ = start_model_server(
            self.tracking_uri,
            self.log_folder / "server.log",
            extra_args=(
                "--max_batch_wait_ms",
                "5",
                "--max_instances",
                str(LIMITS["maxTexts"]),
                *self.extra_args,
            ),
            ports=self.ports,
        )

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="module")
def predictor(fast_champion_store: str, tmp_path_factory):
    server = Predictor(fast_champion_store, tmp_path_factory.mktemp("extension-predictor"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    fixture_site = FixtureSite(tmp_path_factory.mktemp("fixture-site"))
    yield fixture_site
    fixture_site.close()


@pytest.fixture(scope="module")
def browser(site: FixtureSite, predictor: Predictor, tmp_path_factory):
    """Chromium with the extension, pointed at the predictor through its options page; yields (driver,
    extension id)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists() and shutil.which("node")):
        pytest.fail(
            "the browser tests need Debian's chromium and chromium-driver, and node (.ci/run installs them)"
        )
    driver = start_chromium(site.port, tmp_path_factory.mktemp("chromium-profile"))
    try:
        extension = extension_id(driver)
        status = configure(
            driver, extension, predictorUrl=predictor.url, modelName="sentiment", protocol="v1"
        )
        assert status.startswith('Saved: model "sentiment" is ready'), status
        yield driver, extension
    finally:
        driver.quit()


def open_video(driver, site: FixtureSite, video_id: str, threads: list[Thread], later=()) -> None:
    site.pages[video_id] = watch_page(video_id, f"Fixture video {video_id}", threads, list(later))
    driver.get(f"https://www.youtube.com/watch?v={video_id}")


def wait_for_badges(driver, expected: dict[str, str], timeout_s: float = 60) -> dict[str, str]:
    def labelled():
        shown = badges(driver)
        return shown if all(shown.get(i) for i in expected) else None

    return wait_until(labelled, timeout_s, f"badges on {len(expected)} comments")


UNLABELLED = """
const badge = document.querySelector(`[data-fixture-id="${arguments[0]}"] .sentiment-lens-unlabelled`);
return badge ? badge.title : null;
"""


def severe_console_entries(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_every_comment_gets_the_predictors_label(browser, site, predictor) -> None:
    driver, _ = browser
    threads = fixture_threads("a")
    comments = [t.comment for t in threads]  # replies stay closed on this page
    before = requests_served(predictor.url, "v1")
    open_video(driver, site, "fixtureA", threads)
    shown = wait_for_badges(driver, {c.comment_id: "" for c in comments})
    sent = requests_served(predictor.url, "v1") - before

    expected = expected_badges(predictor.url, comments)
    assert {i: shown[i] for i in expected} == expected
    assert 1 <= sent <= bound(comments)
    panel = wait_until(lambda: panel_state(driver), 10, "the panel")
    assert panel == {"counts": counts_of(expected), "notice": ""}
    assert driver.execute_script("return window.fixture.errors") == []
    assert severe_console_entries(driver) == []
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOT))


def test_hovering_a_badge_shows_the_words_behind_its_label(browser, site, predictor) -> None:
    """Where the predictor offers :explain, a badge's hover title gains the words that push hardest towards
    its label, asked once for that text."""
    from selenium.webdriver.common.action_chains import ActionChains

    driver, _ = browser
    threads = fixture_threads("x")[:2]
    open_video(driver, site, "fixtureX", threads)
    wait_for_badges(driver, {t.comment.comment_id: "" for t in threads})
    badge = driver.find_element("css selector", '[data-fixture-id="x1"] .sentiment-lens-badge')
    ActionChains(driver).move_to_element(badge).perform()
    title = wait_until(
        lambda: "words:" in (badge.get_attribute("title") or "") and badge.get_attribute("title"),
        20,
        "the words",
    )
    assert title.startswith("positive, confidence") and "words: love (+" in title, title


def test_comments_that_load_later_and_opened_replies_get_labelled(browser, site, predictor) -> None:
    driver, _ = browser
    threads, later = fixture_threads("b"), later_threads("b")
    first = [t.comment for t in threads]
    before = requests_served(predictor.url, "v1")
    open_video(driver, site, "fixtureB", threads, later)
    wait_for_badges(driver, {c.comment_id: "" for c in first})

    driver.execute_script("window.fixture.appendLater()")
    driver.execute_script("window.fixture.openReplies(arguments[0])", "b12")
    replies = list(threads[-1].replies)
    appended = [t.comment for t in later]
    everything = first + replies + appended
    shown = wait_for_badges(driver, {c.comment_id: "" for c in everything})
    sent = requests_served(predictor.url, "v1") - before

    expected = expected_badges(predictor.url, everything)
    assert {i: shown[i] for i in expected} == expected
    assert sent <= bound(first, replies + appended)
    wait_until(lambda: panel_state(driver)["counts"] == counts_of(expected), 10, "the panel's new totals")


def test_a_click_to_another_video_starts_its_own_totals(browser, site, predictor) -> None:
    """YouTube is a single-page app: the next video comes without a new document."""
    driver, _ = browser
    first, second = fixture_threads("h")[:3], later_threads("h")
    open_video(driver, site, "fixtureH", first)
    wait_for_badges(driver, {t.comment.comment_id: "" for t in first})
    driver.execute_script(
        "window.fixture.navigate(arguments[0], arguments[1], arguments[2])",
        "fixtureH2",
        "Fixture video fixtureH2",
        threads_markup(second, "fixtureH2"),
    )
    comments = [t.comment for t in second]
    shown = wait_for_badges(driver, {c.comment_id: "" for c in comments})
    expected = expected_badges(predictor.url, comments)
    assert {i: shown[i] for i in expected} == expected
    wait_until(lambda: panel_state(driver)["counts"] == counts_of(expected), 10, "the second video's totals")


def test_the_v2_protocol_gives_the_same_labels(browser, site, predictor) -> None:
    driver, extension = browser
    status = configure(driver, extension, protocol="v2")
    assert "is ready" in status and "(v2)" in status, status
    try:
        threads = fixture_threads("c")
        comments = [t.comment for t in threads]
        before = requests_served(predictor.url, "v2")
        open_video(driver, site, "fixtureC", threads)
        shown = wait_for_badges(driver, {c.comment_id: "" for c in comments})
        assert 1 <= requests_served(predictor.url, "v2") - before <= bound(comments)
        expected = expected_badges(predictor.url, comments)
        assert {i: shown[i] for i in expected} == expected
    finally:
        configure(driver, extension, protocol="v1")


def test_a_page_with_thousands_of_comments_stays_within_the_request_bound(browser, site, predictor) -> None:
    """2,000 real YouTube comments (../shared/data) appended at once, as a long scroll would load them."""
    import pandas as pd

    driver, _ = browser
    frame = pd.read_csv(shared_dataset("youtube_comments_sentiment/YoutubeCommentsDataSet.csv"))
    texts = [t for t in frame["Comment"].dropna().astype(str) if t.strip()][:2000]
    many = [Thread(comment(f"m{i}", text)) for i, text in enumerate(texts)]
    threads = fixture_threads("d")[:3]
    first = [t.comment for t in threads]
    before = requests_served(predictor.url, "v1")
    open_video(driver, site, "fixtureD", threads)
    wait_for_badges(driver, {c.comment_id: "" for c in first})
    driver.execute_script("window.fixture.appendThreads(arguments[0])", threads_markup(many, "fixtureD"))
    everything = first + [t.comment for t in many]
    shown = wait_for_badges(driver, {c.comment_id: "" for c in everything}, timeout_s=240)
    sent = requests_served(predictor.url, "v1") - before

    expected = expected_badges(predictor.url, everything)
    assert {i: shown[i] for i in expected} == expected
    assert sent <= bound(first, [t.comment for t in many])
    assert panel_state(driver)["counts"] == counts_of(expected)


def test_a_wrong_model_name_shows_the_servers_message_until_the_settings_change(
    browser, site, predictor
) -> None:
    driver, extension = browser
    status = configure(driver, extension, modelName="no-such-model")
    assert "Model with name no-such-model does not exist." in status, status
    threads = fixture_threads("e")[:3]
    try:
        before = requests_served(predictor.url, "v1")
        open_video(driver, site, "fixtureE", threads)
        notice = wait_until(lambda: (panel_state(driver) or {}).get("notice"), 20, "the panel's notice")
        refused = "the predictor refused the request (404): Model with name no-such-model does not exist."
        assert notice == f"{refused}; change the settings (the extension's Options) to try again"
        assert not any(badges(driver).values())
        assert requests_served(predictor.url, "v1") - before == 1  # a 404 is not retried in a loop
        assert severe_console_entries(driver) == []
    finally:
        configure(driver, extension, modelName="sentiment")
    driver.get("https://www.youtube.com/watch?v=fixtureE")
    shown = wait_for_badges(driver, {t.comment.comment_id: "" for t in threads})
    expected = expected_badges(predictor.url, [t.comment for t in threads])
    assert {i: shown[i] for i in expected} == expected


def test_a_text_the_predictor_refuses_is_left_unlabelled_and_the_others_are_not(
    browser, site, predictor, fast_champion_store, tmp_path
) -> None:
    """A predictor whose text limit (1,000 characters) is below the 6,000-character comment the extension
    cuts to 5,000: the refused request is split until that one text is found; every other comment gets
    its label."""
    driver, extension = browser
    strict = Predictor(fast_champion_store, tmp_path, "--max_text_chars", "1000")
    try:
        configure(driver, extension, predictorUrl=strict.url)
        threads = fixture_threads("g")
        comments = [t.comment for t in threads]
        long_one = next(c for c in comments if len(c.text) > 5000)
        before = requests_served(strict.url, "v1")
        open_video(driver, site, "fixtureG", threads)
        shown = wait_for_badges(driver, {c.comment_id: "" for c in comments if c is not long_one})
        wait_until(lambda: driver.execute_script(UNLABELLED, long_one.comment_id), 20, "the unlabelled badge")
        title = driver.execute_script(UNLABELLED, long_one.comment_id)
        assert "has 5000 characters; the limit is 1000" in title, title
        others = [c for c in comments if c is not long_one]
        expected = expected_badges(strict.url, others)
        assert {i: shown[i] for i in expected} == expected
        splits = 2 * (
            math.ceil(math.log2(LIMITS["maxTexts"])) + 1
        )  # a refused and a passed request per halving
        assert requests_served(strict.url, "v1") - before <= bound(comments) + splits
        assert panel_state(driver) == {"counts": counts_of(expected), "notice": ""}
    finally:
        configure(driver, extension, predictorUrl=predictor.url)
        strict.stop()


def test_predictor_down_shows_a_notice_keeps_the_page_running_and_recovers(browser, site, predictor) -> None:
    driver, _ = browser
    threads, later = fixture_threads("f")[:4], later_threads("f")
    open_video(driver, site, "fixtureF", threads, later)
    wait_for_badges(driver, {t.comment.comment_id: "" for t in threads})
    predictor.stop()
    try:
        driver.execute_script("window.fixture.appendLater()")
        notice = wait_until(lambda: panel_state(driver)["notice"], 20, "the unreachable notice")
        assert notice.startswith(f"cannot reach the predictor at {predictor.url}; retrying in"), notice
        beats = driver.execute_script("return window.fixture.beats")
        wait_until(lambda: driver.execute_script("return window.fixture.beats") > beats + 10, 5, "page beats")
        assert driver.execute_script("return window.fixture.errors") == []
        assert severe_console_entries(driver) == []
    finally:
        predictor.start()
    appended = {t.comment.comment_id: "" for t in later}
    shown = wait_for_badges(driver, appended, timeout_s=90)  # the next retry, at most 60 s after the last
    expected = expected_badges(predictor.url, [t.comment for t in later])
    assert {i: shown[i] for i in expected} == expected
    assert panel_state(driver)["notice"] == ""


def test_the_popup_shows_each_videos_totals(browser, site, predictor) -> None:
    driver, extension = browser
    expected = {}
    for video_id in ("fixtureP1", "fixtureP2"):
        threads = fixture_threads(video_id)[:4]
        open_video(driver, site, video_id, threads)
        wait_for_badges(driver, {t.comment.comment_id: "" for t in threads})
        expected[video_id] = counts_of(expected_badges(predictor.url, [t.comment for t in threads]))

    def popup_videos() -> dict | None:
        driver.get(f"chrome-extension://{extension}/popup.html")
        entries = wait_until(lambda: driver.execute_script(POPUP_VIDEOS), 10, "the popup's history")
        newest_first = [video_id for video_id, _ in entries[:2]] == ["fixtureP2", "fixtureP1"]
        videos = dict(entries)
        return videos if newest_first and all(videos[v] == counts for v, counts in expected.items()) else None

    wait_until(popup_videos, 20, f"the popup's history to show {expected}, newest first", interval_s=0.5)
    current = driver.execute_script("return document.querySelector('#current .video').dataset.videoId")
    assert current == "fixtureP2"  # opened as a tab, the popup has no video tab: the last one labelled


POPUP_VIDEOS = """
return [...document.querySelectorAll('#history .video')].map((video) => [
  video.dataset.videoId,
  Object.fromEntries([...video.querySelectorAll('.sentiment-lens-legend-item')]
    .map((item) => [item.dataset.label, Number(item.dataset.count)]))]);
"""  # in the popup's order (WebDriver does not keep an object's key order)


BADGE_STATE = """
const uncorrected = ".sentiment-lens-badge[data-sentiment-confidence]:not(.sentiment-lens-corrected)";
const shown = document.querySelectorAll(uncorrected);
return [...shown].map((badge) => [
  Number(badge.dataset.sentimentConfidence),
  badge.classList.contains("sentiment-lens-unsure"),
  badge.textContent,
]);
"""


def live_label_count(url: str, label: str, predicted: str) -> float:
    labels = (("label", label), ("model_version", "1"), ("predicted", predicted))
    return scrape_metrics(url).get(("sentiment_live_labels_total", labels), 0.0)


def test_a_reader_corrects_a_badge_and_the_predictor_counts_the_label(browser, site, predictor) -> None:
    """A click on a badge offers the other labels; choosing one sends it to the predictor's :feedback with
    the answer's id, and the badge shows it was taken; the page keeps running. Badges below the unsure
    limit say so."""
    driver, _ = browser
    threads = fixture_threads("k")
    open_video(driver, site, "fixtureK", threads)
    shown = wait_for_badges(driver, {t.comment.comment_id: "" for t in threads})
    predicted = shown["k2"]  # "This is the worst tutorial I have ever watched."
    right = next(label for label in ("negative", "neutral", "positive") if label != predicted)
    before = live_label_count(predictor.url, right, predicted)

    driver.find_element("css selector", '[data-fixture-id="k2"] .sentiment-lens-badge').click()
    choices = driver.find_elements("css selector", '[data-fixture-id="k2"] .sentiment-lens-choice')
    assert sorted(c.get_attribute("data-label") for c in choices) == sorted(
        {"negative", "neutral", "positive"} - {predicted}
    )
    next(c for c in choices if c.get_attribute("data-label") == right).click()
    badge = driver.find_element("css selector", '[data-fixture-id="k2"] .sentiment-lens-badge')
    wait_until(lambda: badge.get_attribute("data-sentiment-correction") == right, 20, "the correction taken")
    assert badge.text == f"{right} \u2713" and "sent, thank you" in badge.get_attribute("title")
    assert not driver.find_elements("css selector", '[data-fixture-id="k2"] .sentiment-lens-chooser')
    wait_until(
        lambda: live_label_count(predictor.url, right, predicted) == before + 1, 10, "the label counted"
    )
    assert badges(driver)["k2"] == predicted  # the badge keeps the model's answer; the totals too
    assert driver.execute_script("return window.fixture.errors") == []
    assert severe_console_entries(driver) == []

    unsure_below = LIMITS["unsureBelow"]
    states = driver.execute_script(BADGE_STATE)
    assert states and all((confidence < unsure_below) == unsure for confidence, unsure, _ in states)
    assert all(text.endswith("?") == unsure for _, unsure, text in states)
    assert any(unsure for _, unsure, _ in states), states  # the fixture's right-to-left texts are unsure
