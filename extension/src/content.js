/* The content script: finds the comments of a watch page (and those that load later), asks the service
 * worker for their labels in batches, and shows a badge per comment and the video's totals in a panel.
 * One request is in flight per tab, each with at most LIMITS.maxTexts texts, and a text is asked once, so
 * the request rate stays bounded however many comments a page has. Every entry point is guarded: nothing
 * it does can throw into YouTube's page, and a failure shows as one notice line in the panel.
 * Injected on all of www.youtube.com, because YouTube is a single-page app (a click from the home page
 * to a video loads no new document); it acts on /watch pages only. */

(() => {
  const { LIMITS } = settings;
  const SCAN_DELAY_MS = 200; // mutations within this time cause one scan

  const state = {
    videoId: null,
    answers: new Map(), // prepared text -> {label, confidence}; kept across videos, so a text is asked once
    queue: new batching.TextQueue(),
    waiting: new Map(), // text -> comment elements waiting for its answer
    seen: new WeakMap(), // comment element -> the raw text it was labelled for
    labels: new Map(), // comment key (its permalink id, else the element) -> label, for this video
    notice: "",
    drawn: "", // what the panel shows now, to redraw only on a change
    inFlight: false,
    flushTimer: null,
    scanTimer: null,
    backoff: new batching.Backoff(LIMITS.retryFirstMs, LIMITS.retryMaxMs),
    observer: null,
  };

  function quietly(error) {
    console.debug("[comment sentiment]", error); // never thrown into the page; visible at the Verbose level
  }

  function guarded(fn) {
    return (...args) => {
      try {
        const result = fn(...args);
        if (result instanceof Promise) result.catch(quietly);
      } catch (error) {
        quietly(error);
      }
    };
  }

  function currentVideo() {
    if (location.pathname !== "/watch") return null;
    return new URLSearchParams(location.search).get("v");
  }

  /** The comment's text as the reader sees it: its text, with emoji images as their alt text. */
  function commentText(node) {
    let text = "";
    const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT | NodeFilter.SHOW_ELEMENT);
    for (let current = walker.nextNode(); current; current = walker.nextNode()) {
      if (current.nodeType === Node.TEXT_NODE) text += current.nodeValue;
      else if (current.tagName === "IMG") text += current.alt || "";
    }
    return text;
  }

  function commentKey(comment) {
    const link = comment.querySelector(selectors.permalink);
    const id = link ? new URL(link.href, location.href).searchParams.get("lc") : null;
    return id || comment;
  }

  function startVideo(videoId) {
    state.videoId = videoId;
    state.queue = new batching.TextQueue();
    state.waiting.clear();
    state.labels.clear();
    state.notice = "";
    state.drawn = "";
    panel.remove();
  }

  function showBadge(comment, answer) {
    comment.querySelector(".sentiment-lens-badge")?.remove(); // the element was reused for another text
    const badge = panel.badge(answer);
    const header = comment.querySelector(selectors.header);
    if (header) header.appendChild(badge);
    else comment.querySelector(selectors.text)?.after(badge);
    state.labels.set(commentKey(comment), answer.label);
  }

  function drawPanel() {
    const section = document.querySelector(selectors.commentsSection);
    if (!section || !state.videoId) return;
    const counts = summary.countLabels(state.labels.values());
    const drawing = JSON.stringify([counts, state.notice]);
    if (drawing === state.drawn && document.getElementById(panel.PANEL_ID)) return;
    state.drawn = drawing;
    panel.render(section, counts, state.notice);
  }

  function scan() {
    state.scanTimer = null;
    const videoId = currentVideo();
    if (videoId !== state.videoId) startVideo(videoId);
    if (!videoId) return;
    for (const comment of document.querySelectorAll(selectors.comment)) {
      const textNode = comment.querySelector(selectors.text);
      const raw = textNode?.textContent;
      if (raw === undefined || state.seen.get(comment) === raw) continue;
      state.seen.set(comment, raw);
      const text = batching.prepareText(commentText(textNode), LIMITS.maxChars);
      if (!text) continue;
      const known = state.answers.get(text);
      if (known) {
        showBadge(comment, known);
      } else {
        state.queue.add(text);
        if (!state.waiting.has(text)) state.waiting.set(text, new Set());
        state.waiting.get(text).add(comment);
      }
    }
    if (state.queue.size) scheduleFlush(LIMITS.batchWindowMs);
    drawPanel();
  }

  function scheduleScan() {
    if (state.scanTimer === null) state.scanTimer = setTimeout(guarded(scan), SCAN_DELAY_MS);
  }

  function scheduleFlush(delayMs) {
    if (state.flushTimer !== null || state.inFlight) return;
    state.flushTimer = setTimeout(guarded(flush), delayMs);
  }

  async function ask(texts) {
    if (!chrome.runtime?.id) return null; // the extension was reloaded or removed: this script is orphaned
    try {
      return await chrome.runtime.sendMessage({ type: "label", texts });
    } catch (error) {
      quietly(error);
      return null;
    }
  }

  async function flush() {
    state.flushTimer = null;
    if (state.inFlight || !state.queue.size) return;
    const texts = state.queue.peek(LIMITS.maxTexts);
    const queue = state.queue;
    state.inFlight = true;
    const reply = await ask(texts).finally(() => {
      state.inFlight = false;
    });
    if (queue !== state.queue) return scheduleFlush(0); // another video since: its own queue goes on
    if (reply?.ok) {
      queue.done(texts);
      texts.forEach((text, i) => {
        state.answers.set(text, reply.answers[i]);
        for (const comment of state.waiting.get(text) || []) {
          if (comment.isConnected) showBadge(comment, reply.answers[i]);
        }
        state.waiting.delete(text);
      });
      state.backoff.reset();
      state.notice = "";
      sendSummary();
      if (queue.size) scheduleFlush(0);
    } else if (!chrome.runtime?.id) {
      state.notice = "the extension was updated or removed: reload the page to label comments again";
      state.observer?.disconnect();
    } else {
      const delayMs = state.backoff.next();
      const problem = reply?.error?.message || "the extension's service worker did not answer";
      state.notice = `${problem}; retrying in ${Math.round(delayMs / 1000)} s`;
      scheduleFlush(delayMs);
    }
    drawPanel();
  }

  /** The video's totals, for the popup (after each answered request: at most one message per request). */
  function sendSummary() {
    if (!state.videoId || !chrome.runtime?.id) return;
    const title = document.querySelector(selectors.videoTitle)?.textContent.trim() || document.title;
    const video = {
      videoId: state.videoId,
      title,
      counts: summary.countLabels(state.labels.values()),
      updatedAt: Date.now(),
    };
    chrome.runtime.sendMessage({ type: "summary", video }).catch(quietly);
  }

  function isOurs(node) {
    return node.nodeType === Node.ELEMENT_NODE && /\bsentiment-lens-/.test(node.className?.baseVal ?? node.className);
  }

  /** Whether a mutation may have added or changed a comment (ours, the panel and badges, never do). */
  function mayConcernComments(record) {
    const target = record.target.nodeType === Node.ELEMENT_NODE ? record.target : record.target.parentElement;
    if (!target || target.closest(`#${panel.PANEL_ID}, .sentiment-lens-badge`)) return false;
    if (record.type === "characterData") return Boolean(target.closest(selectors.comment));
    return ![...record.addedNodes, ...record.removedNodes].every(isOurs);
  }

  function onMutations(records) {
    if (records.some(mayConcernComments)) scheduleScan();
  }

  function onSettingsChanged(changes, area) {
    if (area !== "local" || !(settings.STORAGE_KEY in changes)) return;
    state.backoff.reset(); // the user changed the predictor: try it now rather than at the next backoff
    if (state.flushTimer !== null) {
      clearTimeout(state.flushTimer);
      state.flushTimer = null;
    }
    scheduleFlush(0);
  }

  state.observer = new MutationObserver(guarded(onMutations));
  state.observer.observe(document.documentElement, { childList: true, subtree: true, characterData: true });
  window.addEventListener("yt-navigate-finish", guarded(scheduleScan));
  chrome.storage.onChanged.addListener(guarded(onSettingsChanged));
  guarded(scan)();
})();
