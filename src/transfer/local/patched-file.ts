// A new version of a stored file made from a copy of the old one (delta transfer): the copy is made in
// the kernel (a reflink where the file system has them), the server's changed bytes are written over it
// in place, and the whole result is hashed as it is written, so the SHA-256 check at the end costs a
// read of the unchanged parts, not a second pass over the file.
import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, open, type FileHandle } from 'node:fs/promises';

/** Bytes read back at once to hash an unchanged stretch. */
const READ = 1 << 20;

/** The content put together does not hash to what the server said (see PatchedFile.finish). */
export class PatchMismatch extends Error {
  override name = 'PatchMismatch';
}

/**
 * An open temp copy of a stored file. Changed bytes go in with put(), in increasing offsets (as the
 * server sends them); the bytes between them are the copy's own and are hashed from it on the way.
 */
export class PatchedFile {
  private hash: Hash = createHash('sha256');
  /** Bytes from the start already hashed: nothing before this offset may change any more. */
  private hashed = 0;
  private readonly buf = Buffer.allocUnsafe(READ);
  /** A hash of the copy's first bytes made ahead, in case the changes all come after them (see prefix). */
  private side: { offset: number; ready: Promise<Hash> } | undefined;

  private constructor(private readonly fh: FileHandle) {}

  /**
   * Copies the open stored file to `tmp` (a name that must not exist). The copy reads the open file,
   * not its name (`/proc/self/fd`): a link put in its place meanwhile is never followed.
   */
  static async copyOf(stored: FileHandle, tmp: string): Promise<PatchedFile> {
    await copyFile(`/proc/self/fd/${stored.fd}`, tmp, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
    return new PatchedFile(await open(tmp, constants.O_RDWR | constants.O_NOFOLLOW));
  }

  /** Hashes the copy's own bytes up to `offset`: they stay as the stored copy had them. */
  async hashTo(offset: number): Promise<void> {
    while (this.hashed < offset) {
      const want = Math.min(READ, offset - this.hashed);
      const { bytesRead } = await this.fh.read(this.buf, 0, want, this.hashed);
      if (bytesRead === 0) throw new Error('the stored copy is shorter than its unchanged part');
      this.hash.update(this.buf.subarray(0, bytesRead));
      this.hashed += bytesRead;
    }
  }

  /**
   * Hashes the copy's first `offset` bytes ahead, while the server decides (an appended file's tail
   * comes after them); used by the first put() at or after `offset`, ignored by one before it.
   */
  prefix(offset: number): void {
    const ready = (async () => {
      const hash = createHash('sha256');
      const buf = Buffer.allocUnsafe(READ);
      for (let at = 0; at < offset;) {
        const { bytesRead } = await this.fh.read(buf, 0, Math.min(READ, offset - at), at);
        if (bytesRead === 0) throw new Error('the stored copy is shorter than its unchanged part');
        hash.update(buf.subarray(0, bytesRead));
        at += bytesRead;
      }
      return hash;
    })();
    ready.catch(() => undefined);
    this.side = { offset, ready };
  }

  /** Writes the server's bytes at `offset`, which may not go back before what is already hashed. */
  async put(offset: number, data: Buffer): Promise<void> {
    if (offset < this.hashed) throw new Error('changed bytes out of order');
    const side = this.side;
    this.side = undefined;
    if (side && this.hashed === 0 && offset >= side.offset) {
      const hash = await side.ready.catch(() => undefined);
      if (hash) [this.hash, this.hashed] = [hash, side.offset];
    }
    await this.hashTo(offset);
    for (let done = 0; done < data.length;) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
    this.hash.update(data);
    this.hashed = offset + data.length;
  }

  /**
   * Cuts the copy to `size`, hashes what is left, and checks the whole against `sha256`
   * (PatchMismatch when it differs). Mode and mtime are set on the open file; the caller renames it.
   */
  async finish(size: number, sha256: string, mode: number, mtime: number): Promise<void> {
    this.side = undefined;
    if (this.hashed > size) throw new PatchMismatch('more bytes than the file has');
    await this.fh.truncate(size);
    await this.hashTo(size);
    if (this.hash.digest('hex') !== sha256)
      throw new PatchMismatch("the file put together does not have the server's SHA-256");
    await this.fh.chmod(mode);
    await this.fh.utimes(mtime, mtime);
    await this.close();
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}
