/* What the content script sends and when: texts cut to the predictor's limit, a queue that never holds a
 * text twice and hands out at most maxTexts at a time, and the retry backoff. Pure logic, no DOM. */

const batching = (() => {
  /** `text` trimmed and cut to `maxChars` code points (as Python counts them; a cut never splits an emoji). */
  function prepareText(text, maxChars) {
    const trimmed = String(text).trim();
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

  /** The fewest requests `count` new texts can take (the bound the tests hold the extension to). */
  function requestsNeeded(count, maxTexts) {
    return Math.ceil(count / maxTexts);
  }

  return { prepareText, TextQueue, Backoff, requestsNeeded };
})();

if (typeof module === "object") module.exports = batching;
