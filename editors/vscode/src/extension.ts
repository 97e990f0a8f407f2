// The hearth extension: starts `hearth lsp` over stdio with vscode-languageclient and adds
// what a language client alone does not give: the status bar item, the quick pick behind it,
// progress notifications, actionable errors and the first-run guidance.
//
// Everything the editor shows as completions and code actions comes from the server through
// the client's standard features (LSP 3.18 inline completion, code actions with resolve);
// this file adds no completion logic of its own, except pausing automatic requests.
import * as os from "node:os";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  MessageType,
  ServerOptions,
  ShowMessageNotification,
  State,
  WorkDoneProgress,
  WorkDoneProgressBegin,
  WorkDoneProgressCreateRequest,
  WorkDoneProgressReport,
} from "vscode-languageclient/node";
import { resolveBinary } from "./binary";
import { CLIENT_SETTINGS, needsRestart, serverSettings } from "./settings";
import { formatStatus, StatusModel, StatusNotification } from "./status";

const MODEL_HELP =
  "hearth needs a GGUF code model. Qwen2.5-Coder base models work best: " +
  "Qwen2.5-Coder-1.5B Q8_0 (~1.6 GB) for 4 GB GPUs and fast typing, 7B Q4_K_M (~4.7 GB) " +
  "for 8-12 GB GPUs, 0.5B (~0.5 GB) for the CPU. Download one from Hugging Face, then " +
  "choose the file.";

let client: LanguageClient | undefined;
let output: vscode.LogOutputChannel;
let statusItem: vscode.StatusBarItem;
const status = new StatusModel();
let extensionContext: vscode.ExtensionContext;

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration("hearth");
}

function mappedSettings(): Record<string, unknown> {
  const c = config();
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return serverSettings((k) => c.get(k), { home: os.homedir(), workspaceFolder: folder });
}

function renderStatus(): void {
  status.paused = !config().get<boolean>("automaticCompletions", true);
  const view = formatStatus(status);
  statusItem.text = view.text;
  statusItem.tooltip = view.tooltip + " (click for actions)";
  statusItem.backgroundColor =
    view.severity === "error"
      ? new vscode.ThemeColor("statusBarItem.errorBackground")
      : view.severity === "warning"
        ? new vscode.ThemeColor("statusBarItem.warningBackground")
        : undefined;
  statusItem.show();
}

async function chooseModel(): Promise<void> {
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: "Use this model",
    title: "Choose a GGUF code model for hearth",
    filters: { "GGUF models": ["gguf"], "All files": ["*"] },
  });
  if (!picked || picked.length === 0) return;
  await config().update("model", picked[0].fsPath, vscode.ConfigurationTarget.Global);
  // The configuration listener starts the server or sends the new model to it.
}

function showFirstRun(): void {
  void vscode.window
    .showInformationMessage(MODEL_HELP, "Choose model file…", "Open settings")
    .then((choice) => {
      if (choice === "Choose model file…") void chooseModel();
      if (choice === "Open settings") {
        void vscode.commands.executeCommand("workbench.action.openSettings", "hearth.model");
      }
    });
}

function showModelError(message: string): void {
  void vscode.window
    .showErrorMessage(message, "Choose model…", "Open settings", "Show log")
    .then((choice) => {
      if (choice === "Choose model…") void chooseModel();
      if (choice === "Open settings") {
        void vscode.commands.executeCommand("workbench.action.openSettings", "hearth");
      }
      if (choice === "Show log") output.show(true);
    });
}

// Server-created work-done progress (model load, workspace indexing, long prefills) shown
// as a notification with its percentage, instead of the client's quiet status-bar spinner.
function progressAsNotification(c: LanguageClient, token: string | number): void {
  let report: ((v: { message?: string; increment?: number }) => void) | undefined;
  let finish: (() => void) | undefined;
  let reported = 0;
  const update = (v: WorkDoneProgressBegin | WorkDoneProgressReport) => {
    if (!report) return;
    const pct = typeof v.percentage === "number" ? Math.min(100, Math.max(0, v.percentage)) : undefined;
    const increment = pct !== undefined && pct > reported ? pct - reported : undefined;
    if (pct !== undefined && pct > reported) reported = pct;
    report({ message: v.message, increment });
  };
  const sub = c.onProgress(WorkDoneProgress.type, token, (value) => {
    if (value.kind === "begin") {
      void vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: value.title, cancellable: false },
        (p) => {
          report = (v) => p.report(v);
          update(value);
          return new Promise<void>((resolve) => (finish = resolve));
        },
      );
    } else if (value.kind === "report") {
      update(value);
    } else {
      finish?.();
      sub.dispose();
    }
  });
}

async function executeServerCommand(command: string): Promise<unknown> {
  if (!client || client.state !== State.Running) {
    void vscode.window.showWarningMessage("hearth: the server is not running");
    return undefined;
  }
  return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [] });
}

async function startServer(): Promise<void> {
  const model = mappedSettings()["model"];
  if (typeof model !== "string" || model === "") {
    status.state = "no-model";
    renderStatus();
    showFirstRun();
    return;
  }
  const bin = resolveBinary(
    config().get<string>("path", ""),
    process.env.PATH,
    extensionContext.extensionPath,
  );
  if ("error" in bin) {
    status.state = "error";
    status.error = bin.error;
    renderStatus();
    void vscode.window
      .showErrorMessage(`hearth: ${bin.error}`, "Open settings")
      .then((c) => c && vscode.commands.executeCommand("workbench.action.openSettings", "hearth.path"));
    return;
  }
  output.appendLine(`hearth: starting ${bin.path} lsp (${bin.source})`);
  const serverOptions: ServerOptions = { command: bin.path, args: ["lsp"] };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    outputChannel: output,
    initializationOptions: { hearth: mappedSettings() },
    middleware: {
      // Automatic requests are answered empty while paused; explicit ones still run.
      provideInlineCompletionItems: (document, position, context, token, next) => {
        if (
          context.triggerKind === vscode.InlineCompletionTriggerKind.Automatic &&
          !config().get<boolean>("automaticCompletions", true)
        ) {
          return undefined;
        }
        return next(document, position, context, token);
      },
      workspace: {
        // The server gets the mapped settings (absolute paths, no client-only keys), not
        // the raw configuration section.
        didChangeConfiguration: async () => {
          await client?.sendNotification(DidChangeConfigurationNotification.type, {
            settings: { hearth: mappedSettings() },
          });
        },
      },
    },
  };
  const c = new LanguageClient("hearth", "hearth", serverOptions, clientOptions);
  client = c;
  c.onDidChangeState((e) => {
    if (e.newState === State.Stopped && client === c) {
      status.state = "stopped";
      renderStatus();
    }
  });
  c.onNotification("hearth/status", (n: StatusNotification) => {
    if (status.apply(n)) renderStatus();
  });
  status.state = "loading";
  renderStatus();
  try {
    await c.start();
  } catch (e) {
    status.state = "error";
    status.error = String(e);
    renderStatus();
    return;
  }
  // Registered after start() so they replace the client's defaults (see above); the server
  // creates its first progress only after `initialized`, which start() has sent.
  c.onRequest(WorkDoneProgressCreateRequest.type, (p) => progressAsNotification(c, p.token));
  c.onNotification(ShowMessageNotification.type, (m) => {
    if (m.type === MessageType.Error && m.message.includes("model failed to load")) {
      showModelError(m.message);
    } else if (m.type === MessageType.Error) {
      void vscode.window.showErrorMessage(m.message);
    } else if (m.type === MessageType.Warning) {
      void vscode.window.showWarningMessage(m.message);
    } else {
      void vscode.window.showInformationMessage(m.message);
    }
  });
  // The model may have loaded (or failed) before the status handler saw it.
  try {
    const s = (await c.sendRequest(ExecuteCommandRequest.type, {
      command: "hearth.status",
      arguments: [],
    })) as { state?: string; error?: string; backend?: string; device?: string };
    if (s?.state === "ready") status.apply({ event: "model_loaded", backend: s.backend, device: s.device });
    if (s?.state === "error") status.apply({ event: "model_error", message: s.error });
    renderStatus();
  } catch {
    // The status notifications will tell.
  }
}

async function stopServer(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) {
    try {
      await c.stop(2000);
    } catch {
      // already gone
    }
  }
}

async function restartServer(): Promise<void> {
  await stopServer();
  await startServer();
}

async function showMenu(): Promise<void> {
  const paused = !config().get<boolean>("automaticCompletions", true);
  type Item = vscode.QuickPickItem & { run: () => unknown };
  const items: Item[] = [
    {
      label: paused ? "$(play) Enable automatic completions" : "$(debug-pause) Pause automatic completions",
      description: paused ? "ghost text while typing" : "explicit triggers still work",
      run: () => toggleAutomatic(),
    },
    { label: "$(trash) Clear the cache", description: "memory and disk", run: () => clearCache() },
    { label: "$(refresh) Reload the model", run: () => reloadModel() },
    { label: "$(file) Choose a model…", description: String(config().get("model") || "none"), run: () => chooseModel() },
    { label: "$(output) Show the log", run: () => output.show(true) },
    { label: "$(info) Show the server status", run: () => showServerStatus() },
    { label: "$(gear) Open settings", run: () => vscode.commands.executeCommand("workbench.action.openSettings", "hearth") },
  ];
  const pick = await vscode.window.showQuickPick(items, {
    title: "hearth: " + formatStatus(status).tooltip,
    placeHolder: "hearth",
  });
  if (pick) await pick.run();
}

async function toggleAutomatic(): Promise<void> {
  const on = config().get<boolean>("automaticCompletions", true);
  await config().update("automaticCompletions", !on, vscode.ConfigurationTarget.Global);
  renderStatus();
}

async function clearCache(): Promise<void> {
  const r = (await executeServerCommand("hearth.clearCache")) as { dir?: string } | undefined;
  if (r) void vscode.window.showInformationMessage(`hearth: cache cleared (${r.dir ?? "memory"})`);
}

async function reloadModel(): Promise<void> {
  if (!client) return startServer();
  status.state = "loading";
  renderStatus();
  await executeServerCommand("hearth.reloadModel");
}

async function showServerStatus(): Promise<void> {
  const s = await executeServerCommand("hearth.status");
  if (s === undefined) return;
  output.appendLine("hearth.status: " + JSON.stringify(s, null, 2));
  output.show(true);
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  extensionContext = context;
  output = vscode.window.createOutputChannel("hearth", { log: true });
  statusItem = vscode.window.createStatusBarItem("hearth.status", vscode.StatusBarAlignment.Right, 100);
  statusItem.name = "hearth";
  statusItem.command = "hearth.menu";
  const reg = (id: string, f: () => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, f));
  reg("hearth.menu", showMenu);
  reg("hearth.toggleAutomaticCompletions", toggleAutomatic);
  reg("hearth.clearCacheCommand", clearCache);
  reg("hearth.reloadModelCommand", reloadModel);
  reg("hearth.chooseModel", chooseModel);
  reg("hearth.showLog", () => output.show(true));
  reg("hearth.showServerStatus", showServerStatus);
  reg("hearth.restartServer", restartServer);
  reg("hearth.triggerCompletion", () => vscode.commands.executeCommand("editor.action.inlineSuggest.trigger"));
  context.subscriptions.push(output, statusItem);
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration("hearth")) return;
      const changed = ["model", "path", ...CLIENT_SETTINGS].filter((k) => e.affectsConfiguration("hearth." + k));
      if (!client || needsRestart(changed)) {
        // No server yet (no model before), or another binary: start afresh.
        await restartServer();
      } else {
        if (changed.includes("model")) {
          status.state = "loading";
        }
        renderStatus();
        // The client's configuration feature sends the new settings (middleware above).
      }
    }),
  );
  renderStatus();
  await startServer();
}

export async function deactivate(): Promise<void> {
  await stopServer();
}
