// What the status bar item shows, from the server's `hearth/status` notifications.
//
// The server sends `hearth/status` when the model loads or fails, when a workspace folder is
// indexed and after each completion and rewrite (docs/lsp.md, "Notifications from the
// server"). StatusModel keeps the latest of each kind; formatStatus turns it into the item's
// short text, its tooltip (the whole line) and a severity. Pure: unit tested under Node.

export type ServerState = "starting" | "loading" | "ready" | "error" | "stopped" | "no-model";

// The fields of a `hearth/status` notification this extension reads (all optional: the
// server adds fields over time and old servers may lack some).
export interface StatusNotification {
  event?: string; // "completion" | "rewrite" | "workspace_indexed" | "model_loaded" | "model_error"
  state?: string;
  message?: string;
  backend?: string;
  device?: string;
  prompt_tokens?: number;
  context_tokens?: number;
  reused_tokens?: number;
  restored_tokens?: number;
  prefilled_tokens?: number;
  generated_tokens?: number;
  ms_total?: number;
  ms_prefill?: number;
  ms_restore?: number;
  ms_decode?: number;
  tokens_per_second?: number;
  stop_reason?: string;
  root?: string;
  files?: number;
}

export interface LastCompletion {
  msTotal: number;
  tokensPerSecond: number;
  generated: number;
  prompt: number;
  context: number;
  reused: number;
  restored: number;
  prefilled: number;
}

export class StatusModel {
  state: ServerState = "starting";
  error = "";
  backend = "";
  device = "";
  paused = false;
  indexedFiles = 0;
  last?: LastCompletion;

  // Applies one notification; returns true when something shown may have changed.
  apply(n: StatusNotification): boolean {
    if (n.backend) this.backend = n.backend;
    if (n.device) this.device = n.device;
    switch (n.event) {
      case "model_loaded":
        this.state = "ready";
        this.error = "";
        break;
      case "model_error":
        this.state = "error";
        this.error = n.message ?? "the model could not be loaded";
        break;
      case "workspace_indexed":
        if (typeof n.files === "number") this.indexedFiles = n.files;
        break;
      case "completion":
      case "rewrite":
        this.state = "ready";
        this.last = {
          msTotal: n.ms_total ?? 0,
          tokensPerSecond: n.tokens_per_second ?? 0,
          generated: n.generated_tokens ?? 0,
          prompt: n.prompt_tokens ?? 0,
          context: n.context_tokens ?? 0,
          reused: n.reused_tokens ?? 0,
          restored: n.restored_tokens ?? 0,
          prefilled: n.prefilled_tokens ?? 0,
        };
        break;
      default:
        return false;
    }
    return true;
  }
}

export interface StatusView {
  text: string; // status bar text, with a codicon
  tooltip: string; // the full line
  severity: "normal" | "warning" | "error";
}

const num = (n: number) => Math.round(n).toLocaleString("en-US");

export function formatStatus(m: StatusModel): StatusView {
  const where = m.backend ? `${m.backend}${m.device ? ": " + m.device : ""}` : "";
  const parts: string[] = [];
  let text: string;
  let severity: StatusView["severity"] = "normal";
  switch (m.state) {
    case "starting":
      text = "$(sync~spin) hearth";
      parts.push("hearth: starting the server");
      break;
    case "loading":
      text = "$(sync~spin) hearth";
      parts.push("hearth: loading the model");
      break;
    case "no-model":
      text = "$(warning) hearth: no model";
      parts.push("hearth: no model configured (click to choose a GGUF file)");
      severity = "warning";
      break;
    case "error":
      text = "$(error) hearth";
      parts.push(`hearth: error: ${m.error || "unknown"}`);
      severity = "error";
      break;
    case "stopped":
      text = "$(debug-stop) hearth";
      parts.push("hearth: the server is not running");
      severity = "error";
      break;
    case "ready":
      text = m.paused ? "$(circle-slash) hearth" : "$(flame) hearth";
      parts.push(m.paused ? "hearth: ready, automatic completions paused" : "hearth: ready");
      break;
  }
  if (where) parts.push(where);
  const l = m.last;
  if (l && m.state === "ready") {
    text += ` ${num(l.msTotal)} ms`;
    if (l.tokensPerSecond > 0) text += ` · ${l.tokensPerSecond.toFixed(0)} t/s`;
    parts.push(
      `last completion ${num(l.msTotal)} ms, ${num(l.generated)} tokens at ` +
        `${l.tokensPerSecond.toFixed(1)} t/s`,
    );
    parts.push(
      `prompt ${num(l.prompt)} tokens (context ${num(l.context)}): ${num(l.reused)} reused, ` +
        `${num(l.restored)} restored from disk, ${num(l.prefilled)} prefilled`,
    );
  }
  if (m.indexedFiles > 0) parts.push(`workspace: ${num(m.indexedFiles)} files indexed`);
  return { text, tooltip: parts.join(" · "), severity };
}
