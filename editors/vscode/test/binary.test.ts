import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { resolveBinary } from "../src/binary";

function tree() {
  const root = mkdtempSync(join(tmpdir(), "hearth-bin-"));
  const exe = (p: string, mode = 0o755) => {
    mkdirSync(join(p, ".."), { recursive: true });
    writeFileSync(p, "#!/bin/sh\n");
    chmodSync(p, mode);
    return p;
  };
  return { root, exe };
}

test("the setting wins; a setting that is not an executable is an error, not a fallback", () => {
  const { root, exe } = tree();
  const set = exe(join(root, "custom", "hearth"));
  exe(join(root, "pathdir", "hearth"));
  assert.deepEqual(resolveBinary(set, join(root, "pathdir"), join(root, "ext"), "linux"), { path: set, source: "setting" });
  const bad = resolveBinary(join(root, "nope"), join(root, "pathdir"), join(root, "ext"), "linux");
  assert.ok("error" in bad && /not an executable/.test(bad.error));
  const notExec = exe(join(root, "noexec", "hearth"), 0o644);
  assert.ok("error" in resolveBinary(notExec, "", join(root, "ext"), "linux"));
});

test("then PATH in order, skipping non-executables; then the bundled binary", () => {
  const { root, exe } = tree();
  exe(join(root, "a", "hearth"), 0o644);
  const b = exe(join(root, "b", "hearth"));
  const envPath = [join(root, "a"), "", join(root, "b")].join(":");
  assert.deepEqual(resolveBinary("", envPath, join(root, "ext"), "linux"), { path: b, source: "PATH" });
  const bundled = exe(join(root, "ext", "bin", "hearth"));
  assert.deepEqual(resolveBinary("", join(root, "a"), join(root, "ext"), "linux"), { path: bundled, source: "bundled" });
  const none = resolveBinary("", undefined, join(root, "nothing"), "linux");
  assert.ok("error" in none && /not found/.test(none.error));
});
