// linux-only: stored files keep POSIX modes and symlinks
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  createReadStream,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { generateHybridIdentity, generateIdentity, identityToRecipient } from 'age-encryption';
import { UserError } from '../../src/errors.js';
import {
  decryptStream,
  decryptTree,
  encryptStream,
  isAgeFile,
  parseIdentities,
  parseRecipients,
  requireIdentity,
} from '../../src/store/age.js';
import { LocalTree, TEMP_MARK } from '../../src/transfer/local/tree.js';
import { testTempDir } from '../helpers/temp.js';

let dir: string;
let identity: string;
let recipient: string;
let otherIdentity: string;
/** Every secret made here; no error message may contain any of them, nor their data part. */
const secrets: string[] = [];

before(async () => {
  dir = testTempDir('rf-age-');
  identity = await generateIdentity();
  recipient = await identityToRecipient(identity);
  otherIdentity = await generateIdentity();
  secrets.push(identity, otherIdentity);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A Readable that hands out `data` in chunks of `chunk` bytes, like a network or file stream. */
function chunked(data: Buffer, chunk = 65_000): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
    })(),
    { objectMode: false },
  );
}

async function collect(r: Readable): Promise<Buffer> {
  return Buffer.concat(await r.toArray());
}

/** The error `p` rejects with, which must be a UserError free of every secret. */
async function userError(p: Promise<unknown> | (() => unknown)): Promise<UserError> {
  let caught: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof UserError, `expected a UserError, got ${String(caught)}`);
  assertNoSecret(caught.message);
  return caught;
}

function assertNoSecret(message: string): void {
  for (const s of secrets) {
    // The bech32 data part too: a message quoting it lowercased or cut would still leak the key.
    const data = s.slice(s.lastIndexOf('1') + 1, s.lastIndexOf('1') + 21);
    assert.ok(
      !message.includes(s) && !message.toLowerCase().includes(data.toLowerCase()),
      `secret leaked into: ${message}`,
    );
  }
}

test('round trip: small, empty and multi-MB content (chunked input) come back byte for byte', async () => {
  for (const plain of [Buffer.from('hello, world\n'), Buffer.alloc(0), randomBytes(5 * 1024 * 1024 + 123)]) {
    const cipher = await collect(encryptStream(chunked(plain), [recipient]));
    assert.equal(cipher.subarray(0, 22).toString(), 'age-encryption.org/v1\n');
    assert.ok(cipher.length > plain.length, 'ciphertext carries a header and per-chunk tags');
    if (plain.length > 0)
      assert.equal(
        cipher.indexOf(plain.subarray(0, Math.min(plain.length, 64))),
        -1,
        'plaintext visible in ciphertext',
      );
    const back = await collect(decryptStream(chunked(cipher, 7000), [otherIdentity, identity]));
    assert.equal(back.length, plain.length);
    assert.equal(sha(back), sha(plain));
  }
});

test('encryption streams: the source is read only as far as the output is consumed, and stopping closes it', async () => {
  let produced = 0;
  let destroyed = false;
  const total = 256 * 1024 * 1024;
  const block = Buffer.alloc(64 * 1024, 7);
  const source = new Readable({
    read() {
      if (produced >= total) return void this.push(null);
      produced += block.length;
      this.push(block);
    },
    destroy(err, cb) {
      destroyed = true;
      cb(err);
    },
  });
  const out = encryptStream(source, [recipient]);
  let seen = 0;
  for await (const chunk of out) {
    seen += (chunk as Buffer).length;
    if (seen > 1024 * 1024) break;
  }
  assert.ok(produced < 8 * 1024 * 1024, `read ${produced} bytes ahead for ${seen} bytes of output`);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(destroyed, true, 'an abandoned encryption must close its source');
});

test('a post-quantum recipient round-trips too', async () => {
  const pqIdentity = await generateHybridIdentity();
  secrets.push(pqIdentity);
  const pqRecipient = await identityToRecipient(pqIdentity);
  assert.deepEqual(parseRecipients(pqRecipient), [pqRecipient]);
  assert.deepEqual(parseIdentities(pqIdentity), [pqIdentity]);
  const cipher = await collect(encryptStream(chunked(Buffer.from('pq')), [pqRecipient]));
  assert.equal((await collect(decryptStream(chunked(cipher), [pqIdentity]))).toString(), 'pq');
});

test('LocalTree with encrypt stores ciphertext atomically and returns the plaintext hash and size', async () => {
  const root = join(dir, 'tree');
  const tree = new LocalTree(root, { encrypt: (p) => encryptStream(p, [recipient]) });
  // One file on the small in-memory path, one on the streaming path (over 1 MiB).
  for (const [rel, plain] of [
    ['small.txt', Buffer.from('DB_PASSWORD=hunter2\n'.repeat(50))],
    ['big/blob.bin', randomBytes(3 * 1024 * 1024 + 5)],
  ] as const) {
    const r = await tree.writeFile(rel, chunked(plain), plain.length, 0o640, 1_700_000_000);
    assert.deepEqual(r, { sha256: sha(plain), size: plain.length });
    const abs = join(root, rel);
    const stored = readFileSync(abs);
    assert.notEqual(stored.length, plain.length);
    assert.equal(stored.indexOf(plain.subarray(0, 32)), -1, `${rel}: plaintext on disk`);
    assert.equal(isAgeFile(abs), true);
    assert.equal(statSync(abs).mode & 0o777, 0o640);
    assert.equal(statSync(abs).mtimeMs, 1_700_000_000_000);
    assert.equal(sha(await collect(decryptStream(createReadStream(abs), [identity]))), sha(plain));
  }
  assert.deepEqual(
    readdirSync(root).filter((n) => n.startsWith(TEMP_MARK)),
    [],
  );

  // The announced size is still checked against the plaintext, and a failed write leaves no temp file.
  await assert.rejects(tree.writeFile('short.txt', chunked(Buffer.from('abc')), 4, 0o600, 1), /received 3 bytes/);
  await assert.rejects(
    tree.writeFile('big/short.bin', chunked(Buffer.alloc(2 << 20)), (2 << 20) + 1, 0o600, 1),
    /received 2097152 bytes/,
  );
  assert.deepEqual(
    readdirSync(root).filter((n) => n.startsWith(TEMP_MARK) || n === 'short.txt'),
    [],
  );
  assert.deepEqual(readdirSync(join(root, 'big')), ['blob.bin']);

  // Without the option nothing changes: plaintext on disk.
  const plainTree = new LocalTree(join(dir, 'plain-tree'));
  await plainTree.writeFile('a.txt', chunked(Buffer.from('plain')), 5, 0o644, 1);
  assert.equal(readFileSync(join(dir, 'plain-tree', 'a.txt'), 'utf8'), 'plain');
  assert.equal(isAgeFile(join(dir, 'plain-tree', 'a.txt')), false);
});

test('a wrong identity is a clear UserError that shows no secret', async () => {
  const cipher = await collect(encryptStream(chunked(Buffer.from('secret data')), [recipient]));
  const err = await userError(collect(decryptStream(chunked(cipher), [otherIdentity], '"etc/app.env"')));
  assert.match(err.message, /stored copy of "etc\/app\.env" is encrypted to other recipients/);
  assert.match(err.message, /`age-identity` does not match/);
});

test('damaged ciphertext and plaintext are refused without quoting their content', async () => {
  const plain = randomBytes(200_000);
  const cipher = await collect(encryptStream(chunked(plain), [recipient]));
  const flipped = Buffer.from(cipher);
  flipped[flipped.length - 70_000]! ^= 1;
  assert.match(
    (await userError(collect(decryptStream(chunked(flipped), [identity])))).message,
    /damaged, truncated or not an age file/,
  );
  const cut = cipher.subarray(0, cipher.length - 100);
  assert.match((await userError(collect(decryptStream(chunked(cut), [identity])))).message, /damaged, truncated/);
  // The library would quote the first line of a non-age file: here that is the user's own data.
  const err = await userError(collect(decryptStream(chunked(Buffer.from('TOKEN=abc123\nmore\n')), [identity])));
  assert.doesNotMatch(err.message, /TOKEN|abc123/);
});

test('an error reading the source comes through as itself, not as a crypto error', async () => {
  const failing = () =>
    new Readable({
      read() {
        this.destroy(new Error('EIO: disk on fire'));
      },
    });
  await assert.rejects(collect(encryptStream(failing(), [recipient])), /EIO: disk on fire/);
  await assert.rejects(collect(decryptStream(failing(), [identity])), /EIO: disk on fire/);
});

test('parseRecipients: comments and blanks skipped, a bad line named by number, secrets never echoed', async () => {
  const second = await identityToRecipient(otherIdentity);
  assert.deepEqual(parseRecipients(`# team keys\n\n  ${recipient}  \r\n${second}\n${recipient}\n`), [
    recipient,
    second,
  ]);

  const bad = await userError(() => parseRecipients(`# x\n${recipient}\nage1notakey\n`));
  assert.match(bad.message, /^age-recipients line 3: not a valid age recipient/);
  assert.doesNotMatch(bad.message, /age1notakey/);

  // A corrupted recipient (bad checksum): the library's message would quote it.
  const corrupt = recipient.slice(0, -1) + (recipient.endsWith('q') ? 'p' : 'q');
  assert.match(
    (await userError(() => parseRecipients(corrupt, 'recipients-extra'))).message,
    /^recipients-extra line 1:/,
  );

  const pasted = await userError(() => parseRecipients(`${recipient}\n${identity}`));
  assert.match(pasted.message, /^age-recipients line 2: this is a secret identity/);
  assert.match(
    (await userError(() => parseRecipients('ssh-ed25519 AAAAC3Nza user@host'))).message,
    /line 1: ssh public keys are not supported/,
  );
  assert.match((await userError(() => parseRecipients('# only a comment\n\n'))).message, /no recipient found/);
});

test('parseIdentities: a key file with comments parses; a bad line is named, its text never shown', async () => {
  const keyFile = `# created: 2024-01-01T00:00:00Z\n# public key: ${recipient}\n${identity}\n\n${otherIdentity}\n`;
  assert.deepEqual(parseIdentities(keyFile), [identity, otherIdentity]);
  assert.deepEqual(parseIdentities('# nothing\n'), []);

  // One character changed: the checksum fails, and the library's message would include the whole key.
  const corrupt = identity.slice(0, -1) + (identity.endsWith('Q') ? 'P' : 'Q');
  secrets.push(corrupt);
  const err = await userError(() => parseIdentities(`# key\n${corrupt}\n`));
  assert.match(err.message, /^age-identity line 2: not a valid age identity/);
  assert.ok(!err.message.includes(corrupt.slice(16, 40)));

  const truncated = identity.slice(0, 40);
  assert.ok(!(await userError(() => parseIdentities(truncated, 'restore-key'))).message.includes(truncated.slice(16)));
  assert.match(
    (await userError(() => parseIdentities(recipient))).message,
    /line 1: this is a public key \(recipient\), not an identity/,
  );
  assert.match(
    (await userError(() => parseIdentities('-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA\n'))).message,
    /line 1: ssh or PEM private keys are not supported/,
  );
});

test('requireIdentity, and decryptStream without an identity, give the input to set', async () => {
  assert.doesNotThrow(() => requireIdentity([identity], 'x'));
  const err = await userError(() => requireIdentity([], 'example.com'));
  assert.equal(err.message, 'the stored copy of example.com is encrypted (age); set the `age-identity` input');
  assert.match(
    (await userError(() => decryptStream(chunked(Buffer.from('x')), [], '"a"'))).message,
    /set the `age-identity` input/,
  );
});

test('decryptTree writes a private plaintext mirror with modes and mtimes', async () => {
  const src = join(dir, 'enc-src');
  const tree = new LocalTree(src, { encrypt: (p) => encryptStream(p, [recipient]) });
  const files = [
    { rel: 'conf/app.env', mode: 0o640, mtime: 1_600_000_000, data: Buffer.from('KEY=1\n') },
    { rel: 'bin/run', mode: 0o755, mtime: 1_650_000_000, data: Buffer.from('#!/bin/sh\n') },
    { rel: 'readonly', mode: 0o444, mtime: 1_700_000_001, data: Buffer.alloc(0) },
    { rel: 'data/big.bin', mode: 0o600, mtime: 1_700_000_002, data: randomBytes(1_500_000) },
  ];
  for (const f of files) await tree.writeFile(f.rel, chunked(f.data), f.data.length, f.mode, f.mtime);

  const dest = join(dir, 'mirror');
  await decryptTree(
    src,
    files.map(({ rel, mode, mtime }) => ({ rel, mode, mtime })),
    [identity],
    dest,
  );
  assert.equal(statSync(dest).mode & 0o777, 0o700);
  assert.equal(statSync(join(dest, 'conf')).mode & 0o777, 0o700);
  for (const f of files) {
    const abs = join(dest, f.rel);
    assert.equal(sha(readFileSync(abs)), sha(f.data), f.rel);
    // As LocalTree keeps it: the server's bits, always readable and writable by us.
    assert.equal(statSync(abs).mode & 0o777, (f.mode & 0o777) | 0o600, f.rel);
    assert.equal(statSync(abs).mtimeMs, f.mtime * 1000, f.rel);
  }

  const wrong = await userError(
    decryptTree(src, [{ rel: 'conf/app.env', mode: 0o600, mtime: 1 }], [otherIdentity], join(dir, 'mirror-wrong')),
  );
  assert.match(wrong.message, /"conf\/app\.env" is encrypted to other recipients/);
  assert.match(
    (
      await userError(
        decryptTree(
          src,
          [{ rel: '../enc-src/bin/run', mode: 0o600, mtime: 1 }],
          [identity],
          join(dir, 'mirror-escape'),
        ),
      )
    ).message,
    /outside the data folder/,
  );
  assert.match(
    (await userError(decryptTree(src, [{ rel: 'gone', mode: 0o600, mtime: 1 }], [identity], join(dir, 'mirror-gone'))))
      .message,
    /no stored file "gone"/,
  );
  await userError(decryptTree(src, [], [], join(dir, 'mirror-none')));
});

test('isAgeFile checks the header of a regular file only', async () => {
  const d = join(dir, 'isage');
  mkdirSync(d);
  writeFileSync(join(d, 'enc'), await collect(encryptStream(chunked(Buffer.from('x')), [recipient])));
  writeFileSync(join(d, 'plain'), 'age-encryption.org/v2\nnot really');
  writeFileSync(join(d, 'short'), 'age-encryption.org/v1');
  symlinkSync('enc', join(d, 'link'));
  assert.equal(isAgeFile(join(d, 'enc')), true);
  assert.equal(isAgeFile(join(d, 'plain')), false);
  assert.equal(isAgeFile(join(d, 'short')), false);
  assert.equal(isAgeFile(join(d, 'link')), false);
  assert.equal(isAgeFile(join(d, 'missing')), false);
  assert.equal(isAgeFile(d), false);
});
