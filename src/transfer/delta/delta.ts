/**
 * Delta transfer of changed files (backup direction): a big file with a stored copy moves only what
 * differs. First command per batch of files: for a file that grew and still begins with the stored
 * copy (a mailbox, a log), the server sends its tail at once; for any other, its block digests (and
 * whole-file SHA-256), compared here with the stored copy's. Second command: the changed blocks. Either
 * way the new file is the stored copy, copied in the kernel to a temp name beside it while the server
 * reads, with the server's bytes written over it in place and hashed on the way; it is renamed into
 * place only when the whole file's SHA-256 is the server's. Anything unexpected — a file changed
 * meanwhile, a short answer, a digest or size that does not hold together, a SHA-256 that does not
 * match — sends that file to the ordinary whole-file fetch. The server's answers size nothing beyond
 * MAX_BLOCKS digests per file, and only bytes the server sent for that file, or the stored copy's own at
 * the same offset, are ever written.
 */
import { pipeline } from 'node:stream/promises';
import type { FileHandle } from 'node:fs/promises';
import { safeText } from '../../report/reporter.js';
import { decoder } from '../compression.js';
import { ContentMismatch, type LocalTree, type Patch } from '../local/tree.js';
import { BlockFeed, localDigests, openStored, ShortError } from './local.js';
import {
  changedRuns,
  digestWidth,
  fromHexLines,
  MAX_BLOCKS,
  MIN_BLOCK,
  parseAppend,
  parseHeader,
  parseSum,
  parseTool,
  requestSpec,
  runBytes,
  storedSpec,
  WHOLE_SHARE,
  type BlockHeader,
  type FileSum,
  type Run,
  type Tool,
} from './plan.js';
import { FrameReader, ProtocolError, type DeltaSource } from './remote.js';

export { DELTA_MIN } from './plan.js';
export type { DeltaSource } from './remote.js';

/** A changed file with a stored copy, as the backup asks for it. */
export interface DeltaItem {
  /** Server path. */
  remote: string;
  /** Stored path (data folder). */
  path: string;
  /** Size and mtime from the listing: the server's digests must be of that very file. */
  size: number;
  mtime: number;
  mode: number;
  /** The stored copy as the manifest records it: an appended file is told by its SHA-256 as a prefix. */
  stored: { size: number; sha256?: string };
}

export interface DeltaResult {
  /** Files stored by delta, by server path. */
  done: Map<string, { sha256: string; size: number }>;
  /** Files to fetch whole. */
  whole: string[];
}

/** Digests held at once across a batch (the runs of a batch are kept until its blocks arrive). */
const BATCH_BLOCKS = 1 << 19;
const BATCH_FILES = 256;

/** Why the server has no delta transfer, said once per run. */
const NO_TOOLS =
  'delta transfer unavailable: the server has none of perl (Digest::MD5), python3 (hashlib) or coreutils (split --filter, md5sum, sha256sum); changed files are fetched whole';

interface FilePlan {
  item: DeltaItem;
  fh: FileHandle;
  /** The stored copy's temp copy, made while the digests are read. */
  patch: Patch;
  header: BlockHeader;
  sum: FileSum;
  runs: Run[];
  /** Bytes the changed blocks hold. */
  moving: number;
}

export async function fetchByDelta(
  items: DeltaItem[],
  source: DeltaSource,
  tree: LocalTree,
  log: (line: string) => void,
): Promise<DeltaResult> {
  const result: DeltaResult = { done: new Map(), whole: [] };
  let toolless = false;
  for (const batch of batches(items)) {
    if (toolless) {
      result.whole.push(...batch.map((i) => i.remote));
      continue;
    }
    const plans: FilePlan[] = [];
    try {
      const tool = await digestPass(batch, source, tree, plans, result, log);
      if (tool === 'none') {
        log(NO_TOOLS);
        toolless = true;
      } else if (tool) await blocksPass(plans, tool, source, result, log);
    } finally {
      // Stored or not, nothing of a plan outlives its batch (a stored patch has nothing left to drop).
      await Promise.all(plans.map((p) => Promise.all([p.patch.drop(), p.fh.close().catch(() => undefined)])));
    }
  }
  return result;
}

/** Batches whose digests and runs stay within BATCH_BLOCKS (by the listed sizes). */
function batches(items: DeltaItem[]): DeltaItem[][] {
  const out: DeltaItem[][] = [];
  let blocks = Infinity;
  for (const item of items) {
    const n = Math.min(MAX_BLOCKS, Math.ceil(item.size / MIN_BLOCK));
    if (blocks + n > BATCH_BLOCKS || out.at(-1)!.length >= BATCH_FILES) {
      out.push([]);
      blocks = 0;
    }
    out.at(-1)!.push(item);
    blocks += n;
  }
  return out;
}

function fetchWhole(item: DeltaItem, result: DeltaResult, log: (line: string) => void, reason: string): void {
  log(`delta: ${safeText(item.path)}: ${reason}; fetched whole`);
  result.whole.push(item.remote);
}

/** The stored copy, open, and its temp copy; undefined when either cannot be made. */
async function openCopy(item: DeltaItem, tree: LocalTree): Promise<{ fh: FileHandle; patch: Patch } | undefined> {
  const fh = await openStored(tree.resolve(item.path)).catch(() => undefined);
  if (!fh) return undefined;
  const patch = await tree.patchFile(item.path, fh).catch(() => undefined);
  if (patch) return { fh, patch };
  await fh.close().catch(() => undefined);
  return undefined;
}

/**
 * Reads the server's first answer for a batch and decides each file: an appended one is stored from its
 * tail at once; one with block digests goes into `plans` (its changed runs known, its copy made), or
 * to the whole-file fetch. Returns the server's tool (undefined: its answer was refused before it
 * named one).
 */
async function digestPass(
  batch: DeltaItem[],
  source: DeltaSource,
  tree: LocalTree,
  plans: FilePlan[],
  result: DeltaResult,
  log: (line: string) => void,
): Promise<Tool | 'none' | undefined> {
  const run = await source.digests(
    nulList(batch.flatMap((i) => [i.remote, storedSpec(i.stored.size, i.stored.sha256)])),
    batch.map((i) => i.remote),
  );
  const reader = new FrameReader(run.output);
  let next = 0;
  let named: Tool | undefined;
  /** The file being read, until it joins `plans` or is stored (dropped if the answer breaks). */
  let pending: Promise<{ fh: FileHandle; patch: Patch } | undefined> | undefined;
  const release = async (): Promise<void> => {
    const c = await pending;
    pending = undefined;
    if (c) await Promise.all([c.patch.drop(), c.fh.close().catch(() => undefined)]);
  };
  try {
    const tool = parseTool((await reader.line()) ?? '');
    if (tool === null) throw new ProtocolError('its first line names no tool');
    if (tool === 'none') {
      result.whole.push(...batch.map((i) => i.remote));
      return tool;
    }
    named = tool;
    for (; next < batch.length; next++) {
      const item = batch[next]!;
      // The copy is made (in the kernel) while the server reads the file.
      pending = openCopy(item, tree);
      const first = await reader.line();
      if (first === null) throw new ProtocolError('the answer ends early');
      if (first === 'X') {
        await release();
        fetchWhole(item, result, log, 'the server could not read it for its digests');
        continue;
      }
      const appended = parseAppend(first);
      if (appended) {
        await appendPass(item, appended, reader, run.codec, pending, tool, result, log);
        pending = undefined;
        continue;
      }
      const header = parseHeader(first);
      if (!header) throw new ProtocolError(`a block header that does not hold together ("${safeText(first)}")`);
      // The stored copy is hashed while the server's digests arrive.
      const copy = await pending;
      const mine = copy
        ? localDigests(copy.fh, header.blockSize, header.count)
        : Promise.reject(new Error('unreadable'));
      mine.catch(() => undefined);
      const raw = await reader.exact(header.count * digestWidth(tool));
      const digests = tool === 'coreutils' ? fromHexLines(raw, header.count) : raw;
      const sum = parseSum((await reader.line()) ?? '');
      if (!digests || !sum) throw new ProtocolError('digests or a checksum line that do not hold together');
      const local = await mine.catch(() => undefined);
      const why = !copy || !local ? 'its stored copy could not be read' : changedSince(item, header, sum);
      const runs = why ? [] : changedRuns(local!, digests, header.count);
      const moving = runs.reduce((n, r) => n + runBytes(r, header.blockSize, header.size), 0);
      if (why || moving > WHOLE_SHARE * header.size) {
        await release();
        fetchWhole(
          item,
          result,
          log,
          why ?? `${Math.round((100 * moving) / header.size)}% of its blocks differ (data shifted, or rewritten)`,
        );
        continue;
      }
      pending = undefined;
      plans.push({ item, fh: copy!.fh, patch: copy!.patch, header, sum, runs, moving });
    }
    return tool;
  } catch (err) {
    await release();
    if (run.lost()) throw run.lost()!;
    run.stop();
    // Whatever else broke (the answer, this side's reading of the stored copy), the rest moves whole.
    const stderr = run.stderr();
    const said = stderr ? ` (the server said: ${safeText(stderr.split('\n')[0] ?? '')})` : '';
    log(
      `delta: the server's digests were refused: ${safeText((err as Error).message)}${said}; ${batch.length - next} file(s) fetched whole`,
    );
    result.whole.push(...batch.slice(next).map((i) => i.remote));
    return named;
  } finally {
    run.stop();
  }
}

/** Why a file's answer does not describe the listed file, or undefined when it does. */
function changedSince(item: DeltaItem, at: { size: number; mtime: number }, sum: FileSum): string | undefined {
  if (at.size !== item.size || at.mtime !== item.mtime) return 'it changed on the server since it was listed';
  if (sum.size !== at.size || sum.mtime !== at.mtime) return 'it changed on the server while its blocks were read';
  return undefined;
}

/**
 * An appended file: its tail (`D` pieces to `E`, one compressed stream when `codec` is not none) goes
 * after the stored copy's first `stored.size` bytes, then `S` says the whole file's SHA-256. The
 * answer is read to its end whatever happens to the file, so the next file's can be read; a tail
 * longer than the file grew, or one that does not decompress, breaks the answer (ProtocolError).
 */
async function appendPass(
  item: DeltaItem,
  header: { size: number; mtime: number; codec: 'zstd' | 'gzip' | 'none' },
  reader: FrameReader,
  asked: string,
  pending: Promise<{ fh: FileHandle; patch: Patch } | undefined>,
  tool: Tool,
  result: DeltaResult,
  log: (line: string) => void,
): Promise<void> {
  const from = item.stored.size;
  const tail = header.size - from;
  if (header.codec !== 'none' && header.codec !== asked)
    throw new ProtocolError(`a tail in ${header.codec}, which was not asked for`);
  if (tail <= 0) throw new ProtocolError('an appended answer for a file that did not grow');
  const copy = await pending;
  // An answer about another file than the one listed is read to its end, and nothing of it is written.
  let failed: string | undefined =
    header.size !== item.size || header.mtime !== item.mtime
      ? 'it changed on the server since it was listed'
      : copy
        ? undefined
        : 'its stored copy could not be read';
  let got = 0;
  const feed = new BlockFeed(reader);
  feed.begin();
  try {
    const pieces = feed.rest();
    const sink = async function (source: AsyncIterable<Buffer>): Promise<void> {
      for await (const piece of source) {
        if (got + piece.length > tail) throw new ProtocolError('an appended tail longer than the file grew');
        if (!failed)
          await copy!.patch.put(from + got, piece).catch((err: Error) => {
            failed = `it could not be put together (${safeText(err.message)})`;
          });
        got += piece.length;
      }
    };
    if (header.codec === 'none') await sink(pieces);
    else {
      const unpack = decoder(header.codec);
      await pipeline(pieces, unpack, sink).catch((err: unknown) => {
        throw err instanceof ProtocolError
          ? err
          : new ProtocolError(`an appended tail that does not decompress (${safeText((err as Error).message)})`);
      });
    }
    const sum = parseSum((await reader.line()) ?? '');
    if (!sum) throw new ProtocolError('a checksum line that does not hold together');
    failed ??=
      changedSince(item, header, sum) ?? (got < tail ? 'it shrank on the server while its tail was read' : undefined);
    if (failed) return fetchWhole(item, result, log, failed);
    try {
      result.done.set(item.remote, await copy!.patch.store(header.size, sum.sha256, item.mode, item.mtime));
      log(`delta: ${safeText(item.path)}: appended to, ${tail} of ${header.size} bytes fetched (${tool})`);
    } catch (err) {
      fetchWhole(item, result, log, wrongResult(err));
    }
  } finally {
    await copy?.patch.drop();
    await copy?.fh.close().catch(() => undefined);
  }
}

function wrongResult(err: unknown): string {
  return err instanceof ContentMismatch
    ? "the file put together does not have the server's SHA-256 (changed meanwhile, or its digests are wrong)"
    : `it could not be put together (${safeText((err as Error).message)})`;
}

/**
 * Fetches the changed blocks of `plans`, writes them over each file's copy as they come (hashing the
 * copy's unchanged stretches in between, so no stretch waits long: at ~1 GB/s, well inside any
 * `timeout`), and stores each file, or sends it to the whole-file fetch.
 */
async function blocksPass(
  plans: FilePlan[],
  tool: Tool,
  source: DeltaSource,
  result: DeltaResult,
  log: (line: string) => void,
): Promise<void> {
  const asking = plans.filter((p) => p.runs.length > 0);
  const why = new Map<FilePlan, string>();
  const store = async (p: FilePlan): Promise<void> => {
    const { item, header } = p;
    const reason = why.get(p);
    if (reason) return fetchWhole(item, result, log, reason);
    try {
      result.done.set(item.remote, await p.patch.store(header.size, p.sum.sha256, item.mode, item.mtime));
      const changed = p.runs.reduce((n, r) => n + r.count, 0);
      log(
        `delta: ${safeText(item.path)}: ${changed} of ${header.count} blocks of ${header.blockSize} bytes changed, ${p.moving} of ${header.size} bytes fetched (${tool})`,
      );
    } catch (err) {
      fetchWhole(item, result, log, wrongResult(err));
    }
  };
  if (asking.length > 0) await receive(asking, tool, source, why, store);
  for (const p of plans) if (p.runs.length === 0) await store(p);
}

/** Reads the blocks command's answer into each plan's copy, storing each file once its blocks are in. */
async function receive(
  asking: FilePlan[],
  tool: Tool,
  source: DeltaSource,
  why: Map<FilePlan, string>,
  store: (p: FilePlan) => Promise<void>,
): Promise<void> {
  const run = await source.blocks(
    tool,
    nulList(asking.flatMap((p) => [p.item.remote, requestSpec(p.runs, p.header.blockSize)])),
    asking.map((p) => p.item.remote),
  );
  const feed = new BlockFeed(new FrameReader(run.output));
  try {
    for (const [i, p] of asking.entries()) {
      feed.begin();
      try {
        await putRuns(p, feed);
        if (!(await feed.finish())) why.set(p, "the server's blocks were refused (more bytes than were asked for)");
      } catch (err) {
        if (run.lost()) throw run.lost()!;
        if (err instanceof ShortError) why.set(p, 'it shrank on the server while its blocks were read');
        else {
          // The answer cannot be followed any more: this file and those after it move whole.
          const reason = `the server's blocks were refused (${safeText((err as Error).message)})`;
          for (const q of asking.slice(i)) why.set(q, reason);
          for (const q of asking.slice(i)) await store(q);
          return;
        }
      }
      await store(p);
    }
  } finally {
    run.stop();
  }
}

/** One file's changed runs, in order, written over its copy (pieces come in increasing offsets). */
async function putRuns(p: FilePlan, feed: BlockFeed): Promise<void> {
  const { blockSize, size } = p.header;
  for (const r of p.runs) {
    let at = r.first * blockSize;
    for await (const piece of feed.take(runBytes(r, blockSize, size))) {
      await p.patch.put(at, piece);
      at += piece.length;
    }
  }
}

function nulList(parts: string[]): Buffer {
  return Buffer.from(parts.map((p) => p + '\0').join(''), 'utf8');
}
