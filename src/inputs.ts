import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { posix } from 'node:path';
import { UserError } from './errors.js';
import { nearestName } from './nearest.js';
import { DEFAULT_RECIPE_SOURCES } from './recipes/discover.js';
import type { CommitOptions } from './store/commit.js';
import { COMPRESSIONS, type CompressionSetting } from './transfer/compression.js';
import { parseVars } from './recipes/template.js';
import { parseMaxDelete, type MaxDelete } from './transfer/shrink-guard.js';

/**
 * Turns the raw inputs (action `INPUT_*` or CLI flags, both through `get`) into validated settings.
 * Pure apart from `get`; every bad value fails with one message naming the input.
 */
export type InputGetter = (name: string) => string;

export const MODES = ['backup', 'restore', 'verify', 'plan'] as const;

/**
 * Every input of action.yml, by kind (a unit test keeps the two in step): the CLI's flags (a `bool`
 * may be given bare, a `list` repeated) and the names an unknown `INPUT_*` is compared with.
 */
export const INPUTS: Readonly<Record<string, 'value' | 'bool' | 'list'>> = {
  mode: 'value',
  recipes: 'list',
  only: 'list',
  distro: 'value',
  domain: 'value',
  'install-dir': 'value',
  'data-dir': 'value',
  vars: 'list',
  host: 'value',
  port: 'value',
  username: 'value',
  key: 'value',
  passphrase: 'value',
  password: 'value',
  timeout: 'value',
  'command-timeout': 'value',
  retries: 'value',
  'known-hosts': 'list',
  'host-fingerprint': 'list',
  'proxy-fingerprint': 'list',
  'insecure-ignore-host-key': 'bool',
  'proxy-host': 'value',
  'proxy-port': 'value',
  'proxy-username': 'value',
  'proxy-key': 'value',
  'proxy-password': 'value',
  exclude: 'list',
  prepare: 'bool',
  checksum: 'bool',
  delete: 'bool',
  'max-delete': 'value',
  'new-server': 'value',
  'salvage-ref': 'value',
  'if-missing': 'value',
  'allow-denied': 'bool',
  transport: 'value',
  compression: 'value',
  sudo: 'bool',
  concurrency: 'value',
  conflict: 'value',
  'dry-run': 'bool',
  'special-bits': 'bool',
  'before-restore': 'list',
  'after-restore': 'list',
  store: 'list',
  'commit-message': 'value',
  'commit-user-name': 'value',
  'commit-user-email': 'value',
  'commit-branch': 'value',
  push: 'bool',
  'push-attempts': 'value',
  'artifact-name': 'value',
  'retention-days': 'value',
  'artifact-run-id': 'value',
  'artifact-branch': 'value',
  'github-token': 'value',
  'cache-key': 'value',
  'age-recipients': 'list',
  'age-identity': 'list',
  'fail-on-drift': 'bool',
};

/**
 * Inputs the step was given (`INPUT_*` variables, as the runner names them) that the action does not
 * have, each with the nearest real input: `proxy_host` and `timeout_ms` come from other actions' docs.
 */
export function unknownInputs(env: NodeJS.ProcessEnv): Array<{ name: string; nearest: string | undefined }> {
  const known = Object.keys(INPUTS);
  const runnerName = (n: string) => n.replace(/ /g, '_').toUpperCase();
  const names = new Set(known.map(runnerName));
  return Object.keys(env)
    .filter((k) => k.startsWith('INPUT_') && !names.has(k.slice('INPUT_'.length)))
    .sort()
    .map((k) => {
      const name = k.slice('INPUT_'.length).toLowerCase();
      return { name, nearest: nearestName(name, known) };
    });
}
/**
 * The failures an ignored near-miss input could explain, by the real input it was likely meant as: a
 * host key refused when `known_hosts` was ignored, a connection or login failing when `proxy_host` or
 * `ssh_key` was. Any failure that names the real input counts too.
 */
const EXPLAINED_BY: Array<{ inputs: RegExp; failure: RegExp }> = [
  {
    inputs: /^(known-hosts|host-fingerprint|proxy-fingerprint|insecure-ignore-host-key)$/,
    failure: /Host key of/,
  },
  {
    inputs: /^(host|port|proxy-host|proxy-port|proxy-username|proxy-key|proxy-password|timeout|retries)$/,
    failure: /Host key of|Cannot connect|connection to .* lost|Authentication|handshake|timed out|no progress/i,
  },
  {
    inputs: /^(username|key|passphrase|password)$/,
    failure: /Authentication|No credentials|private key|passphrase/i,
  },
  { inputs: /^(sudo|allow-denied)$/, failure: /not readable|not writable|sudo/ },
];

/**
 * Said again at the end of an error the ignored inputs could explain (the warning about them may be far
 * up the log): empty when none could.
 */
export function nearMissNote(message: string, ignored: Array<{ name: string; nearest: string | undefined }>): string {
  const relevant = ignored.filter(
    ({ nearest }) =>
      nearest !== undefined &&
      (message.includes(`\`${nearest}\``) ||
        EXPLAINED_BY.some((e) => e.inputs.test(nearest) && e.failure.test(message))),
  );
  if (relevant.length === 0) return '';
  const list = relevant.map((u) => `\`${u.name}\` (did you mean \`${u.nearest}\`?)`).join(', ');
  return `. Note: ${relevant.length === 1 ? 'input' : 'inputs'} ${list} ${relevant.length === 1 ? 'was' : 'were'} ignored: not ${relevant.length === 1 ? 'an input' : 'inputs'} of remote-files`;
}

export const TRANSPORTS = ['auto', 'tar', 'sftp'] as const;
export const IF_MISSING = ['warn', 'error', 'ignore'] as const;
export const CONFLICTS = ['overwrite', 'keep', 'fail'] as const;
export const STORES = ['commit', 'artifact', 'cache', 'none'] as const;
export const NEW_SERVER = ['fail', 'skip', 'allow'] as const;
export type StoreName = Exclude<(typeof STORES)[number], 'none'>;

export interface SshSettings {
  host: string;
  port: number;
  username: string;
  key: string;
  passphrase: string;
  password: string;
  timeoutMs: number;
  retries: number;
  knownHosts: string;
  fingerprints: string;
  insecure: boolean;
  /** The jump host; `fingerprints` pins its key (`proxy-fingerprint`), never the target's. */
  proxy: { host: string; port: number; username: string; key: string; password: string; fingerprints: string } | null;
}

export interface Settings {
  mode: (typeof MODES)[number];
  workspace: string;
  recipes: string[];
  recipesAreDefault: boolean;
  only: string[];
  distro: string;
  domain: string;
  installDir: string;
  dataDir: string;
  vars: Map<string, string>;
  ssh: SshSettings;
  exclude: string[];
  prepare: boolean;
  checksum: boolean;
  delete: boolean;
  ifMissing: (typeof IF_MISSING)[number];
  allowDenied: boolean;
  transport: (typeof TRANSPORTS)[number];
  /** Compression on the wire (src/transfer/compression.ts). */
  compression: CompressionSetting;
  sudo: boolean;
  concurrency: number;
  conflict: (typeof CONFLICTS)[number];
  dryRun: boolean;
  /** Restore setuid, setgid and sticky bits as the manifest records them. */
  specialBits: boolean;
  /** The shrink guard: how many of an entry's stored files a backup may delete or empty. */
  maxDelete: MaxDelete;
  /**
   * Backup: what to do when the server is not the one the stored salvage came from (rebuilt, or restored
   * from another salvage): fail before writing anything, skip the backup (exit 0), or back it up anyway.
   */
  newServer: (typeof NEW_SERVER)[number];
  /** Where the salvage is persisted (backup) and loaded from (restore, verify); empty = `none`. */
  store: StoreName[];
  /** Restore and verify read `salvageRef`: the commit whose salvage to use on purpose ('' = the newest). */
  commit: Omit<CommitOptions, 'env'> & { salvageRef: string };
  artifact: {
    name: string;
    retentionDays: number | undefined;
    githubToken: string;
    runId: number | undefined;
    branch: string;
  };
  cache: { key: string };
  /** age encryption at rest: recipients (public keys) encrypt, identities (secret) decrypt. Raw text. */
  age: { recipients: string; identity: string };
  failOnDrift: boolean;
  /** Restore: shell commands run on the server before anything is written, and after; one per line. */
  beforeRestore: string[];
  afterRestore: string[];
  /** How long one command on the server may run (remote_prepare, before/after-restore), seconds. */
  commandTimeoutSecs: number;
}

/** Inputs whose values are secrets: masked (line by line) before anything else runs. */
export const SECRET_INPUTS = [
  'key',
  'passphrase',
  'password',
  'proxy-key',
  'proxy-password',
  'age-identity',
  'github-token',
];

export function readSettings(get: InputGetter, workspace: string): Settings {
  const mode = modeInput(get);
  const recipesRaw = list(get('recipes'));
  const needsServer = mode !== 'plan';
  const settings: Settings = {
    mode,
    workspace,
    recipes: recipesRaw.length > 0 ? recipesRaw : DEFAULT_RECIPE_SOURCES,
    recipesAreDefault: recipesRaw.length === 0,
    only: list(get('only')),
    distro: get('distro').trim(),
    domain: domainInput(get),
    installDir: installDirInput(get),
    dataDir: dataDirInput(get),
    vars: parseVars(get('vars')),
    ssh: sshInputs(get, needsServer),
    exclude: list(get('exclude'), /\r?\n/),
    prepare: bool(get, 'prepare', true),
    checksum: bool(get, 'checksum', false),
    delete: bool(get, 'delete', true),
    maxDelete: parseMaxDelete(get('max-delete')),
    newServer: oneOf(get, 'new-server', NEW_SERVER, 'fail'),
    ifMissing: oneOf(get, 'if-missing', IF_MISSING, 'warn'),
    allowDenied: bool(get, 'allow-denied', false),
    transport: oneOf(get, 'transport', TRANSPORTS, 'auto'),
    compression: oneOf(get, 'compression', COMPRESSIONS, 'auto'),
    sudo: bool(get, 'sudo', false),
    concurrency: int(get, 'concurrency', 32, 1, 64),
    conflict: oneOf(get, 'conflict', CONFLICTS, 'overwrite'),
    dryRun: bool(get, 'dry-run', false),
    specialBits: bool(get, 'special-bits', false),
    store: storeInput(get),
    commit: {
      message: get('commit-message').trim(),
      userName: get('commit-user-name').trim(),
      userEmail: get('commit-user-email').trim(),
      branch: get('commit-branch').trim(),
      push: bool(get, 'push', true),
      pushAttempts: int(get, 'push-attempts', 5, 1, 50),
      salvageRef: salvageRefInput(get),
    },
    artifact: {
      name: artifactNameInput(get),
      retentionDays: get('retention-days').trim() === '' ? undefined : int(get, 'retention-days', 0, 1, 90),
      githubToken: get('github-token').trim(),
      runId:
        get('artifact-run-id').trim() === '' ? undefined : int(get, 'artifact-run-id', 0, 1, Number.MAX_SAFE_INTEGER),
      branch: get('artifact-branch').trim(),
    },
    cache: { key: get('cache-key').trim() },
    age: { recipients: get('age-recipients'), identity: get('age-identity') },
    failOnDrift: bool(get, 'fail-on-drift', false),
    beforeRestore: list(get('before-restore'), /\r?\n/),
    afterRestore: list(get('after-restore'), /\r?\n/),
    commandTimeoutSecs: durationInput(get, 'command-timeout', 3600, 1, 6 * 3600),
  };
  if (settings.sudo && settings.transport === 'sftp') {
    throw new UserError(
      'input `sudo`: true needs a shell on the server, but `transport` is sftp (SFTP cannot run commands as root); use transport: tar or auto',
    );
  }
  return settings;
}

/**
 * A commit id, branch or tag. It reaches git as an argument (`git fetch origin <ref>`): a value that
 * begins with `-` would be read as an option (`--upload-pack=…` runs a command), so only a name's
 * characters are taken.
 */
function salvageRefInput(get: InputGetter): string {
  const v = get('salvage-ref').trim();
  if (v !== '' && !/^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/.test(v))
    throw new UserError(
      `input \`salvage-ref\`: "${v.slice(0, 80)}" is not a commit id, branch or tag (letters, digits and . _ / -, not starting with - or .)`,
    );
  return v;
}

/**
 * No default: a step copied from a backup and left without `mode` after the deploy would otherwise
 * back up the rebuilt server over the good copy.
 */
function modeInput(get: InputGetter): (typeof MODES)[number] {
  if (get('mode').trim() === '')
    throw new UserError(
      `input \`mode\` is required: ${MODES.join(', ')} (backup before the rebuild, restore after it; plan connects to nothing)`,
    );
  return oneOf(get, 'mode', MODES, 'backup');
}

/**
 * Seconds: a plain number, or a duration as other actions take them (`30s`, `5m`, `1h`, `1m30s`).
 * Undefined when it is neither. Pure.
 */
export function parseDuration(raw: string): number | undefined {
  const v = raw.trim().toLowerCase();
  if (/^\d+$/.test(v)) return Number(v);
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(v);
  if (!m || v === '') return undefined;
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

function durationInput(get: InputGetter, name: string, fallback: number, min: number, max: number): number {
  const raw = get(name).trim();
  if (raw === '') return fallback;
  const secs = parseDuration(raw);
  if (secs === undefined || secs < min || secs > max) {
    throw new UserError(
      `input \`${name}\`: "${raw}" is not a duration from ${min} to ${max} seconds (seconds, or with a unit: 30s, 5m, 1h)`,
    );
  }
  return secs;
}

/**
 * A private key given as a file path (`~/.ssh/id_ed25519`, as on a laptop) is read when the file
 * exists; otherwise the message says the input looks like a path, not a key.
 */
export function keyInput(name: string, value: string): string {
  const v = value.trim();
  notAPublicKey(name, v);
  if (v === '' || v.includes('\n') || v.includes('PRIVATE KEY') || !/^(?:~\/|\/|\.\.?\/)/.test(v)) return value;
  const path = v.startsWith('~/') ? posix.join(homedir(), v.slice(2)) : v;
  if (existsSync(path)) {
    try {
      const text = readFileSync(path, 'utf8');
      notAPublicKey(name, text.trim(), path);
      return text;
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(
        `input \`${name}\` looks like a file path, and ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
  }
  throw new UserError(
    `input \`${name}\` looks like a file path ("${v}"), not a private key, and there is no such file on the runner: give the key itself (e.g. \`${name}: \${{ secrets.SSH_KEY }}\`)`,
  );
}

/**
 * A public key where the private one goes (the `.pub` file, or a line of authorized_keys): ssh2 would
 * say only that it cannot parse a private key.
 */
function notAPublicKey(name: string, text: string, path?: string): void {
  const m =
    /^(?:\S+\s+)?(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp\d+|sk-\S+@openssh\.com)\s+AAAA[A-Za-z0-9+/]/.exec(text);
  const pem = /^-----BEGIN (?:SSH2 |RSA )?PUBLIC KEY-----/.test(text);
  if (!m && !pem) return;
  const what = m ? `a public key (${m[1]} AAAA…)` : 'a public key (-----BEGIN PUBLIC KEY-----)';
  throw new UserError(
    `input \`${name}\`${path ? ` (read from ${path})` : ''} holds ${what}, not a private key: give the private key, the file without .pub (it starts with -----BEGIN OPENSSH PRIVATE KEY-----), e.g. from a secret (\`${name}: \${{ secrets.SSH_KEY }}\`); the public key belongs in the server's ~/.ssh/authorized_keys`,
  );
}

/** `commit` by default; `none` alone turns persisting off; several stores may be combined. */
function storeInput(get: InputGetter): StoreName[] {
  const names = list(get('store') || 'commit').map((s) => checkEnum('store', s, STORES));
  if (names.includes('none')) {
    if (names.length > 1) throw new UserError('input `store`: `none` cannot be combined with other stores');
    return [];
  }
  return [...new Set(names)] as StoreName[];
}

function artifactNameInput(get: InputGetter): string {
  const name = get('artifact-name').trim();
  if (/[":<>|*?\\/\r\n]/.test(name)) {
    throw new UserError(
      `input \`artifact-name\`: "${name}" holds a character artifact names cannot have (" : < > | * ? \\ / or a line break)`,
    );
  }
  return name;
}

/** Comma- or newline-separated list, blanks dropped. */
export function list(text: string, separator: RegExp = /[\r\n,]+/): string[] {
  return text
    .split(separator)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function checkEnum<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  const v = value.trim().toLowerCase();
  if (!(allowed as readonly string[]).includes(v)) {
    throw new UserError(`input \`${name}\`: "${value}" is not one of ${allowed.join(', ')}`);
  }
  return v as T;
}

function oneOf<T extends string>(get: InputGetter, name: string, allowed: readonly T[], fallback: T): T {
  const raw = get(name).trim();
  return raw === '' ? fallback : checkEnum(name, raw, allowed);
}

// The YAML 1.2 core schema booleans, as the Actions toolkit accepts them; anything else is a typo.
function bool(get: InputGetter, name: string, fallback: boolean): boolean {
  const raw = get(name).trim();
  if (raw === '') return fallback;
  if (['true', 'True', 'TRUE'].includes(raw)) return true;
  if (['false', 'False', 'FALSE'].includes(raw)) return false;
  throw new UserError(`input \`${name}\`: "${raw}" is not a boolean (use true or false)`);
}

function int(get: InputGetter, name: string, fallback: number, min: number, max: number): number {
  const raw = get(name).trim();
  if (raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new UserError(`input \`${name}\`: "${raw}" is not a whole number from ${min} to ${max}`);
  }
  return Number(raw);
}

/**
 * `domain` names a folder under data-dir and is the recipes' `$domain`, which Perl recipes interpolate
 * into `remote_prepare` commands as code: so it must be a plain DNS name. Labels of letters, digits,
 * hyphens (not first or last) and underscores (DNS allows them, some internal names use them, and
 * the shell gives them no meaning), 1–63 characters, separated by dots, 253 at most. No wildcard `*.`,
 * no trailing dot.
 */
export function checkDomain(domain: string): string | undefined {
  if (domain.length > 253) return `is ${domain.length} characters long; a domain name has 253 at most`;
  if (domain.startsWith('*.')) return 'is a wildcard; give the one domain this run salvages (e.g. shop.example.com)';
  if (domain.endsWith('.')) return 'ends with a dot; drop the trailing dot';
  const bad = unsafeChars(domain, /[A-Za-z0-9._-]/);
  if (bad) return `holds ${bad}: only letters, digits, "-", "_" and "." are allowed`;
  for (const label of domain.split('.')) {
    if (label === '') return 'has an empty label (two dots in a row, or a leading dot)';
    if (label.length > 63)
      return `has a label of ${label.length} characters ("${label.slice(0, 20)}…"); a label has 63 at most`;
    if (label.startsWith('-') || label.endsWith('-')) return `has a label that starts or ends with "-" ("${label}")`;
  }
  return undefined;
}

/**
 * `install-dir` is the recipes' `$install_dir`, interpolated into `remote_prepare` commands as code:
 * an absolute path of characters the shell gives no meaning (letters, digits and . _ / + @ : -),
 * without "..".
 */
export function checkInstallDir(dir: string): string | undefined {
  if (!dir.startsWith('/')) return 'must be an absolute server path (starting with /)';
  const bad = unsafeChars(dir, /[A-Za-z0-9._/+@:-]/);
  if (bad)
    return `holds ${bad}: only letters, digits and . _ / + @ : - are allowed (it is put into the recipes' shell commands as it is)`;
  if (dir.split('/').includes('..')) return 'must be an absolute server path without ".."';
  return undefined;
}

/** The distinct characters of `text` outside `allowed`, shown readably ("; " and a space), or undefined. */
function unsafeChars(text: string, allowed: RegExp): string | undefined {
  const bad = [...new Set([...text].filter((c) => !allowed.test(c)))];
  if (bad.length === 0) return undefined;
  const show = (c: string) =>
    c === ' '
      ? 'a space'
      : c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f
        ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`
        : `"${c}"`;
  return bad.slice(0, 8).map(show).join(', ') + (bad.length > 8 ? ', …' : '');
}

function domainInput(get: InputGetter): string {
  const domain = get('domain').trim();
  if (domain === '')
    throw new UserError('input `domain` is required: the fully qualified domain whose data this run moves');
  const why = checkDomain(domain);
  if (why)
    throw new UserError(
      `input \`domain\`: ${JSON.stringify(domain)} is not a domain name: it ${why}. Give the site's DNS name, e.g. shop.example.com`,
    );
  return domain;
}

function installDirInput(get: InputGetter): string {
  const dir = get('install-dir').trim();
  if (dir === '')
    throw new UserError(
      "input `install-dir` is required: the folder on the server where the domain is installed (the recipes' $install_dir)",
    );
  const why = checkInstallDir(dir);
  if (why)
    throw new UserError(
      `input \`install-dir\`: ${JSON.stringify(dir)} ${why}. Give the server folder where the domain is installed, e.g. /srv (a folder with other characters: point a symlink at it)`,
    );
  return dir.length > 1 ? dir.replace(/\/+$/, '') : dir;
}

function dataDirInput(get: InputGetter): string {
  const raw = get('data-dir').trim() || 'data';
  const norm = posix.normalize(raw.replace(/\\/g, '/')).replace(/\/+$/, '');
  if (norm.startsWith('/') || norm === '..' || norm.startsWith('../') || norm === '.' || norm === '') {
    throw new UserError(`input \`data-dir\`: "${raw}" must be a folder inside the workspace (relative, without "..")`);
  }
  return norm;
}

function sshInputs(get: InputGetter, required: boolean): SshSettings {
  const host = get('host').trim();
  if (required && host === '') throw new UserError('input `host` is required for backup, restore and verify');
  const username = get('username').trim();
  if (required && username === '') throw new UserError('input `username` is required for backup, restore and verify');
  const proxyHost = get('proxy-host').trim();
  if (proxyHost === '' && get('proxy-fingerprint').trim() !== '') {
    throw new UserError(
      "input `proxy-fingerprint` pins the jump host's key, but `proxy-host` is not set; pin the server itself with `host-fingerprint`",
    );
  }
  const key = keyInput('key', get('key'));
  const password = get('password');
  if (required && key.trim() === '' && password === '') {
    throw new UserError('input `key` or `password` is required to log in to the server');
  }
  return {
    host,
    port: int(get, 'port', 22, 1, 65535),
    username,
    key,
    passphrase: get('passphrase'),
    password,
    timeoutMs: durationInput(get, 'timeout', 30, 1, 3600) * 1000,
    retries: int(get, 'retries', 3, 0, 20),
    knownHosts: get('known-hosts'),
    fingerprints: get('host-fingerprint'),
    insecure: bool(get, 'insecure-ignore-host-key', false),
    proxy:
      proxyHost === ''
        ? null
        : {
            host: proxyHost,
            port: int(get, 'proxy-port', 22, 1, 65535),
            username: get('proxy-username').trim() || username,
            key: keyInput('proxy-key', get('proxy-key')) || key,
            password: get('proxy-password'),
            fingerprints: get('proxy-fingerprint'),
          },
  };
}
