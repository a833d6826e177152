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
    answers: new Map(), // prepared text -> {label, confidence, id} | {refused: message}; cleared on new settings
    queue: new batching.TextQueue(),
    batchLimit: LIMITS.maxTexts, // halved while the predictor refuses a request, to find the text it refuses
    waiting: new Map(), // text -> comment elements waiting for its answer
    seen: new WeakMap(), // comment element -> the raw text it was last handled for
    textOf: new WeakMap(), // comment element -> the prepared text its badge is (or will be) for
    labels: new Map(), // comment key (its permalink id, else the element) -> label, for this video
    notice: "",
    drawn: "", // what the panel shows now, to redraw only on a change
    drawnCounts: "", // the counts it shows, to tell the popup's history only on a change
    settingsGeneration: 0, // counts the settings changes, so that no answer of an older model is kept
    inFlight: false,
    flushTimer: null,
    scanTimer: null,
    backoff: new batching.Backoff(LIMITS.retryFirstMs, LIMITS.retryMaxMs),
    waitingForSettings: false,
    explained: new Map(), // prepared text -> its top words (or a pending promise), asked on a badge's hover
    canExplain: true, // until the predictor answers :explain with 404, 405 or 501
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

  /** Forget what this page was told: on a new video, or new settings (another model answers now). */
  function restart({ forgetAnswers }) {
    state.videoId = currentVideo();
    if (forgetAnswers) {
      state.answers.clear();
      state.explained.clear();
      state.canExplain = true;
    }
    state.queue = new batching.TextQueue();
    state.batchLimit = LIMITS.maxTexts;
    state.waiting.clear();
    state.seen = new WeakMap();
    state.textOf = new WeakMap();
    state.labels.clear();
    state.notice = "";
    state.drawn = "";
    state.drawnCounts = "";
    state.waitingForSettings = false;
    state.backoff.reset();
    clearTimeout(state.flushTimer);
    state.flushTimer = null;
    for (const badge of document.querySelectorAll(".sentiment-lens-badge")) badge.remove();
    panel.remove();
  }

  function showAnswer(comment, answer) {
    comment.querySelector(".sentiment-lens-badge")?.remove();
    const badge = answer.refused ? panel.unlabelledBadge(answer.refused) : panel.badge(answer);
    const header = comment.querySelector(selectors.header);
    if (header) header.appendChild(badge);
    else comment.querySelector(selectors.text)?.after(badge);
    if (!answer.refused) state.labels.set(commentKey(comment), answer.label);
  }

  function sendSummary(counts) {
    const title = document.querySelector(selectors.videoTitle)?.textContent.trim() || document.title;
    const video = { videoId: state.videoId, title, counts, updatedAt: Date.now() };
    chrome.runtime.sendMessage({ type: "summary", video }).catch(quietly);
  }

  /** Redraw the panel when its counts or notice changed; tell the popup's history about new counts. */
  function drawPanel() {
    const section = document.querySelector(selectors.commentsSection);
    if (!section || !state.videoId) return;
    const counts = summary.countLabels(state.labels.values());
    const countsKey = JSON.stringify(counts);
    const drawing = `${countsKey}\n${state.notice}`;
    if (drawing === state.drawn && document.getElementById(panel.PANEL_ID)) return;
    state.drawn = drawing;
    panel.render(section, counts, state.notice);
    if (countsKey !== state.drawnCounts && summary.total(counts)) sendSummary(counts);
    state.drawnCounts = countsKey;
  }

  function handle(comment) {
    const textNode = comment.querySelector(selectors.text);
    const raw = textNode?.textContent;
    if (raw === undefined) return;
    const handled = comment.querySelector(".sentiment-lens-badge") || state.queue.has(state.textOf.get(comment));
    if (state.seen.get(comment) === raw && (handled || state.textOf.get(comment) === "")) return;
    state.seen.set(comment, raw);
    const text = batching.prepareText(commentText(textNode), LIMITS.maxChars);
    if (state.textOf.get(comment) !== text) comment.querySelector(".sentiment-lens-badge")?.remove();
    state.textOf.set(comment, text); // the element may be reused: a late answer for its old text is ignored
    if (!text) return;
    const known = state.answers.get(text);
    if (known) return showAnswer(comment, known);
    state.queue.add(text);
    if (!state.waiting.has(text)) state.waiting.set(text, new Set());
    state.waiting.get(text).add(comment);
  }

  function scan() {
    state.scanTimer = null;
    if (currentVideo() !== state.videoId) restart({ forgetAnswers: false });
    if (!state.videoId) return;
    const root = document.querySelector(selectors.commentsSection) || document;
    for (const comment of root.querySelectorAll(selectors.comment)) handle(comment);
    if (state.queue.size) scheduleFlush(LIMITS.batchWindowMs);
    drawPanel();
  }

  function scheduleScan() {
    if (state.scanTimer === null) state.scanTimer = setTimeout(guarded(scan), SCAN_DELAY_MS);
  }

  function scheduleFlush(delayMs) {
    if (state.flushTimer !== null || state.inFlight || state.waitingForSettings) return;
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

  function answered(texts, answers) {
    texts.forEach((text, i) => {
      state.answers.set(text, answers[i]);
      for (const comment of state.waiting.get(text) || []) {
        if (comment.isConnected && state.textOf.get(comment) === text) showAnswer(comment, answers[i]);
      }
      state.waiting.delete(text);
    });
    state.queue.done(texts);
  }

  function failed(texts, error) {
    const problem = error?.message || "the extension's service worker did not answer";
    switch (batching.reaction(error, texts.length)) {
      case "split":
        state.batchLimit = Math.max(1, Math.floor(texts.length / 2));
        return scheduleFlush(0);
      case "skip":
        answered(texts, [{ refused: problem }]);
        state.batchLimit = LIMITS.maxTexts; // found it: full batches again
        return scheduleFlush(0);
      case "settings":
        state.waitingForSettings = true; // a new token or model name starts again (onSettingsChanged)
        state.notice = `${problem}; change the settings (the extension's Options) to try again`;
        return undefined;
      default: {
        const delayMs = state.backoff.next();
        state.notice = `${problem}; retrying in ${Math.round(delayMs / 1000)} s`;
        return scheduleFlush(delayMs);
      }
    }
  }

  async function flush() {
    state.flushTimer = null;
    if (state.inFlight || !state.queue.size) return;
    const texts = state.queue.peek(state.batchLimit);
    const { queue, settingsGeneration } = state;
    state.inFlight = true;
    const reply = await ask(texts).finally(() => {
      state.inFlight = false;
    });
    if (queue !== state.queue) {
      // another video since (its own queue goes on): the answers still hold unless the settings changed
      if (reply?.ok && settingsGeneration === state.settingsGeneration) {
        texts.forEach((text, i) => state.answers.set(text, reply.answers[i]));
      }
      return scheduleFlush(0);
    }
    if (reply?.ok) {
      answered(texts, reply.answers);
      state.backoff.reset();
      state.notice = "";
      if (queue.size) scheduleFlush(0);
    } else if (!chrome.runtime?.id) {
      state.notice = "the extension was updated or removed: reload the page to label comments again";
      state.observer?.disconnect();
    } else {
      failed(texts, reply?.error);
    }
    drawPanel();
  }

  function isOurs(node) {
    return node.nodeType === Node.ELEMENT_NODE && /\bsentiment-lens-/.test(node.className?.baseVal ?? node.className);
  }

  function holdsComments(node) {
    return node.nodeType === Node.ELEMENT_NODE && (node.matches(selectors.comment) || node.querySelector(selectors.comment));
  }

  /** Whether a mutation may have added or changed a comment (ours, the panel and badges, never do). */
  function mayConcernComments(record) {
    const target = record.target.nodeType === Node.ELEMENT_NODE ? record.target : record.target.parentElement;
    if (!target || target.closest(`#${panel.PANEL_ID}, .sentiment-lens-badge`)) return false;
    if (record.type === "characterData") return Boolean(target.closest(selectors.comment));
    if (target.closest(selectors.commentsSection)) return ![...record.addedNodes, ...record.removedNodes].every(isOurs);
    return [...record.addedNodes].some(holdsComments); // elsewhere: only when comments arrive
  }

  function onMutations(records) {
    if (records.some(mayConcernComments)) scheduleScan();
  }

  /** On a badge's hover, once per text: the words behind its label, from the predictor's :explain. */
  async function explainBadge(event) {
    const badge = event.target.closest?.(".sentiment-lens-badge");
    const comment = badge?.closest(selectors.comment);
    const text = comment && state.textOf.get(comment);
    const answer = text && state.answers.get(text);
    if (!answer || answer.refused || !state.canExplain || state.explained.has(text)) return;
    state.explained.set(text, null);
    const reply = await chrome.runtime.sendMessage({ type: "explain", text }).catch(() => null);
    if (reply?.ok) {
      state.explained.set(text, reply.words);
      // a badge the reader corrected meanwhile keeps saying what was sent (the words explain the old label)
      if (badge.isConnected && !badge.dataset.sentimentCorrection) badge.title = panel.badgeTitle(answer, reply.words);
    } else if ([404, 405, 501].includes(reply?.error?.status)) {
      state.canExplain = false; // this predictor offers no :explain: hovering asks nothing more
    } else {
      state.explained.delete(text); // a passing failure: the next hover asks again
    }
  }

  /** A click on a badge opens (or closes) the choice of the right label; a click on a choice sends the
   * correction through the service worker to the predictor's :feedback, and the badge shows it was taken.
   * Only our own elements' clicks are handled (and kept from YouTube's handlers); nothing waits on them. */
  async function onClick(event) {
    const choice = event.target.closest?.(".sentiment-lens-choice");
    const badge = (choice?.parentElement?.previousElementSibling ?? event.target).closest?.(".sentiment-lens-badge");
    const comment = badge?.closest(selectors.comment);
    const answer = comment && state.answers.get(state.textOf.get(comment));
    if (!answer?.id || badge.dataset.sentimentCorrection === "sending") return;
    event.preventDefault();
    event.stopPropagation();
    const open = badge.nextElementSibling?.classList.contains("sentiment-lens-chooser") && badge.nextElementSibling;
    if (!choice) {
      if (open) open.remove();
      else badge.after(panel.chooser(badge.dataset.sentimentCorrection || answer.label));
      return;
    }
    const { label } = choice.dataset;
    choice.parentElement.remove();
    badge.dataset.sentimentCorrection = "sending";
    const reply = await chrome.runtime.sendMessage({ type: "correct", id: answer.id, label }).catch(() => null);
    if (!badge.isConnected) return;
    delete badge.dataset.sentimentCorrection;
    panel.markCorrected(badge, label, reply?.ok ? null : reply?.error?.message || "the extension did not answer");
  }

  function onMessage(message) {
    if (message?.type !== "settings-changed") return;
    state.settingsGeneration += 1;
    restart({ forgetAnswers: true }); // another predictor or model: every comment is asked again
    scheduleScan();
  }

  state.observer = new MutationObserver(guarded(onMutations));
  state.observer.observe(document.documentElement, { childList: true, subtree: true, characterData: true });
  window.addEventListener("yt-navigate-finish", guarded(scheduleScan));
  document.addEventListener("mouseover", guarded(explainBadge), { passive: true });
  document.addEventListener("click", guarded(onClick), { capture: true });
  chrome.runtime.onMessage.addListener(guarded(onMessage));
  guarded(scan)();
})();
