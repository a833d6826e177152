/* The extension's settings: their defaults (defined here only), and reading and saving them in
 * chrome.storage.local (local, not sync: the bearer token stays on this machine). A classic script, shared
 * by the content script, the service worker, the popup, the options page and node's tests. */

const settings = (() => {
  const DEFAULTS = Object.freeze({
    predictorUrl: "http://localhost:8080", // what `make serve` and the README's port-forward give
    modelName: "sentiment",
    protocol: "v1", // "v1" (/v1/models/<name>:predict) or "v2" (/v2/models/<name>/infer)
    token: "", // sent as "Authorization: Bearer <token>" when set
  });

  // Client-side limits, within the predictor's defaults (serving/payload.py RequestLimits: 256 texts of
  // 5,000 characters; a test keeps them within), so no request is refused for its size.
  const LIMITS = Object.freeze({
    maxTexts: 32, // texts per request: each answer comes back quickly, and one request is in flight per tab
    maxChars: 5000, // characters (code points) per text; longer comments are cut to this
    batchWindowMs: 250, // texts found within this window after the first go in one request
    requestTimeoutMs: 15000,
    retryFirstMs: 1000, // backoff after a failed request: 1 s, 2 s, 4 s ... up to retryMaxMs
    retryMaxMs: 60000,
    historySize: 20, // videos kept in the popup's history
    explainWords: 3, // words shown on a badge's hover, where the predictor offers :explain
    unsureBelow: 0.6, // a badge whose label has a lower probability is shown as unsure ("positive?")
  });
  const LABELS = Object.freeze(["negative", "neutral", "positive"]); // what a reader may correct a badge to

  const PROTOCOLS = ["v1", "v2"];
  const STORAGE_KEY = "settings";

  /** Problems with `values` as a list of messages (empty when they are valid). */
  function problems(values) {
    const found = [];
    let url = null;
    try {
      url = new URL(values.predictorUrl);
    } catch {
      found.push(`"${values.predictorUrl}" is not a URL`);
    }
    if (url && !["http:", "https:"].includes(url.protocol)) found.push("the predictor URL must be http or https");
    if (url && (url.search || url.hash || url.username || url.password)) {
      found.push("the predictor URL takes no query, fragment or user name (a token goes in its own field)");
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(values.modelName || "")) found.push("the model name is empty or has odd characters");
    if (!PROTOCOLS.includes(values.protocol)) found.push(`the protocol must be one of ${PROTOCOLS.join(", ")}`);
    return found;
  }

  /** `values` with the defaults filled in and the URL's trailing slashes removed. */
  function normalize(values) {
    const merged = { ...DEFAULTS, ...(values || {}) };
    merged.predictorUrl = String(merged.predictorUrl).trim().replace(/\/+$/, "");
    merged.modelName = String(merged.modelName).trim();
    merged.token = String(merged.token).trim();
    return merged;
  }

  /** The host permission pattern that covers `predictorUrl` ("http://host/*": any port). */
  function originPattern(predictorUrl) {
    const url = new URL(predictorUrl);
    return `${url.protocol}//${url.hostname}/*`;
  }

  async function load() {
    const stored = await chrome.storage.local.get(STORAGE_KEY);
    return normalize(stored[STORAGE_KEY]);
  }

  async function save(values) {
    await chrome.storage.local.set({ [STORAGE_KEY]: normalize(values) });
  }

  return { DEFAULTS, LIMITS, LABELS, PROTOCOLS, STORAGE_KEY, problems, normalize, originPattern, load, save };
})();

if (typeof module === "object") module.exports = settings;
