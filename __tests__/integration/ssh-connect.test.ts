import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { UserError } from '../../src/errors.js';
import { connect, type ConnectOptions } from '../../src/ssh/connect.js';
import type { SshSession } from '../../src/ssh/session.js';
import { rootSh, startSshd, type Sshd } from '../helpers/sshd.js';

let sshd: Sshd;
/** A second server: its keys are "someone else's", and it is the one frozen and killed. */
let victim: Sshd;

before(async () => {
  [sshd, victim] = await Promise.all([startSshd(), startSshd()]);
});
after(async () => {
  await Promise.all([sshd?.stop(), victim?.stop()]);
});

interface Logged {
  info: string[];
  warnings: string[];
}

const newLog = (): Logged => ({ info: [], warnings: [] });

function options(server: Sshd, over: Partial<ConnectOptions> = {}, log = newLog()): ConnectOptions {
  return {
    target: { host: server.host, port: server.port, username: 'rf-shell', privateKey: server.key.privateKey },
    hostKeys: { knownHosts: server.knownHostsLine('ed25519'), fingerprints: '', insecure: false },
    timeoutMs: 5000,
    retries: 0,
    retryBaseMs: 10,
    onInfo: (m) => log.info.push(m),
    onWarning: (m) => log.warnings.push(m),
    ...over,
  };
}

async function withSession<T>(opts: ConnectOptions, body: (s: SshSession) => Promise<T>): Promise<T> {
  const session = await connect(opts);
  try {
    return await body(session);
  } finally {
    session.close();
  }
}

const whoami = (s: SshSession) => s.exec('id -un').then((r) => r.stdout.toString().trim());

async function rejectsWith(
  p: Promise<unknown>,
  re: RegExp,
  type: new (...a: never[]) => Error = UserError,
): Promise<Error> {
  const err = await p.then(
    () => assert.fail(`expected a rejection matching ${re}`),
    (e: unknown) => e as Error,
  );
  assert.ok(err instanceof type, `expected ${type.name}, got ${err.name}: ${err.message}`);
  assert.match(err.message, re);
  return err;
}

test('key login; exec round-trips binary stdin, stderr and the exit code', async () => {
  const log = newLog();
  await withSession(options(sshd, {}, log), async (s) => {
    assert.equal(await whoami(s), 'rf-shell');
    const input = randomBytes(300_000);
    const r = await s.exec('cat; echo oops >&2; exit 3', { stdin: input });
    assert.equal(r.code, 3);
    assert.ok(r.stdout.equals(input));
    assert.equal(r.stderr, 'oops\n');
    assert.equal((await s.exec('kill -TERM $$')).signal, 'SIGTERM');
  });
  assert.ok(
    log.info.some(
      (m) => m === `Host key of 127.0.0.1:${sshd.port} verified: ssh-ed25519 ${sshd.fingerprint('ed25519')}`,
    ),
    log.info.join('\n'),
  );
});

test('the accounts later tests rely on: sudo for rf-shell, files rf-other keeps to itself', async () => {
  const secret = `${sshd.users.shell.scratch}/secret`;
  rootSh(`echo hidden > '${secret}' && chown rf-other: '${secret}' && chmod 600 '${secret}'`);
  await withSession(options(sshd), async (s) => {
    assert.equal((await s.exec(`cat '${secret}'`)).code, 1);
    const viaSudo = await s.exec(`sudo -n cat '${secret}'`);
    assert.equal(viaSudo.stdout.toString(), 'hidden\n', viaSudo.stderr);
  });
});

test('encrypted key with its passphrase; without it a UserError', async () => {
  const target = { host: sshd.host, port: sshd.port, username: 'rf-shell', privateKey: sshd.encryptedKey.privateKey };
  await withSession(options(sshd, { target: { ...target, passphrase: sshd.encryptedKey.passphrase } }), async (s) =>
    assert.equal(await whoami(s), 'rf-shell'),
  );
  const err = await rejectsWith(
    connect(options(sshd, { target })),
    /^The private key for rf-shell@127\.0\.0\.1:\d+ cannot be used: .*passphrase/,
  );
  assert.ok(!err.message.includes('PRIVATE KEY'));
});

test('password login', async () => {
  const target = { host: sshd.host, port: sshd.port, username: 'rf-shell', password: sshd.password };
  await withSession(options(sshd, { target }), async (s) => assert.equal(await whoami(s), 'rf-shell'));
});

test('wrong key or password: an authentication error naming user and methods, not retried', async () => {
  const log = newLog();
  const t0 = Date.now();
  const wrongKey = {
    host: sshd.host,
    port: sshd.port,
    username: 'rf-shell',
    privateKey: victim.key.privateKey,
    password: 'wrong',
  };
  const err = await rejectsWith(
    connect(options(sshd, { target: wrongKey, retries: 3, retryBaseMs: 1000 }, log)),
    /^Authentication as rf-shell@127\.0\.0\.1:\d+ failed \(tried: publickey, password; the server accepts: publickey, password\)/,
  );
  assert.ok(!err.message.includes('wrong'), 'the password is never echoed');
  assert.ok(Date.now() - t0 < 6000, 'no retry delay (three would wait 7 s)');
  assert.equal(log.info.filter((m) => m.includes('retry')).length, 0);
  await rejectsWith(
    connect(options(sshd, { target: { ...wrongKey, username: 'nobody-here', password: undefined } })),
    /Authentication as nobody-here@/,
  );
});

test('unknown host key: refused with the commands that pin it', async () => {
  const err = await rejectsWith(
    connect(options(sshd, { hostKeys: { knownHosts: '', fingerprints: '', insecure: false }, retries: 3 })),
    /is not verified/,
  );
  assert.ok(err.message.includes(`ssh-keyscan -p ${sshd.port} 127.0.0.1`), err.message);
  assert.ok(err.message.includes(`ssh-keyscan -p ${sshd.port} 127.0.0.1 | ssh-keygen -lf -`), err.message);
  assert.ok(err.message.includes(`the server offered ssh-ed25519 ${sshd.fingerprint('ed25519')}`), err.message);
});

test('known_hosts with another key for the host: refused as a mismatch', async () => {
  const knownHosts = `[127.0.0.1]:${sshd.port} ${victim.hostKeys.ed25519}`;
  const err = await rejectsWith(
    connect(options(sshd, { hostKeys: { knownHosts, fingerprints: '', insecure: false } })),
    /does not match/,
  );
  assert.ok(err.message.includes(`offered ssh-ed25519 ${sshd.fingerprint('ed25519')}`), err.message);
});

test('pinned by a known_hosts line of a type ssh2 would not pick first (rsa)', async () => {
  const log = newLog();
  const hostKeys = { knownHosts: sshd.knownHostsLine('rsa'), fingerprints: '', insecure: false };
  await withSession(options(sshd, { hostKeys }, log), async (s) => assert.equal(await whoami(s), 'rf-shell'));
  assert.ok(
    log.info.some((m) => m.endsWith(`verified: ssh-rsa ${sshd.fingerprint('rsa')}`)),
    log.info.join('\n'),
  );
});

test('pinned by a bare fingerprint of any key type: rsa, ecdsa, or ssh-keygen -lf output', async () => {
  for (const fingerprints of [sshd.fingerprint('rsa'), `SHA256:${'A'.repeat(43)}, ${sshd.fingerprint('ecdsa')}`]) {
    await withSession(options(sshd, { hostKeys: { knownHosts: '', fingerprints, insecure: false } }), async (s) =>
      assert.equal(await whoami(s), 'rf-shell'),
    );
  }
  const keygen = execFileSync('ssh-keygen', ['-lf', '-'], {
    input: `${sshd.knownHostsLine('rsa')}\n`,
    encoding: 'utf8',
  });
  await withSession(options(sshd, { hostKeys: { knownHosts: '', fingerprints: keygen, insecure: false } }), async (s) =>
    assert.equal(await whoami(s), 'rf-shell'),
  );
});

test('fingerprints that match none of the server keys: refused, naming every key it offered', async () => {
  const hostKeys = { knownHosts: '', fingerprints: victim.fingerprint('rsa'), insecure: false };
  const err = await rejectsWith(connect(options(sshd, { hostKeys })), /does not match/);
  for (const t of ['ed25519', 'ecdsa', 'rsa'] as const)
    assert.ok(err.message.includes(sshd.fingerprint(t)), err.message);
});

test('insecure: connects and warns with the fingerprint', async () => {
  const log = newLog();
  const hostKeys = { knownHosts: '', fingerprints: '', insecure: true };
  await withSession(options(sshd, { hostKeys }, log), async (s) => assert.equal(await whoami(s), 'rf-shell'));
  assert.equal(log.warnings.length, 1);
  assert.match(log.warnings[0]!, /NOT verified/);
  assert.ok(log.warnings[0]!.includes(sshd.fingerprint('ed25519')));
});

test('connection refused: retried with backoff, then an error naming host:port and the cause', async () => {
  const port = await closedPort();
  const log = newLog();
  const target = { host: '127.0.0.1', port, username: 'rf-shell', privateKey: sshd.key.privateKey };
  await rejectsWith(
    connect(options(sshd, { target, retries: 2 }, log)),
    new RegExp(`^Cannot connect to 127\\.0\\.0\\.1:${port}: connection refused \\(ECONNREFUSED\\) \\(3 attempts\\)$`),
  );
  assert.deepEqual(
    log.info.map((m) => m.replace(/.* (retry \d of \d in [\d.]+ s)$/, '$1')),
    ['retry 1 of 2 in 0.01 s', 'retry 2 of 2 in 0.02 s'],
  );
});

test('a server that accepts and never speaks: fails within the timeout', async () => {
  const silent = net.createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as net.AddressInfo).port;
  const t0 = Date.now();
  try {
    const target = { host: '127.0.0.1', port, username: 'rf-shell', privateKey: sshd.key.privateKey };
    await rejectsWith(
      connect(options(sshd, { target, timeoutMs: 1000 })),
      /^Cannot connect to 127\.0\.0\.1:\d+: no answer within 1 s/,
    );
    assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
  } finally {
    silent.close();
  }
});

test('jump host: the target is reached through the proxy, both host keys verified', async () => {
  const log = newLog();
  const proxy = { host: sshd.host, port: sshd.port, username: 'rf-shell', privateKey: sshd.key.privateKey };
  const target = { host: victim.host, port: victim.port, username: 'rf-other', privateKey: victim.key.privateKey };
  const hostKeys = {
    knownHosts: `${sshd.knownHostsLine()}\n${victim.knownHostsLine('ecdsa')}`,
    fingerprints: '',
    insecure: false,
  };
  await withSession(options(victim, { target, proxy, hostKeys }, log), async (s) => {
    assert.equal(await whoami(s), 'rf-other');
    // The target saw the connection come from the jump host's sshd, over loopback.
    assert.match((await s.exec('echo $SSH_CLIENT')).stdout.toString(), /^127\.0\.0\.1 /);
  });
  assert.equal(log.info.filter((m) => m.includes('verified')).length, 2, log.info.join('\n'));
  // The target's key is checked against the target's host:port, not the proxy's.
  const onlyProxy = { ...hostKeys, knownHosts: sshd.knownHostsLine() };
  await rejectsWith(
    connect(options(victim, { target, proxy, hostKeys: onlyProxy })),
    new RegExp(`Host key of 127\\.0\\.0\\.1:${victim.port} is not pinned`),
  );
  // A target the jump host cannot reach is a network failure: retried, then named with the jump host.
  const port = await closedPort();
  await rejectsWith(
    connect(options(victim, { target: { ...target, port }, proxy, hostKeys, retries: 1 })),
    new RegExp(
      `^Cannot connect to 127\\.0\\.0\\.1:${port} via jump host 127\\.0\\.0\\.1:${sshd.port}: the jump host could not open a connection to it: .*refused.* \\(2 attempts\\)$`,
      'i',
    ),
  );
});

test('jump host by fingerprints: host-fingerprint pins the target only, proxy-fingerprint the jump host only', async () => {
  const proxy = { host: sshd.host, port: sshd.port, username: 'rf-shell', privateKey: sshd.key.privateKey };
  const target = { host: victim.host, port: victim.port, username: 'rf-other', privateKey: victim.key.privateKey };
  const pins = (fingerprints: string, proxyFingerprints: string) => ({
    knownHosts: '',
    fingerprints,
    proxyFingerprints,
    insecure: false,
  });
  const log = newLog();
  await withSession(
    options(victim, { target, proxy, hostKeys: pins(victim.fingerprint('ed25519'), sshd.fingerprint('ed25519')) }, log),
    async (s) => {
      assert.equal(await whoami(s), 'rf-other');
    },
  );
  assert.equal(log.info.filter((m) => m.includes('verified')).length, 2, log.info.join('\n'));
  // Both in host-fingerprint (one list for both, as before proxy-fingerprint): the jump host is refused.
  await rejectsWith(
    connect(
      options(victim, {
        target,
        proxy,
        hostKeys: pins(`${victim.fingerprint('ed25519')}\n${sshd.fingerprint('ed25519')}`, ''),
      }),
    ),
    new RegExp(
      `^Host key of jump host 127\\.0\\.0\\.1:${sshd.port} is not verified\\. .*Its fingerprint is in \`host-fingerprint\`, which pins the target server only`,
    ),
  );
  // Both in proxy-fingerprint: the jump host is reached, the target refused.
  await rejectsWith(
    connect(
      options(victim, {
        target,
        proxy,
        hostKeys: pins('', `${victim.fingerprint('ed25519')}\n${sshd.fingerprint('ed25519')}`),
      }),
    ),
    new RegExp(
      `^Host key of 127\\.0\\.0\\.1:${victim.port} is not verified\\. .*Its fingerprint is in \`proxy-fingerprint\`, which pins the jump host only`,
    ),
  );
});

test('a command that stalls while the server still answers keepalives: ended by the idle watchdog within about the timeout', async () => {
  await withSession(options(victim, { timeoutMs: 1500 }), async (s) => {
    // Unwatched (a remote_prepare command): silence is allowed, the keepalive alone watches it.
    const quiet = await s.exec('sleep 2.5; echo done', { unwatched: true });
    assert.equal(quiet.stdout.toString(), 'done\n');
    const t0 = Date.now();
    await rejectsWith(
      s.exec('echo start; sleep 30'),
      // "start" arrives, then nothing: too little progress (issue #23) or none at all, whichever is seen first.
      /^connection to 127\.0\.0\.1:\d+ lost \((no progress for 1\.5 s|too little progress: \d+ byte\(s\) moved in 1\.5 s)\b.*the `timeout` input \(1\.5 s\) bounds this\)$/,
      Error,
    );
    const took = Date.now() - t0;
    assert.ok(took >= 1400 && took < 6000, `took ${took} ms`);
  });
});

test('sftp: one cached session per connection, chrooted account', async () => {
  const target = { host: sshd.host, port: sshd.port, username: 'rf-sftp', privateKey: sshd.key.privateKey };
  await withSession(options(sshd, { target }), async (s) => {
    const sftp = await s.sftp();
    assert.equal(await s.sftp(), sftp);
    const cwd = await new Promise<string>((res, rej) => sftp.realpath('.', (e, p) => (e ? rej(e) : res(p))));
    assert.equal(cwd, '/data');
  });
});

test('a server gone silent mid-session: pending operations fail within about the timeout', async () => {
  const session = await connect(options(victim, { timeoutMs: 1200 }));
  const closed = new Promise<Error | undefined>((r) => session.onClose(r));
  try {
    // Unwatched (as remote_prepare commands are), so the idle watchdog stays out of it: the keepalive
    // alone bounds a silent command on a server gone silent.
    const pending = session.exec('sleep 30', { unwatched: true });
    const stream = await session.execStream('sleep 30', { unwatched: true });
    const streamError = new Promise<Error>((r) => stream.on('error', r));
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    victim.freeze();
    await rejectsWith(
      pending,
      new RegExp(`^connection to 127\\.0\\.0\\.1:${victim.port} lost \\(Keepalive timeout\\)`),
      Error,
    );
    assert.ok(Date.now() - t0 < 6000, `took ${Date.now() - t0} ms`);
    assert.match((await streamError).message, /lost/);
    assert.match((await closed)!.message, /lost/);
    await rejectsWith(session.exec('true'), /lost/, Error);
  } finally {
    victim.thaw();
    session.close();
  }
});

test('a connection dropped mid-command: rejected at once, not left hanging', async () => {
  await withSession(options(victim), async (s) => {
    const pending = s.exec('sleep 30');
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    victim.killSessions();
    await rejectsWith(pending, /^connection to 127\.0\.0\.1:\d+ lost/, Error);
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms (the command sleeps 30 s)`);
  });
});

test('close(): later operations fail with "closed", onClose gets no error', async () => {
  const session = await connect(options(sshd));
  const closed = new Promise<Error | undefined>((r) => session.onClose(r));
  session.close();
  assert.equal(await closed, undefined);
  await rejectsWith(session.exec('true'), /^connection to 127\.0\.0\.1:\d+ closed$/, Error);
});

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
