/* A video's totals: counts and shares per class, and the history of the last videos the popup shows. */

const summary = (() => {
  const KNOWN_ORDER = ["negative", "neutral", "positive"];

  /** Counts per label of `labels` (an iterable of label strings). */
  function countLabels(labels) {
    const counts = {};
    for (const label of labels) counts[label] = (counts[label] || 0) + 1;
    return counts;
  }

  /** The labels of `counts` in display order: negative, neutral, positive, then any other alphabetically. */
  function orderedLabels(counts) {
    const known = KNOWN_ORDER.filter((label) => label in counts);
    const others = Object.keys(counts)
      .filter((label) => !KNOWN_ORDER.includes(label))
      .sort();
    return [...known, ...others];
  }

  /** [{label, count, share}] in display order; shares sum to 1 (none when there are no counts). */
  function shares(counts) {
    const total = Object.values(counts).reduce((sum, count) => sum + count, 0);
    return orderedLabels(counts).map((label) => ({
      label,
      count: counts[label],
      share: total ? counts[label] / total : 0,
    }));
  }

  function total(counts) {
    return Object.values(counts).reduce((sum, count) => sum + count, 0);
  }

  /** `history` with `video` ({videoId, title, counts, updatedAt}) first, replacing its earlier entry, and at
   * most `keep` entries. */
  function remember(history, video, keep) {
    const others = (history || []).filter((entry) => entry.videoId !== video.videoId);
    return [video, ...others].slice(0, keep);
  }

  return { countLabels, orderedLabels, shares, total, remember };
})();

if (typeof module === "object") module.exports = summary;
