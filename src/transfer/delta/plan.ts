// Delta transfer, the pure part: what the server's answers may say, and which blocks move.
// Every number here comes from a possibly hostile server: each is checked before it sizes anything.

/** Files smaller than this move whole: the extra round trip and the server's read cost more than they save. */
export const DELTA_MIN = 1 << 20;
/** Blocks per file, at most: the digests held for one file stay under 2 MiB whatever the file's size. */
export const MAX_BLOCKS = 1 << 18;
/** The smallest block: a database page (SQLite, PostgreSQL and InnoDB use 4–16 KiB). */
export const MIN_BLOCK = 4096;
/** The largest block a server may choose (files up to MAX_BLOCKS of these). */
export const MAX_BLOCK = 1 << 30;
/** Bytes of each block's digest kept (SHA-1's first 8): a collision costs a refetch, never a wrong file (see the SHA-256 check). */
export const DIGEST_BYTES = 8;
/** Changed blocks are asked for in pieces of at most this many bytes (the coreutils fallback stages each in a temp file). */
export const PIECE_BYTES = 8 << 20;
/** Above this share of changed bytes the file is fetched whole (shifted data: every block after an insertion differs). */
export const WHOLE_SHARE = 0.75;

/** The tools the digest script found on the server, in its fallback order. */
export const TOOLS = ['perl', 'python3', 'coreutils'] as const;
export type Tool = (typeof TOOLS)[number];

/** One file's digest header: its size and mtime when the server opened it, and how it was cut. */
export interface BlockHeader {
  size: number;
  mtime: number;
  blockSize: number;
  count: number;
}

/** The server's word after reading: the whole file's SHA-256, and its size and mtime then. */
export interface FileSum {
  sha256: string;
  size: number;
  mtime: number;
}

/** `T <tool>`: the tool the server uses, `none` when it has none of them; null: not that line. */
export function parseTool(line: string): Tool | 'none' | null {
  const m = /^T (perl|python3|coreutils|none)$/.exec(line);
  return m ? (m[1] as Tool | 'none') : null;
}

/**
 * `F <size> <mtime> <block size> <count>`; null when the line is not that, or its numbers do not
 * hold together: a block size that is a power of two within bounds, exactly the blocks the size needs,
 * at most MAX_BLOCKS of them.
 */
export function parseHeader(line: string): BlockHeader | null {
  const m = /^F (\d{1,16}) (-?\d{1,16}) (\d{1,10}) (\d{1,7})$/.exec(line);
  if (!m) return null;
  const [size, mtime, blockSize, count] = [m[1], m[2], m[3], m[4]].map(Number) as [number, number, number, number];
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(mtime)) return null;
  if (blockSize < MIN_BLOCK || blockSize > MAX_BLOCK || (blockSize & (blockSize - 1)) !== 0) return null;
  if (count > MAX_BLOCKS || count !== Math.ceil(size / blockSize)) return null;
  return { size, mtime, blockSize, count };
}

/** An appended file's answer: its size and mtime when the server opened it, and its tail's codec. */
export interface AppendHeader {
  size: number;
  mtime: number;
  codec: 'zstd' | 'gzip' | 'none';
}

/** `A <size> <mtime> <codec>`; null when the line is not that. */
export function parseAppend(line: string): AppendHeader | null {
  const m = /^A (\d{1,16}) (-?\d{1,16}) (zstd|gzip|none)$/.exec(line);
  if (!m) return null;
  const [size, mtime] = [Number(m[1]), Number(m[2])];
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(mtime)) return null;
  return { size, mtime, codec: m[3] as AppendHeader['codec'] };
}

/** What the digest script is told of a stored copy: `<size> <sha256>`, `-` for an unknown SHA-256. */
export function storedSpec(size: number, sha256: string | undefined): string {
  return `${size} ${sha256 && /^[0-9a-f]{64}$/.test(sha256) ? sha256 : '-'}`;
}

/** `S <sha256> <size> <mtime>` (size and mtime -1 when the file was gone); null: not that line. */
export function parseSum(line: string): FileSum | null {
  const m = /^S ([0-9a-f]{64}) (-1|\d{1,16}) (-?\d{1,16})$/.exec(line);
  if (!m) return null;
  return { sha256: m[1]!, size: Number(m[2]), mtime: Number(m[3]) };
}

/** The coreutils fallback prints each digest as 16 hex digits and a newline; the others as 8 raw bytes. */
export function digestWidth(tool: Tool): number {
  return tool === 'coreutils' ? DIGEST_BYTES * 2 + 1 : DIGEST_BYTES;
}

/** The raw digests of `count` hex lines; null when any line is not 16 hex digits. */
export function fromHexLines(text: Buffer, count: number): Buffer | null {
  const out = Buffer.alloc(count * DIGEST_BYTES);
  const width = DIGEST_BYTES * 2 + 1;
  for (let i = 0; i < count; i++) {
    const line = text.toString('latin1', i * width, (i + 1) * width);
    if (!/^[0-9a-f]{16}\n$/.test(line)) return null;
    out.write(line.slice(0, 16), i * DIGEST_BYTES, 'hex');
  }
  return out;
}

/** A run of consecutive changed blocks. */
export interface Run {
  first: number;
  count: number;
}

/**
 * The runs of blocks whose digests differ, found as the digests come (see changedRuns). Runs before
 * the one still open are final: they can be asked for before the rest of the file is compared.
 */
export class RunFinder {
  readonly runs: Run[] = [];
  private open: Run | undefined;
  /** Blocks compared so far, and how many of them differ. */
  seen = 0;
  changed = 0;

  /**
   * Compares blocks up to `upTo` (exclusive). `local` holds the stored copy's digests known so far, at
   * least up to `upTo` unless the stored copy is shorter (every block beyond it differs); `remote`
   * the server's, at least up to `upTo`.
   */
  feed(local: Buffer, remote: Buffer, upTo: number): void {
    const have = Math.floor(local.length / DIGEST_BYTES);
    for (let i = this.seen; i < upTo; i++) {
      const o = i * DIGEST_BYTES;
      const same = i < have && local.compare(remote, o, o + DIGEST_BYTES, o, o + DIGEST_BYTES) === 0;
      if (same) this.open = undefined;
      else {
        this.changed++;
        if (this.open) this.open.count++;
        else this.runs.push((this.open = { first: i, count: 1 }));
      }
    }
    this.seen = Math.max(this.seen, upTo);
  }

  /** How many runs (from the first) can no longer grow. */
  get closed(): number {
    return this.open ? this.runs.length - 1 : this.runs.length;
  }
}

/**
 * The runs of blocks whose digests differ. `local` holds the stored copy's digests (fewer than
 * `remote`'s when it was shorter: every block beyond it differs), `remote` the server's.
 */
export function changedRuns(local: Buffer, remote: Buffer, count: number): Run[] {
  const finder = new RunFinder();
  finder.feed(local, remote, count);
  return finder.runs;
}

/**
 * Whether a file's changed runs found so far may be asked for before its last digest is in: after
 * EARLY_AFTER blocks, while at most EARLY_SHARE of those compared differ (a rewritten or shifted file
 * is decided whole at its end, with nothing asked for).
 */
export function askEarly(seen: number, changed: number): boolean {
  return seen >= EARLY_AFTER && changed <= EARLY_SHARE * seen;
}
/** Blocks compared before any is asked for early. */
export const EARLY_AFTER = 1024;
/** The most of the blocks compared so far that may differ for blocks to be asked for early. */
export const EARLY_SHARE = 0.125;

/**
 * The block size the digest scripts choose for a file of `size` bytes (see scripts.ts): perl and
 * python3 cut it into at most MAX_BLOCKS, the coreutils fallback (a process per block) into at most 512
 * of 64 KiB or more.
 */
export function blockSizeFor(size: number, tool: Tool): number {
  const most = tool === 'coreutils' ? 512 : MAX_BLOCKS;
  let bs = tool === 'coreutils' ? 1 << 16 : MIN_BLOCK;
  while (bs * most < size) bs *= 2;
  return bs;
}

/** The bytes a run covers in a file of `size` (its last block may be short). */
export function runBytes(run: Run, blockSize: number, size: number): number {
  return Math.max(0, Math.min((run.first + run.count) * blockSize, size) - run.first * blockSize);
}

/** `<block size> <first>+<count> …`: what the blocks script reads, runs cut into pieces of PIECE_BYTES at most. */
export function requestSpec(runs: Run[], blockSize: number): string {
  const per = Math.max(1, Math.floor(PIECE_BYTES / blockSize));
  const parts = [String(blockSize)];
  for (const r of runs)
    for (let i = r.first; i < r.first + r.count; i += per) parts.push(`${i}+${Math.min(per, r.first + r.count - i)}`);
  return parts.join(' ');
}

/**
 * `D <length>` (a piece of block data follows: streamed, never held whole, so any length up to a block
 * or a piece will do) or `E` (the file's data ends); null: neither.
 */
export function parseChunk(line: string): number | 'end' | null {
  if (line === 'E') return 'end';
  const m = /^D (\d{1,10})$/.exec(line);
  const n = m ? Number(m[1]) : 0;
  return n > 0 && n <= MAX_BLOCK ? n : null;
}
