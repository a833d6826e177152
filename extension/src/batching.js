/* What the content script sends and when: texts cut to the predictor's limit, a queue that never holds a
 * text twice and hands out at most maxTexts at a time, and the retry backoff. Pure logic, no DOM. */

const batching = (() => {
  // What JavaScript's trim() removes, plus what Python's str.strip() also removes (U+001C-U+001F, U+0085),
  // so that no text the extension sends is empty to the predictor.
  const EDGE_SPACE = /^[\s\x1c-\x1f\x85]+|[\s\x1c-\x1f\x85]+$/g;

  /** `text` trimmed and cut to `maxChars` code points (as Python counts them; a cut never splits an emoji). */
  function prepareText(text, maxChars) {
    const trimmed = String(text).replace(EDGE_SPACE, "");
    if (trimmed.length <= maxChars) return trimmed; // UTF-16 length >= code points: nothing to cut
    return Array.from(trimmed).slice(0, maxChars).join("");
  }

  /** Texts waiting for an answer, in the order they were found; each text once. */
  class TextQueue {
    constructor() {
      this.waiting = new Set();
    }
    add(text) {
      this.waiting.add(text);
    }
    has(text) {
      return this.waiting.has(text);
    }
    get size() {
      return this.waiting.size;
    }
    /** The next batch, at most `maxTexts` texts; they stay queued until `done` removes them. */
    peek(maxTexts) {
      const batch = [];
      for (const text of this.waiting) {
        if (batch.length === maxTexts) break;
        batch.push(text);
      }
      return batch;
    }
    done(texts) {
      for (const text of texts) this.waiting.delete(text);
    }
  }

  /** Exponential backoff: firstMs, 2 x firstMs, ... capped at maxMs; `reset` after a success. */
  class Backoff {
    constructor(firstMs, maxMs) {
      this.firstMs = firstMs;
      this.maxMs = maxMs;
      this.failures = 0;
    }
    next() {
      const delay = Math.min(this.maxMs, this.firstMs * 2 ** this.failures);
      this.failures += 1;
      return delay;
    }
    reset() {
      this.failures = 0;
    }
  }

  /** What to do after a failed request of `batchLength` texts:
   *   "split":   the predictor refused the request itself (400, 413): send half as many texts, to find the
   *              one it refuses without holding back the others;
   *   "skip":    it refused a single text: leave that text unlabelled and go on;
   *   "settings": 401, 403 or 404 (token, permission or model name): wait until the settings change;
   *   "backoff": unreachable, timeout, 5xx, 429, an unreadable answer: retry the same batch later. */
  function reaction(error, batchLength) {
    const status = error?.status;
    if (status === 400 || status === 413) return batchLength > 1 ? "split" : "skip";
    if (status === 401 || status === 403 || status === 404) return "settings";
    return "backoff";
  }

  /** The fewest requests `count` new texts can take (the bound the tests hold the extension to). */
  function requestsNeeded(count, maxTexts) {
    return Math.ceil(count / maxTexts);
  }

  return { prepareText, TextQueue, Backoff, reaction, requestsNeeded };
})();

if (typeof module === "object") module.exports = batching;
