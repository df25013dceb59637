import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, posix } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ssh2, { type Attributes, type SFTPWrapper } from 'ssh2';
import { baseForm } from '../../src/transfer/manifest/portable-names.js';
import { recipeWorkspace, runAction, type ActionResult } from '../helpers/run-action.js';
import { refused } from '../helpers/outcome.js';
import { treePicture } from '../helpers/tree.js';
import { listingRecord, rootSh, sshInputs, startWrappedSshd, type Sshd } from '../helpers/sshd.js';

// Hostile servers, end to end through the committed bundle. Three kinds: a real sshd whose fetch
// command is replaced by a crafted tar stream; an SFTP server written here (ssh2's server side) that
// answers listings with names no file system has; and a real server whose file names carry newlines,
// control characters and workflow-command text. Whatever the server sends, nothing is written outside
// the data folder, each crafted stream is refused with a message that names it, and the log carries no
// workflow command the action did not issue.

const DOMAIN = 'example.com';
/** Files the action must never create, wherever a crafted name points. */
const ESCAPES = [
  '/tmp/rf-hostile-escaped.txt',
  '/tmp/rf-hostile-pax.txt',
  '/tmp/rf-hostile-longname.txt',
  '/tmp/rf-hostile-sftp.txt',
  '/tmp/rf-hostile-link.txt',
  '/tmp/rf-hostile-listdir',
  '/tmp/rf-hostile-absdir',
];
const counts = { archives: 0, listings: 0, names: 0 };
// ssh2 is CommonJS: its server side is reached through the default export.
const { Server, utils } = ssh2;

let sshd: Sshd;
/**
 * The hostile wrapper's folder: `current.tar`, when present, replaces the archive of every fetch, and
 * `current.list` the output of every listing.
 */
let work: string;
let srv: string;

before(async () => {
  for (const p of ESCAPES) rmSync(p, { recursive: true, force: true });
  // Every command of the shell account goes through the wrapper: honest (probe, listing) except the
  // fetch and the listing, whose output it swaps for a crafted one when the test has put one in place.
  ({ sshd, work } = await startWrappedSshd('hostile2', [
    'if [[ "$SSH_ORIGINAL_COMMAND" == *--hard-dereference* && -f "$here/current.tar" ]]; then cat >/dev/null; cat "$here/current.tar"; exit 0; fi',
  ]));
  srv = sshd.users.shell.scratch;
  rootSh(
    `mkdir -p '${srv}/victim' && printf fine > '${srv}/victim/a.txt' && head -c 2000000 /dev/zero > '${srv}/victim/big.bin' && chown -R rf-shell: '${srv}/victim'`,
  );
});

after(async () => {
  await sshd?.stop();
  console.log(
    `hostile: ${counts.archives} crafted archives refused, ${counts.listings} crafted listings (tar and SFTP) handled, ${counts.names} hostile file names logged safely; 0 writes outside the data folder`,
  );
});

function workspace(recipe = '  Victim:\n    remote_files:\n      "${install_dir}/victim": victim\n'): string {
  const ws = recipeWorkspace('rf-hostile-', recipe);
  mkdirSync(join(ws, 'elsewhere'));
  writeFileSync(join(ws, 'elsewhere', 'keep.txt'), 'keep');
  return ws;
}

function shellInputs(extra: Record<string, string> = {}): Record<string, string> {
  return sshInputs(
    sshd,
    { domain: DOMAIN, installDir: srv, pin: 'host-fingerprint' },
    {
      mode: 'backup',
      timeout: '10',
      retries: '0',
      store: 'none',
      // The crafted streams are raw tar: on a loaded machine `auto` may measure loopback as a slow link.
      compression: 'none',
      ...extra,
    },
  );
}

/**
 * Nothing outside the workspace's data folder changed, no crafted escape target exists, and the data
 * folder holds only what `allowed` accepts (no temp file either).
 */
function assertContained(
  ws: string,
  before: Map<string, string>,
  allowed: (rel: string) => boolean,
  context: string,
): void {
  const outside = (t: Map<string, string>) => new Map([...t].filter(([p]) => p !== 'data' && !p.startsWith('data/')));
  assert.deepEqual(
    outside(treePicture(ws)),
    outside(before),
    `${context}: the workspace outside the data folder changed`,
  );
  for (const p of ESCAPES) assert.ok(!existsSync(p), `${context}: ${p} was written`);
  // The manifest's folder and the domain folder's own .gitattributes are ours.
  const stored = [...treePicture(join(ws, 'data', DOMAIN)).keys()].filter(
    (p) => !p.startsWith('.remote-files') && p !== '.gitattributes',
  );
  assert.deepEqual(
    stored.filter((p) => !allowed(p)),
    [],
    `${context}: unexpected paths in the data folder`,
  );
}

// ---------------------------------------------------------------------------------------------------
// Crafted tar streams, encoded byte by byte here: a library would refuse to write most of them.

interface Member {
  name: string;
  /** ustar typeflag: 0 file, 1 hard link, 2 symlink, 3 char device, 4 block device, x pax, L GNU long name. */
  type: '0' | '1' | '2' | '3' | '4' | 'x' | 'L';
  body?: Buffer | string;
  /** The size the header declares; the body's length unless a lie is wanted. */
  size?: number;
  linkname?: string;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function ustarHeader(m: Member, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(m.name, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100);
  h.write(octal(1001, 8), 108);
  h.write(octal(1001, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(1_600_000_000, 12), 136);
  h.write('        ', 148);
  h.write(m.type, 156);
  h.write(m.linkname ?? '', 157, 100, 'utf8');
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.write('rf-shell', 265);
  h.write('rf-shell', 297);
  h.write(octal(m.type === '3' ? 1 : m.type === '4' ? 8 : 0, 8), 329);
  h.write(octal(m.type === '3' ? 3 : 0, 8), 337);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148);
  return h;
}

/** Members, each body padded to 512; `complete: false` stops right after the last body (no end blocks). */
function craftTar(members: Member[], complete = true): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const body = Buffer.from(m.body ?? '');
    parts.push(ustarHeader(m, m.size ?? body.length), body);
    if (complete || m !== members.at(-1)) parts.push(Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  if (complete) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A pax extended header whose `path` record renames the member that follows. */
function paxPath(path: string): Member {
  const record = (len: number) => `${len} path=${path}\n`;
  let len = record(0).length;
  while (record(len).length !== len) len = record(len).length;
  return { name: 'PaxHeader/x', type: 'x', body: record(len) };
}

describe('crafted tar streams (tar transport)', () => {
  const A = () => `${srv}/victim/a.txt`;
  const BIG = () => `${srv}/victim/big.bin`;
  const cases: Array<{ name: string; members: () => Member[]; complete?: boolean; expect: RegExp }> = [
    {
      name: 'a hard link to /etc/passwd under a requested name',
      members: () => [{ name: A(), type: '1', linkname: '/etc/passwd' }],
      expect: /a\.txt.* as a link entry.*refusing/,
    },
    {
      name: 'a hard link to a path outside, under a name nobody asked for',
      members: () => [{ name: '/tmp/rf-hostile-escaped.txt', type: '1', linkname: A() }],
      expect: /rf-hostile-escaped\.txt.*not requested.*refusing/,
    },
    {
      name: 'a character device under a requested name',
      members: () => [{ name: A(), type: '3' }],
      expect: /a\.txt.* as a character-device entry.*refusing/,
    },
    {
      name: 'a block device under a requested name',
      members: () => [{ name: BIG(), type: '4' }],
      expect: /big\.bin.* as a block-device entry.*refusing/,
    },
    {
      // Declaring its listed size (a larger one is cut off at its header: trust-received.test.ts).
      name: 'a member declaring its 2 MB whose stream ends after 4 KB',
      members: () => [{ name: BIG(), type: '0', size: 2_000_000, body: Buffer.alloc(4096, 7) }],
      complete: false,
      expect: /archive the server sent is broken in ".*big\.bin": Unexpected end of data; refusing it/,
    },
    {
      name: 'the same member twice',
      members: () => [
        { name: A(), type: '0', body: 'one!' },
        { name: A(), type: '0', body: 'two!' },
      ],
      expect: /a\.txt.*twice.*refusing/,
    },
    {
      name: 'a pax header renaming a requested member out of the folder',
      members: () => [paxPath('/tmp/rf-hostile-pax.txt'), { name: A(), type: '0', body: 'x' }],
      expect: /rf-hostile-pax\.txt.*not requested.*refusing/,
    },
    {
      name: 'a GNU long name climbing out',
      members: () => [
        { name: '././@LongLink', type: 'L', body: '../../../../../../tmp/rf-hostile-longname.txt\0' },
        { name: A(), type: '0', body: 'x' },
      ],
      expect: /rf-hostile-longname\.txt.*not requested.*refusing/,
    },
  ];

  for (const c of cases) {
    test(`refuses ${c.name}, and writes nothing outside the data folder`, async () => {
      writeFileSync(join(work, 'current.tar'), craftTar(c.members(), c.complete ?? true));
      try {
        const ws = workspace();
        const before = treePicture(ws);
        const r = await runAction(shellInputs({ transport: 'tar' }), { workspace: ws });
        refused(r, c.expect, c.name);
        assertContained(ws, before, (p) => ['victim', 'victim/a.txt', 'victim/big.bin'].includes(p), c.name);
        // Whatever did land in the data folder is a whole file of a requested name, never the 1 GB claim.
        const big = join(ws, 'data', DOMAIN, 'victim', 'big.bin');
        if (existsSync(big)) assert.ok(statSync(big).size <= 2_000_000, 'no 1 GB file');
        counts.archives++;
      } finally {
        rmSync(join(work, 'current.tar'), { force: true });
      }
    });
  }
});

describe('crafted listings (tar transport)', () => {
  const rec = listingRecord;
  const listing = (...records: string[]) => `E\0${rec('d', '')}${records.join('')}`;
  const cases: Array<{ name: string; list: string; expect: RegExp }> = [
    {
      name: 'a folder that climbs out with ".."',
      list: listing(rec('f', 'a.txt'), rec('d', `${'../'.repeat(12)}tmp/rf-hostile-listdir`)),
      expect: /rf-hostile-listdir", which is not a plain relative path; refusing the listing/,
    },
    {
      name: 'an absolute folder',
      list: listing(rec('d', '/tmp/rf-hostile-absdir')),
      expect: /rf-hostile-absdir", which is not a plain relative path; refusing the listing/,
    },
    {
      name: 'a file below a link to /tmp',
      list: listing(rec('l', 'sub', '/tmp'), rec('f', 'sub/rf-hostile-link.txt')),
      expect: /sub\/rf-hostile-link\.txt", which is not inside a folder listed before it; refusing the listing/,
    },
    {
      name: 'the same name twice',
      list: listing(rec('f', 'a.txt'), rec('f', 'a.txt')),
      expect: /a\.txt", twice; refusing the listing/,
    },
    {
      name: 'a listing without its root',
      list: `E\0${rec('f', 'a.txt')}`,
      expect: /a\.txt", where the entry itself was expected first; refusing the listing/,
    },
  ];
  for (const c of cases) {
    test(`refuses ${c.name}, and writes nothing outside the data folder`, async () => {
      writeFileSync(join(work, 'current.list'), c.list);
      try {
        const ws = workspace();
        const before = treePicture(ws);
        const r = await runAction(shellInputs({ transport: 'tar' }), { workspace: ws });
        refused(r, c.expect, c.name);
        assertContained(ws, before, () => false, c.name);
        counts.listings++;
      } finally {
        rmSync(join(work, 'current.list'), { force: true });
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// A crafted SFTP server: ssh2's server side, any login accepted, a listing chosen by each test.

interface FakeEntry {
  name: string;
  kind: 'file' | 'dir' | 'symlink';
  content?: string;
  target?: string;
}

interface FakeSftp {
  port: number;
  fingerprint: string;
  /** Every request the client made, `OP path`, for asserting what it never asked for. */
  requests: string[];
  close(): Promise<void>;
}

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** Serves `root` as a folder whose listing (and its subfolders', by path) the test writes. */
async function startFakeSftp(root: string, listings: Record<string, FakeEntry[]>): Promise<FakeSftp> {
  // ssh2 now and then generates an ed25519 key its own parser calls malformed (seen once in ~30 full
  // runs): draw again rather than fail a test that is not about keys.
  let keys = utils.generateKeyPairSync('ed25519');
  for (let i = 0; i < 5 && utils.parseKey(keys.private) instanceof Error; i++)
    keys = utils.generateKeyPairSync('ed25519');
  const blob = Buffer.from(keys.public.split(' ')[1]!, 'base64');
  const fingerprint = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
  const requests: string[] = [];
  const { STATUS_CODE } = utils.sftp;

  const attrsOf = (kind: FakeEntry['kind'], content = ''): Attributes => ({
    mode: kind === 'dir' ? S_IFDIR | 0o755 : kind === 'symlink' ? S_IFLNK | 0o777 : S_IFREG | 0o644,
    uid: 1001,
    gid: 1001,
    size: Buffer.byteLength(content),
    atime: 1_600_000_000,
    mtime: 1_600_000_000,
  });
  /** What a path names: the root, a listed folder, or an entry of its parent's listing. */
  const lookup = (path: string): FakeEntry | undefined => {
    const p = path.endsWith('/.') ? path.slice(0, -2) : path;
    if (p === root || listings[p]) return { name: posix.basename(p), kind: 'dir' };
    return listings[posix.dirname(p)]?.find((e) => e.name === posix.basename(p));
  };

  const serve = (sftp: SFTPWrapper) => {
    const handles = new Map<string, { path: string; listed?: boolean }>();
    let next = 0;
    const handle = (path: string) => {
      const h = String(next++);
      handles.set(h, { path });
      return Buffer.from(h);
    };
    sftp.on('REALPATH', (id, path) => {
      requests.push(`REALPATH ${path}`);
      const p = path === '.' ? root : path;
      sftp.name(id, [{ filename: p, longname: p, attrs: attrsOf('dir') }]);
    });
    for (const op of ['LSTAT', 'STAT'] as const) {
      sftp.on(op, (id: number, path: string) => {
        requests.push(`${op} ${path}`);
        const e = lookup(path);
        if (e) sftp.attrs(id, attrsOf(e.kind, e.content));
        else sftp.status(id, STATUS_CODE.NO_SUCH_FILE);
      });
    }
    sftp.on('OPENDIR', (id, path) => {
      requests.push(`OPENDIR ${path}`);
      if (lookup(path)?.kind === 'dir') sftp.handle(id, handle(path));
      else sftp.status(id, STATUS_CODE.NO_SUCH_FILE);
    });
    sftp.on('READDIR', (id, h) => {
      const open = handles.get(h.toString());
      if (!open || open.listed) return sftp.status(id, STATUS_CODE.EOF);
      open.listed = true;
      requests.push(`READDIR ${open.path}`);
      const entries = listings[open.path] ?? [];
      sftp.name(
        id,
        entries.map((e) => ({
          filename: e.name,
          longname: `-rw-r--r--    1 rf-shell rf-shell ${Buffer.byteLength(e.content ?? '')} Jan  1 00:00 ${e.name}`,
          attrs: attrsOf(e.kind, e.content),
        })),
      );
    });
    sftp.on('READLINK', (id, path) => {
      requests.push(`READLINK ${path}`);
      const e = lookup(path);
      if (e?.kind === 'symlink') sftp.name(id, [{ filename: e.target!, longname: e.target!, attrs: {} as Attributes }]);
      else sftp.status(id, STATUS_CODE.NO_SUCH_FILE);
    });
    sftp.on('OPEN', (id, path) => {
      requests.push(`OPEN ${path}`);
      if (lookup(path)?.kind === 'file') sftp.handle(id, handle(path));
      else sftp.status(id, STATUS_CODE.NO_SUCH_FILE);
    });
    sftp.on('FSTAT', (id, h) => {
      const e = lookup(handles.get(h.toString())?.path ?? '');
      if (e) sftp.attrs(id, attrsOf(e.kind, e.content));
      else sftp.status(id, STATUS_CODE.FAILURE);
    });
    sftp.on('READ', (id, h, offset, length) => {
      const path = handles.get(h.toString())?.path ?? '';
      requests.push(`READ ${path}`);
      const content = Buffer.from(lookup(path)?.content ?? '');
      if (offset >= content.length) sftp.status(id, STATUS_CODE.EOF);
      else sftp.data(id, content.subarray(offset, offset + length));
    });
    sftp.on('CLOSE', (id, h) => {
      handles.delete(h.toString());
      sftp.status(id, STATUS_CODE.OK);
    });
    // A backup only reads: any write-like request is recorded (and refused).
    for (const op of ['WRITE', 'SETSTAT', 'FSETSTAT', 'MKDIR', 'REMOVE', 'RMDIR', 'RENAME', 'SYMLINK'] as const) {
      sftp.on(op, (id: number, ...args: unknown[]) => {
        requests.push(`${op} ${String(args[0])}`);
        sftp.status(id, STATUS_CODE.PERMISSION_DENIED);
      });
    }
  };

  const server = new Server({ hostKeys: [keys.private] }, (client) => {
    client.on('error', () => undefined);
    client.on('authentication', (ctx) => ctx.accept());
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        session.on('sftp', (acceptSftp) => serve(acceptSftp()));
        // No shell: exec is refused, as on an SFTP-only account.
        session.on('exec', (_accept, reject) => reject());
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    fingerprint,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('crafted SFTP listings (an ssh2 server written here)', () => {
  const ROOT = '/srv/victim';
  const legit: FakeEntry = { name: 'a.txt', kind: 'file', content: 'fine' };
  const cases: Array<{
    name: string;
    listings: Record<string, FakeEntry[]>;
    expect: RegExp | 'stored';
    allowed: string[];
  }> = [
    {
      name: 'a name that climbs out with "../"',
      listings: {
        [ROOT]: [legit, { name: '../../../../../../tmp/rf-hostile-sftp.txt', kind: 'file', content: 'pwned' }],
      },
      expect: /rf-hostile-sftp\.txt.* not a plain file name; refusing the listing/,
      allowed: [],
    },
    {
      name: 'a name with a "/" inside',
      listings: { [ROOT]: [legit, { name: 'sub/../../escaped', kind: 'file', content: 'pwned' }] },
      expect: /sub\/\.\.\/\.\.\/escaped.* not a plain file name; refusing the listing/,
      allowed: [],
    },
    {
      name: 'an absolute name',
      listings: { [ROOT]: [{ name: '/tmp/rf-hostile-sftp.txt', kind: 'file', content: 'pwned' }, legit] },
      expect: /rf-hostile-sftp\.txt.* not a plain file name; refusing the listing/,
      allowed: [],
    },
    {
      name: 'a name with a NUL byte',
      listings: { [ROOT]: [legit, { name: 'a\0b', kind: 'file', content: 'pwned' }] },
      expect: /a\\x00b.* not a plain file name; refusing the listing/,
      allowed: [],
    },
    {
      name: 'an empty name',
      listings: { [ROOT]: [legit, { name: '', kind: 'file', content: 'pwned' }] },
      expect: /"" .* not a plain file name; refusing the listing/,
      allowed: [],
    },
    {
      // Every server lists "." and ".."; as files with content they are still skipped, never opened.
      name: '".." and "." listed as files with content',
      listings: {
        [ROOT]: [{ name: '..', kind: 'file', content: 'pwned' }, { name: '.', kind: 'file', content: 'pwned' }, legit],
      },
      expect: 'stored',
      allowed: ['victim', 'victim/a.txt'],
    },
    {
      // The same name as a link to /tmp and as a folder holding a file: stored, the file would sit below
      // the link, and a restore would read it through the link (from /tmp, or the runner's ~/.ssh).
      name: 'a name listed twice: a link to /tmp and a folder with a file',
      listings: {
        [ROOT]: [legit, { name: 'sub', kind: 'symlink', target: '/tmp' }, { name: 'sub', kind: 'dir' }],
        [`${ROOT}/sub`]: [{ name: 'rf-hostile-link.txt', kind: 'file', content: 'pwned' }],
      },
      expect: /"sub" twice in \/srv\/victim; refusing the listing/,
      allowed: [],
    },
  ];

  for (const c of cases) {
    test(`${c.expect === 'stored' ? 'stores safely' : 'refuses'} ${c.name}; nothing written outside the data folder`, async () => {
      const fake = await startFakeSftp(ROOT, c.listings);
      try {
        const ws = workspace(`  Victim:\n    remote_files:\n      ${ROOT}: victim\n`);
        const before = treePicture(ws);
        const r = await runAction(
          {
            host: '127.0.0.1',
            port: String(fake.port),
            username: 'anyone',
            password: 'anything',
            'host-fingerprint': fake.fingerprint,
            mode: 'backup',
            domain: DOMAIN,
            'install-dir': '/srv',
            transport: 'sftp',
            compression: 'none',
            timeout: '10',
            retries: '0',
            store: 'none',
          },
          { workspace: ws },
        );
        if (c.expect === 'stored') {
          assert.equal(r.code, 0, `${c.name}\n${r.stdout}\n${r.stderr}`);
          assert.equal(readFileSync(join(ws, 'data', DOMAIN, 'victim', 'a.txt'), 'utf8'), 'fine');
        } else {
          refused(r, c.expect, c.name);
          assert.ok(!existsSync(join(ws, 'data', DOMAIN, 'victim', 'a.txt')), 'a refused listing salvages nothing');
        }
        assertContained(ws, before, (p) => c.allowed.includes(p), c.name);
        // The crafted names were never opened, and a backup asked the server to write nothing.
        assert.deepEqual(
          fake.requests.filter((q) => /^(OPEN|READ) /.test(q) && !q.endsWith(`${ROOT}/a.txt`)),
          [],
          fake.requests.join('\n'),
        );
        assert.deepEqual(
          fake.requests.filter((q) => /^(WRITE|SETSTAT|FSETSTAT|MKDIR|REMOVE|RMDIR|RENAME|SYMLINK) /.test(q)),
          [],
        );
        counts.listings++;
      } finally {
        await fake.close();
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// Names that would be workflow commands if a log line began with them.

/** Workflow commands the action itself issues; anything else at the start of a line was injected. */
const OWN_COMMANDS = new Set(['add-mask', 'group', 'endgroup', 'debug', 'warning', 'error', 'notice']);

const EVIL_NAMES = [
  'nl\n::error::INJECTED-newline',
  '::warning::INJECTED-leading',
  'cr\r::error::INJECTED-cr',
  'crlf\r\n::error::INJECTED-crlf',
  '::set-output name=changed::INJECTED-set-output',
  '%0A::error::INJECTED-percent',
  'esc\x1b[2J\x07bell\x08back',
  'tab\tname\x7f',
  'sep\u2028ls\u0085nel',
  '::add-mask::INJECTED-mask',
  '::stop-commands::INJECTED-stop',
];
const EVIL_DIR = 'dir\n::group::INJECTED-dir';

/**
 * No line of the log — split as the runner splits it, on CR, LF or CRLF — starts a workflow command
 * the action does not issue, and none of the action's own starts with injected text.
 */
function assertNoInjection(r: ActionResult, context: string): void {
  for (const line of r.stdout.split(/\r\n|\r|\n/)) {
    const t = line.trimStart();
    if (!t.startsWith('::')) continue;
    const command = /^::([A-Za-z-]+)/.exec(t)?.[1] ?? '';
    assert.ok(OWN_COMMANDS.has(command), `${context}: an injected workflow command: ${JSON.stringify(line)}`);
    assert.doesNotMatch(
      t,
      /^::[A-Za-z-]+(?: [^:]*)?::[^\n]{0,20}INJECTED/,
      `${context}: injected text starts a command: ${JSON.stringify(line)}`,
    );
  }
}

describe('file names that look like workflow commands, on a real server', () => {
  /** Creates the evil names in `dir` (as root: a shell would mangle them) and hands them to `owner`. */
  function plant(dir: string, owner: string): void {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, EVIL_DIR), { recursive: true });
    for (const name of EVIL_NAMES) writeFileSync(join(dir, name), `content of ${JSON.stringify(name)}`);
    writeFileSync(join(dir, EVIL_DIR, EVIL_NAMES[0]!), 'nested');
    rootSh(`chown -R ${owner}: '${dir}'`);
    // One more the account may not read, so the names reach an error message and a warning too.
    const locked = join(dir, '::error::INJECTED-denied\nline');
    writeFileSync(locked, 'locked');
    chownSync(locked, 0, 0);
    chmodSync(locked, 0o600);
  }

  function assertSalvaged(ws: string): void {
    const stored = join(ws, 'data', DOMAIN, 'evil');
    // Stored under portable names (control characters and `:` percent-encoded, behind a leading %).
    for (const name of EVIL_NAMES)
      assert.equal(
        readFileSync(join(stored, baseForm(name)), 'utf8'),
        `content of ${JSON.stringify(name)}`,
        JSON.stringify(name),
      );
    assert.equal(readFileSync(join(stored, baseForm(EVIL_DIR), baseForm(EVIL_NAMES[0]!)), 'utf8'), 'nested');
  }

  for (const transport of ['tar', 'sftp'] as const) {
    test(`${transport}: backup (failing, then passing) and restore log no injected command; the names survive the round trip`, async () => {
      const onSftp = transport === 'sftp';
      const dir = onSftp ? join(sshd.users.sftp.data, 'evil') : join(srv, 'evil');
      plant(dir, onSftp ? 'rf-sftp' : 'rf-shell');
      const ws = workspace(`  Evil:\n    remote_files:\n      "\${install_dir}/evil": evil\n`);
      const inputs = shellInputs({ transport, ...(onSftp && { username: 'rf-sftp', 'install-dir': '/data' }) });
      const debug = { env: { ACTIONS_STEP_DEBUG: 'true', RUNNER_DEBUG: '1' } };
      const denied = await runAction(inputs, { workspace: ws, ...debug });
      const msg = refused(denied, /not readable/, `${transport}: denied`);
      assert.match(msg, /INJECTED-denied/, 'the denied name is in the message, as escaped data');
      assertNoInjection(denied, `${transport}: a failing backup`);
      const passed = await runAction({ ...inputs, 'allow-denied': 'true' }, { workspace: ws, ...debug });
      assert.equal(passed.code, 0, passed.stdout);
      assertNoInjection(passed, `${transport}: a passing backup`);
      assert.equal(passed.stdout.split('\n').filter((l) => l.startsWith('::error::')).length, 0);
      assertSalvaged(ws);
      rootSh(`rm -rf '${dir}'`);
      const restored = await runAction({ ...inputs, mode: 'restore' }, { workspace: ws, ...debug });
      assert.equal(restored.code, 0, restored.stdout);
      assertNoInjection(restored, `${transport}: a restore`);
      for (const name of EVIL_NAMES)
        assert.equal(
          readFileSync(join(dir, name), 'utf8'),
          `content of ${JSON.stringify(name)}`,
          `restored ${JSON.stringify(name)}`,
        );
      counts.names += EVIL_NAMES.length + 2;
    });
  }
});
