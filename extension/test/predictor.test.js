const test = require("node:test");
const assert = require("node:assert/strict");
const { buildRequest, buildReadinessRequest, parseAnswers, errorFor, label, PredictorError } = require("../src/predictor.js");

const V1 = { predictorUrl: "http://localhost:8080", modelName: "sentiment", protocol: "v1", token: "" };
const V2 = { ...V1, protocol: "v2", token: "s3cret" };

function response(status, body) {
  return new Response(typeof body === "string" ? body : JSON.stringify(body), { status });
}

test("v1 and v2 requests carry the texts and nothing else", () => {
  const v1 = buildRequest(V1, ["a", "b"]);
  assert.equal(v1.url, "http://localhost:8080/v1/models/sentiment:predict");
  assert.deepEqual(JSON.parse(v1.init.body), { instances: ["a", "b"] });
  assert.equal(v1.init.headers.Authorization, undefined);
  const v2 = buildRequest(V2, ["a", "b"]);
  assert.equal(v2.url, "http://localhost:8080/v2/models/sentiment/infer");
  assert.deepEqual(JSON.parse(v2.init.body), {
    inputs: [{ name: "text", shape: [2], datatype: "BYTES", data: ["a", "b"] }],
  });
  assert.equal(v2.init.headers.Authorization, "Bearer s3cret");
  assert.equal(buildReadinessRequest(V1).url, "http://localhost:8080/v1/models/sentiment");
  assert.equal(buildReadinessRequest(V2).url, "http://localhost:8080/v2/models/sentiment/ready");
});

test("answers are read from both protocols, confidence the top probability", () => {
  const v1 = {
    predictions: [
      { id: "1", label: "positive", probabilities: { negative: 0.1, neutral: 0.2, positive: 0.7 } },
      { id: "2", label: "negative", probabilities: { negative: 0.6, neutral: 0.3, positive: 0.1 } },
    ],
  };
  assert.deepEqual(parseAnswers("v1", v1, 2), [
    { label: "positive", confidence: 0.7, id: "1" },
    { label: "negative", confidence: 0.6, id: "2" },
  ]);
  const v2 = {
    outputs: [
      { name: "label", shape: [2], datatype: "BYTES", data: ["neutral", "positive"] },
      { name: "id", shape: [2], datatype: "BYTES", data: ["x-0", "x-1"] },
      { name: "probabilities", shape: [2, 3], datatype: "FP32", data: [0.2, 0.5, 0.3, 0.1, 0.1, 0.8] },
    ],
  };
  assert.deepEqual(parseAnswers("v2", v2, 2), [
    { label: "neutral", confidence: 0.5, id: "x-0" },
    { label: "positive", confidence: 0.8, id: "x-1" },
  ]);
});

test("an answer that does not fit the request is an error, not a wrong label", () => {
  const one = { predictions: [{ label: "positive", probabilities: { positive: 1 } }] };
  assert.throws(() => parseAnswers("v1", one, 2), (e) => e.kind === "answer" && /1 texts of 2/.test(e.message));
  assert.throws(() => parseAnswers("v1", {}, 1), (e) => e.kind === "answer");
  assert.throws(() => parseAnswers("v2", { outputs: [] }, 1), (e) => e.kind === "answer");
  assert.throws(() => parseAnswers("v1", { predictions: [{ probabilities: { a: 1 } }] }, 1), PredictorError);
  assert.throws(() => parseAnswers("v1", { predictions: [{ label: "positive", probabilities: {} }] }, 1), PredictorError);
  assert.throws(() => parseAnswers("v1", { predictions: [{ label: "positive", probabilities: { a: 7 } }] }, 1), PredictorError);
  const v2 = (data) => ({ outputs: [{ name: "label", data }, { name: "probabilities", shape: [1, 1], data: [1] }] });
  assert.throws(() => parseAnswers("v2", v2("positive"), 1), (e) => e.kind === "answer");
  assert.deepEqual(parseAnswers("v2", v2(["positive"]), 1), [{ label: "positive", confidence: 1, id: null }]);
});

test("4xx carries the server's message, 5xx is a server failure", () => {
  const refused = errorFor(400, JSON.stringify({ error: "instances[0] is empty" }));
  assert.equal(refused.kind, "refused");
  assert.equal(refused.status, 400);
  assert.match(refused.message, /\(400\): instances\[0\] is empty/);
  assert.equal(errorFor(503, "upstream down").kind, "server");
  assert.match(errorFor(502, "<html>bad gateway</html>").message, /bad gateway/);
});

test("label() maps fetch outcomes to answers or PredictorErrors", async () => {
  const ok = { predictions: [{ label: "positive", probabilities: { positive: 0.9, negative: 0.1 } }] };
  assert.deepEqual(await label(V1, ["yay"], 1000, async () => response(200, ok)), [
    { label: "positive", confidence: 0.9, id: null },
  ]);
  const rejects = (fetchImpl, kind) =>
    assert.rejects(label(V1, ["yay"], 1000, fetchImpl), (e) => e instanceof PredictorError && e.kind === kind);
  await rejects(async () => {
    throw new TypeError("Failed to fetch");
  }, "unreachable");
  await rejects(async () => {
    throw Object.assign(new Error("timed out"), { name: "TimeoutError" });
  }, "timeout");
  await rejects(async () => response(404, { error: "Model with name x does not exist." }), "refused");
  await rejects(async () => response(500, { error: "boom" }), "server");
  await rejects(async () => response(200, "not json"), "answer");
});

test("an explanation gives the words that push hardest towards the label", async () => {
  const { buildExplainRequest, topWords, explainText } = require("../src/predictor.js");
  const request = buildExplainRequest(V2, "I love it");
  assert.equal(request.url, "http://localhost:8080/v1/models/sentiment:explain"); // v1 verb, either protocol
  assert.deepEqual(JSON.parse(request.init.body), { instances: ["I love it"] });
  const body = {
    explanations: [
      {
        label: "positive",
        words: [
          { word: "I", attribution: -0.01 },
          { word: "love", attribution: 0.41 },
          { word: "it", attribution: 0.02 },
          { word: "so", attribution: 0.1 },
        ],
      },
    ],
  };
  assert.deepEqual(topWords(body, 2), [
    { word: "love", attribution: 0.41 },
    { word: "so", attribution: 0.1 },
  ]);
  assert.deepEqual(topWords({ explanations: [{ words: [{ word: "x", attribution: -1 }] }] }, 3), []);
  assert.throws(() => topWords({}, 3), PredictorError);
  const refused = explainText(V1, "hi", 3, 1000, async () => response(404, { error: "Not Found" }));
  await assert.rejects(refused, (e) => e.kind === "refused" && e.status === 404);
});

test("a correction is posted to :feedback with the answer's id, and a refusal says why", async () => {
  const { buildFeedbackRequest, correct } = require("../src/predictor.js");
  const request = buildFeedbackRequest(V2, "a1.sig", "negative");
  assert.equal(request.url, "http://localhost:8080/v1/models/sentiment:feedback");
  assert.deepEqual(JSON.parse(request.init.body), [{ id: "a1.sig", label: "negative" }]);
  assert.equal(request.init.headers.Authorization, "Bearer s3cret");
  await correct(V1, "a1.sig", "negative", 1000, async () => response(200, { accepted: 1, refused: [] }));
  const refused = { accepted: 0, refused: [{ row: 0, reason: "id 'a1.sig' refused: not an answer id of this service" }] };
  await assert.rejects(
    correct(V1, "a1.sig", "negative", 1000, async () => response(200, refused)),
    (e) => e.kind === "refused" && /not an answer id of this service/.test(e.message),
  );
  await assert.rejects(
    correct(V1, "a1.sig", "negative", 1000, async () => response(401, { error: "a bearer token is required" })),
    (e) => e.kind === "refused" && e.status === 401,
  );
});
