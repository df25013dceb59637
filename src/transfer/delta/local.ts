// The runner's side of a delta transfer: the stored copy, opened safely, its block digests, and the
// server's block stream read piece by piece (never held whole).
import crypto, { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { DIGEST_BYTES, parseChunk } from './plan.js';
import { ProtocolError, type FrameReader } from './frames.js';

/** Bytes read from the stored copy at once. */
const READ = 1 << 20;

/** The stored copy, opened for reading: never through a link in its place, and only a regular file. */
export async function openStored(abs: string): Promise<FileHandle> {
  const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    throw new Error('not a regular file');
  }
  return fh;
}

/**
 * SHA-1 of one block, one call (crypto.hash: Node ≥ 20.12; half the cost of a Hash object per 4 KiB
 * block). SHA-1, not MD5: two thirds of MD5's CPU here on both sides (SHA-NI in OpenSSL, and perl's
 * Digest::SHA), and a block digest is no security boundary (the whole file's SHA-256 is).
 */
const sha1: (data: Buffer) => Buffer =
  typeof crypto.hash === 'function'
    ? (data) => crypto.hash('sha1', data, 'buffer')
    : (data) => createHash('sha1').update(data).digest();

/**
 * The stored copy's block digests (DIGEST_BYTES each), at most `count`: fewer when it is shorter.
 * `progress` is told of the buffer they go into, then of each count done (to compare as they come).
 */
export async function localDigests(
  fh: FileHandle,
  blockSize: number,
  count: number,
  progress?: (out: Buffer, done: number) => void,
): Promise<Buffer> {
  const size = (await fh.stat()).size;
  const have = Math.min(count, Math.ceil(size / blockSize));
  const out = Buffer.alloc(have * DIGEST_BYTES);
  progress?.(out, 0);
  const buf = Buffer.allocUnsafe(READ);
  let done = 0;
  if (blockSize <= READ) {
    // Two buffers: the next read runs in the thread pool while this one is hashed.
    const per = READ / blockSize;
    const bufs = [buf, Buffer.allocUnsafe(READ)];
    const readAt = (i: number, n: number) =>
      n > 0 ? fh.read(bufs[i % 2]!, 0, Math.min(per, have - n) * blockSize, n * blockSize) : undefined;
    let pending = have > 0 ? fh.read(bufs[0]!, 0, Math.min(per, have) * blockSize, 0) : undefined;
    for (let i = 0; pending; i++) {
      const want = Math.min(per, have - done) * blockSize;
      const { bytesRead, buffer } = await pending;
      const next = done + per < have && bytesRead === want ? done + per : 0;
      pending = readAt(i + 1, next);
      for (let o = 0; o < bytesRead && done < have; o += blockSize, done++)
        sha1(buffer.subarray(o, Math.min(o + blockSize, bytesRead))).copy(out, done * DIGEST_BYTES, 0, DIGEST_BYTES);
      progress?.(out, done);
      if (bytesRead < want) break;
    }
  } else {
    // Blocks bigger than a read (files above 2^18 × 1 MiB): each hashed in pieces.
    for (; done < have; done++) {
      const h = createHash('sha1');
      let pos = done * blockSize;
      const end = pos + blockSize;
      while (pos < end) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
        if (bytesRead === 0) break;
        h.update(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
      h.digest().copy(out, done * DIGEST_BYTES, 0, DIGEST_BYTES);
      progress?.(out, done + 1);
    }
  }
  return done === have ? out : out.subarray(0, done * DIGEST_BYTES);
}

/** The stored copy's digests as they are computed: compared block by block while the server's arrive. */
export class LocalDigests {
  private out: Buffer = Buffer.alloc(0);
  private done = 0;
  private finished = false;
  readonly result: Promise<Buffer>;

  constructor(fh: FileHandle, blockSize: number, count: number) {
    this.result = localDigests(fh, blockSize, count, (out, done) => {
      this.out = out;
      this.done = done;
    });
    this.result.then(
      () => (this.finished = true),
      () => undefined,
    );
  }

  /**
   * The digests known now, and up to which block they can be compared: all of them once done (a
   * shorter stored copy has fewer: every block beyond it differs). Never waits: the server's answer is
   * read on while these are computed.
   */
  now(count: number): { digests: Buffer; upTo: number } {
    return { digests: this.out.subarray(0, this.done * DIGEST_BYTES), upTo: this.finished ? count : this.done };
  }
}

/** The server sent fewer bytes than were asked for (the file shrank meanwhile): this file is fetched whole. */
export class ShortError extends Error {
  override name = 'ShortError';
}

/**
 * The changed blocks as the blocks script sends them: `D n` pieces, then `E`, per file. Framing errors
 * are ProtocolErrors (nothing more can be read); a file that ends early is a ShortError, after which
 * the next file's data can still be read.
 */
export class BlockFeed {
  /** Bytes left in the current `D` piece. */
  private left = 0;
  /** Reading a file's data, its `E` not yet seen. */
  private open = false;

  constructor(private readonly reader: FrameReader) {}

  begin(): void {
    this.open = true;
    this.left = 0;
  }

  /** The next `n` bytes of this file's data, in pieces. */
  async *take(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.left === 0) {
        const c = parseChunk((await this.reader.line()) ?? '');
        if (c === null) throw new ProtocolError('a block piece that is neither "D n" nor "E"');
        if (c === 'end') {
          this.open = false;
          throw new ShortError('the server sent fewer bytes than asked for (the file shrank meanwhile?)');
        }
        this.left = c;
      }
      // Counted before each piece goes out: a reader that stops midway leaves the feed in step.
      for await (const piece of this.reader.take(Math.min(n, this.left))) {
        this.left -= piece.length;
        n -= piece.length;
        yield piece;
      }
    }
  }

  /** All of this file's data, to its `E`, in pieces (an appended tail: its length is not asked for). */
  async *rest(): AsyncGenerator<Buffer> {
    while (this.open) {
      if (this.left > 0) {
        for await (const piece of this.reader.take(this.left)) {
          this.left -= piece.length;
          yield piece;
        }
        continue;
      }
      const c = parseChunk((await this.reader.line()) ?? '');
      if (c === null) throw new ProtocolError('a piece that is neither "D n" nor "E"');
      if (c === 'end') this.open = false;
      else this.left = c;
    }
  }

  /** Reads to the file's `E`; false when there was more data than asked for (skipped). */
  async finish(): Promise<boolean> {
    let exact = this.left === 0;
    while (this.open) {
      for await (const piece of this.reader.take(this.left)) void piece;
      this.left = 0;
      const c = parseChunk((await this.reader.line()) ?? '');
      if (c === null) throw new ProtocolError('a block piece that is neither "D n" nor "E"');
      if (c === 'end') this.open = false;
      else {
        exact = false;
        this.left = c;
      }
    }
    return exact;
  }
}
