import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { CLIENT_SETTINGS, expandPath, needsRestart, SERVER_SETTINGS, serverSettings } from "../src/settings";

const ctx = { home: "/home/u", workspaceFolder: "/work/proj" };

test("paths: ~, ${userHome} and ${workspaceFolder} are expanded, other text kept", () => {
  assert.equal(expandPath("~", ctx), "/home/u");
  assert.equal(expandPath("~/models/q.gguf", ctx), "/home/u/models/q.gguf");
  assert.equal(expandPath(" ${userHome}/m.gguf ", ctx), "/home/u/m.gguf");
  assert.equal(expandPath("${workspaceFolder}/.models/m.gguf", ctx), "/work/proj/.models/m.gguf");
  assert.equal(expandPath("/abs/~odd/m.gguf", ctx), "/abs/~odd/m.gguf");
  assert.equal(expandPath("${workspaceFolder}/m", { home: "/h" }), "${workspaceFolder}/m");
});

test("server settings: every key mapped by its kind; unset and mistyped values left out", () => {
  const values: Record<string, unknown> = {
    model: "~/m.gguf",
    backend: "vulkan",
    contextSize: 8192.7,
    contextTokens: undefined,
    maxTokens: "many", // wrong type: the server keeps its value
    temperature: 0.2,
    contextExclude: ["*.log", 3, "dist/"],
    path: "/usr/bin/hearth", // client-only
    automaticCompletions: false, // client-only
    logLevel: "debug",
  };
  const out = serverSettings((k) => values[k], ctx);
  assert.deepEqual(out, {
    model: "/home/u/m.gguf",
    backend: "vulkan",
    contextSize: 8192,
    temperature: 0.2,
    contextExclude: ["*.log", "dist/"],
    logLevel: "debug",
  });
});

test("server settings: nothing configured sends nothing", () => {
  assert.deepEqual(serverSettings(() => undefined, ctx), {});
});

test("package.json declares every server and client setting, and nothing else", () => {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", `file://${__filename}`), "utf8"));
  const declared = Object.keys(pkg.contributes.configuration.properties).map((k: string) => k.replace(/^hearth\./, ""));
  const expected = [...SERVER_SETTINGS.map((s) => s.key), ...CLIENT_SETTINGS];
  assert.deepEqual([...declared].sort(), [...expected].sort());
  for (const s of SERVER_SETTINGS) {
    const p = pkg.contributes.configuration.properties["hearth." + s.key];
    const want = { path: "string", string: "string", enum: "string", integer: "integer", number: "number", strings: "array" }[s.kind];
    assert.equal(p.type, want, `hearth.${s.key} type`);
    if (s.kind === "enum") assert.ok(Array.isArray(p.enum) && p.enum.length > 1, `hearth.${s.key} enum`);
  }
});

test("only hearth.path needs a new server process", () => {
  assert.equal(needsRestart(["path"]), true);
  assert.equal(needsRestart(["model", "backend"]), false);
  assert.equal(needsRestart([]), false);
});
