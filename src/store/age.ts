import {
  chmodSync,
  closeSync,
  constants,
  createReadStream,
  createWriteStream,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  realpathSync,
  utimesSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Decrypter, Encrypter } from 'age-encryption';
import { UserError } from '../errors.js';
import { safeJoin } from '../plan/paths.js';

/**
 * age encryption of stored content (https://age-encryption.org/v1), through Filippo Valsorda's
 * TypeScript implementation. Content is streamed in 64 KiB age chunks, so a 2 GB file never sits in
 * memory. Only content is encrypted: paths, sizes, modes and mtimes stay readable in the manifest.
 *
 * Secrets: the library's own error messages can quote the key they failed on (bech32 reports
 * "Invalid checksum in <string>"), and a header error quotes the file's first line (which for a
 * plaintext file is the user's data). So library messages are never passed on; every failure is
 * rewritten here into a message that names the input and line, or the stored path, and nothing else.
 */

/** First line of every binary age file; the armored form is never written here. */
const MAGIC = 'age-encryption.org/v1\n';

/** The key lines of a recipients or identity text: age's file format, `#` comments and blanks skipped. */
function keyLines(text: string): Array<{ line: number; value: string }> {
  return text
    .split(/\r?\n/)
    .map((raw, i) => ({ line: i + 1, value: raw.trim() }))
    .filter((l) => l.value !== '' && !l.value.startsWith('#'));
}

/**
 * Validates `age-recipients`: X25519 (`age1…`) and the other native kinds the library encrypts to
 * (post-quantum `age1pq1…`, tag `age1tag1…`). ssh keys are not supported by age-encryption 0.3.
 */
export function parseRecipients(text: string, input = 'age-recipients'): string[] {
  const out: string[] = [];
  for (const { line, value } of keyLines(text)) {
    const at = `${input} line ${line}`;
    // A secret pasted here would end up in workflow files or logs; say what it is without showing it.
    if (/^AGE-SECRET-KEY-/i.test(value))
      throw new UserError(
        `${at}: this is a secret identity (AGE-SECRET-KEY-…), not a recipient; put its public key (age1…, from \`age-keygen -y\`) here and the identity in the \`age-identity\` secret`,
      );
    if (/^(ssh-|ecdsa-|sk-)/.test(value))
      throw new UserError(
        `${at}: ssh public keys are not supported as recipients here; use an age public key (age1…, made by \`age-keygen\`)`,
      );
    try {
      // addRecipient decodes and checks the key (bech32, checksum, length) without any network or I/O.
      new Encrypter().addRecipient(value);
    } catch {
      // The line is not shown: it may be something pasted by mistake that is secret.
      throw new UserError(
        `${at}: not a valid age recipient (expected a public key age1… as printed by \`age-keygen\`)`,
      );
    }
    out.push(value);
  }
  // Encrypting to nobody would store files no key can ever open: refuse rather than lose the data.
  if (out.length === 0) throw new UserError(`${input}: no recipient found (only blank lines and comments)`);
  return [...new Set(out)];
}

/**
 * Validates `age-identity`: the `AGE-SECRET-KEY-1…` (or `-PQ-1…`) lines of an age key file. Every error
 * names only the line number; nothing of the secret text is ever included.
 */
export function parseIdentities(text: string, input = 'age-identity'): string[] {
  const out: string[] = [];
  for (const { line, value } of keyLines(text)) {
    const at = `${input} line ${line}`;
    if (value.startsWith('age1'))
      throw new UserError(
        `${at}: this is a public key (recipient), not an identity; \`${input}\` takes the AGE-SECRET-KEY-1… line of the key file`,
      );
    if (value.startsWith('-----BEGIN'))
      throw new UserError(
        `${at}: ssh or PEM private keys are not supported; use an age identity (AGE-SECRET-KEY-1…, made by \`age-keygen\`)`,
      );
    try {
      new Decrypter().addIdentity(value);
    } catch {
      throw new UserError(
        `${at}: not a valid age identity (expected AGE-SECRET-KEY-1…; the line is not shown because it is secret)`,
      );
    }
    out.push(value);
  }
  // An empty list is left to requireIdentity, which knows what is being restored.
  return [...new Set(out)];
}

/** Refuses to go on without an identity, with the message the user needs to fix it. */
export function requireIdentity(identities: string[], what: string): void {
  if (identities.length === 0)
    throw new UserError(`the stored copy of ${what} is encrypted (age); set the \`age-identity\` input`);
}

/** Ciphertext of `plain`, streamed: read from `plain` only as fast as the result is consumed. */
export function encryptStream(plain: Readable, recipients: string[]): Readable {
  // An Encrypter without recipients writes a header no key matches: the data would be lost.
  if (recipients.length === 0) throw new Error('encryptStream: no recipients');
  const encrypter = new Encrypter();
  for (const r of recipients) encrypter.addRecipient(r);
  const source = pullFrom(plain);
  return pushTo(
    () => encrypter.encrypt(source.stream),
    (err) => err,
    source.close,
  );
}

/**
 * Plaintext of `cipher`, streamed. The header is checked before the first byte comes out, so a wrong
 * identity fails at once; a damaged or cut chunk fails when it is reached (age authenticates every
 * 64 KiB chunk and the end), so a consumer must not keep output from a stream that errored.
 * `what` names the stored path in messages.
 */
export function decryptStream(cipher: Readable, identities: string[], what = 'a stored file'): Readable {
  requireIdentity(identities, what);
  const decrypter = new Decrypter();
  for (const i of identities) decrypter.addIdentity(i);
  const source = pullFrom(cipher);
  return pushTo(
    () => decrypter.decrypt(source.stream),
    (err) => {
      // Reading the stored file failed (ENOENT, EIO…): that error is already the right one.
      if (source.failures.has(err)) return err;
      if (err instanceof Error && err.message === "no identity matched any of the file's recipients") {
        return new UserError(
          `the stored copy of ${what} is encrypted to other recipients: \`age-identity\` does not match any of them (use the identity whose public key was in \`age-recipients\` when it was stored)`,
        );
      }
      return new UserError(
        `the stored copy of ${what} is damaged, truncated or not an age file: it cannot be decrypted`,
      );
    },
    source.close,
  );
}

/**
 * Decrypts the listed files of an encrypted data folder into a plaintext mirror, for a restore to upload
 * from: `destRoot` and every folder in it private (0700), each file with its mode (kept readable and
 * writable by us, as LocalTree stores it) and mtime. Symlinks and folders need no decryption and are
 * not listed; the restore takes them from the manifest.
 */
export async function decryptTree(
  srcRoot: string,
  files: Array<{ rel: string; mode: number; mtime: number }>,
  identities: string[],
  destRoot: string,
): Promise<void> {
  requireIdentity(identities, 'the data folder');
  mkdirSync(destRoot, { recursive: true, mode: 0o700 });
  // mkdir keeps an existing folder's mode (mkdtemp already makes 0700, but nothing else may rely on it).
  chmodSync(destRoot, 0o700);
  const realRoot = realpathSync(srcRoot);
  for (const f of files) {
    const src = safeJoin(srcRoot, f.rel);
    const dest = safeJoin(destRoot, f.rel);
    // The manifest comes from a store; a path that climbs out of the folder is refused, never read or written.
    if (src === null || dest === null || dest === destRoot)
      throw new UserError(`the manifest lists "${f.rel}", a path outside the data folder`);
    // No folder on the way may be a link: the data folder is input, and `www -> /proc/self` would make
    // us read (and upload) the runner's own files.
    const parent = dirname(f.rel);
    const realParent = realOrUndefined(dirname(src));
    if (realParent !== undefined && realParent !== (parent === '.' ? realRoot : join(realRoot, parent))) {
      throw new UserError(
        `the data folder reaches "${f.rel}" through a symbolic link: remote-files never reads through links in the data folder; replace the link with the stored folder`,
      );
    }
    const st = lstatSync(src, { throwIfNoEntry: false });
    if (!st?.isFile())
      throw new UserError(
        `the data folder has no stored file "${f.rel}", which its manifest lists: the stored copy is incomplete`,
      );
    mkdirSync(dirname(dest), { recursive: true, mode: 0o700 });
    // O_NOFOLLOW: a symlink swapped in after the check is refused, not followed out of the folder.
    const input = createReadStream(src, { fd: openSync(src, constants.O_RDONLY | constants.O_NOFOLLOW) });
    // 'wx': the mirror is fresh, so an existing path means a duplicate or a planted link; never overwrite.
    await pipeline(
      decryptStream(input, identities, `"${f.rel}"`),
      createWriteStream(dest, { flags: 'wx', mode: 0o600 }),
    );
    chmodSync(dest, (f.mode & 0o777) | 0o600);
    utimesSync(dest, f.mtime, f.mtime);
  }
}

function realOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
      return undefined;
    throw err;
  }
}

/** True when the file starts with the age header (a regular file only; symlinks are not followed). */
export function isAgeFile(path: string): boolean {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st?.isFile() || st.size < MAGIC.length) return false;
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const head = Buffer.alloc(MAGIC.length);
    const n = readSync(fd, head, 0, head.length, 0);
    return n === head.length && head.toString('latin1') === MAGIC;
  } finally {
    closeSync(fd);
  }
}

/**
 * Node stream → web stream, one chunk per pull. Written by hand rather than Readable.toWeb because
 * on Node 20 toWeb buffers up to highWaterMark *chunks* ahead, unbounded in bytes for a fast file.
 * Errors the Node stream raises are recorded so that callers can tell them from crypto failures.
 */
function pullFrom(r: Readable): { stream: ReadableStream<Uint8Array>; failures: Set<unknown>; close: () => void } {
  const failures = new Set<unknown>();
  const it = r[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let next: IteratorResult<Buffer | string>;
        try {
          next = await it.next();
        } catch (err) {
          failures.add(err);
          throw err;
        }
        if (next.done) controller.close();
        else controller.enqueue(typeof next.value === 'string' ? Buffer.from(next.value) : next.value);
      },
      async cancel() {
        // Ends the iteration, which destroys the Node stream (closes the file).
        await it.return?.();
      },
    },
    { highWaterMark: 0 },
  );
  // A header the library rejects leaves the web stream locked inside it, where nothing can cancel it:
  // destroying the Node stream is the one way to be sure the file is closed.
  return { stream, failures, close: () => void r.destroy() };
}

/**
 * Web stream (made asynchronously) → Node stream, read only as the consumer reads; errors go through
 * `mapError`, and `release` frees the source however it ends.
 */
function pushTo(
  make: () => Promise<ReadableStream<Uint8Array>>,
  mapError: (err: unknown) => unknown,
  release: () => void,
): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    try {
      reader = (await make()).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        // A view, not a copy: Buffer is what the rest of the code (hashing, fs) expects.
        yield Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      }
    } catch (err) {
      throw mapError(err);
    } finally {
      // When the consumer stops early this cancels the chain back to the source; after the end or an
      // error it is a no-op that may reject, which is of no interest.
      await reader?.cancel().catch(() => undefined);
      release();
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}
