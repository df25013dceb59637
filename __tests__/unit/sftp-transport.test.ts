import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { SFTPWrapper } from 'ssh2';
import { HostileServerError, UserError } from '../../src/errors.js';
import { SftpTransport } from '../../src/transfer/sftp/transport.js';
import type { IncomingFile } from '../../src/transfer/types.js';

/**
 * An in-memory SFTP server behind ssh2's callback API: enough of SFTPWrapper for listing and reading,
 * with knobs for what real servers and hostile ones do (short reads, odd names, a dropped link).
 */
interface Node {
  mode: number;
  uid?: number;
  data?: Buffer;
  /** Size the attributes claim, when the file shrank after being stat'ed. */
  size?: number;
  target?: string;
  /** readdir answer override: raw names, as a hostile server may send them. */
  names?: string[];
  denyList?: boolean;
  denyOpen?: boolean;
  /** r without x: OpenSSH then lists nothing, not even "." */
  noSearch?: boolean;
}

type Cb = (err?: Error, ...rest: unknown[]) => void;

class FakeSftp extends EventEmitter {
  /** Most READs one file had in flight at once. */
  maxReadsInFlight = 0;
  private readonly readsInFlight = new Map<string, number>();
  bytesServed = 0;
  /** Most bytes one READ answers (a server may send less than asked). */
  readLimit = Infinity;
  /** After this many READs every request goes unanswered until the link "drops". */
  dropAfterReads = Infinity;
  private reads = 0;
  private readonly pending = new Set<Cb>();
  private readonly handles = new Map<string, string>();
  /** Folder handles whose one batch was sent. */
  private readonly listed = new Set<string>();

  constructor(private readonly tree: Record<string, Node>) {
    super();
  }

  private answer(cb: Cb, ...args: Parameters<Cb>): void {
    this.pending.add(cb);
    setImmediate(() => {
      if (!this.pending.delete(cb)) return;
      cb(...args);
    });
  }

  private status(code: number, message: string): Error {
    return Object.assign(new Error(message), { code });
  }

  private stats(n: Node) {
    return {
      mode: n.mode,
      uid: n.uid ?? 1000,
      gid: 100,
      size: n.size ?? n.data?.length ?? 4096,
      atime: 1700000000,
      mtime: 1700000000,
    };
  }

  lstat(path: string, cb: Cb): void {
    const n = this.tree[path];
    this.answer(cb, n ? undefined : this.status(2, 'No such file'), n && this.stats(n));
  }

  stat(path: string, cb: Cb): void {
    const parent = this.tree[path.replace(/\/\.$/, '')];
    if (path.endsWith('/.') && parent?.noSearch) return this.answer(cb, this.status(3, 'Permission denied'));
    this.lstat(path.replace(/\/\.$/, ''), cb);
  }

  readlink(path: string, cb: Cb): void {
    this.answer(cb, undefined, this.tree[path]!.target);
  }

  /** ssh2's OPENDIR: an unlistable folder is refused here, as OpenSSH does. */
  opendir(path: string, cb: Cb): void {
    if (this.tree[path]!.denyList) return this.answer(cb, this.status(3, 'Permission denied'));
    const handle = Buffer.from(`d${this.handles.size}`);
    this.handles.set(handle.toString(), path);
    this.answer(cb, undefined, handle);
  }

  /** ssh2's READDIR on a handle: the whole folder in one batch, then EOF (status 1). */
  readdir(handle: Buffer, cb: Cb): void {
    const key = handle.toString();
    if (this.listed.has(key)) return this.answer(cb, this.status(1, 'End of file'));
    this.listed.add(key);
    const path = this.handles.get(key)!;
    const n = this.tree[path]!;
    if (n.noSearch) return this.answer(cb, undefined, []);
    const prefix = path === '/' ? '/' : `${path}/`;
    const names =
      n.names ??
      [
        '.',
        '..',
        ...Object.keys(this.tree).filter(
          (p) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/') && p !== prefix,
        ),
      ].map((p) => p.replace(prefix, ''));
    const entries = names.map((name) => {
      const child = this.tree[prefix + name] ?? { mode: 0o100644 };
      const st = this.stats(child);
      const user = st.uid === 33 ? 'www-data' : String(st.uid);
      return {
        filename: name,
        longname: `-rw-r--r--    1 ${user.padEnd(8)} staff    ${String(st.size).padStart(8)} Nov 14 22:13 ${name}`,
        attrs: st,
      };
    });
    this.answer(cb, undefined, entries);
  }

  open(path: string, _flags: string, _attrs: unknown, cb: Cb): void {
    const n = this.tree[path];
    if (!n) return this.answer(cb, this.status(2, 'No such file'));
    if (n.denyOpen) return this.answer(cb, this.status(3, 'Permission denied'));
    const handle = Buffer.from(`h${this.handles.size}`);
    this.handles.set(handle.toString(), path);
    this.answer(cb, undefined, handle);
  }

  fstat(handle: Buffer, cb: Cb): void {
    this.answer(cb, undefined, this.stats(this.tree[this.handles.get(handle.toString())!]!));
  }

  close(_handle: Buffer, cb: Cb): void {
    this.answer(cb);
  }

  read(handle: Buffer, buffer: Buffer, offset: number, length: number, position: number, cb: Cb): void {
    if (++this.reads > this.dropAfterReads) {
      this.pending.add(cb);
      return;
    }
    const data = this.tree[this.handles.get(handle.toString())!]!.data!;
    const n = Math.max(0, Math.min(length, this.readLimit, data.length - position));
    if (n > 0) data.copy(buffer, offset, position, position + n);
    this.bytesServed += n;
    const key = handle.toString();
    const now = (this.readsInFlight.get(key) ?? 0) + 1;
    this.readsInFlight.set(key, now);
    this.maxReadsInFlight = Math.max(this.maxReadsInFlight, now);
    this.answer(
      (err, ...rest) => {
        this.readsInFlight.set(key, this.readsInFlight.get(key)! - 1);
        cb(err, ...rest);
      },
      undefined,
      n,
      buffer,
      position,
    );
  }

  /** What ssh2 does when the connection goes: every request in flight fails, then the channel ends. */
  drop(): void {
    const pending = [...this.pending];
    this.pending.clear();
    for (const cb of pending) cb(new Error('No response from server'));
    this.emit('end');
  }
}

const transport = (tree: Record<string, Node>, concurrency = 8) => {
  const fake = new FakeSftp(tree);
  return { fake, sftp: new SftpTransport(fake as unknown as SFTPWrapper, { concurrency }) };
};

const DIR = 0o040755;
const FILE = 0o100644;

async function collect(file: IncomingFile): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of file.stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('list: pre-order records, "." and ".." skipped, unreadable and unsearchable folders flagged and not entered', async () => {
  const { sftp } = transport({
    '/srv': { mode: DIR, uid: 33 },
    '/srv/b.txt': { mode: 0o104750, data: Buffer.from('hi') },
    '/srv/a': { mode: DIR, uid: 33 },
    '/srv/a/x': { mode: FILE, data: Buffer.alloc(5) },
    '/srv/link': { mode: 0o120777, target: '../etc/x' },
    '/srv/locked': { mode: 0o040700, denyList: true },
    '/srv/locked/secret': { mode: FILE },
    '/srv/nosearch': { mode: 0o040744, noSearch: true },
    '/srv/nosearch/hidden': { mode: FILE },
  });
  const [listing] = await sftp.list(['/srv']);
  assert.equal(listing!.status, 'ok');
  if (listing!.status !== 'ok') return;
  assert.deepEqual(
    listing!.files.map((f) => [f.rel, f.type, f.readable]),
    [
      ['', 'dir', true],
      ['a', 'dir', true],
      ['a/x', 'file', true],
      ['b.txt', 'file', true],
      ['link', 'symlink', true],
      ['locked', 'dir', false],
      ['nosearch', 'dir', false],
    ],
  );
  const b = listing!.files.find((f) => f.rel === 'b.txt')!;
  assert.equal(b.mode, 0o4750, 'setuid kept, type bits dropped');
  assert.equal(b.size, 2);
  assert.equal(listing!.files.find((f) => f.rel === 'link')!.target, '../etc/x');
  // The root has no longname of its own; its owner's name is learnt from a child's line.
  assert.equal(listing!.files[0]!.user, 'www-data');
  assert.equal(b.user, '1000', 'no name in the line: the id');
  assert.equal(b.group, 'staff');
});

test('list: missing root, unreadable root folder, root file and root link', async () => {
  const { sftp } = transport({
    '/d': { mode: DIR, denyList: true },
    '/f': { mode: FILE, data: Buffer.from('x') },
    '/shut': { mode: FILE, denyOpen: true },
    '/l': { mode: 0o120777, target: '/f' },
  });
  const [missing, denied, file, shut, link] = await sftp.list(['/nope', '/d', '/f', '/shut', '/l']);
  assert.deepEqual(missing, { status: 'missing' });
  assert.deepEqual(denied, { status: 'denied', reason: 'folder not readable' });
  assert.equal(file!.status === 'ok' && file!.files[0]!.type, 'file');
  assert.deepEqual(shut, { status: 'denied', reason: 'file not readable' });
  assert.equal(link!.status === 'ok' && link!.files[0]!.target, '/f');
});

test('list: a name with a slash, a NUL or nothing at all is refused, never joined into a path', async () => {
  for (const name of ['../../etc/passwd', 'a/b', 'x\0y', '']) {
    const { sftp } = transport({ '/srv': { mode: DIR, names: ['.', '..', 'ok', name] } });
    await assert.rejects(
      sftp.list(['/srv']),
      (err: Error) => err instanceof HostileServerError && err.message.includes('/srv'),
    );
  }
  const { sftp } = transport({ '/srv': { mode: DIR, names: ['evil\n::error::x/y'] } });
  await assert.rejects(
    sftp.list(['/srv']),
    (err: Error) => err.message.includes('"evil\\n::error::x/y"') && !err.message.includes('\n'),
  );
});

test('fetch: many reads in flight per file, short reads and a shrunken file put together in order', async () => {
  const big = Buffer.from(Array.from({ length: 3_000_000 }, (_, i) => (i * 7) % 251));
  const { fake, sftp } = transport({
    '/big': { mode: FILE, data: big },
    '/small': { mode: FILE, data: Buffer.from('small') },
    '/shrunk': { mode: FILE, data: big.subarray(0, 50_000), size: 200_000 },
  });
  fake.readLimit = 10_000;
  const got = new Map<string, Buffer>();
  const r = await sftp.fetch(['/big', '/small', '/shrunk'], async (f) => void got.set(f.remote, await collect(f)));
  assert.deepEqual(r, { notSent: [], message: '' });
  assert.equal(
    createHash('sha256').update(got.get('/big')!).digest('hex'),
    createHash('sha256').update(big).digest('hex'),
  );
  assert.equal(got.get('/small')!.toString(), 'small');
  assert.deepEqual(got.get('/shrunk'), big.subarray(0, 50_000));
  assert.ok(fake.maxReadsInFlight > 8 && fake.maxReadsInFlight <= 64, `reads in flight: ${fake.maxReadsInFlight}`);
});

test('fetch: files read ahead of their turn stay within the memory window', async () => {
  const { fake, sftp } = transport(
    { '/a': { mode: FILE, data: Buffer.alloc(4 << 20) }, '/b': { mode: FILE, data: Buffer.alloc(4 << 20) } },
    64,
  );
  await sftp.fetch(['/a', '/b'], async (f) => {
    if (f.remote === '/a') {
      await new Promise((r) => setTimeout(r, 100));
      // 64 files in flight share 64 MiB: 1 MiB each, whatever their size.
      assert.ok(fake.bytesServed <= 2 * (1 << 20) + 256 * 1024, `read ahead: ${fake.bytesServed}`);
    }
    await collect(f);
  });
  assert.equal(fake.bytesServed, 8 << 20);
});

test("fetch: an unreadable or vanished file is not sent, with the server's reason; the others are", async () => {
  const { sftp } = transport({
    '/a': { mode: FILE, data: Buffer.from('a') },
    '/x': { mode: FILE, denyOpen: true },
    '/dir': { mode: DIR },
  });
  const seen: string[] = [];
  const r = await sftp.fetch(
    ['/x', '/gone', '/a', '/dir'],
    async (f) => void seen.push(`${f.remote}=${(await collect(f)).toString()}`),
  );
  assert.deepEqual(seen, ['/a=a']);
  assert.deepEqual(r.notSent, ['/x', '/gone', '/dir']);
  assert.match(r.message, /^\/x: Permission denied$/m);
  assert.match(r.message, /^\/dir: not a regular file$/m);
  const sums = await sftp.checksums(['/a', '/x']);
  assert.deepEqual([...sums.keys()], ['/a']);
  assert.equal(sums.get('/a'), createHash('sha256').update('a').digest('hex'));
});

test('fetch: a dropped connection rejects instead of reporting files as not sent', async () => {
  const { fake, sftp } = transport({
    '/a': { mode: FILE, data: Buffer.alloc(1 << 20) },
    '/b': { mode: FILE, data: Buffer.alloc(10) },
  });
  fake.dropAfterReads = 5;
  setTimeout(() => fake.drop(), 50);
  await assert.rejects(
    sftp.fetch(['/a', '/b'], async (f) => void (await collect(f))),
    /No response from server|connection closed/,
  );
  await assert.rejects(sftp.list(['/a']), /connection closed/, 'later calls fail at once instead of hanging');
});

test('run: SFTP-only accounts cannot run commands', async () => {
  const { sftp } = transport({});
  assert.equal(sftp.canRunCommands, false);
  assert.equal(sftp.name, 'sftp');
  await assert.rejects(sftp.run(), UserError);
});
