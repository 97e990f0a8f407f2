import assert from "node:assert/strict";
import { test } from "node:test";
import { formatStatus, StatusModel } from "../src/status";

test("loading, then ready with backend and device", () => {
  const m = new StatusModel();
  m.state = "loading";
  assert.match(formatStatus(m).text, /sync~spin/);
  assert.equal(m.apply({ event: "model_loaded", state: "ready", backend: "vulkan", device: "NVIDIA H200" }), true);
  const v = formatStatus(m);
  assert.equal(v.text, "$(flame) hearth");
  assert.equal(v.tooltip, "hearth: ready · vulkan: NVIDIA H200");
  assert.equal(v.severity, "normal");
});

test("a completion shows latency and tokens/s; the tooltip has the whole line", () => {
  const m = new StatusModel();
  m.apply({ event: "model_loaded", backend: "cpu", device: "2 threads" });
  m.apply({ event: "workspace_indexed", root: "/w", files: 1234 });
  m.apply({
    event: "completion", ms_total: 412.4, tokens_per_second: 38.06, generated_tokens: 16,
    prompt_tokens: 17433, context_tokens: 17000, reused_tokens: 17200, restored_tokens: 0, prefilled_tokens: 233,
  });
  const v = formatStatus(m);
  assert.equal(v.text, "$(flame) hearth 412 ms · 38 t/s");
  assert.equal(
    v.tooltip,
    "hearth: ready · cpu: 2 threads · last completion 412 ms, 16 tokens at 38.1 t/s · " +
      "prompt 17,433 tokens (context 17,000): 17,200 reused, 0 restored from disk, 233 prefilled · " +
      "workspace: 1,234 files indexed",
  );
});

test("model error is an error with its message; a later load clears it", () => {
  const m = new StatusModel();
  m.apply({ event: "model_error", state: "error", message: "no such file: /m.gguf" });
  let v = formatStatus(m);
  assert.equal(v.severity, "error");
  assert.match(v.tooltip, /error: no such file: \/m\.gguf/);
  m.apply({ event: "model_loaded" });
  v = formatStatus(m);
  assert.equal(v.severity, "normal");
  assert.doesNotMatch(v.tooltip, /error/);
});

test("paused, no model, and unknown events", () => {
  const m = new StatusModel();
  m.apply({ event: "model_loaded" });
  m.paused = true;
  assert.equal(formatStatus(m).text, "$(circle-slash) hearth");
  assert.match(formatStatus(m).tooltip, /paused/);
  assert.equal(m.apply({ event: "something_new" }), false);
  const n = new StatusModel();
  n.state = "no-model";
  assert.equal(formatStatus(n).severity, "warning");
  assert.match(formatStatus(n).text, /no model/);
});
