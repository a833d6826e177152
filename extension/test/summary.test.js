const test = require("node:test");
const assert = require("node:assert/strict");
const { countLabels, orderedLabels, shares, total, remember } = require("../src/summary.js");

test("counts, display order and shares", () => {
  const counts = countLabels(["positive", "negative", "positive", "neutral", "positive", "mixed"]);
  assert.deepEqual(counts, { positive: 3, negative: 1, neutral: 1, mixed: 1 });
  assert.equal(total(counts), 6);
  assert.deepEqual(orderedLabels(counts), ["negative", "neutral", "positive", "mixed"]);
  const rows = shares(counts);
  assert.deepEqual(
    rows.map((row) => [row.label, row.count]),
    [["negative", 1], ["neutral", 1], ["positive", 3], ["mixed", 1]],
  );
  assert.ok(Math.abs(rows.reduce((sum, row) => sum + row.share, 0) - 1) < 1e-12);
  assert.deepEqual(shares({}), []);
  assert.equal(total({}), 0);
});

test("the history keeps the newest entry of each video first, at most keep entries", () => {
  let history = [];
  for (const id of ["a", "b", "c"]) history = remember(history, { videoId: id, counts: {} }, 2);
  assert.deepEqual(history.map((v) => v.videoId), ["c", "b"]);
  history = remember(history, { videoId: "b", counts: { positive: 1 } }, 2);
  assert.deepEqual(history.map((v) => v.videoId), ["b", "c"]);
  assert.deepEqual(history[0].counts, { positive: 1 });
  assert.deepEqual(remember(undefined, { videoId: "x" }, 5).map((v) => v.videoId), ["x"]);
});
