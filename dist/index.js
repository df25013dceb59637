import { createRequire as __rfCreateRequire } from 'node:module';
import { fileURLToPath as __rfFileURLToPath } from 'node:url';
import { dirname as __rfDirname } from 'node:path';
var require = __rfCreateRequire(import.meta.url);
var __filename = __rfFileURLToPath(import.meta.url);
var __dirname = __rfDirname(__filename);
import {
  SECRET_INPUTS,
  assertSupportedPlatform,
  nearMissNote,
  readSettings,
  run,
  unknownInputs
} from "./chunks/chunk-6GVPVX6C.js";
import "./chunks/chunk-EUL36KN4.js";
import {
  debug,
  getInput,
  group,
  info,
  setFailed,
  setOutput,
  setSecret,
  summary,
  warning
} from "./chunks/chunk-23DFZF4L.js";
import {
  logSafe
} from "./chunks/chunk-ILZLWGQY.js";
import "./chunks/chunk-I64HRVNT.js";
import {
  UserError
} from "./chunks/chunk-BNJA3E5O.js";

// src/main.ts
function maskSecrets(get) {
  for (const name of SECRET_INPUTS) {
    const value = get(name);
    if (!value) continue;
    setSecret(value);
    for (const line of value.split(/\r?\n/)) if (line.trim().length >= 4) setSecret(line.trim());
  }
}
var actionReporter = {
  info: (m) => info(logSafe(m)),
  warning: (m) => warning(logSafe(m)),
  debug: (m) => debug(logSafe(m)),
  group: (title, body) => group(logSafe(title), body),
  setOutput: (name, value) => setOutput(name, value),
  summary: async (markdown) => {
    if (!process.env.GITHUB_STEP_SUMMARY) return;
    await summary.addRaw(markdown, true).write();
  }
};
async function run2() {
  const get = (name) => getInput(name);
  const ignored = unknownInputs(process.env);
  try {
    maskSecrets(get);
    assertSupportedPlatform();
    for (const u of ignored) actionReporter.warning(ignoredWarning(u, get));
    const settings = readSettings(get, process.env.GITHUB_WORKSPACE || process.cwd());
    maskSecrets(
      (name) => name === "key" ? settings.ssh.key : name === "proxy-key" ? settings.ssh.proxy?.key ?? "" : ""
    );
    for (const name of Object.keys(process.env)) if (name.startsWith("INPUT_")) delete process.env[name];
    await run(settings, actionReporter);
  } catch (err) {
    if (!(err instanceof UserError) && err instanceof Error && err.stack) debug(err.stack);
    const message = err instanceof Error ? err.message : String(err);
    const note = nearMissNote(message, ignored);
    setFailed(logSafe(note ? message.replace(/\.\s*$/, "") + note : message));
  }
}
function ignoredWarning(u, get) {
  const warning2 = `input \`${u.name}\` is not an input of remote-files and is ignored${u.nearest ? `: did you mean \`${u.nearest}\`?` : ""}`;
  const direct = u.nearest?.startsWith("proxy-") && get("proxy-host").trim() === "" && !["", "plan"].includes(get("mode").trim());
  return direct ? `${warning2} Without \`proxy-host\`, this run connects to ${get("host").trim() || "the server"} directly, not through a jump host` : warning2;
}

// src/index.ts
var finished = false;
process.once("exit", (code) => {
  if (finished) return;
  setFailed(
    `remote-files stopped before finishing (exit ${code}): an operation never completed. This is a bug; the stored copy was not changed past the last completed file.`
  );
  process.exitCode = 1;
});
await run2();
finished = true;
