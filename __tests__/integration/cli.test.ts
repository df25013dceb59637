import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { rootSh, sshFlags, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// The CLI as a person runs it: src/cli.ts through tsx, in a workspace folder, reading the key and
// known_hosts from files, against a real OpenSSH server.

const CLI = resolve('src/cli.ts');
// `--import tsx` would be resolved from the workspace, which has no node_modules: pass the loader's URL.
const TSX = import.meta.resolve('tsx');
const FIXTURE = resolve('__tests__/fixtures/workspace');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

let cliTempDir: string | undefined;
const cliTemp = (): string => (cliTempDir ??= testTempDir('rf-cli-tmp-'));

async function cli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], {
    cwd: opts.cwd ?? FIXTURE,
    // TMPDIR: the CLI's report folders (and its children's temp files) go where this file cleans up.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), TMPDIR: cliTemp(), ...opts.env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const code = await new Promise<number | null>((done) => child.on('close', done));
  return { code, stdout, stderr };
}

function exits(r: CliResult, code: number): CliResult {
  assert.equal(r.code, code, `exit ${r.code}, expected ${code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

/** The runner reads `::name::` at the start of a line as a workflow command; the CLI must never print one. */
function noWorkflowCommands(r: CliResult): void {
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.startsWith('::'));
  assert.deepEqual(lines, []);
}

describe('usage', () => {
  test('--help prints the usage, names every action input as a flag, and exits 0', async () => {
    const r = exits(await cli(['--help']), 0);
    assert.match(r.stdout, /^usage: remote-files plan\|backup\|restore\|verify/);
    assert.match(r.stdout, /Exit codes: 0 success; 1 the run failed/);
    const inputs = Object.keys(
      (parse(readFileSync('action.yml', 'utf8')) as { inputs: Record<string, unknown> }).inputs,
    ).filter((n) => n !== 'mode');
    assert.ok(inputs.length > 40, 'action.yml was read');
    const missing = inputs.filter((n) => !new RegExp(`--${n}(?![\\w-])`).test(r.stdout));
    assert.deepEqual(missing, [], 'every input is documented as a flag');
    assert.equal(r.stderr, '');
  });

  test('every action input is accepted as a flag', async () => {
    const inputs = (parse(readFileSync('action.yml', 'utf8')) as { inputs: Record<string, { default?: string }> })
      .inputs;
    // A valid value for each input whose action.yml default is empty (or an expression); the rest take their default.
    const values: Record<string, string> = {
      domain: 'example.com',
      'install-dir': '/srv',
      recipes: 'remote-files.yml,lib/Provisioner/Recipe',
      only: 'Shop',
      distro: 'Ubuntu',
      vars: 'spool_name=postfix',
      'retention-days': '5',
      'artifact-run-id': '7',
      'github-token': 'token',
    };
    const args = ['plan'];
    for (const [name, spec] of Object.entries(inputs)) {
      if (name === 'mode') continue;
      args.push(`--${name}=${values[name] ?? (spec.default || 'x')}`);
    }
    assert.ok(args.length > 40, 'action.yml was read');
    const r = exits(await cli(args), 0);
    assert.match(r.stdout, /^Shop \(remote-files\.yml\)$/m, 'the values reached the engine');
  });

  test('bad usage exits 2 and says what is wrong', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['plan', '--domain', 'example.com', '--install-dir', '/srv', '--nope', 'x'], /unknown flag --nope/],
      [['plan', '--domain', 'example.com', '--install-dir'], /--install-dir needs a value/],
      [['plan', '--domain', 'a.com', '--domain', 'b.com', '--install-dir', '/srv'], /--domain given twice/],
      [['plan', '--mode', 'backup'], /the mode is the first argument/],
      [['rescue', '--domain', 'example.com'], /unknown mode "rescue"/],
      [[], /no mode given/],
      [['plan', '--install-dir', '/srv'], /input `domain` is required/],
      [
        ['plan', '--domain', 'example.com', '--install-dir', '/srv', '--dry-run', 'maybe'],
        /input `dry-run`: "maybe" is not a boolean/,
      ],
      [
        [
          'backup',
          '--domain',
          'example.com',
          '--install-dir',
          '/srv',
          '--host',
          'h',
          '--username',
          'u',
          '--key-file',
          '/nonexistent/key',
        ],
        /--key-file: cannot read \/nonexistent\/key \(ENOENT\)/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const r = exits(await cli(args), 2);
      assert.match(r.stderr, pattern, `for ${args.join(' ')}`);
      assert.equal(r.stdout, '', 'nothing ran');
    }
  });

  test('a flag spelt with `_` (as other tools spell it) gets the nearest flag in two lines, not the whole usage', async () => {
    for (const [flag, near] of [
      ['--proxy_host', '--proxy-host'],
      ['--known_hosts_file', '--known-hosts-file'],
      ['--Install_Dir', '--install-dir'],
    ] as const) {
      const r = exits(await cli(['plan', '--domain', 'example.com', flag, '/srv']), 2);
      assert.equal(
        r.stderr,
        `error: unknown flag ${flag} (did you mean ${near}?)\n(remote-files --help prints the usage)\n`,
        `for ${flag}`,
      );
      assert.equal(r.stdout, '', 'nothing ran');
    }
  });
});

describe('plan', () => {
  test('plans the fixture workspace (Perl and YAML recipes) in plain lines', async () => {
    const r = exits(
      await cli(['plan', '--domain', 'example.com', '--install-dir', '/srv', '--vars', 'spool_name=postfix']),
      0,
    );
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], '== Plan');
    assert.ok(lines.includes('Plan for example.com (install dir /srv, stored under data/example.com/)'), r.stdout);
    assert.ok(
      lines.some((l) => /^ {2}\/var\/spool\/postfix +-> {2}data\/example\.com\/mail\/spool$/.test(l)),
      'the Perl recipe, with --vars applied',
    );
    assert.ok(
      lines.some((l) => /^ {2}\/srv\/shop\.example\.com_data +-> {2}data\/example\.com\/shop$/.test(l)),
      'the YAML recipe',
    );
    assert.ok(lines.includes('Redis (lib/Provisioner/Recipe/Ubuntu/Redis.pm)'));
    noWorkflowCommands(r);
    assert.ok(!existsSync(join(FIXTURE, 'data')), 'plan writes nothing');
  });

  test('--only and repeated list flags reach the engine', async () => {
    const r = exits(
      await cli(['plan', '--domain', 'example.com', '--install-dir', '/srv', '--only', 'Shop', '--only', 'Redis']),
      0,
    );
    assert.match(r.stdout, /^Shop \(remote-files\.yml\)$/m);
    assert.match(r.stdout, /^Redis \(/m);
    assert.doesNotMatch(r.stdout, /^Mail \(/m);
  });
});

describe('backup against a real sshd', () => {
  let server: Sshd;
  let srv: string;
  let keyFile: string;
  let knownHostsFile: string;
  const BIG = 48 * 1024 * 1024;

  before(async () => {
    server = await startSshd({ hostKeyTypes: ['ed25519'] });
    srv = join(server.users.shell.scratch, 'cli');
    rootSh(
      `cd / && su -s /bin/sh rf-shell -c 'sh -s'`,
      `set -e
      mkdir -p '${srv}/app/sub'
      printf hello > '${srv}/app/hello.txt'
      printf deep > '${srv}/app/sub/deep.txt'
      head -c ${BIG} /dev/urandom > '${srv}/app/big.bin'
    `,
    );
    const secrets = testTempDir('rf-cli-');
    keyFile = server.key.path;
    knownHostsFile = join(secrets, 'known_hosts');
    writeFileSync(knownHostsFile, `${server.knownHostsLine('ed25519')}\n`);
  });
  after(async () => {
    await server?.stop();
  });

  function workspace(): string {
    const ws = testTempDir('rf-cli-ws-');
    writeFileSync(
      join(ws, 'remote-files.yml'),
      `version: 1\nrecipes:\n  App:\n    remote_files:\n      "\${install_dir}/app": app\n`,
    );
    return ws;
  }

  const base = () => [
    ...sshFlags(server, { domain: 'example.com', installDir: srv, keyFile }),
    '--timeout',
    '20',
    '--retries',
    '0',
    '--store',
    'none',
  ];

  test('--key-file and --known-hosts-file: exit 0, the files land, with a progress line on stderr', async () => {
    const ws = workspace();
    const r = exits(
      await cli(['backup', ...base(), '--known-hosts-file', knownHostsFile], {
        cwd: ws,
        env: { REMOTE_FILES_PROGRESS_MS: '20' },
      }),
      0,
    );
    const stored = join(ws, 'data', 'example.com', 'app');
    assert.equal(readFileSync(join(stored, 'hello.txt'), 'utf8'), 'hello');
    assert.equal(readFileSync(join(stored, 'sub/deep.txt'), 'utf8'), 'deep');
    assert.ok(readFileSync(join(stored, 'big.bin')).equals(readFileSync(join(srv, 'app/big.bin'))));
    assert.ok(existsSync(join(ws, 'data', 'example.com', '.remote-files', 'manifest.json')));
    assert.match(r.stdout, /^== Salvage$/m);
    assert.match(r.stdout, /^changed +\S+\/app -> app, 3 file\(s\)/m);
    assert.match(r.stdout, /^files: 3$/m, 'the outputs are printed at the end');
    assert.match(
      r.stderr,
      /^ {2}received \d+(\.\d)? (B|KiB|MiB) of \d+(\.\d)? (B|KiB|MiB) \(\d+%\), \d of 3 file\(s\), /m,
      'a progress line',
    );
    noWorkflowCommands(r);
  });

  test('a host key that does not match known_hosts is refused: exit 1, nothing stored', async () => {
    const ws = workspace();
    const other = join(testTempDir('rf-cli-other-'), 'k');
    rootSh(`ssh-keygen -q -t ed25519 -N '' -C '' -f '${other}'`);
    const wrong = join(ws, 'wrong_known_hosts');
    writeFileSync(wrong, `[127.0.0.1]:${server.port} ${readFileSync(`${other}.pub`, 'utf8').trim()}\n`);
    const r = exits(await cli(['backup', ...base(), '--known-hosts-file', wrong], { cwd: ws }), 1);
    assert.match(r.stderr, /^error: [\s\S]*host key/i);
    assert.ok(!existsSync(join(ws, 'data', 'example.com', 'app')), 'nothing was stored');
    noWorkflowCommands(r);
  });
});
