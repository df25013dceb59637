#!/usr/bin/env node
import { createRequire as __rfCreateRequire } from 'node:module';
import { fileURLToPath as __rfFileURLToPath } from 'node:url';
import { dirname as __rfDirname } from 'node:path';
var require = __rfCreateRequire(import.meta.url);
var __filename = __rfFileURLToPath(import.meta.url);
var __dirname = __rfDirname(__filename);
import {
  INPUTS,
  MODES,
  assertSupportedPlatform,
  nearestName,
  readSettings,
  run
} from "./chunks/chunk-6GVPVX6C.js";
import "./chunks/chunk-EUL36KN4.js";
import {
  logSafe
} from "./chunks/chunk-ILZLWGQY.js";
import "./chunks/chunk-I64HRVNT.js";
import {
  UserError,
  __toESM,
  require_fs
} from "./chunks/chunk-BNJA3E5O.js";

// src/cli.ts
var import_node_fs = __toESM(require_fs(), 1);
var FLAGS = Object.fromEntries(
  Object.entries(INPUTS).filter(([name]) => name !== "mode")
);
var FILE_FLAGS = ["key", "known-hosts", "proxy-key", "age-identity", "password", "passphrase", "proxy-password"];
var USAGE = `usage: remote-files plan|backup|restore|verify [--flag value ...]
       remote-files --mode plan|backup|restore|verify [--flag value ...]

Runs the remote-files action's engine from a shell. The current folder is the workspace (recipes are
found and data-dir is written there). Each flag is the action input of the same name (see action.yml);
--flag=value also works, true/false flags may be given bare (--dry-run), list flags may be repeated.

  plan      read the recipes and print what would move; connects to nothing
  backup    salvage the planned files from the server into <data-dir>/<domain>/
  restore   put the stored copy back onto the server
  verify    compare the server with the stored copy; changes neither

Required: --domain NAME --install-dir /PATH; for backup, restore and verify also
  --host HOST --username USER and --key-file PATH (or --password-file PATH).

Files instead of values (keep secrets out of the process list and shell history):
  --key-file, --known-hosts-file, --proxy-key-file, --passphrase-file, --password-file,
  --proxy-password-file, --age-identity-file

Recipes:      --recipes --only --distro --vars --data-dir --exclude
Server:       --host --port --username --key --passphrase --password --timeout --command-timeout --retries
Host keys:    --known-hosts --host-fingerprint --insecure-ignore-host-key
Jump host:    --proxy-host --proxy-port --proxy-username --proxy-key --proxy-password
              --proxy-fingerprint (pins the jump host; --host-fingerprint pins the server only)
Transfer:     --transport --compression --sudo --concurrency --prepare --checksum --delete --max-delete --if-missing
              --allow-denied --dry-run --conflict --fail-on-drift --special-bits --new-server
Store:        --store (default here none: the salvage stays in <data-dir>/<domain>; --store commit
              commits and pushes it) --commit-message --commit-user-name --commit-user-email
              --commit-branch --push --push-attempts --artifact-name --retention-days
              --artifact-run-id --artifact-branch --github-token --cache-key --salvage-ref
Encryption:   --age-recipients --age-identity
Restore:      --before-restore --after-restore (commands run on the server around it; repeatable)

Set REMOTE_FILES_DEBUG=1 for debug lines. A transfer shows its progress on stderr: every second on a
terminal, every 10 s otherwise (REMOTE_FILES_PROGRESS_MS sets the period in milliseconds).

Exit codes: 0 success; 1 the run failed (connection, host key, a missing or denied path
that is an error, drift with --fail-on-drift); 2 bad usage or input.`;
var UsageError = class extends Error {
  constructor(message, showUsage = true) {
    super(message);
    this.showUsage = showUsage;
  }
  showUsage;
};
var HELP = /* @__PURE__ */ Symbol("help");
function parseArgs(argv) {
  if (argv.includes("--help") || argv.includes("-h")) return HELP;
  let [mode, ...rest] = argv;
  if (mode?.startsWith("--")) {
    rest = [...argv];
    const i = rest.findIndex((a) => a === "--mode" || a.startsWith("--mode="));
    const inline = i >= 0 && rest[i].startsWith("--mode=");
    mode = i < 0 ? void 0 : inline ? rest[i].slice("--mode=".length) : rest[i + 1];
    if (i >= 0) rest.splice(i, inline ? 1 : 2);
  }
  if (!mode || mode.startsWith("--"))
    throw new UsageError("no mode given: the first argument (or --mode) is plan, backup, restore or verify");
  if (!MODES.includes(mode))
    throw new UsageError(`unknown mode "${mode}" (plan, backup, restore or verify)`);
  const values = /* @__PURE__ */ new Map([
    ["mode", mode],
    ["store", "none"]
  ]);
  const given = /* @__PURE__ */ new Set();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const m = /^--([A-Za-z][A-Za-z0-9_-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new UsageError(`unexpected argument "${arg}"`);
    const flag = m[1];
    const fileOf = flag.endsWith("-file") ? flag.slice(0, -"-file".length) : void 0;
    const name = fileOf !== void 0 && FILE_FLAGS.includes(fileOf) ? fileOf : flag;
    const kind = FLAGS[name];
    if (flag === "mode") throw new UsageError("the mode is the first argument, not a flag");
    if (!kind) {
      const near = nearestName(flag, [...Object.keys(FLAGS), ...FILE_FLAGS.map((f) => `${f}-file`)]);
      if (near) throw new UsageError(`unknown flag --${flag} (did you mean --${near}?)`, false);
      throw new UsageError(`unknown flag --${flag}`);
    }
    let value = m[2];
    if (value === void 0) {
      const next = rest[i + 1];
      if (kind === "bool" && name === flag && (next === void 0 || next.startsWith("--"))) value = "true";
      else if (next === void 0) throw new UsageError(`--${flag} needs a value`);
      else value = rest[++i];
    }
    if (name !== flag) value = readInputFile(flag, value);
    if (given.has(name) && kind !== "list") throw new UsageError(`--${name} given twice`);
    values.set(name, given.has(name) ? `${values.get(name)}
${value}` : value);
    given.add(name);
  }
  return values;
}
function readInputFile(flag, path) {
  try {
    return (0, import_node_fs.readFileSync)(path, "utf8");
  } catch (err) {
    throw new UsageError(
      `--${flag}: cannot read ${path} (${err.code ?? err.message})`
    );
  }
}
var tty = process.stderr.isTTY === true;
var progressShown = false;
var outputs = /* @__PURE__ */ new Map();
var QUIET_OUTPUTS = /* @__PURE__ */ new Set(["plan", "added", "removed", "changed-files"]);
var cliReporter = {
  info: (m) => console.log(logSafe(m)),
  warning: (m) => console.error(`warning: ${logSafe(m)}`),
  debug: (m) => {
    if (process.env.REMOTE_FILES_DEBUG) console.error(`debug: ${logSafe(m)}`);
  },
  group: async (title, body) => {
    console.log(`== ${logSafe(title)}`);
    return body();
  },
  progress: (line) => {
    process.stderr.write(tty ? `\r  ${line}\x1B[K` : `  ${line}
`);
    progressShown = true;
  },
  progressDone: () => {
    if (tty && progressShown) process.stderr.write("\r\x1B[K");
    progressShown = false;
  },
  progressPeriodMs: tty ? 1e3 : 1e4,
  setOutput: (name, value) => {
    if (!QUIET_OUTPUTS.has(name)) outputs.set(name, String(value));
  },
  // The summary is Markdown for the Actions page; here the log lines already said the same.
  summary: async () => {
  }
};
async function main() {
  let settings;
  try {
    const values = parseArgs(process.argv.slice(2));
    if (values === HELP) {
      console.log(USAGE);
      return 0;
    }
    settings = readSettings((name) => values.get(name) ?? "", process.cwd());
  } catch (err) {
    if (err instanceof UsageError)
      console.error(
        `error: ${logSafe(err.message)}
${err.showUsage ? `
${USAGE}` : "(remote-files --help prints the usage)"}`
      );
    else console.error(`error: ${logSafe(err instanceof Error ? err.message : String(err))}`);
    return 2;
  }
  try {
    assertSupportedPlatform();
    await run(settings, cliReporter);
    printOutputs(settings.mode);
    return 0;
  } catch (err) {
    printOutputs(settings.mode);
    console.error(`error: ${logSafe(err instanceof Error ? err.message : String(err))}`);
    if (!(err instanceof UserError) && err instanceof Error && process.env.REMOTE_FILES_DEBUG) console.error(err.stack);
    return 1;
  }
}
function printOutputs(mode) {
  if (mode === "plan" || outputs.size === 0) return;
  console.log(logSafe(["== Outputs", ...[...outputs].map(([k, v]) => `${k}: ${v}`)].join("\n")));
}
process.exitCode = await main();
