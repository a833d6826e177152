/* The predictor's two REST protocols as plain data: the request for some texts, and the answers read back
 * from the response. KServe v1: POST <url>/v1/models/<name>:predict {"instances": [...]}; v2 (Open
 * Inference Protocol): POST <url>/v2/models/<name>/infer with one BYTES tensor "text". Nothing but the
 * texts is sent. */

const predictor = (() => {
  class PredictorError extends Error {
    /** kind: "unreachable" | "timeout" | "refused" (4xx) | "server" (5xx) | "answer" (unreadable). */
    constructor(kind, message, status = null) {
      super(message);
      this.kind = kind;
      this.status = status;
    }
  }

  function headers(config) {
    const values = { "Content-Type": "application/json" };
    if (config.token) values.Authorization = `Bearer ${config.token}`;
    return values;
  }

  /** {url, init} for fetch(): the request that labels `texts` with the configured predictor. */
  function buildRequest(config, texts) {
    const model = encodeURIComponent(config.modelName);
    const body =
      config.protocol === "v2"
        ? { inputs: [{ name: "text", shape: [texts.length], datatype: "BYTES", data: texts }] }
        : { instances: texts };
    const path = config.protocol === "v2" ? `/v2/models/${model}/infer` : `/v1/models/${model}:predict`;
    return {
      url: `${config.predictorUrl}${path}`,
      init: { method: "POST", headers: headers(config), body: JSON.stringify(body) },
    };
  }

  /** {url, init} for the model's readiness (GET /v1/models/<name> or /v2/models/<name>/ready). */
  function buildReadinessRequest(config) {
    const model = encodeURIComponent(config.modelName);
    const path = config.protocol === "v2" ? `/v2/models/${model}/ready` : `/v1/models/${model}`;
    const { Authorization } = headers(config);
    return { url: `${config.predictorUrl}${path}`, init: { headers: Authorization ? { Authorization } : {} } };
  }

  const isProbability = (value) => Number.isFinite(value) && value >= 0 && value <= 1;

  /** {label, confidence, id}: id is the answer's id (what a correction sends back), null when absent. */
  function answer(label, probabilities, id) {
    if (typeof label !== "string" || !label || !probabilities.length || !probabilities.every(isProbability)) {
      throw new PredictorError("answer", "the predictor's answer lacks a label or probabilities");
    }
    return { label, confidence: Math.max(...probabilities), id: typeof id === "string" && id ? id : null };
  }

  function v1Answers(body) {
    if (!Array.isArray(body?.predictions)) throw new PredictorError("answer", 'the answer has no "predictions" list');
    return body.predictions.map((p) => answer(p?.label, Object.values(p?.probabilities || {}), p?.id));
  }

  function v2Answers(body) {
    const output = (name) => (Array.isArray(body?.outputs) ? body.outputs : []).find((o) => o?.name === name);
    const labels = output("label");
    const probabilities = output("probabilities");
    if (!Array.isArray(labels?.data) || !Array.isArray(probabilities?.data)) {
      throw new PredictorError("answer", 'the answer lacks the "label" or "probabilities" output');
    }
    const classes = probabilities.shape?.[1];
    if (!Number.isInteger(classes) || classes < 1) throw new PredictorError("answer", "the probabilities have no class axis");
    const ids = output("id")?.data;
    return labels.data.map((label, i) =>
      answer(label, probabilities.data.slice(i * classes, (i + 1) * classes), Array.isArray(ids) ? ids[i] : null),
    );
  }

  /** [{label, confidence, id}] for the `count` texts of the request, read from a successful response body. */
  function parseAnswers(protocol, body, count) {
    const answers = protocol === "v2" ? v2Answers(body) : v1Answers(body);
    if (answers.length !== count) {
      throw new PredictorError("answer", `the predictor answered ${answers.length} texts of ${count}`);
    }
    return answers;
  }

  /** {url, init} for the words behind one text's label (KServe v1 :explain, whatever the protocol). */
  function buildExplainRequest(config, text) {
    const model = encodeURIComponent(config.modelName);
    return {
      url: `${config.predictorUrl}/v1/models/${model}:explain`,
      init: { method: "POST", headers: headers(config), body: JSON.stringify({ instances: [text] }) },
    };
  }

  /** The `count` words that push hardest towards the label, from an :explain answer: [{word, attribution}]. */
  function topWords(body, count) {
    const words = body?.explanations?.[0]?.words;
    if (!Array.isArray(words)) throw new PredictorError("answer", 'the explanation has no "words"');
    return words
      .filter((w) => typeof w?.word === "string" && Number.isFinite(w?.attribution) && w.attribution > 0)
      .sort((a, b) => b.attribution - a.attribution)
      .slice(0, count)
      .map(({ word, attribution }) => ({ word, attribution }));
  }

  /** {url, init} for a reader's correction: the right `label` of the answer `id` (KServe v1 :feedback). */
  function buildFeedbackRequest(config, id, label) {
    const model = encodeURIComponent(config.modelName);
    return {
      url: `${config.predictorUrl}/v1/models/${model}:feedback`,
      init: { method: "POST", headers: headers(config), body: JSON.stringify([{ id, label }]) },
    };
  }

  /** Nothing when the predictor stored the correction; a PredictorError saying why it did not. */
  function checkFeedback(body) {
    if (body?.accepted === 1) return;
    const reason = body?.refused?.[0]?.reason || "the predictor did not store it";
    throw new PredictorError("refused", `the correction was refused: ${reason}`);
  }

  /** The PredictorError for an HTTP error status and its body text (kserve's {"error": message}). */
  function errorFor(status, bodyText) {
    let message = bodyText.slice(0, 300);
    try {
      message = JSON.parse(bodyText).error ?? message;
    } catch {
      // not JSON: keep the text
    }
    return status < 500
      ? new PredictorError("refused", `the predictor refused the request (${status}): ${message}`, status)
      : new PredictorError("server", `the predictor failed (${status}): ${message}`, status);
  }

  /** POST `request` ({url, init}) and return the parsed JSON of a 2xx answer; throws PredictorError. */
  async function send(config, { url, init }, timeoutMs, fetchImpl) {
    let response;
    let text;
    try {
      response = await fetchImpl(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
      text = await response.text();
    } catch (error) {
      if (error?.name === "TimeoutError") {
        throw new PredictorError("timeout", `the predictor did not answer within ${timeoutMs / 1000} s`);
      }
      throw new PredictorError("unreachable", `cannot reach the predictor at ${config.predictorUrl}`);
    }
    if (!response.ok) throw errorFor(response.status, text);
    try {
      return JSON.parse(text);
    } catch {
      throw new PredictorError("answer", "the predictor's answer is not JSON");
    }
  }

  /** POST `texts` to the predictor and return their answers; throws PredictorError. */
  async function label(config, texts, timeoutMs, fetchImpl = fetch) {
    const body = await send(config, buildRequest(config, texts), timeoutMs, fetchImpl);
    return parseAnswers(config.protocol, body, texts.length);
  }

  /** The words behind `text`'s label (at most `count`); throws PredictorError (404 where there is no :explain). */
  async function explainText(config, text, count, timeoutMs, fetchImpl = fetch) {
    return topWords(await send(config, buildExplainRequest(config, text), timeoutMs, fetchImpl), count);
  }

  /** Send the reader's correction (`label` for the answer `id`); throws PredictorError when not stored. */
  async function correct(config, id, label, timeoutMs, fetchImpl = fetch) {
    checkFeedback(await send(config, buildFeedbackRequest(config, id, label), timeoutMs, fetchImpl));
  }

  return {
    PredictorError,
    buildRequest,
    buildFeedbackRequest,
    checkFeedback,
    correct,
    buildReadinessRequest,
    buildExplainRequest,
    parseAnswers,
    topWords,
    errorFor,
    label,
    explainText,
  };
})();

if (typeof module === "object") module.exports = predictor;
