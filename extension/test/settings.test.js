const test = require("node:test");
const assert = require("node:assert/strict");
const settings = require("../src/settings.js");

test("normalize fills defaults and trims the URL", () => {
  const values = settings.normalize({ predictorUrl: " http://10.0.0.5:8090/ ", modelName: " sentiment " });
  assert.equal(values.predictorUrl, "http://10.0.0.5:8090");
  assert.equal(values.modelName, "sentiment");
  assert.equal(values.protocol, settings.DEFAULTS.protocol);
  assert.deepEqual(settings.normalize(undefined), settings.DEFAULTS);
});

test("problems name every invalid field", () => {
  assert.deepEqual(settings.problems(settings.DEFAULTS), []);
  const found = settings.problems({ predictorUrl: "ftp://x", modelName: "a b", protocol: "v3" });
  assert.equal(found.length, 3);
  assert.match(settings.problems({ ...settings.DEFAULTS, predictorUrl: "not a url" })[0], /not a URL/);
  for (const url of ["http://host:8080/?a=1", "http://host/#x", "http://user:pw@host"]) {
    assert.match(settings.problems({ ...settings.DEFAULTS, predictorUrl: url })[0], /no query/);
  }
});

test("the permission pattern covers every port of the host", () => {
  assert.equal(settings.originPattern("https://predictor.example.com:8443/x"), "https://predictor.example.com/*");
  assert.equal(settings.originPattern("http://localhost:8080"), "http://localhost/*");
});
