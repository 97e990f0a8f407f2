// End-to-end test of the VS Code extension in a real VS Code: code-server (VS Code 1.139 in
// the browser) started on 127.0.0.1 with its own user data, extensions and config folders,
// the built .vsix installed, Debian's Chromium driven headlessly by playwright-core.
//
//   node run.mjs --vsix X.vsix --model M.gguf --code-server BIN --out DIR [--hearth BIN]
//
// What it checks, each step bounded:
//   1. the extension starts the server and the status bar item reports it ready;
//   2. typing in a Python file shows ghost text (.ghost-text-decoration) with VS Code's
//      default settings, and the time from the keystroke to the ghost text is measured;
//   3. Tab accepts it: the saved file holds the text;
//   4. the light bulb (Ctrl+.) lists hearth's code actions; one is applied and changes the file;
//   5. the status bar shows the last completion's latency and tokens/s.
// Screenshots of the ghost text, the code action menu and the status bar go to --out, with
// result.json (latencies, texts). Exit code 0 only when every step passed.
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
for (const k of ["vsix", "model", "code-server", "out"]) {
  if (!args[k]) {
    console.error(`run.mjs: --${k} is required`);
    process.exit(2);
  }
}
const out = resolve(args.out);
mkdirSync(out, { recursive: true });
const chromiumPath = process.env.CHROMIUM ?? "/usr/lib/chromium/chromium";
const t0 = Date.now();
const log = (...m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...m);
const result = { steps: {}, latencies_ms: [] };
let failed = false;
function check(name, ok, detail) {
  result.steps[name] = { ok, detail };
  log(`${ok ? "PASS" : "FAIL"} ${name}${detail !== undefined ? ": " + JSON.stringify(detail) : ""}`);
  if (!ok) failed = true;
  return ok;
}

const freePort = () =>
  new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });

// ---- the machine-local VS Code -------------------------------------------------------------
const root = mkdtempSync(join(tmpdir(), "hearth-vscode-e2e-"));
const userData = join(root, "user-data");
const extensions = join(root, "extensions");
const ws = join(root, "workspace");
mkdirSync(join(userData, "User"), { recursive: true });
mkdirSync(extensions, { recursive: true });
mkdirSync(ws, { recursive: true });
const source = [
  "import math",
  "",
  "",
  "def area_of_circle(radius):",
  '    """Return the area of a circle."""',
  "    return math.pi * radius ** 2",
  "",
  "",
  "def circumference(radius):",
  "",
].join("\n");
writeFileSync(join(ws, "geometry.py"), source);
// VS Code's defaults stay as they are (inline suggestions on, quick suggestions, its own
// timeouts); only what a headless run needs and the extension's settings are set.
const settings = {
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "security.workspace.trust.enabled": false,
  "chat.disableAIFeatures": true,
  "files.autoSave": "off",
  "workbench.secondarySideBar.defaultVisibility": "hidden",
  "hearth.backend": "cpu",
  "hearth.cacheDir": join(root, "cache"),
  "hearth.rewriteMaxTokens": 96,
  "hearth.logLevel": "debug",
};
if (args.hearth) settings["hearth.path"] = resolve(args.hearth);
// code-server is a remote window: settings of machine scope (hearth.path, hearth.model,
// hearth.cacheDir) are read from the machine's settings, as over SSH. The first start has no
// model (the first-run guidance); the model is set later, as a user would.
mkdirSync(join(userData, "Machine"), { recursive: true });
function writeSettings(extra) {
  const all = JSON.stringify({ ...settings, ...extra }, null, 2);
  writeFileSync(join(userData, "User", "settings.json"), all);
  writeFileSync(join(userData, "Machine", "settings.json"), all);
}
writeSettings({});
const port = await freePort();
const config = join(root, "config.yaml");
writeFileSync(config, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
const csArgs = [
  "--config", config, "--user-data-dir", userData, "--extensions-dir", extensions,
  "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust",
  "--disable-getting-started-override",
];
log("installing", args.vsix);
execFileSync(args["code-server"], [...csArgs, "--install-extension", resolve(args.vsix)], {
  stdio: ["ignore", "inherit", "inherit"],
  timeout: 120_000,
});
log(`starting code-server on 127.0.0.1:${port}`);
const cs = spawn(args["code-server"], [...csArgs, ws], { stdio: ["ignore", "pipe", "pipe"], detached: true });
let csLog = "";
cs.stdout.on("data", (d) => (csLog += d));
cs.stderr.on("data", (d) => (csLog += d));

let browser;
const cleanup = async () => {
  try {
    await browser?.close();
  } catch {}
  try {
    process.kill(-cs.pid, "SIGTERM");
  } catch {}
};
const hardStop = setTimeout(async () => {
  check("finished within the time limit", false, "240 s");
  await finish();
}, 240_000);

async function finish() {
  clearTimeout(hardStop);
  const ok = result.latencies_ms.filter((x) => x !== null).sort((a, b) => a - b);
  if (ok.length > 0) {
    result.latency_summary = {
      samples: result.latencies_ms.length,
      answered: ok.length,
      p50_ms: ok[Math.floor((ok.length - 1) / 2)],
      max_ms: ok[ok.length - 1],
      over_750_ms: ok.filter((x) => x > 750).length,
    };
    log("keystroke to ghost text:", JSON.stringify(result.latency_summary));
  }
  writeFileSync(join(out, "result.json"), JSON.stringify(result, null, 2));
  writeFileSync(join(out, "code-server.log"), csLog);
  await cleanup();
  const n = Object.keys(result.steps).length;
  const bad = Object.values(result.steps).filter((s) => !s.ok).length;
  console.log(`${n - bad} passed, ${bad} failed`);
  if (!process.env.HEARTH_E2E_KEEP) rmSync(root, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
}

async function main() {
try {
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.ok) break;
    } catch {}
    if (i > 300) throw new Error("code-server did not start:\n" + csLog);
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(30_000);
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}`);
  await page.waitForSelector(".monaco-workbench", { timeout: 60_000 });
  log("workbench loaded");

  const statusItem = page.locator(".statusbar-item").filter({ hasText: "hearth" }).first();
  await statusItem.waitFor({ timeout: 60_000 });
  const toasts = page.locator(".notifications-toasts");
  // 0. First run without a model: the status says so and a notification offers the picker.
  const firstRun = toasts.locator(".notification-list-item").filter({ hasText: "hearth needs a GGUF code model" });
  let seen = await firstRun.first().waitFor({ timeout: 30_000 }).then(() => true, () => false);
  check("first run without a model: guidance with a file picker", seen &&
    /no model/.test(await statusItem.innerText()) &&
    (await firstRun.first().locator(".monaco-button").allInnerTexts()).some((t) => /Choose model file/.test(t)),
    await statusItem.innerText());
  await page.screenshot({ path: join(out, "first-run.png") });
  // A model that does not exist: an error in the status bar and a notification with actions.
  writeSettings({ "hearth.model": join(root, "missing.gguf") });
  const loadError = toasts.locator(".notification-list-item").filter({ hasText: "model failed to load" });
  seen = await loadError.first().waitFor({ timeout: 60_000 }).then(() => true, () => false);
  check("a model that cannot load: error with Choose model / Open settings", seen &&
    (await statusItem.locator(".codicon-error").count()) > 0 &&
    (await loadError.first().locator(".monaco-button").allInnerTexts()).some((t) => /Choose model/.test(t)),
    seen ? await loadError.first().innerText() : await statusItem.innerText());
  await page.screenshot({ path: join(out, "model-error.png") });
  for (let i = 0; i < 3; i++) await page.keyboard.press("Escape");

  // 1. The real model, sent to the running server (didChangeConfiguration; no restart): the
  // status bar item shows the flame without a spinner.
  writeSettings({ "hearth.model": resolve(args.model) });
  let ready = false;
  for (let i = 0; i < 600 && !ready; i++) {
    ready = (await statusItem.locator(".codicon-flame").count()) > 0;
    if (!ready) await page.waitForTimeout(100);
  }
  check("status bar reports the server ready", ready, await statusItem.innerText());
  if (!ready) {
    await page.screenshot({ path: join(out, "failure.png") });
    return;
  }

  // Open the file and put the cursor on the empty line of circumference's body.
  await page.keyboard.press("Control+P");
  await page.keyboard.type("geometry.py");
  await page.locator(".quick-input-list .monaco-list-row").filter({ hasText: "geometry.py" }).first().waitFor();
  await page.keyboard.press("Enter");
  const editor = page.locator(".monaco-editor .view-lines").first();
  await editor.waitFor();
  await editor.click();
  await page.keyboard.press("Control+End");

  // 2. Ghost text while typing, with VS Code's defaults: type the body's first characters and
  // time each keystroke to the ghost text.
  const ghost = page.locator(".ghost-text-decoration, .ghost-text-decoration-preview, .ghost-text");
  async function typeAndTime(keys) {
    await page.keyboard.type(keys, { delay: 40 });
    const start = Date.now();
    try {
      await ghost.first().waitFor({ state: "visible", timeout: 10_000 });
      return Date.now() - start;
    } catch {
      return null;
    }
  }
  let ms = await typeAndTime("    ");
  if (ms === null) ms = await typeAndTime("r");
  // The first line is inline decorations on the cursor's line; further lines are a view zone.
  const ghostText = await page.evaluate(() => {
    const inline = [...document.querySelectorAll(".view-line .ghost-text-decoration")].map((e) => e.textContent).join("");
    const lines = new Map();
    for (const e of document.querySelectorAll("span.ghost-text")) {
      const line = e.parentElement;
      lines.set(line, (lines.get(line) ?? "") + e.textContent);
    }
    const below = [...lines.values()];
    return [inline, ...below].join("\n").replace(/\u00a0/g, " ");
  });
  if (process.env.HEARTH_E2E_DUMP) {
    const html = await page.evaluate(() =>
      [...document.querySelectorAll("[class*=ghost]")].map((e) => e.className + " :: " + e.outerHTML.slice(0, 400)).join("\n"),
    );
    writeFileSync(join(out, "ghost-dom.txt"), html);
  }
  result.latencies_ms.push(ms);
  check("ghost text appears while typing", ms !== null && ghostText.trim().length > 0, { ms, ghostText });
  await page.screenshot({ path: join(out, "ghost-text.png") });

  // 3. Tab accepts; the saved file holds the accepted text.
  const before = readFileSync(join(ws, "geometry.py"), "utf8");
  await page.keyboard.press("Tab");
  let after = before;
  for (let i = 0; i < 100 && after === before; i++) {
    if (i % 10 === 0) await page.keyboard.press("Control+S");
    await page.waitForTimeout(100);
    after = readFileSync(join(ws, "geometry.py"), "utf8");
  }
  const firstGhostLine = ghostText.split("\n").map((l) => l.trim()).find((l) => l.length > 0) ?? "";
  check("Tab accepts the ghost text into the file", after !== before && after.includes(firstGhostLine), {
    added: after.slice(source.length - 1),
  });

  // More keystrokes for a latency sample: a new function at the end of the file, each
  // followed by the ghost text (or its absence, 10 s).
  for (const name of ["diameter(radius)", "is_positive(x)", "square(x)"]) {
    await page.keyboard.press("Escape");
    await page.keyboard.press("Control+End");
    await page.keyboard.press("Enter");
    await page.keyboard.press("Enter");
    for (let i = 0; i < 4; i++) await page.keyboard.press("Shift+Tab");
    const t = await typeAndTime(`def ${name}:\n`);
    result.latencies_ms.push(t);
    log("keystroke to ghost text:", t, "ms");
  }
  await page.keyboard.press("Escape");

  // 5. The status bar shows the last completion's latency and speed.
  const statusText = await statusItem.innerText();
  check("status bar shows latency and tokens/s", /\d+ ms/.test(statusText) && /t\/s/.test(statusText), statusText);
  await statusItem.hover();
  await page.waitForTimeout(1200);
  await page.screenshot({ path: join(out, "status-bar.png"), clip: { x: 480, y: 560, width: 800, height: 240 } });

  // 4. Code action: select the first function and open the light bulb menu.
  await page.keyboard.press("Control+S");
  await page.keyboard.press("Control+Home");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Home");
  for (let i = 0; i < 3; i++) await page.keyboard.press("Shift+ArrowDown");
  // Moving the cursor away trims the indentation VS Code inserted on the last line
  // (editor.trimAutoWhitespace): save again until the tab is clean, so the file on disk is
  // the editor's text before the action.
  for (let i = 0; i < 100 && (i === 0 || (await page.locator(".tab.dirty").count()) > 0); i++) {
    if (i % 10 === 0) await page.keyboard.press("Control+S");
    await page.waitForTimeout(100);
  }
  const menu = page.locator(".action-widget").filter({ hasText: "Simplify" }).first();
  for (let attempt = 0; ; attempt++) {
    await page.keyboard.press("Control+Period");
    try {
      await menu.waitFor({ state: "visible", timeout: 5_000 });
      break;
    } catch (e) {
      if (attempt === 3) throw e;
      await page.keyboard.press("Escape");
    }
  }
  await page.waitForTimeout(300);
  const items = await menu.locator(".monaco-list-row").allInnerTexts();
  check("light bulb lists hearth's code actions", items.some((t) => /Simplify|Add documentation|Rewrite/.test(t)), items);
  await page.screenshot({ path: join(out, "code-actions.png") });
  const beforeAction = readFileSync(join(ws, "geometry.py"), "utf8");
  await menu.locator(".monaco-list-row").filter({ hasText: "Simplify" }).first().click();
  let afterAction = beforeAction;
  for (let i = 0; i < 600; i++) {
    await page.waitForTimeout(100);
    if (i % 10 === 0) await page.keyboard.press("Control+S");
    afterAction = readFileSync(join(ws, "geometry.py"), "utf8");
    if (afterAction !== beforeAction) break;
  }
  // The edit replaces the selection (lines 4-6 and the line break of 6) and nothing else.
  writeFileSync(join(out, "code-action-before.py"), beforeAction);
  writeFileSync(join(out, "code-action-after.py"), afterAction);
  const lines = beforeAction.split("\n");
  const head = lines.slice(0, 3).join("\n") + "\n";
  // VS Code itself trims the indentation it auto-inserted on the last line when an edit
  // lands (editor.trimAutoWhitespace), so the end of the file is compared without it.
  const tail = lines.slice(6).join("\n").trimEnd();
  afterAction = afterAction.trimEnd();
  check(
    "a code action's edit is applied to the selection only",
    afterAction !== beforeAction && afterAction.startsWith(head) && afterAction.endsWith(tail),
    {
      head_kept: afterAction.startsWith(head),
      tail_kept: afterAction.endsWith(tail),
      replaced: lines.slice(3, 6),
      by: afterAction.slice(head.length, afterAction.length - tail.length).split("\n"),
    },
  );
  await page.screenshot({ path: join(out, "after-code-action.png") });
} catch (e) {
  check("no unexpected error", false, String(e?.stack ?? e));
  try {
    const pages = browser?.contexts()[0]?.pages();
    if (pages?.[0]) await pages[0].screenshot({ path: join(out, "failure.png") });
  } catch {}
}
}
await main();
await finish();
