import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runAction, type ActionResult } from '../helpers/run-action.js';
import { rootSh, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// Two promises of the action's front door, checked through the committed bundle. Secrets (private key
// lines, passphrase, passwords) never reach the log, the step summary, the outputs or the JSON report —
// with step debugging on, and on the failure paths whose messages are the likeliest to quote them. And a
// bad input fails at once, with exit 1 and one `::error::` line naming the input (or file and line).

const DOMAIN = 'example.com';
const DEBUG = { ACTIONS_STEP_DEBUG: 'true', RUNNER_DEBUG: '1' };

function workspace(
  yaml = 'version: 1\nrecipes:\n  App:\n    remote_files:\n      "${install_dir}/app": app\n      "${install_dir}/nope": nope\n',
): string {
  const ws = testTempDir('rf-secrets-');
  writeFileSync(join(ws, 'remote-files.yml'), yaml);
  return ws;
}

/** One `::error::` line, and the message in it. */
function oneError(r: ActionResult, context: string): string {
  assert.equal(r.code, 1, `${context}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error::'));
  assert.equal(errors.length, 1, `${context}: exactly one ::error:: line\n${r.stdout}`);
  const msg = errors[0]!.slice('::error::'.length);
  assert.doesNotMatch(msg, /undefined|\bat .*:\d+:\d+/, `${context}: ${msg}`);
  return msg;
}

describe('secrets stay out of every log, summary, output and report', () => {
  let server: Sshd;
  let srv: string;
  /** A key the server does not know: logins with it fail. */
  let strangerKey: string;
  const WRONG_PASSPHRASE = 'wrong-Passphrase-7f3a9c';
  const WRONG_PASSWORD = 'wrong-Password-5e81d2';
  const PROXY_PASSWORD = 'proxy-Password-c0ffee42';
  let checked = 0;

  before(async () => {
    server = await startSshd({ hostKeyTypes: ['ed25519'] });
    srv = server.users.shell.scratch;
    rootSh(`cd / && su -s /bin/sh rf-shell -c 'sh -s'`, `mkdir -p '${srv}/app' && printf data > '${srv}/app/f.txt'`);
    const dir = testTempDir('rf-stranger-');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', join(dir, 'k')]);
    strangerKey = readFileSync(join(dir, 'k'), 'utf8');
  });
  after(async () => {
    await server?.stop();
    console.log(
      `secrets-and-inputs: ${checked} runs with step debug on checked for secrets in stdout, stderr, summary, outputs and report`,
    );
  });

  function inputs(extra: Record<string, string>): Record<string, string> {
    return {
      host: '127.0.0.1',
      port: String(server.port),
      username: 'rf-shell',
      'known-hosts': server.knownHostsLine('ed25519'),
      mode: 'backup',
      domain: DOMAIN,
      'install-dir': srv,
      timeout: '10',
      retries: '0',
      store: 'none',
      ...extra,
    };
  }

  /** What must never be seen: every line of every key given, each passphrase and password. */
  function secretsOf(given: Record<string, string>): string[] {
    const keyLines = ['key', 'proxy-key']
      .flatMap((k) => (given[k] ?? '').split('\n'))
      .filter((l) => l.trim().length >= 8 && !l.startsWith('-----'));
    const words = ['passphrase', 'password', 'proxy-password'].map((k) => given[k] ?? '').filter((v) => v !== '');
    return [...keyLines, ...words];
  }

  /**
   * Each secret is masked (`::add-mask::`) before anything else is printed — the runner hides a value
   * only from the moment it is told to — and appears nowhere else: not in stdout, stderr, the step
   * summary, the outputs or the JSON report.
   */
  function assertNoSecrets(r: ActionResult, given: Record<string, string>, context: string): void {
    const secrets = secretsOf(given);
    assert.ok(secrets.length >= 3, `${context}: secrets to look for`);
    const lines = r.stdout.split('\n');
    const firstOther = lines.findIndex((l) => !l.startsWith('::add-mask::'));
    const masks = lines.slice(0, firstOther).map((l) => l.slice('::add-mask::'.length));
    for (const s of secrets)
      assert.ok(
        masks.includes(s),
        `${context}: ${JSON.stringify(s.slice(0, 6))}… is masked before anything else is printed`,
      );
    const report = r.outputs.report && existsSync(r.outputs.report) ? readFileSync(r.outputs.report, 'utf8') : '';
    const places: Record<string, string> = {
      stdout: lines.slice(firstOther).join('\n'),
      stderr: r.stderr,
      summary: r.summary,
      outputs: JSON.stringify(r.outputs),
      report,
    };
    for (const [where, text] of Object.entries(places)) {
      for (const s of secrets)
        assert.ok(!text.includes(s), `${context}: a secret (${JSON.stringify(s.slice(0, 6))}…) in ${where}`);
    }
    checked++;
  }

  test('a wrong passphrase: refused, the key named but never shown', async () => {
    const given = inputs({
      key: server.encryptedKey.privateKey,
      passphrase: WRONG_PASSPHRASE,
      password: WRONG_PASSWORD,
    });
    const r = await runAction(given, { workspace: workspace(), env: DEBUG });
    assert.match(oneError(r, 'wrong passphrase'), /private key for rf-shell@127\.0\.0\.1:\d+ cannot be used/);
    assertNoSecrets(r, given, 'wrong passphrase');
  });

  test('authentication failure with a key and a password: both tried, neither shown', async () => {
    const given = inputs({ key: strangerKey, password: WRONG_PASSWORD });
    const r = await runAction(given, { workspace: workspace(), env: DEBUG });
    assert.match(
      oneError(r, 'auth failure'),
      /Authentication as rf-shell@127\.0\.0\.1:\d+ failed \(tried: publickey, password/,
    );
    assertNoSecrets(r, given, 'auth failure');
  });

  test('a jump host refusing the key and the proxy password', async () => {
    const given = inputs({
      key: strangerKey,
      password: WRONG_PASSWORD,
      'proxy-host': '127.0.0.1',
      'proxy-port': String(server.port),
      'proxy-password': PROXY_PASSWORD,
    });
    const r = await runAction(given, { workspace: workspace(), env: DEBUG });
    assert.match(oneError(r, 'jump host auth failure'), /Authentication as rf-shell@127\.0\.0\.1:\d+ failed/);
    assertNoSecrets(r, given, 'jump host auth failure');
  });

  test('a host key refused before any credential is sent', async () => {
    const other = testTempDir('rf-otherhost-');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', join(other, 'h')]);
    const wrongLine = `[127.0.0.1]:${server.port} ${readFileSync(join(other, 'h.pub'), 'utf8').trim()}`;
    const given = inputs({
      key: server.encryptedKey.privateKey,
      passphrase: server.encryptedKey.passphrase,
      password: server.password,
      'known-hosts': wrongLine,
    });
    const logBefore = server.log().length;
    const r = await runAction(given, { workspace: workspace(), env: DEBUG });
    assert.match(oneError(r, 'host key refusal'), /host key/i);
    assertNoSecrets(r, given, 'host key refusal');
    // The refused server never saw a login attempt: credentials go only to a verified host.
    const sshdSaw = server.log().slice(logBefore);
    assert.match(sshdSaw, /Connection from 127\.0\.0\.1/);
    assert.doesNotMatch(sshdSaw, /Failed (publickey|password)|Accepted|authenticating user/);
  });

  test('a backup that logs in and then fails (if-missing: error), with its report and summary', async () => {
    const given = inputs({
      key: server.encryptedKey.privateKey,
      passphrase: server.encryptedKey.passphrase,
      password: server.password,
      'if-missing': 'error',
    });
    const r = await runAction(given, { workspace: workspace(), env: DEBUG });
    assert.match(oneError(r, 'failed backup'), /nope is missing/);
    assert.ok(r.outputs.report && existsSync(r.outputs.report), 'the failed run still wrote its report');
    assert.match(r.summary, /remote-files backup/);
    assertNoSecrets(r, given, 'failed backup');
  });

  test('a successful backup and restore with every secret set', async () => {
    const given = inputs({
      key: server.encryptedKey.privateKey,
      passphrase: server.encryptedKey.passphrase,
      password: server.password,
      'proxy-password': PROXY_PASSWORD,
    });
    const ws = workspace('version: 1\nrecipes:\n  App:\n    remote_files:\n      "${install_dir}/app": app\n');
    const backup = await runAction(given, { workspace: ws, env: DEBUG });
    assert.equal(backup.code, 0, backup.stdout);
    assertNoSecrets(backup, given, 'successful backup');
    const restore = await runAction({ ...given, mode: 'restore' }, { workspace: ws, env: DEBUG });
    assert.equal(restore.code, 0, restore.stdout);
    assertNoSecrets(restore, given, 'successful restore');
  });
});

describe('bad inputs: exit 1 and one ::error:: naming the input', () => {
  /** Needs no server: `plan` reads the recipes and stops. */
  const plan = { mode: 'plan', domain: DOMAIN, 'install-dir': '/srv/app' };
  let closedPort = 0;
  let planWs: string;

  before(async () => {
    planWs = workspace();
    // A port nothing listens on: the checks below must fail before any connection is tried.
    closedPort = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
    });
  });

  /** [label, inputs over `plan`, what the error must name] */
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    // enums
    ['mode', { mode: 'backupp' }, /input `mode`: "backupp" is not one of backup, restore, verify, plan/],
    ['transport', { transport: 'ftp' }, /input `transport`: "ftp" is not one of/],
    ['if-missing', { 'if-missing': 'explode' }, /input `if-missing`: "explode" is not one of/],
    ['conflict', { conflict: 'merge' }, /input `conflict`: "merge" is not one of/],
    ['store', { store: 's3' }, /input `store`: "s3" is not one of/],
    ['store (none combined)', { store: 'none, commit' }, /input `store`/],
    // numbers
    ...(['abc', '0', '65536', '22.5', '-1'] as const).map((v): [string, Record<string, string>, RegExp] => [
      `port ${v}`,
      { port: v },
      /input `port`: ".*" is not a whole number from 1 to 65535/,
    ]),
    ['timeout', { timeout: '0' }, /input `timeout`: "0" is not a duration from 1 to 3600 seconds/],
    ['timeout (words)', { timeout: 'ten' }, /input `timeout`: "ten" is not a duration from 1 to 3600 seconds/],
    ['retries', { retries: '-1' }, /input `retries`: "-1" is not a whole number from 0 to 20/],
    ['retries (too many)', { retries: '21' }, /input `retries`: "21"/],
    ['concurrency', { concurrency: '0' }, /input `concurrency`: "0" is not a whole number from 1 to 64/],
    ['concurrency (too many)', { concurrency: '65' }, /input `concurrency`: "65"/],
    [
      'proxy-port',
      { 'proxy-host': 'jump.example.com', 'proxy-port': 'x' },
      /input `proxy-port`: "x" is not a whole number/,
    ],
    ['push-attempts', { 'push-attempts': '0' }, /input `push-attempts`: "0"/],
    ['retention-days', { 'retention-days': '91' }, /input `retention-days`: "91" is not a whole number from 1 to 90/],
    ['artifact-run-id', { 'artifact-run-id': 'latest' }, /input `artifact-run-id`: "latest"/],
    // booleans
    ...(
      [
        ['prepare', 'yes'],
        ['checksum', '1'],
        ['delete', 'on'],
        ['allow-denied', 'y'],
        ['sudo', 'TRUE!'],
        ['dry-run', 'ja'],
        ['insecure-ignore-host-key', 'maybe'],
        ['push', 'no'],
        ['fail-on-drift', 'off'],
      ] as const
    ).map(([name, v]): [string, Record<string, string>, RegExp] => [
      name,
      { [name]: v },
      new RegExp(`input \`${name}\`: "${v.replace(/[!]/g, '\\$&')}" is not a boolean`),
    ]),
    // paths and names
    ...(['../outside', '/abs/data', 'a/../../b', '.', '..'] as const).map(
      (v): [string, Record<string, string>, RegExp] => [
        `data-dir ${v}`,
        { 'data-dir': v },
        /input `data-dir`: ".*" must be a folder inside the workspace/,
      ],
    ),
    [
      'install-dir relative',
      { 'install-dir': 'srv/app' },
      /input `install-dir`: "srv\/app" must be an absolute server path/,
    ],
    [
      'install-dir ..',
      { 'install-dir': '/srv/../etc' },
      /input `install-dir`: "\/srv\/\.\.\/etc" must be an absolute server path without/,
    ],
    ['domain with /', { domain: 'a/b' }, /input `domain`: "a\/b" is not a domain name/],
    ['domain ..', { domain: '..' }, /input `domain`: "\.\." is not a domain name/],
    ['domain empty', { domain: '' }, /input `domain` is required/],
    [
      'install-dir with shell syntax',
      { 'install-dir': '/srv/x;id>/tmp/x;#' },
      /input `install-dir`: "\/srv\/x;id>\/tmp\/x;#" holds ";", ">", "#": only letters, digits/,
    ],
    [
      'domain with shell syntax',
      { domain: 'example.com;id' },
      /input `domain`: "example\.com;id" is not a domain name: it holds ";"/,
    ],
    [
      'domain wildcard',
      { domain: '*.example.com' },
      /input `domain`: "\*\.example\.com" is not a domain name: it is a wildcard/,
    ],
    [
      'proxy-fingerprint without proxy-host',
      { 'proxy-fingerprint': 'SHA256:' + 'A'.repeat(43) },
      /input `proxy-fingerprint` pins the jump host's key, but `proxy-host` is not set/,
    ],
    ['install-dir empty', { 'install-dir': '' }, /input `install-dir` is required/],
    ['artifact-name', { 'artifact-name': 'a:b' }, /input `artifact-name`: "a:b" holds a character/],
    ['vars', { vars: 'GOOD=1\nnot a pair' }, /input `vars`:2: expected KEY=VALUE/],
    ['sudo with sftp', { sudo: 'true', transport: 'sftp' }, /input `sudo`: true needs a shell/],
    ['only', { only: 'NoSuchRecipe' }, /input `only`: no recipe named "NoSuchRecipe"/],
    ['recipes', { recipes: 'no/such/dir' }, /input `recipes`: "no\/such\/dir" matches no recipe file/],
  ];

  test(`each of ${cases.length} bad values (plan mode, no server)`, { timeout: 120_000 }, async () => {
    // A few at a time: each is a process of its own.
    const results = await mapLimited(cases, 4, ([, over]) => runAction({ ...plan, ...over }, { workspace: planWs }));
    cases.forEach(([label, , pattern], i) => {
      const r = results[i]!;
      assert.match(oneError(r, label), pattern, label);
      assert.doesNotMatch(r.stdout, /^Plan for /m, `${label}: refused before anything ran`);
    });
    console.log(
      `secrets-and-inputs: ${cases.length} bad input values tried, each refused with one ::error:: naming the input`,
    );
  });

  const serverCases: Array<[string, Record<string, string>, RegExp]> = [
    ['known-hosts garbage', { 'known-hosts': 'this is not a known_hosts line' }, /input `known-hosts`:1: /],
    [
      'known-hosts bad base64 on line 2',
      { 'known-hosts': `# a comment\n[127.0.0.1]:22 ssh-ed25519 !!!notbase64!!!` },
      /input `known-hosts`:2: .*not base64/,
    ],
    [
      'known-hosts key of another type',
      { 'known-hosts': `127.0.0.1 ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIHc6` },
      /input `known-hosts`:1: /,
    ],
    [
      'host-fingerprint',
      { 'known-hosts': '', 'host-fingerprint': 'SHA256:tooshort' },
      /input `host-fingerprint`: "SHA256:tooshort" is not a SHA256 fingerprint/,
    ],
    [
      'host-fingerprint MD5',
      { 'known-hosts': '', 'host-fingerprint': 'MD5:12:34:56:78:9a:bc:de:f0:12:34:56:78:9a:bc:de:f0' },
      /input `host-fingerprint`: .* MD5/,
    ],
  ];

  test(`each of ${serverCases.length} bad host-key inputs fails before connecting`, { timeout: 60_000 }, async () => {
    const base = {
      mode: 'backup',
      domain: DOMAIN,
      'install-dir': '/srv/app',
      host: '127.0.0.1',
      port: String(closedPort),
      username: 'nobody',
      password: 'unused-password',
      store: 'none',
      retries: '0',
    };
    const results = await mapLimited(serverCases, 4, ([, over]) =>
      runAction({ ...base, ...over }, { workspace: planWs }),
    );
    serverCases.forEach(([label, , pattern], i) => {
      const msg = oneError(results[i]!, label);
      assert.match(msg, pattern, label);
      assert.doesNotMatch(msg, /Cannot connect|ECONNREFUSED/, `${label}: refused before any connection`);
    });
    console.log(`secrets-and-inputs: ${serverCases.length} bad host-key inputs tried`);
  });

  const recipeCases: Array<[string, string, RegExp]> = [
    [
      'unclosed flow sequence',
      'version: 1\nrecipes:\n  App:\n    remote_files: [unclosed\n',
      /^remote-files\.yml:\d+: not valid YAML\/JSON: /,
    ],
    ['tab indentation', 'version: 1\nrecipes:\n\tApp:\n', /^remote-files\.yml:3: not valid YAML\/JSON: /],
    [
      'duplicate key',
      'version: 1\nrecipes:\n  App:\n    remote_files:\n      /a: a\n  App:\n    remote_files:\n      /b: b\n',
      /^remote-files\.yml:6: not valid YAML\/JSON: .*[Uu]nique|^remote-files\.yml:6: /,
    ],
    [
      'unknown key',
      'version: 1\nrecipes:\n  App:\n    remote_filez: { /a: a }\n',
      /^remote-files\.yml:4: recipes\.App has an unknown key "remote_filez"/,
    ],
    ['wrong version', 'version: 7\nrecipes: {}\n', /^remote-files\.yml:1: /],
    [
      'a local path that climbs out',
      'version: 1\nrecipes:\n  App:\n    remote_files:\n      /srv/a: ../../escape\n',
      /^remote-files\.yml(:\d+)?: .*\.\./,
    ],
    [
      'an unknown placeholder',
      'version: 1\nrecipes:\n  App:\n    remote_files:\n      "${nowhere}/a": a\n',
      /^remote-files\.yml(:\d+)?: unknown placeholder "nowhere"/,
    ],
  ];

  test(`each of ${recipeCases.length} malformed recipe files names file and line`, { timeout: 60_000 }, async () => {
    const results = await mapLimited(recipeCases, 4, ([, yaml]) => runAction(plan, { workspace: workspace(yaml) }));
    recipeCases.forEach(([label, , pattern], i) => assert.match(oneError(results[i]!, label), pattern, label));
    console.log(`secrets-and-inputs: ${recipeCases.length} malformed recipe files tried`);
  });
});

/** `task` over `items`, at most `limit` at once; results in order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}
