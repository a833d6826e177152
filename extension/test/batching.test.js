const test = require("node:test");
const assert = require("node:assert/strict");
const { prepareText, TextQueue, Backoff, reaction, requestsNeeded } = require("../src/batching.js");

test("texts are trimmed and cut by code points, never inside an emoji", () => {
  assert.equal(prepareText("  hello \n", 10), "hello");
  assert.equal(prepareText("😀😀😀", 2), "😀😀"); // 6 UTF-16 units, 3 code points
  assert.equal(prepareText("ab😀cd", 3), "ab😀");
  assert.equal([...prepareText("x".repeat(6000), 5000)].length, 5000);
  assert.equal(prepareText("שלום עולם", 5000), "שלום עולם");
});

test("the queue holds each text once and hands out at most maxTexts in found order", () => {
  const queue = new TextQueue();
  for (const text of ["a", "b", "a", "c", "d", "b", "e"]) queue.add(text);
  assert.equal(queue.size, 5);
  assert.deepEqual(queue.peek(2), ["a", "b"]);
  assert.deepEqual(queue.peek(2), ["a", "b"], "texts stay queued until done");
  queue.done(["a", "b"]);
  assert.deepEqual(queue.peek(2), ["c", "d"]);
  queue.done(["c", "d"]);
  assert.deepEqual(queue.peek(2), ["e"]);
  queue.done(["e"]);
  assert.equal(queue.size, 0);
  assert.deepEqual(queue.peek(2), []);
});

test("draining a queue takes exactly requestsNeeded batches, none above maxTexts", () => {
  const queue = new TextQueue();
  for (let i = 0; i < 1000; i++) queue.add(`comment ${i % 700}`); // 700 distinct texts
  let batches = 0;
  while (queue.size) {
    const batch = queue.peek(32);
    assert.ok(batch.length <= 32);
    queue.done(batch);
    batches += 1;
  }
  assert.equal(batches, requestsNeeded(700, 32));
  assert.equal(batches, 22);
});

test("backoff doubles up to its cap and starts again after a reset", () => {
  const backoff = new Backoff(1000, 8000);
  assert.deepEqual([1, 2, 3, 4, 5].map(() => backoff.next()), [1000, 2000, 4000, 8000, 8000]);
  backoff.reset();
  assert.equal(backoff.next(), 1000);
});

test("what Python's strip removes is trimmed too, so no text sent is empty to the predictor", () => {
  assert.equal(prepareText("\x1f\x85 ok \x1c", 10), "ok");
  assert.equal(prepareText("\x1f\x1e\x85", 10), "");
});

test("a refused request is split until the refused text is found; other failures wait", () => {
  const refused = (status) => ({ kind: "refused", status });
  assert.equal(reaction(refused(400), 32), "split");
  assert.equal(reaction(refused(413), 2), "split");
  assert.equal(reaction(refused(400), 1), "skip");
  for (const status of [401, 403, 404]) assert.equal(reaction(refused(status), 32), "settings");
  assert.equal(reaction({ kind: "server", status: 503 }, 32), "backoff");
  assert.equal(reaction(refused(429), 32), "backoff");
  assert.equal(reaction({ kind: "unreachable", status: null }, 32), "backoff");
  assert.equal(reaction(undefined, 32), "backoff"); // the worker did not answer
});

test("splitting finds one refused text among 32 within 6 refused requests", () => {
  const texts = Array.from({ length: 40 }, (_, i) => `t${i}`);
  const poison = "t13";
  const queue = new TextQueue();
  for (const text of texts) queue.add(text);
  let limit = 32;
  let refusedRequests = 0;
  const skipped = [];
  while (queue.size) {
    const batch = queue.peek(limit);
    if (!batch.includes(poison)) {
      queue.done(batch);
      continue;
    }
    refusedRequests += 1;
    if (reaction({ status: 400 }, batch.length) === "split") limit = Math.max(1, Math.floor(batch.length / 2));
    else {
      skipped.push(...batch);
      queue.done(batch);
      limit = 32;
    }
  }
  assert.deepEqual(skipped, [poison]);
  assert.ok(refusedRequests <= 6, `${refusedRequests} refused requests`);
});
