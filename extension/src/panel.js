/* What the extension draws on the page: a badge per comment, and the panel above the comments (totals, a
 * stacked SVG bar, one notice line). Built with DOM calls only (no innerHTML, no remote resources); every
 * element carries the "sentiment-lens" class prefix, so YouTube's styles and ours do not meet. */

const panel = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const PANEL_ID = "sentiment-lens-panel";

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** The class that colours a label ("sentiment-lens-label-positive"), apart from the extension's own. */
  function labelClass(label) {
    return `sentiment-lens-label-${String(label).replace(/[^a-z0-9-]/gi, "")}`;
  }

  /** The badge of a comment the predictor refused (`reason`: its message): no label, the reason on hover. */
  function unlabelledBadge(reason) {
    const node = element("span", "sentiment-lens-badge sentiment-lens-unlabelled", "not labelled");
    node.title = `${reason} (Comment Sentiment extension)`;
    node.dataset.sentimentLabel = "";
    return node;
  }

  const isUnsure = (answer) => answer.confidence < settings.LIMITS.unsureBelow;

  /** What a badge shows on hover: label, confidence (unsure below the limit), the words behind the label
   * once explained, and that a click corrects it. */
  function badgeTitle(answer, words) {
    const percent = Math.round(answer.confidence * 100);
    const unsure = isUnsure(answer) ? " (unsure)" : "";
    const explained = words?.length
      ? `; words: ${words.map((w) => `${w.word} (+${w.attribution.toFixed(2)})`).join(", ")}`
      : "";
    const click = answer.id ? "; click to correct it" : "";
    return `${answer.label}, confidence ${percent} %${unsure}${explained}${click} (Comment Sentiment extension)`;
  }

  /** The badge of one comment: its label ("positive?" when unsure), its confidence on hover. */
  function badge(answer) {
    const unsure = isUnsure(answer);
    const classes = `sentiment-lens-badge ${labelClass(answer.label)}${unsure ? " sentiment-lens-unsure" : ""}`;
    const node = element("span", classes, unsure ? `${answer.label}?` : answer.label);
    node.title = badgeTitle(answer);
    node.dataset.sentimentLabel = answer.label;
    node.dataset.sentimentConfidence = answer.confidence.toFixed(4);
    if (answer.id) node.setAttribute("role", "button");
    return node;
  }

  /** The choice of the right label, shown after a clicked badge: one button per label but `current`. */
  function chooser(current) {
    const node = element("span", "sentiment-lens-chooser");
    node.setAttribute("role", "group");
    node.setAttribute("aria-label", "The right label");
    for (const label of settings.LABELS.filter((l) => l !== current)) {
      const button = element("button", `sentiment-lens-choice ${labelClass(label)}`, label);
      button.type = "button";
      button.dataset.label = label;
      node.appendChild(button);
    }
    return node;
  }

  /** Show on `badge` that the reader's correction to `label` was sent (`error`: why it was not). */
  function markCorrected(badge, label, error) {
    if (error) {
      badge.dataset.sentimentCorrection = "failed";
      badge.title = `correction to ${label} not sent: ${error} (Comment Sentiment extension)`;
      return;
    }
    badge.className = `sentiment-lens-badge ${labelClass(label)} sentiment-lens-corrected`;
    badge.textContent = `${label} \u2713`;
    badge.dataset.sentimentCorrection = label;
    badge.title = `you corrected ${badge.dataset.sentimentLabel} to ${label}; sent, thank you (Comment Sentiment extension)`;
  }

  function bar(rows) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "sentiment-lens-bar");
    svg.setAttribute("viewBox", "0 0 100 4");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    let x = 0;
    for (const row of rows) {
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", String(x));
      rect.setAttribute("width", String(row.share * 100));
      rect.setAttribute("height", "4");
      rect.setAttribute("class", labelClass(row.label));
      svg.appendChild(rect);
      x += row.share * 100;
    }
    return svg;
  }

  /** A video's totals: the stacked bar and a legend item (label, count, share) per class. */
  function totals(counts) {
    const rows = summary.shares(counts);
    const legend = element("div", "sentiment-lens-legend");
    for (const row of rows) {
      const item = element("span", `sentiment-lens-legend-item ${labelClass(row.label)}`);
      item.dataset.label = row.label;
      item.dataset.count = String(row.count);
      item.textContent = `${row.label} ${row.count} (${Math.round(row.share * 100)} %)`;
      legend.appendChild(item);
    }
    return [bar(rows), legend];
  }

  /** The panel (created on top of `section` when absent), showing `counts` and the `notice` line. */
  function render(section, counts, notice) {
    let root = document.getElementById(PANEL_ID);
    if (!root) {
      root = element("div", "sentiment-lens-panel");
      root.id = PANEL_ID;
      root.setAttribute("role", "region");
      root.setAttribute("aria-label", "Comment sentiment");
      section.prepend(root);
    }
    const title = element("div", "sentiment-lens-title", `Comment sentiment: ${summary.total(counts)} comments labelled`);
    const noticeLine = element("div", "sentiment-lens-notice", notice || "");
    noticeLine.setAttribute("role", "status");
    noticeLine.hidden = !notice;
    root.dataset.counts = JSON.stringify(counts);
    root.replaceChildren(title, ...totals(counts), noticeLine);
  }

  function remove() {
    document.getElementById(PANEL_ID)?.remove();
  }

  return { PANEL_ID, badge, badgeTitle, chooser, markCorrected, unlabelledBadge, totals, render, remove };
})();

if (typeof module === "object") module.exports = panel;
