#!/usr/bin/env node
// The same engine outside Actions: `remote-files <mode> --domain x --install-dir /srv ...`.
// Flags are named like the action's inputs; `--key-file` / `--known-hosts-file` read a file instead.
import { readFileSync } from 'node:fs';
import { UserError } from './errors.js';
import { readSettings } from './inputs.js';
import type { Reporter } from './report/reporter.js';
import { run } from './run.js';

const USAGE = `usage: remote-files plan|backup|restore|verify [--input-name value ...]
  Flags are the action's inputs (see README), e.g. --domain example.com --install-dir /srv --recipes lib/Provisioner/Recipe
  --key-file PATH, --known-hosts-file PATH read those inputs from files.
exit codes: 0 success, 1 the run failed, 2 bad usage or input`;

/** Parses argv into input values. Exported for tests. */
export function parseArgs(argv: string[]): Map<string, string> {
  const values = new Map<string, string>();
  const [mode, ...rest] = argv;
  if (!mode || mode.startsWith('-')) throw new UserError(USAGE);
  values.set('mode', mode);
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    const m = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new UserError(`unexpected argument "${arg}"\n${USAGE}`);
    let value = m[2];
    if (value === undefined) {
      const next = rest[i + 1];
      if (next === undefined || next.startsWith('--')) value = 'true';
      else value = rest[++i]!;
    }
    const fileFlag = /^(key|known-hosts|proxy-key|age-identity)-file$/.exec(m[1]!);
    if (fileFlag) values.set(fileFlag[1]!, readFileSync(value, 'utf8'));
    else values.set(m[1]!, value);
  }
  return values;
}

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
  setOutput: () => {},
  summary: async () => {},
};

async function main(): Promise<number> {
  let values: Map<string, string>;
  try {
    values = parseArgs(process.argv.slice(2));
    const settings = readSettings((name) => values.get(name) ?? '', process.cwd());
    await run(settings, cliReporter);
    return 0;
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    return err instanceof UserError ? 2 : 1;
  }
}

process.exitCode = await main();
