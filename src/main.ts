// The action's body: run() reads the inputs from INPUT_* variables, does the work and reports. Importing
// this module does nothing; src/index.ts (bundled as dist/index.js) calls run(), and so does
// @github/local-action (`npx local-action run . src/main.ts .env`), with its stand-ins for the toolkit.
import * as core from '@actions/core';
import { UserError } from './errors.js';
import { nearMissNote, readSettings, SECRET_INPUTS, unknownInputs } from './inputs.js';
import { assertSupportedPlatform } from './platform.js';
import type { Reporter } from './report/reporter.js';
import { run as runAction } from './run.js';

/** Masks every secret input, line by line: the runner masks a value as one string, so a multi-line key would leak by lines. */
export function maskSecrets(get: (name: string) => string): void {
  for (const name of SECRET_INPUTS) {
    const value = get(name);
    if (!value) continue;
    core.setSecret(value);
    for (const line of value.split(/\r?\n/)) if (line.trim().length >= 4) core.setSecret(line.trim());
  }
}

const actionReporter: Reporter = {
  info: (m) => core.info(m),
  warning: (m) => core.warning(m),
  debug: (m) => core.debug(m),
  group: (title, body) => core.group(title, body),
  setOutput: (name, value) => core.setOutput(name, value),
  summary: async (markdown) => {
    if (!process.env.GITHUB_STEP_SUMMARY) return;
    await core.summary.addRaw(markdown, true).write();
  },
};

/** Runs the action once. Never throws: a failure is reported with core.setFailed (exit code 1). */
export async function run(): Promise<void> {
  const get = (name: string) => core.getInput(name);
  // An input from another action's docs (`proxy_host:`, `known_hosts:`) would be ignored without a word:
  // warned about now, and named again in an error it could explain.
  const ignored = unknownInputs(process.env);
  try {
    maskSecrets(get);
    assertSupportedPlatform();
    for (const u of ignored) core.warning(ignoredWarning(u, get));
    const settings = readSettings(get, process.env.GITHUB_WORKSPACE || process.cwd());
    // A key given as a path was read from its file (inputs.ts): its content is a secret too.
    maskSecrets((name) =>
      name === 'key' ? settings.ssh.key : name === 'proxy-key' ? (settings.ssh.proxy?.key ?? '') : '',
    );
    // Read once: from here on no child process (tar and zstd for the cache store, git, perl) inherits
    // the inputs, the private key and passwords among them.
    for (const name of Object.keys(process.env)) if (name.startsWith('INPUT_')) delete process.env[name];
    await runAction(settings, actionReporter);
  } catch (err) {
    if (!(err instanceof UserError) && err instanceof Error && err.stack) core.debug(err.stack);
    const message = err instanceof Error ? err.message : String(err);
    const note = nearMissNote(message, ignored);
    core.setFailed(note ? message.replace(/\.\s*$/, '') + note : message);
  }
}

function ignoredWarning(u: { name: string; nearest: string | undefined }, get: (name: string) => string): string {
  const warning = `input \`${u.name}\` is not an input of remote-files and is ignored${u.nearest ? `: did you mean \`${u.nearest}\`?` : ''}`;
  // No jump host means a direct connection: say so before it is made, not after it fails.
  const direct =
    u.nearest?.startsWith('proxy-') && get('proxy-host').trim() === '' && !['', 'plan'].includes(get('mode').trim());
  return direct
    ? `${warning} Without \`proxy-host\`, this run connects to ${get('host').trim() || 'the server'} directly, not through a jump host`
    : warning;
}
