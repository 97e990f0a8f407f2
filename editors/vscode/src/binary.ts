// Which `hearth` binary the extension starts, in this order:
//   1. the `hearth.path` setting (an error if it names no executable file),
//   2. `hearth` on PATH,
//   3. the binary inside a platform package (bin/hearth in the extension's folder; the
//      linux-x64 .vsix carries one, scripts/package.sh --target linux-x64).
// Does not import `vscode`: unit tested under Node with temporary folders.
import * as fs from "node:fs";
import * as path from "node:path";

export interface ResolvedBinary {
  path: string;
  source: "setting" | "PATH" | "bundled";
}

function isExecutableFile(p: string): boolean {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) return false;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// Returns the binary, or an error message that says what was tried.
export function resolveBinary(
  setting: string,
  envPath: string | undefined,
  extensionPath: string,
  platform: string = process.platform,
): ResolvedBinary | { error: string } {
  const exe = platform === "win32" ? "hearth.exe" : "hearth";
  if (setting.trim() !== "") {
    const p = setting.trim();
    if (isExecutableFile(p)) return { path: p, source: "setting" };
    return { error: `hearth.path is "${p}", which is not an executable file` };
  }
  const sep = platform === "win32" ? ";" : ":";
  for (const dir of (envPath ?? "").split(sep)) {
    if (dir === "") continue;
    const p = path.join(dir, exe);
    if (isExecutableFile(p)) return { path: p, source: "PATH" };
  }
  const bundled = path.join(extensionPath, "bin", exe);
  if (isExecutableFile(bundled)) return { path: bundled, source: "bundled" };
  return {
    error:
      "the hearth binary was not found: set hearth.path, put hearth on PATH, or install the " +
      "platform package (hearth-linux-x64-*.vsix) that carries it",
  };
}
