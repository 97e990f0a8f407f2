// Bundles the extension (src/extension.ts and vscode-languageclient) into out/extension.js,
// and with --tests the unit tests into out/test/. One file to ship, nothing to install.
import { build } from "esbuild";
import { readdirSync } from "node:fs";

const common = { bundle: true, platform: "node", format: "cjs", target: "node18", sourcemap: true, logLevel: "warning" };
await build({ ...common, entryPoints: ["src/extension.ts"], outfile: "out/extension.js", external: ["vscode"], minify: true });
if (process.argv.includes("--tests")) {
  const tests = readdirSync("test").filter((f) => f.endsWith(".test.ts")).map((f) => "test/" + f);
  await build({ ...common, entryPoints: tests, outdir: "out/test" });
}
