/* The options page: the predictor's URL, model name, protocol and token. Saving a URL outside the default
 * host permissions (localhost, 127.0.0.1) asks the user for that host's permission first; then the page
 * checks that the model answers as ready. */

const form = document.getElementById("settings");
const FIELDS = ["predictorUrl", "modelName", "protocol", "token"];

function showStatus(message, problem = false) {
  const status = document.getElementById("status");
  status.textContent = message;
  status.className = problem ? "problem" : "";
}

async function checkPredictor() {
  const reply = await chrome.runtime.sendMessage({ type: "check" }).catch(() => null);
  if (reply?.ok) showStatus(`Saved: ${reply.message}.`);
  else showStatus(`Saved, but ${reply?.error?.message || "the check got no answer"}.`, true);
}

function onSave(event) {
  event.preventDefault();
  const values = settings.normalize(Object.fromEntries(FIELDS.map((name) => [name, form.elements[name].value])));
  const problems = settings.problems(values);
  if (problems.length) return showStatus(`Not saved: ${problems.join("; ")}.`, true);
  const origin = settings.originPattern(values.predictorUrl);
  // Asked at once, within the click: Chrome grants a permission only during a user gesture.
  chrome.permissions
    .request({ origins: [origin] })
    .then(async (granted) => {
      if (!granted) return showStatus(`Not saved: the extension needs permission to reach ${origin}.`, true);
      await settings.save(values);
      await checkPredictor();
    })
    .catch((error) => showStatus(`Not saved: ${error.message}`, true));
}

settings.load().then((values) => {
  for (const name of FIELDS) form.elements[name].value = values[name];
});
form.addEventListener("submit", onSave);
