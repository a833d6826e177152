/* The service worker: the only part that talks to the predictor (its host permission lets it, where a
 * content script on youtube.com could not). Messages:
 *   {type: "label", texts}  -> {ok: true, answers: [{label, confidence, id}]} | {ok: false, error: {kind, message, status}}
 *   {type: "explain", text} -> {ok: true, words: [{word, attribution}]} | {ok: false, error}: :explain
 *   {type: "correct", id, label} -> {ok: true} | {ok: false, error}: a reader's correction, to :feedback
 *   {type: "check"}         -> {ok: true, message} | {ok: false, error}: is the configured model ready?
 *   {type: "summary", video} -> {ok: true}: the video's totals, remembered for the popup.
 * and tells the content scripts when the settings change. */

importScripts("settings.js", "predictor.js", "summary.js");

const HISTORY_KEY = "videos";
let historyWrites = Promise.resolve(); // one history update at a time, whatever the number of tabs

function failure(error) {
  const known = error instanceof predictor.PredictorError;
  return {
    ok: false,
    error: {
      kind: known ? error.kind : "internal",
      message: known ? error.message : `the extension failed: ${error}`,
      status: known ? error.status : null,
    },
  };
}

async function labelTexts(texts) {
  const config = await settings.load();
  const answers = await predictor.label(config, texts, settings.LIMITS.requestTimeoutMs);
  return { ok: true, answers };
}

async function explainWords(text) {
  const config = await settings.load();
  const { explainWords: count, requestTimeoutMs } = settings.LIMITS;
  return { ok: true, words: await predictor.explainText(config, text, count, requestTimeoutMs) };
}

async function sendCorrection(id, label) {
  const config = await settings.load();
  await predictor.correct(config, id, label, settings.LIMITS.requestTimeoutMs);
  return { ok: true };
}

async function checkPredictor() {
  const config = await settings.load();
  const { url, init } = predictor.buildReadinessRequest(config);
  let response;
  let text;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(settings.LIMITS.requestTimeoutMs) });
    text = await response.text();
  } catch {
    throw new predictor.PredictorError("unreachable", `cannot reach the predictor at ${config.predictorUrl}`);
  }
  if (!response.ok) throw predictor.errorFor(response.status, text);
  return { ok: true, message: `model "${config.modelName}" is ready at ${config.predictorUrl} (${config.protocol})` };
}

function rememberVideo(video) {
  historyWrites = historyWrites.catch(() => {}).then(async () => {
    const stored = await chrome.storage.local.get(HISTORY_KEY);
    const history = summary.remember(stored[HISTORY_KEY], video, settings.LIMITS.historySize);
    await chrome.storage.local.set({ [HISTORY_KEY]: history });
  });
  return historyWrites.then(() => ({ ok: true }));
}

const HANDLERS = {
  label: (message) => labelTexts(message.texts),
  explain: (message) => explainWords(message.text),
  correct: (message) => sendCorrection(message.id, message.label),
  check: () => checkPredictor(),
  summary: (message) => rememberVideo(message.video),
};

chrome.runtime.onMessage.addListener((message, _sender, reply) => {
  if (!Object.hasOwn(HANDLERS, message?.type)) return false;
  const handler = HANDLERS[message.type];
  handler(message).then(reply, (error) => reply(failure(error)));
  return true; // the reply comes asynchronously
});

// New settings: every tab's content script starts again with them. It is told, not sent the settings, so
// the token never reaches a YouTube page's process.
chrome.storage.onChanged.addListener(async (changes, area) => {
  if (area !== "local" || !(settings.STORAGE_KEY in changes)) return;
  for (const tab of await chrome.tabs.query({})) {
    chrome.tabs.sendMessage(tab.id, { type: "settings-changed" }).catch(() => {}); // tabs without our script
  }
});
