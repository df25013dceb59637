// A real OpenSSH server for integration tests: one private sshd per call on 127.0.0.1, with fresh host
// keys, its own config and temp folder, and three local test accounts. Tests run as root (locally and in
// CI), which sshd, useradd and chroot need.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

export type HostKeyType = 'ed25519' | 'ecdsa' | 'rsa';
export const HOST_KEY_TYPES: readonly HostKeyType[] = ['ed25519', 'ecdsa', 'rsa'];

export const SSHD = '/usr/sbin/sshd';
/**
 * Instance folders live here, not in /tmp: sshd refuses a ChrootDirectory with any group- or
 * world-writable component on its path, and /tmp is world-writable.
 */
const BASE = '/var/lib/rf-test-sshd';
const ACCOUNTS_LOCK = '/run/lock/rf-test-accounts.lock';
export const PASSWORD = 'rf-Test-pass-1';
export const PASSPHRASE = 'rf test passphrase';

export interface KeyFiles {
  path: string;
  privateKey: string;
  publicKey: string;
}

export interface Sshd {
  host: '127.0.0.1';
  port: number;
  /** The listening sshd; each connection is served by child processes of it. */
  pid: number;
  /** The instance's temp folder (root-owned, 0755). */
  dir: string;
  /** Public key lines (`type base64`) of the host keys this instance has. */
  hostKeys: Partial<Record<HostKeyType, string>>;
  /** `[127.0.0.1]:port type base64`, as ssh-keyscan prints it. */
  knownHostsLine(type?: HostKeyType): string;
  /** `SHA256:…` as `ssh-keygen -lf` prints it. */
  fingerprint(type: HostKeyType): string;
  /** Authorized for every account. */
  key: KeyFiles;
  /** Encrypted with PASSPHRASE; authorized for every account. */
  encryptedKey: KeyFiles & { passphrase: string };
  /** rf-shell's password (password authentication is on). */
  password: string;
  users: {
    /** Bash, home folder, passwordless sudo. The home is shared by all instances: use `scratch`. */
    shell: { username: 'rf-shell'; home: string; scratch: string };
    /** Owns files rf-shell must not be able to read. */
    other: { username: 'rf-other'; home: string };
    /** internal-sftp only, chrooted to `chroot`; `data` is its writable folder, `/data` inside the chroot. */
    sftp: { username: 'rf-sftp'; chroot: string; data: string; dataInChroot: '/data' };
  };
  /** What sshd logged so far (stderr, -e), for failing tests. */
  log(): string;
  /** SIGSTOP sshd and every session process: the server goes silent without closing anything. */
  freeze(): void;
  thaw(): void;
  /** SIGKILL the session processes (not the listener): every open connection drops. */
  killSessions(): void;
  /** Kills sshd and its sessions, removes the temp folder. Safe to call twice. */
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** Host key types the server has (default: all three). */
  hostKeyTypes?: readonly HostKeyType[];
  /** sshd_config lines added before the Match block. */
  extraConfig?: string;
}

/** Runs a shell command on the "server" — this machine — as root; returns stdout, throws with stderr. */
export function rootSh(script: string, input?: string): string {
  const r = spawnSync('sh', ['-c', script], { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`rootSh failed (exit ${r.status ?? r.signal}): ${script}\n${r.stderr}`);
  return r.stdout;
}

/** Runs a shell script on the "server" as rf-shell, from /, so what it makes is that account's own; returns stdout. */
export function asShell(script: string): string {
  return rootSh(`cd / && su -s /bin/sh rf-shell -c 'sh -s'`, script);
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  ensureAccounts();
  mkdirSync(BASE, { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(BASE, 'i-'));
  try {
    // sshd reads authorized_keys as the user, so the folder must be traversable by everyone.
    chmodSync(dir, 0o755);
    return await launch(dir, opts);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** What a run is for: its domain, and the install dir on the server. */
export interface Target {
  domain: string;
  installDir: string;
}

/**
 * The inputs that point a run at `server` as rf-shell on 127.0.0.1 with the test key, the server's
 * ed25519 host key pinned by a `known-hosts` line (or by `host-fingerprint`), and `target`'s domain and
 * install dir; `extra` after them (mode, timeout, store, …), so it may change any of them.
 */
export function sshInputs(
  server: Sshd,
  target: Target & { pin?: 'known-hosts' | 'host-fingerprint' },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    host: '127.0.0.1',
    port: String(server.port),
    username: server.users.shell.username,
    key: server.key.privateKey,
    ...(target.pin === 'host-fingerprint'
      ? { 'host-fingerprint': server.fingerprint('ed25519') }
      : { 'known-hosts': server.knownHostsLine('ed25519') }),
    domain: target.domain,
    'install-dir': target.installDir,
    ...extra,
  };
}

/** The CLI's flags for the same: `target`, 127.0.0.1 and the server's port, rf-shell, and a key file. */
export function sshFlags(server: Sshd, target: Target & { keyFile: string }): string[] {
  return [
    '--domain',
    target.domain,
    '--install-dir',
    target.installDir,
    '--host',
    '127.0.0.1',
    '--port',
    String(server.port),
    '--username',
    server.users.shell.username,
    '--key-file',
    target.keyFile,
  ];
}

/** A server whose shell account runs every command through a wrapper script, and the wrapper's folder. */
export interface WrappedSshd {
  /** Its stop() also removes `work`. */
  sshd: Sshd;
  /** The wrapper's own fresh folder (root-owned, 0755): the script is `work/wrap.sh`. */
  work: string;
}

export interface WrapperOptions {
  /** The whole wrapper script; it finds its folder as `$(dirname "$0")` and the command in `$SSH_ORIGINAL_COMMAND`. */
  script: string;
  /** Writes what else the wrapper reads into `work`, after the script and before sshd starts. */
  prepare?: (work: string) => void;
  /** sshd_config lines for the shell account after its ForceCommand (e.g. `SetEnv …`). */
  matchConfig?: string[];
  /** Host key types the server has (default: ed25519 only). */
  hostKeyTypes?: readonly HostKeyType[];
}

/**
 * A server whose shell account runs every command through `opts.script` (ForceCommand), kept in `work`,
 * a fresh folder of its own beside the instances' (0755: the account runs the script from it). Stopping
 * the server removes `work` too, so a test file's after() only stops it.
 */
export async function startSshdWithWrapper(name: string, opts: WrapperOptions): Promise<WrappedSshd> {
  // startSshd() makes this folder too, but later: a run of one file alone must not depend on another's.
  mkdirSync(BASE, { recursive: true, mode: 0o755 });
  const work = mkdtempSync(join(BASE, `${name}-`));
  try {
    chmodSync(work, 0o755);
    writeFileSync(join(work, 'wrap.sh'), opts.script, { mode: 0o755 });
    opts.prepare?.(work);
    const sshd = await startSshd({
      hostKeyTypes: opts.hostKeyTypes ?? ['ed25519'],
      extraConfig: [
        'Match User rf-shell',
        `  ForceCommand ${join(work, 'wrap.sh')}`,
        ...(opts.matchConfig ?? []).map((l) => `  ${l}`),
      ].join('\n'),
    });
    const stop = sshd.stop;
    sshd.stop = async () => {
      await stop();
      rmSync(work, { recursive: true, force: true });
    };
    return { sshd, work };
  } catch (err) {
    rmSync(work, { recursive: true, force: true });
    throw err;
  }
}

/**
 * A server that stands in for a hostile one: an ed25519-only sshd whose shell account runs every command
 * through a wrapper script (see startSshdWithWrapper). The wrapper runs the lines of `first` (which may
 * answer a command themselves), then answers a listing with `work/current.list` when the test has put one
 * there, and runs any other command as sent.
 */
export function startWrappedSshd(name: string, first: string[] = []): Promise<WrappedSshd> {
  return startSshdWithWrapper(name, {
    script: [
      '#!/bin/bash',
      'here=$(dirname "$0")',
      ...first,
      // A listing made together with the probe (see chooseTransport) keeps its honest probe part.
      'if [[ "$SSH_ORIGINAL_COMMAND" == *-readable* && -f "$here/current.list" ]]; then',
      '  if [[ "$SSH_ORIGINAL_COMMAND" == *--version* ]]; then find --version | head -n 1; tar --version | head -n 1; id -u; printf "\\nremote-files listing:\\n"; fi',
      '  cat "$here/current.list"; exit 0',
      'fi',
      'exec bash -c "$SSH_ORIGINAL_COMMAND"',
      '',
    ].join('\n'),
  });
}

/** One record as LIST_SCRIPT prints it: flag, type, size, mtime, mode, uid, gid, user, group, rel, target. */
export function listingRecord(type: 'd' | 'f' | 'l', rel: string, target = ''): string {
  return (
    [
      'R',
      type,
      type === 'f' ? '4' : '0',
      '1600000000.0',
      type === 'l' ? '777' : '644',
      '1001',
      '1001',
      'rf-shell',
      'rf-shell',
      rel,
      target,
    ].join('\0') + '\0'
  );
}

async function launch(dir: string, opts: SshdOptions): Promise<Sshd> {
  const types = opts.hostKeyTypes ?? HOST_KEY_TYPES;
  const hostKeys = Object.fromEntries(types.map((t) => [t, makeKey(join(dir, `host_${t}`), t, '')])) as Partial<
    Record<HostKeyType, KeyFiles>
  >;
  const fingerprints = Object.fromEntries(types.map((t) => [t, fingerprintOfFile(`${hostKeys[t]!.path}.pub`)]));
  const key = makeKey(join(dir, 'client_ed25519'), 'ed25519', '');
  const encryptedKey = { ...makeKey(join(dir, 'client_encrypted'), 'ed25519', PASSPHRASE), passphrase: PASSPHRASE };
  const users = prepareUsers(dir, `${key.publicKey}\n${encryptedKey.publicKey}\n`);
  const config = join(dir, 'sshd_config');
  const has = (t: HostKeyType): HostKeyType => {
    if (!hostKeys[t]) throw new Error(`this sshd has no ${t} host key`);
    return t;
  };

  const { child, port, log } = await spawnListening(config, (p) => sshdConfig(dir, p, types, opts.extraConfig ?? ''));
  const pid = child.pid!;
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    pid,
    dir,
    hostKeys: Object.fromEntries(types.map((t) => [t, hostKeys[t]!.publicKey])),
    knownHostsLine: (t = 'ed25519') => `[127.0.0.1]:${port} ${hostKeys[has(t)]!.publicKey}`,
    fingerprint: (t) => fingerprints[has(t)]!,
    key,
    encryptedKey,
    password: PASSWORD,
    users,
    log,
    freeze: () => signalTree(pid, 'SIGSTOP', true),
    thaw: () => signalTree(pid, 'SIGCONT', true),
    killSessions: () => signalTree(pid, 'SIGKILL', false),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      signalTree(pid, 'SIGKILL', false);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((done) => child.once('exit', done));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function sshdConfig(dir: string, port: number, types: readonly HostKeyType[], extra: string): string {
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    ...types.map((t) => `HostKey ${join(dir, `host_${t}`)}`),
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys', '%u')}`,
    'UsePAM no',
    'StrictModes no',
    'PubkeyAuthentication yes',
    'PasswordAuthentication yes',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin no',
    'AllowTcpForwarding yes',
    'X11Forwarding no',
    // Tests open many connections and channels at once; the defaults (10 unauthenticated, 10 sessions)
    // would drop some at random.
    'MaxStartups 200',
    'MaxSessions 100',
    'MaxAuthTries 20',
    'LogLevel VERBOSE',
    'Subsystem sftp internal-sftp',
    // OpenSSH 9.8+ locks out a source address after failed logins: tests fail logins on purpose.
    ...(opensshVersion() >= 9.8 ? ['PerSourcePenalties no'] : []),
    extra,
    'Match User rf-sftp',
    `  ChrootDirectory ${join(dir, 'sftp-root')}`,
    '  ForceCommand internal-sftp -d /data',
    '  AllowTcpForwarding no',
    '',
  ].join('\n');
}

let version: number | undefined;
function opensshVersion(): number {
  if (version === undefined) {
    const r = spawnSync(SSHD, ['-V'], { encoding: 'utf8' });
    const m = /OpenSSH_(\d+)\.(\d+)/.exec(`${r.stdout}${r.stderr}`);
    version = m ? Number(m[1]) + Number(m[2]) / 10 : 0;
  }
  return version;
}

/** Picks a free port and starts sshd on it; another process may grab the port in between, so retry. */
async function spawnListening(
  config: string,
  configFor: (port: number) => string,
): Promise<{ child: ChildProcess; port: number; log: () => string }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    writeFileSync(config, configFor(port), { mode: 0o644 });
    let output = '';
    const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => {
      output = (output + d.toString('utf8')).slice(-200_000);
    });
    // 'close', not 'exit': only then has all of stderr been read (the "Address already in use" below).
    const exited = new Promise<void>((done) => child.once('close', () => done()));
    // Up once sshd itself says it listens: a connect alone could reach another process that took the
    // port between freePort() and sshd's bind (a proxy or fake server of a test file running alongside).
    const listening = `Server listening on 127.0.0.1 port ${port}.`;
    const up = await Promise.race([
      waitFor(() => output.includes(listening), 10_000)
        .then(() => waitForPort(port, 10_000))
        .then(
          () => true,
          () => false,
        ),
      exited.then(() => false),
    ]);
    if (up) return { child, port, log: () => output };
    if (attempt < 5 && /Address already in use/.test(output)) continue;
    child.kill('SIGKILL');
    throw new Error(`sshd did not start:\n${output}`);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`sshd said nothing of listening after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await canConnect(port))) {
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** ssh-keygen writes `path` and `path.pub`. RSA at 2048 bits and few KDF rounds keep tests fast. */
function makeKey(path: string, type: HostKeyType, passphrase: string): KeyFiles {
  const args = ['-q', '-t', type, '-N', passphrase, '-C', '', '-f', path];
  if (type === 'rsa') args.push('-b', '2048');
  if (passphrase) args.push('-a', '4');
  execFileSync('ssh-keygen', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  return { path, privateKey: readFileSync(path, 'utf8'), publicKey: readFileSync(`${path}.pub`, 'utf8').trim() };
}

function fingerprintOfFile(pubPath: string): string {
  const out = execFileSync('ssh-keygen', ['-lf', pubPath], { encoding: 'utf8' });
  const fp = out.split(/\s+/)[1];
  if (!fp?.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -lf output: ${out}`);
  return fp;
}

function prepareUsers(dir: string, authorized: string): Sshd['users'] {
  const keysDir = join(dir, 'authorized_keys');
  mkdirSync(keysDir, { mode: 0o755 });
  for (const user of ['rf-shell', 'rf-other', 'rf-sftp'])
    writeFileSync(join(keysDir, user), authorized, { mode: 0o644 });

  const shell = passwdEntry('rf-shell');
  const scratch = join(dir, 'scratch');
  mkdirSync(scratch, { mode: 0o755 });
  chownSync(scratch, shell.uid, shell.gid);

  // The chroot must be root-owned and not writable by others; the account writes only below data/.
  const sftp = passwdEntry('rf-sftp');
  const chroot = join(dir, 'sftp-root');
  const data = join(chroot, 'data');
  mkdirSync(data, { recursive: true, mode: 0o755 });
  chmodSync(chroot, 0o755);
  chownSync(data, sftp.uid, sftp.gid);

  return {
    shell: { username: 'rf-shell', home: shell.home, scratch },
    other: { username: 'rf-other', home: passwdEntry('rf-other').home },
    sftp: { username: 'rf-sftp', chroot, data, dataInChroot: '/data' },
  };
}

function passwdEntry(name: string): { uid: number; gid: number; home: string } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  const f = line?.split(':');
  if (!f || f.length < 7) throw new Error(`no account ${name} in /etc/passwd`);
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
}

let accountsReady = false;

/**
 * Creates the test accounts if absent. Test files run in parallel processes, and useradd fails when
 * another useradd holds /etc/passwd, so all of it runs under one flock.
 */
function ensureAccounts(): void {
  if (accountsReady) return;
  if (process.getuid?.() !== 0)
    throw new Error(
      'the integration tests need root: they create the local accounts rf-shell, rf-other and rf-sftp and start sshd (run them with sudo; `npm test` removes the accounts again at the end)',
    );
  const script = `
    set -e
    mkdir -p /run/sshd && chmod 0755 /run/sshd
    id -u rf-shell >/dev/null 2>&1 || useradd -m -s /bin/bash rf-shell
    id -u rf-other >/dev/null 2>&1 || useradd -m -s /bin/bash rf-other
    id -u rf-sftp >/dev/null 2>&1 || useradd -M -d /data -s /usr/sbin/nologin rf-sftp
    echo "rf-shell:$RF_PASSWORD" | chpasswd
    # "!" (useradd's default) marks an account locked, and sshd then refuses even key logins.
    usermod -p '*' rf-other
    usermod -p '*' rf-sftp
    mkdir -p /etc/sudoers.d
    # sudo skips files whose name contains a dot, so the temp file is never read half-written.
    printf 'rf-shell ALL=(ALL) NOPASSWD: ALL\\n' > /etc/sudoers.d/rf-shell.tmp
    chmod 0440 /etc/sudoers.d/rf-shell.tmp
    mv /etc/sudoers.d/rf-shell.tmp /etc/sudoers.d/rf-shell
  `;
  mkdirSync('/run/lock', { recursive: true });
  execFileSync('flock', [ACCOUNTS_LOCK, 'sh', '-c', script], {
    env: { ...process.env, RF_PASSWORD: PASSWORD },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  accountsReady = true;
}

/** Sends a signal to `pid`'s descendants (found through /proc), and to `pid` itself if asked. */
function signalTree(pid: number, signal: NodeJS.Signals, includeRoot: boolean): void {
  const targets = [...(includeRoot ? [pid] : []), ...descendants(pid)];
  for (const p of targets) {
    try {
      process.kill(p, signal);
    } catch {
      // Gone between listing and signalling: nothing left to do for it.
    }
  }
}

function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Field 4 is the parent pid; the command name (field 2) may contain spaces, so count from its ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const found: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      found.push(c);
      walk(c);
    }
  };
  walk(root);
  return found;
}
