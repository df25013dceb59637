#!/usr/bin/env node
// The same engine outside Actions: `remote-files <mode> --domain x --install-dir /srv ...`.
// Flags are named like the action's inputs; `--key-file` / `--known-hosts-file` read a file instead.
// Output is for a person: plain lines, warnings and errors on stderr, never a `::` workflow command.
import './memory.js';
import { readFileSync } from 'node:fs';
import { UserError } from './errors.js';
import { assertSupportedPlatform } from './platform.js';
import { INPUTS, MODES, readSettings } from './inputs.js';
import { nearestName } from './nearest.js';
import type { Reporter } from './report/reporter.js';
import { run } from './run.js';

/**
 * Every action input but `mode` (the first argument here), by kind (see INPUTS in inputs.ts): a `bool`
 * may be given bare (`--dry-run`), a `list` may be repeated (values joined by newlines, as the action
 * takes them).
 */
const FLAGS: Record<string, 'value' | 'bool' | 'list'> = Object.fromEntries(
  Object.entries(INPUTS).filter(([name]) => name !== 'mode'),
);

/** `--<input>-file PATH` reads these inputs from a file: keys and secrets stay out of `ps` and shell history. */
const FILE_FLAGS = ['key', 'known-hosts', 'proxy-key', 'age-identity', 'password', 'passphrase', 'proxy-password'];

const USAGE = `usage: remote-files plan|backup|restore|verify [--flag value ...]
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
Server:       --host --port --username --key --passphrase --password --timeout --retries
Host keys:    --known-hosts --host-fingerprint --insecure-ignore-host-key
Jump host:    --proxy-host --proxy-port --proxy-username --proxy-key --proxy-password
              --proxy-fingerprint (pins the jump host; --host-fingerprint pins the server only)
Transfer:     --transport --compression --sudo --concurrency --prepare --checksum --delete --max-delete --if-missing
              --allow-denied --dry-run --conflict --fail-on-drift --special-bits
Store:        --store (default here none: the salvage stays in <data-dir>/<domain>; --store commit
              commits and pushes it) --commit-message --commit-user-name --commit-user-email
              --commit-branch --push --push-attempts --artifact-name --retention-days
              --artifact-run-id --artifact-branch --github-token --cache-key
Encryption:   --age-recipients --age-identity
Restore:      --before-restore --after-restore (commands run on the server around it; repeatable)

Set REMOTE_FILES_DEBUG=1 for debug lines. A transfer shows its progress on stderr: every second on a
terminal, every 10 s otherwise (REMOTE_FILES_PROGRESS_MS sets the period in milliseconds).

Exit codes: 0 success; 1 the run failed (connection, host key, a missing or denied path
that is an error, drift with --fail-on-drift); 2 bad usage or input.`;

/** Bad command line or input: exit 2, with the usage (or, for a near miss, a pointer to it). */
class UsageError extends Error {
  constructor(
    message: string,
    readonly showUsage = true,
  ) {
    super(message);
  }
}

const HELP = Symbol('help');

/** Parses argv (after the node and script names) into input values, as the action's `getInput` would return them. */
function parseArgs(argv: string[]): Map<string, string> | typeof HELP {
  if (argv.includes('--help') || argv.includes('-h')) return HELP;
  let [mode, ...rest] = argv;
  if (mode?.startsWith('--')) {
    // `--mode backup` anywhere, instead of the mode as the first argument.
    rest = [...argv];
    const i = rest.findIndex((a) => a === '--mode' || a.startsWith('--mode='));
    const inline = i >= 0 && rest[i]!.startsWith('--mode=');
    mode = i < 0 ? undefined : inline ? rest[i]!.slice('--mode='.length) : rest[i + 1];
    if (i >= 0) rest.splice(i, inline ? 1 : 2);
  }
  if (!mode || mode.startsWith('--'))
    throw new UsageError('no mode given: the first argument (or --mode) is plan, backup, restore or verify');
  if (!(MODES as readonly string[]).includes(mode))
    throw new UsageError(`unknown mode "${mode}" (plan, backup, restore or verify)`);
  // From a person's shell, nothing is committed or pushed unless asked: --store commit.
  const values = new Map<string, string>([
    ['mode', mode],
    ['store', 'none'],
  ]);
  const given = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    // `_` and capitals are let through to be named with the nearest real flag (`--proxy_host`).
    const m = /^--([A-Za-z][A-Za-z0-9_-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new UsageError(`unexpected argument "${arg}"`);
    const flag = m[1]!;
    const fileOf = flag.endsWith('-file') ? flag.slice(0, -'-file'.length) : undefined;
    const name = fileOf !== undefined && FILE_FLAGS.includes(fileOf) ? fileOf : flag;
    const kind = FLAGS[name];
    if (flag === 'mode') throw new UsageError('the mode is the first argument, not a flag');
    if (!kind) {
      const near = nearestName(flag, [...Object.keys(FLAGS), ...FILE_FLAGS.map((f) => `${f}-file`)]);
      // A near miss needs its fix, not the whole usage.
      if (near) throw new UsageError(`unknown flag --${flag} (did you mean --${near}?)`, false);
      throw new UsageError(`unknown flag --${flag}`);
    }
    let value = m[2];
    if (value === undefined) {
      const next = rest[i + 1];
      // A bare true/false flag is "true"; every other flag takes the next argument, whatever it looks like.
      if (kind === 'bool' && name === flag && (next === undefined || next.startsWith('--'))) value = 'true';
      else if (next === undefined) throw new UsageError(`--${flag} needs a value`);
      else value = rest[++i]!;
    }
    if (name !== flag) value = readInputFile(flag, value);
    if (given.has(name) && kind !== 'list') throw new UsageError(`--${name} given twice`);
    values.set(name, given.has(name) ? `${values.get(name)}\n${value}` : value);
    given.add(name);
  }
  return values;
}

function readInputFile(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(
      `--${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

/** Progress lines (report/progress.ts) on stderr: rewritten in place on a terminal, one per line in a log. */
const tty = process.stderr.isTTY === true;
let progressShown = false;

/** Outputs worth showing a person at the end; the plan and the path lists are in the log already. */
const outputs = new Map<string, string>();
const QUIET_OUTPUTS = new Set(['plan', 'added', 'removed', 'changed-files']);

const cliReporter: Reporter = {
  info: (m) => console.log(m),
  warning: (m) => console.error(`warning: ${m}`),
  debug: (m) => {
    if (process.env.REMOTE_FILES_DEBUG) console.error(`debug: ${m}`);
  },
  group: async (title, body) => {
    console.log(`== ${title}`);
    return body();
  },
  progress: (line) => {
    process.stderr.write(tty ? `\r  ${line}\x1b[K` : `  ${line}\n`);
    progressShown = true;
  },
  progressDone: () => {
    if (tty && progressShown) process.stderr.write('\r\x1b[K');
    progressShown = false;
  },
  progressPeriodMs: tty ? 1000 : 10_000,
  setOutput: (name, value) => {
    if (!QUIET_OUTPUTS.has(name)) outputs.set(name, String(value));
  },
  // The summary is Markdown for the Actions page; here the log lines already said the same.
  summary: async () => {},
};

async function main(): Promise<number> {
  let settings: ReturnType<typeof readSettings>;
  try {
    const values = parseArgs(process.argv.slice(2));
    if (values === HELP) {
      console.log(USAGE);
      return 0;
    }
    settings = readSettings((name) => values.get(name) ?? '', process.cwd());
  } catch (err) {
    if (err instanceof UsageError)
      console.error(
        `error: ${err.message}\n${err.showUsage ? `\n${USAGE}` : '(remote-files --help prints the usage)'}`,
      );
    else console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
  try {
    assertSupportedPlatform();
    await run(settings, cliReporter);
    printOutputs(settings.mode);
    return 0;
  } catch (err) {
    // A failed run may still have set outputs (the report's path, what drifted): show them before the error.
    printOutputs(settings.mode);
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    if (!(err instanceof UserError) && err instanceof Error && process.env.REMOTE_FILES_DEBUG) console.error(err.stack);
    return 1;
  }
}

function printOutputs(mode: string): void {
  if (mode === 'plan' || outputs.size === 0) return;
  console.log(['== Outputs', ...[...outputs].map(([k, v]) => `${k}: ${v}`)].join('\n'));
}

process.exitCode = await main();
