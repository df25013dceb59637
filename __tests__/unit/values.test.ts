// linux-only: runs sh to read quoted values back
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { Client } from 'ssh2';
import { RecipeError, UserError } from '../../src/errors.js';
import { checkDomain, checkInstallDir, readSettings } from '../../src/inputs.js';
import { buildPlan } from '../../src/plan/plan.js';
import { resolveCommand, shellQuote, templateValues } from '../../src/recipes/template.js';
import type { RawRecipe } from '../../src/recipes/types.js';
import { makeHostVerifier } from '../../src/ssh/hostkeys.js';
import { OUTPUT_CAP, SshSession, TRUNCATED_NOTE } from '../../src/ssh/session.js';
import { testTempDir } from '../helpers/temp.js';

// Values are not code: `domain` and `install-dir` are validated to characters the shell gives no
// meaning, and a placeholder's value put into a remote_prepare command is quoted where that is safe and
// refused where it is not. Plus the pure parts of "bounded against a hostile server".

const read = (over: Record<string, string>) =>
  readSettings((n) => ({ mode: 'plan', domain: 'example.com', 'install-dir': '/srv', ...over })[n] ?? '', '/ws');
const fails = (over: Record<string, string>, re: RegExp) =>
  assert.throws(
    () => read(over),
    (e: unknown) => e instanceof UserError && re.test(e.message),
    JSON.stringify(over),
  );

test('domain: a DNS name; labels 1–63, 253 in all, hyphens inside labels, underscores allowed, no wildcard or trailing dot', () => {
  for (const ok of [
    'example.com',
    'shop.example.com',
    'a',
    'xn--bcher-kva.example',
    'my_site.internal',
    'A-1.B-2.c',
    `${'a'.repeat(63)}.com`,
    Array(4).fill('a'.repeat(61)).join('.'),
  ]) {
    assert.equal(checkDomain(ok), undefined, ok);
    assert.equal(read({ domain: ok }).domain, ok);
  }
  const bad: Array<[string, RegExp]> = [
    ['shop.example.com;id>/tmp/x', /holds ";", ">", "\/"/],
    ['$(id).example.com', /holds "\$", "\(", "\)"/],
    ['a b.com', /holds a space/],
    ["x'.com", /holds "'"/],
    ['*.example.com', /is a wildcard/],
    ['example.com.', /ends with a dot/],
    ['.example.com', /empty label/],
    ['a..b', /empty label/],
    ['-a.com', /starts or ends with "-"/],
    ['a-.com', /starts or ends with "-"/],
    [`${'a'.repeat(64)}.com`, /a label of 64 characters/],
    [Array(5).fill('a'.repeat(60)).join('.'), /a domain name has 253 at most/],
    ['a\nb', /\\x0a/],
  ];
  for (const [domain, re] of bad) {
    assert.match(checkDomain(domain) ?? '', re, domain);
    fails({ domain }, /^input `domain`: ".*" is not a domain name: it .*Give the site's DNS name/s);
  }
});

test('install-dir: an absolute path of letters, digits and . _ / + @ : -, without ".."', () => {
  for (const ok of ['/', '/srv', '/srv/www/shop.example.com', '/home/deploy/app-1_2/v+3@x:y'])
    assert.equal(checkInstallDir(ok), undefined, ok);
  assert.equal(read({ 'install-dir': '/srv/x/' }).installDir, '/srv/x');
  const bad: Array<[string, RegExp]> = [
    ['/srv/x;id>/tmp/x;#', /holds ";", ">", "#"/],
    ['/srv/$(id)', /holds "\$", "\(", "\)"/],
    ['/srv/my dir', /holds a space/],
    ["/srv/it's", /holds "'"/],
    ['/srv/`id`', /holds "`"/],
    ['/srv/a|b&c', /holds "\|", "&"/],
    ['/srv/~x', /holds "~"/],
    ['/srv/a\nb', /holds \\x0a/],
    ['/srv/../etc', /must be an absolute server path without "\.\."/],
    ['srv', /must be an absolute server path/],
  ];
  for (const [dir, re] of bad) {
    assert.match(checkInstallDir(dir) ?? '', re, dir);
    fails(
      { 'install-dir': dir },
      /^input `install-dir`: ".*" (holds|must).*Give the server folder where the domain is installed/s,
    );
  }
});

const VALUES = templateValues(
  'example.com',
  '/srv',
  new Map([
    ['evil', 'x;touch /tmp/canary-unit\'"$(id)`id`'],
    ['spaced', 'my db'],
    ['plain', 'shop_db-1.2'],
    ['empty', ''],
  ]),
);
const fill = (text: string, yaml = true) => resolveCommand(text, VALUES, 'remote-files.yml', yaml, 'Shop');
/** What `sh` makes of a command: its arguments, one per line. */
const argsOf = (command: string) =>
  execFileSync('sh', ['-c', `set -- ${command}; printf '%s\\n' "$@"`], { encoding: 'utf8' });

test('shellQuote: the shell reads back exactly the value, whatever it holds', () => {
  for (const v of ['', 'a b', "it's", "''", '$(id) `id` ${x} \\ " ; | & > < * ? ~ # !', '\n\t']) {
    assert.equal(execFileSync('sh', ['-c', `printf %s ${shellQuote(v)}`], { encoding: 'utf8' }), v);
  }
});

test('remote_prepare: an unquoted placeholder is single-quoted; a plain value goes in as it is', () => {
  assert.equal(fill('pg_dump [% plain %] > /srv/[% plain %].sql'), 'pg_dump shop_db-1.2 > /srv/shop_db-1.2.sql');
  assert.equal(fill('dump [% spaced %] ${spaced}'), "dump 'my db' 'my db'");
  assert.equal(fill('dump [% empty %] x'), "dump '' x");
  assert.equal(fill('ls ${install_dir}/${domain} [% domain %]'), 'ls /srv/example.com example.com');
  // The value is one literal argument: no command ran, nothing was split or expanded.
  const evil = fill('set -- [% evil %]');
  assert.equal(evil, `set -- ${shellQuote('x;touch /tmp/canary-unit\'"$(id)`id`')}`);
  assert.equal(argsOf(fill('[% evil %] /srv/[% spaced %]/x')), 'x;touch /tmp/canary-unit\'"$(id)`id`\n/srv/my db/x\n');
  // Unquoted again after a quoted part closes, and inside $( … ) at the top level.
  assert.equal(fill('echo \'a\' [% spaced %] "b" $(cat [% spaced %])'), "echo 'a' 'my db' \"b\" $(cat 'my db')");
  // `${name}` is a placeholder in YAML/JSON only; in Perl recipes it was Perl's own interpolation.
  assert.equal(resolveCommand('echo ${HOME} [% spaced %]', VALUES, 'Shop.pm', false, 'Shop'), "echo ${HOME} 'my db'");
});

test('remote_prepare: a value with shell syntax where quoting would change the command is refused, naming recipe, file, value and input', () => {
  const contexts: Array<[string, RegExp]> = [
    ["pg_dump '[% spaced %]'", /inside '…' quotes/],
    ['pg_dump "[% spaced %]"', /inside "…" quotes/],
    ['pg_dump "${spaced}"', /inside "…" quotes/],
    ["echo $'[% spaced %]'", /inside \$'…' quotes/],
    ['echo `cat [% spaced %]`', /inside `…` backquotes/],
    ['echo "$(cat [% spaced %])"', /command substitution or \$\{…\} opened inside "…"/],
    ['true # [% spaced %]', /in a # comment/],
    ['cat <<EOF\n[% spaced %]\nEOF', /after a << here-document/],
    ['echo \\[% spaced %]', /right after a backslash/],
    ["sh -c 'dump [% evil %]'", /inside '…' quotes/],
  ];
  for (const [command, where] of contexts) {
    assert.throws(
      () => fill(command),
      (e: unknown) =>
        e instanceof RecipeError &&
        e.message.startsWith('remote-files.yml: recipe Shop: remote_prepare command ') &&
        where.test(e.message) &&
        /its value from input `vars`, "(my db|.*canary-unit.*)", holds/.test(e.message) &&
        /refused, nothing was run/.test(e.message),
      command,
    );
    // The same places take a plain value as it is (and an empty one).
    assert.doesNotThrow(() => fill(command.replace(/spaced|evil/, 'plain')), command);
    assert.doesNotThrow(() => fill(command.replace(/spaced|evil/, 'empty')), command);
  }
  // Quotes closed before the placeholder: unquoted again, so quoted, not refused.
  assert.equal(fill("echo 'it''s' # not a comment\n[% spaced %]"), "echo 'it''s' # not a comment\n'my db'");
  assert.equal(fill('echo a#b [% spaced %]'), "echo a#b 'my db'");
});

test('remote_prepare: `${…}` opened inside "…" nests quotes again; a value beginning with - is refused anywhere (issue #23)', () => {
  // In "${X:-"[% v %]"}" the inner quotes open a new "…": a '…' around the value would be literal there.
  for (const command of ['echo "${X:-"[% spaced %]"}"', 'echo "${X:-[% spaced %]}"', 'echo "${#X} [% spaced %]"']) {
    assert.throws(() => fill(command), /\$\{…\} opened inside "…" quotes.*refused, nothing was run/, command);
    assert.doesNotThrow(() => fill(command.replace('spaced', 'plain')), command);
  }
  // What the shell really does with the value the old rule would have put there: runs it.
  const mark = join(testTempDir('rf-nested-'), 'ran');
  execFileSync('sh', ['-c', `echo "\${X:-"${shellQuote(`$(touch ${mark})`)}"}" >/dev/null`]);
  assert.ok(existsSync(mark), 'inside "${…"…"}" a single-quoted value is not protected');
  const options = new Map([...VALUES, ['dash', '-rf'], ['dashes', '--output=/etc/passwd']]);
  for (const command of ['rm [% dash %] /tmp/x', "rm '[% dash %]'", 'dump --db [% dashes %]', 'dump ${dash}']) {
    assert.throws(
      () => resolveCommand(command, options, 'remote-files.yml', true, 'Shop'),
      /from input `vars`, "--?[a-z=/]+", begins with "-", which the command would read as an option, quoted or not: refused/,
      command,
    );
  }
  // Not at the start of the value: data as before.
  assert.equal(
    resolveCommand('dump --db=x[% plain %]', options, 'remote-files.yml', true, 'Shop'),
    'dump --db=xshop_db-1.2',
  );
});

test('the plan runs remote_prepare through the rule; paths keep their own (values are data there)', () => {
  const recipe = (prepare: string[]): RawRecipe => ({
    name: 'Shop',
    file: 'remote-files.yml',
    remoteFiles: [['/srv/[% spaced %]', 'shop']],
    datadirs: [],
    skip: [],
    prepare,
    restores: [],
  });
  const settings = {
    domain: 'example.com',
    installDir: '/srv',
    dataDir: 'data',
    values: VALUES,
    dollarBraces: () => true,
  };
  const plan = buildPlan([recipe(['dump [% evil %]'])], settings);
  assert.deepEqual(plan.recipes[0]!.prepare, [`dump ${shellQuote('x;touch /tmp/canary-unit\'"$(id)`id`')}`]);
  assert.equal(plan.recipes[0]!.files[0]!.remote, '/srv/my db');
  assert.throws(
    () => buildPlan([recipe(['dump "[% evil %]"'])], settings),
    /recipe Shop: remote_prepare command .* refused/,
  );
});

test('proxy-fingerprint pins the jump host only; host-fingerprint the target only', () => {
  const key = execFileSync(
    'sh',
    ['-c', 'd=$(mktemp -d) && ssh-keygen -q -t ed25519 -N "" -C "" -f $d/k && cat $d/k.pub && rm -r $d'],
    { encoding: 'utf8' },
  ).trim();
  const blob = Buffer.from(key.split(' ')[1]!, 'base64');
  const fp = execFileSync('ssh-keygen', ['-lf', '-'], { input: key, encoding: 'utf8' }).split(' ')[1]!;
  const policy = (fingerprints: string, proxyFingerprints: string) => ({
    knownHosts: '',
    fingerprints,
    proxyFingerprints,
    insecure: false,
  });
  assert.equal(makeHostVerifier(policy(fp, ''), 'target', 22).verify(blob), true);
  assert.equal(makeHostVerifier(policy('', fp), 'jump', 22, 'proxy').verify(blob), true);
  // Crossed over: refused, and the refusal says which input pins which host.
  const jump = makeHostVerifier(policy(fp, ''), 'jump', 22, 'proxy');
  assert.equal(jump.verify(blob), false);
  assert.match(
    jump.refusal!,
    /^Host key of jump host jump:22 is not verified\. Pin it with `known-hosts` .* or `proxy-fingerprint` .*Its fingerprint is in `host-fingerprint`, which pins the target server only; the jump host's key goes in `proxy-fingerprint`/,
  );
  const target = makeHostVerifier(policy('', fp), 'target', 22);
  assert.equal(target.verify(blob), false);
  assert.match(
    target.refusal!,
    /Its fingerprint is in `proxy-fingerprint`, which pins the jump host only; the target server's key goes in `host-fingerprint`/,
  );
  // A malformed proxy-fingerprint names its input.
  assert.throws(
    () => makeHostVerifier(policy('', 'SHA256:short'), 'jump', 22, 'proxy'),
    /^Error: input `proxy-fingerprint`: "SHA256:short" is not a SHA256 fingerprint|input `proxy-fingerprint`/,
  );
  // The input: only with a jump host.
  assert.equal(read({ 'proxy-host': 'jump', 'proxy-fingerprint': fp }).ssh.proxy!.fingerprints, fp);
  fails(
    { 'proxy-fingerprint': fp },
    /^input `proxy-fingerprint` pins the jump host's key, but `proxy-host` is not set/,
  );
});

/** A fake ssh2 client whose one command writes `stdout` and `stderr` bytes, then exits 0. */
function flooding(stdoutBytes: number, stderrBytes: number): Client {
  const client = new EventEmitter();
  const exec = (_command: string, cb: (err: Error | undefined, ch: unknown) => void) => {
    // Readable side: the command's stdout; writable side: its stdin (ignored).
    const ch = Object.assign(new Duplex({ read: () => undefined, write: (_c, _e, done) => done() }), {
      stderr: new PassThrough(),
    });
    cb(undefined, ch);
    setImmediate(() => {
      const chunk = Buffer.alloc(64 * 1024, 'y');
      for (let n = 0; n < stdoutBytes; n += chunk.length) ch.push(chunk);
      for (let n = 0; n < stderrBytes; n += chunk.length) ch.stderr.write(chunk);
      ch.emit('exit', 0);
      let ended = 0;
      const closeAfterBoth = () => ++ended === 2 && ch.emit('close');
      ch.once('end', closeAfterBoth);
      ch.stderr.once('end', closeAfterBoth);
      ch.stderr.end();
      ch.push(null);
    });
    return client;
  };
  return Object.assign(client, { exec }) as unknown as Client;
}

test('a flood of output is cut at OUTPUT_CAP with a note: stderr always, stdout where asked', async () => {
  const r = await new SshSession(flooding(5 * OUTPUT_CAP, 5 * OUTPUT_CAP), 'test:22').exec('yes', {
    maxStdout: OUTPUT_CAP,
  });
  assert.equal(r.stdout.length, OUTPUT_CAP + Buffer.byteLength(TRUNCATED_NOTE));
  assert.ok(r.stdout.toString().endsWith(TRUNCATED_NOTE));
  assert.equal(Buffer.byteLength(r.stderr), OUTPUT_CAP + Buffer.byteLength(TRUNCATED_NOTE));
  assert.ok(r.stderr.endsWith(TRUNCATED_NOTE));
  // Stdout that is data (a listing) is the caller's: all of it unless a cap is asked for.
  const all = await new SshSession(flooding(3 * OUTPUT_CAP, 0), 'test:22').exec('find');
  assert.ok(all.stdout.length >= 3 * OUTPUT_CAP);
  assert.ok(!all.stdout.includes(TRUNCATED_NOTE));
});

/** A fake ssh2 client whose commands start and then say nothing, ever; destroy() is recorded. */
function silent(): Client & { destroyed: boolean } {
  const client = Object.assign(new EventEmitter(), { destroyed: false });
  const exec = (_command: string, cb: (err: Error | undefined, ch: unknown) => void) => {
    const ch = Object.assign(new Duplex({ read: () => undefined, write: (_c, _e, done) => done() }), {
      stderr: new PassThrough(),
      outgoing: { window: 2 << 20 },
    });
    cb(undefined, ch);
    return client;
  };
  const destroy = () => {
    client.destroyed = true;
    client.emit('close');
  };
  return Object.assign(client, { exec, destroy, end: destroy }) as unknown as Client & { destroyed: boolean };
}

test('idle watchdog: a command that makes no progress for idleMs fails naming the host and `timeout`; an unwatched one does not', async (t) => {
  // The watchdog's timer is unref'd (a real connection's socket holds the event loop open); the fake
  // client holds nothing, so without this the test runner would see an empty loop and cancel the test.
  const holdLoop = setInterval(() => undefined, 1000);
  t.after(() => clearInterval(holdLoop));
  const client = silent();
  const session = new SshSession(client, 'stall.example:22', undefined, { idleMs: 400 });
  const t0 = Date.now();
  const quiet = session.exec('sleep 1000', { unwatched: true });
  quiet.catch(() => undefined);
  await assert.rejects(
    session.exec('tar -c big'),
    /^ConnectionLostError: connection to stall\.example:22 lost \(no progress for 0\.4 s: the server sent nothing and acknowledged nothing of ours .*the `timeout` input \(0\.4 s\) bounds this\)$/,
  );
  const took = Date.now() - t0;
  assert.ok(took >= 400 && took < 3000, `took ${took} ms`);
  assert.equal(client.destroyed, true, 'the connection was dropped');
  // The loss reaches everything waiting on the connection, the unwatched command too.
  await assert.rejects(quiet, /lost \(no progress/);

  // Only unwatched commands pending: no stall is declared.
  const calm = new SshSession(silent(), 'calm:22', undefined, { idleMs: 200 });
  const dump = calm.exec('pg_dump > /srv/dump.sql', { unwatched: true });
  const outcome = await Promise.race([
    dump.then(
      () => 'settled',
      () => 'rejected',
    ),
    new Promise((r) => setTimeout(() => r('still running'), 800)),
  ]);
  assert.equal(outcome, 'still running');
  calm.close();
});
