#!/usr/bin/env node
import { createRequire as __rfCreateRequire } from 'node:module';
import { fileURLToPath as __rfFileURLToPath } from 'node:url';
import { dirname as __rfDirname } from 'node:path';
const require = __rfCreateRequire(import.meta.url);
const __filename = __rfFileURLToPath(import.meta.url);
const __dirname = __rfDirname(__filename);
import {
  UserError,
  readSettings,
  run
} from "./chunks/chunk-4Y5DR7IM.js";

// src/cli.ts
import { readFileSync } from "node:fs";
var USAGE = `usage: remote-files plan|backup|restore|verify [--input-name value ...]
  Flags are the action's inputs (see README), e.g. --domain example.com --install-dir /srv --recipes lib/Provisioner/Recipe
  --key-file PATH, --known-hosts-file PATH read those inputs from files.
exit codes: 0 success, 1 the run failed, 2 bad usage or input`;
function parseArgs(argv) {
  const values = /* @__PURE__ */ new Map();
  const [mode, ...rest] = argv;
  if (!mode || mode.startsWith("-")) throw new UserError(USAGE);
  values.set("mode", mode);
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const m = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new UserError(`unexpected argument "${arg}"
${USAGE}`);
    let value = m[2];
    if (value === void 0) {
      const next = rest[i + 1];
      if (next === void 0 || next.startsWith("--")) value = "true";
      else value = rest[++i];
    }
    const fileFlag = /^(key|known-hosts|proxy-key|age-identity)-file$/.exec(m[1]);
    if (fileFlag) values.set(fileFlag[1], readFileSync(value, "utf8"));
    else values.set(m[1], value);
  }
  return values;
}
var cliReporter = {
  info: (m) => console.log(m),
  warning: (m) => console.error(`warning: ${m}`),
  debug: (m) => {
    if (process.env.REMOTE_FILES_DEBUG) console.error(`debug: ${m}`);
  },
  group: async (title, body) => {
    console.log(`== ${title}`);
    return body();
  },
  setOutput: () => {
  },
  summary: async () => {
  }
};
async function main() {
  let values;
  try {
    values = parseArgs(process.argv.slice(2));
    const settings = readSettings((name) => values.get(name) ?? "", process.cwd());
    await run(settings, cliReporter);
    return 0;
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    return err instanceof UserError ? 2 : 1;
  }
}
process.exitCode = await main();
export {
  parseArgs
};
