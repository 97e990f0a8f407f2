// The extension's settings and how they reach the server.
//
// Every server setting (docs/lsp.md, "Settings") has a VS Code setting of the same name under
// `hearth.` (e.g. `hearth.maxTokens` -> `maxTokens`). A few settings belong to the extension
// only (which binary to start, whether automatic completions are paused) and are never sent.
// The mapped object is sent twice in a server's life: as `initializationOptions` when it
// starts and in `workspace/didChangeConfiguration` whenever a `hearth.` setting changes; the
// server applies it without a restart (changing the model, backend, context size, cache or
// FIM template reloads the model inside the server). Only `hearth.path` needs a new process.
//
// This module does not import `vscode`, so its logic is unit tested under plain Node.

export type SettingKind = "string" | "path" | "integer" | "number" | "enum" | "strings";

export interface ServerSetting {
  key: string; // the VS Code key under "hearth." and the server's key
  kind: SettingKind;
  // Settings whose change makes the server reload the model (shown in docs and used to word
  // the notification); the server decides this itself, the list only informs the user.
  reloads?: boolean;
}

// In docs/lsp.md's order. package.json's "contributes.configuration" declares the same keys
// with their defaults and ranges; test/settings.test.ts checks that the two lists agree.
export const SERVER_SETTINGS: readonly ServerSetting[] = [
  { key: "model", kind: "path", reloads: true },
  { key: "backend", kind: "enum", reloads: true },
  { key: "contextSize", kind: "integer", reloads: true },
  { key: "cacheDir", kind: "path", reloads: true },
  { key: "cacheMaxMb", kind: "integer", reloads: true },
  { key: "cacheTotalMaxMb", kind: "integer", reloads: true },
  { key: "contextTokens", kind: "integer" },
  { key: "contextExclude", kind: "strings" },
  { key: "contextSecrets", kind: "strings" },
  { key: "fimTemplate", kind: "enum", reloads: true },
  { key: "maxTokens", kind: "integer" },
  { key: "maxTokensAutomatic", kind: "integer" },
  { key: "automaticLatencyMs", kind: "integer" },
  { key: "maxSuffixTokensAutomatic", kind: "integer" },
  { key: "maxLines", kind: "integer" },
  { key: "temperature", kind: "number" },
  { key: "debounceMs", kind: "integer" },
  { key: "rewriteMaxTokens", kind: "integer" },
  { key: "rewriteInstruction", kind: "string" },
  { key: "logLevel", kind: "enum" },
];

// Settings of the extension itself: never sent to the server.
export const CLIENT_SETTINGS: readonly string[] = ["path", "automaticCompletions", "trace.server"];

export interface ExpandContext {
  home: string; // the user's home directory
  workspaceFolder?: string; // the first workspace folder's path, if any
}

// "~", "~/x", "${userHome}" and "${workspaceFolder}" in a path setting, as VS Code users
// write them; the server receives absolute paths. Other text is kept as written.
export function expandPath(value: string, ctx: ExpandContext): string {
  let out = value.trim();
  if (out === "~") out = ctx.home;
  else if (out.startsWith("~/")) out = ctx.home + out.slice(1);
  out = out.replace(/\$\{userHome\}/g, ctx.home);
  if (ctx.workspaceFolder !== undefined) {
    out = out.replace(/\$\{workspaceFolder\}/g, ctx.workspaceFolder);
  }
  return out;
}

// The object sent to the server, from a getter over the `hearth` configuration section
// (vscode.workspace.getConfiguration("hearth").get). Keys whose value is undefined are left
// out, so the server keeps its own default; values of the wrong type are left out too (the
// server would reject them with a warning; VS Code's settings editor already validates).
export function serverSettings(
  get: (key: string) => unknown,
  ctx: ExpandContext,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of SERVER_SETTINGS) {
    const v = get(s.key);
    if (v === undefined || v === null) continue;
    switch (s.kind) {
      case "path":
        if (typeof v === "string") out[s.key] = expandPath(v, ctx);
        break;
      case "string":
      case "enum":
        if (typeof v === "string") out[s.key] = v;
        break;
      case "integer":
        if (typeof v === "number" && Number.isFinite(v)) out[s.key] = Math.trunc(v);
        break;
      case "number":
        if (typeof v === "number" && Number.isFinite(v)) out[s.key] = v;
        break;
      case "strings":
        if (Array.isArray(v)) out[s.key] = v.filter((e) => typeof e === "string");
        break;
    }
  }
  return out;
}

// Which of the changed keys (VS Code keys under "hearth.") need a new server process rather
// than a didChangeConfiguration.
export function needsRestart(changedKeys: readonly string[]): boolean {
  return changedKeys.includes("path");
}
