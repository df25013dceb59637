/**
 * Delta transfer of changed files (backup direction): a big file with a stored copy moves only the
 * blocks that differ. Two commands per batch of files: the server's block digests (and whole-file
 * SHA-256), compared here with the stored copy's; then the changed blocks, put together with the
 * stored ones into a temp file beside the old, renamed into place only when the whole file's SHA-256
 * is the server's. Anything unexpected — a file changed meanwhile, a short answer, a digest or size that
 * does not hold together, a SHA-256 that does not match — sends that file to the ordinary whole-file
 * fetch. The server's answers size nothing beyond MAX_BLOCKS digests per file, and only bytes the
 * server sent for that file, or the stored copy's own at the same offset, are ever written.
 */
import { createWriteStream, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { privateTempDir } from '../../temp.js';
import { safeText } from '../../report/reporter.js';
import { ContentMismatch, type LocalTree } from '../local/tree.js';
import { assemble, BlockFeed, localDigests, openStored, ShortError } from './local.js';
import {
  changedRuns,
  digestWidth,
  fromHexLines,
  MAX_BLOCKS,
  MIN_BLOCK,
  parseHeader,
  parseSum,
  parseTool,
  requestSpec,
  runBytes,
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
      } else if (tool) await blocksPass(plans, tool, source, tree, result, log);
    } finally {
      await Promise.all(plans.map((p) => p.fh.close().catch(() => undefined)));
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

/**
 * Reads the server's digests of a batch and decides each file: into `plans` (its changed runs known,
 * its stored copy open), or to the whole-file fetch. Returns the server's tool (undefined: its answer
 * was refused before it named one).
 */
async function digestPass(
  batch: DeltaItem[],
  source: DeltaSource,
  tree: LocalTree,
  plans: FilePlan[],
  result: DeltaResult,
  log: (line: string) => void,
): Promise<Tool | 'none' | undefined> {
  const run = await source.digests(nulList(batch.map((i) => i.remote)));
  const reader = new FrameReader(run.output);
  let next = 0;
  let named: Tool | undefined;
  /** The stored copy open for the file being read, until it joins `plans` (closed if the answer breaks). */
  let open: FileHandle | undefined;
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
      const first = await reader.line();
      if (first === null) throw new ProtocolError('the answer ends early');
      if (first === 'X') {
        fetchWhole(item, result, log, 'the server could not read it for its digests');
        continue;
      }
      const header = parseHeader(first);
      if (!header) throw new ProtocolError(`a block header that does not hold together ("${safeText(first)}")`);
      // The stored copy is hashed while the server's digests arrive.
      const fh = (open = await openStored(tree.resolve(item.path)).catch(() => undefined));
      const mine = fh ? localDigests(fh, header.blockSize, header.count) : Promise.reject(new Error('unreadable'));
      mine.catch(() => undefined);
      const raw = await reader.exact(header.count * digestWidth(tool));
      const digests = tool === 'coreutils' ? fromHexLines(raw, header.count) : raw;
      const sum = parseSum((await reader.line()) ?? '');
      if (!digests || !sum) throw new ProtocolError('digests or a checksum line that do not hold together');
      const local = await mine.catch(() => undefined);
      const why =
        !fh || !local
          ? 'its stored copy could not be read'
          : header.size !== item.size || header.mtime !== item.mtime
            ? 'it changed on the server since it was listed'
            : sum.size !== header.size || sum.mtime !== header.mtime
              ? 'it changed on the server while its blocks were read'
              : undefined;
      const runs = why ? [] : changedRuns(local!, digests, header.count);
      const moving = runs.reduce((n, r) => n + runBytes(r, header.blockSize, header.size), 0);
      open = undefined;
      if (why || moving > WHOLE_SHARE * header.size) {
        await fh?.close();
        fetchWhole(
          item,
          result,
          log,
          why ?? `${Math.round((100 * moving) / header.size)}% of its blocks differ (data shifted, or rewritten)`,
        );
        continue;
      }
      plans.push({ item, fh: fh!, header, sum, runs, moving });
    }
    return tool;
  } catch (err) {
    await open?.close().catch(() => undefined);
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

/**
 * Fetches the changed blocks of `plans` and stores each file, or sends it to the whole-file fetch. The
 * blocks are first spooled, file by file, to a private temp folder as fast as they come; only then are
 * the files put together from their stored copies, with no command waiting meanwhile (copying the
 * unchanged gigabytes before a file's last changed block could otherwise leave the channel idle for
 * longer than `timeout`).
 */
async function blocksPass(
  plans: FilePlan[],
  tool: Tool,
  source: DeltaSource,
  tree: LocalTree,
  result: DeltaResult,
  log: (line: string) => void,
): Promise<void> {
  const asking = plans.filter((p) => p.runs.length > 0);
  const spool = asking.length > 0 ? privateTempDir('rf-delta-') : undefined;
  const why = new Map<FilePlan, string>();
  try {
    if (spool) await receive(asking, tool, source, spool, why);
    for (const p of plans) {
      const { item, header } = p;
      const reason = why.get(p);
      if (reason) {
        fetchWhole(item, result, log, reason);
        continue;
      }
      const spooled = p.runs.length > 0 ? await open(join(spool!, String(asking.indexOf(p)))) : undefined;
      try {
        const w = await tree.writeFile(
          item.path,
          Readable.from(assemble(p.fh, p.runs, header, spooled)),
          header.size,
          item.mode,
          item.mtime,
          undefined,
          { sha256: p.sum.sha256 },
        );
        result.done.set(item.remote, w);
        const changed = p.runs.reduce((n, r) => n + r.count, 0);
        log(
          `delta: ${safeText(item.path)}: ${changed} of ${header.count} blocks of ${header.blockSize} bytes changed, ${p.moving} of ${header.size} bytes fetched (${tool})`,
        );
      } catch (err) {
        fetchWhole(
          item,
          result,
          log,
          err instanceof ContentMismatch
            ? "the file put together does not have the server's SHA-256 (changed meanwhile, or its digests are wrong)"
            : `it could not be put together (${safeText((err as Error).message)})`,
        );
      } finally {
        await spooled?.close();
      }
    }
  } finally {
    if (spool) rmSync(spool, { recursive: true, force: true });
  }
}

/** Reads the blocks command's answer into one spool file per plan; what cannot be used is noted in `why`. */
async function receive(
  asking: FilePlan[],
  tool: Tool,
  source: DeltaSource,
  spool: string,
  why: Map<FilePlan, string>,
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
        await pipeline(feed.take(p.moving), createWriteStream(join(spool, String(i)), { flags: 'wx' }));
        if (!(await feed.finish())) why.set(p, "the server's blocks were refused (more bytes than were asked for)");
      } catch (err) {
        if (run.lost()) throw run.lost()!;
        if (err instanceof ShortError) {
          why.set(p, 'it shrank on the server while its blocks were read');
          continue;
        }
        // The answer cannot be followed any more: this file and those after it move whole.
        const reason = `the server's blocks were refused (${safeText((err as Error).message)})`;
        for (const q of asking.slice(i)) why.set(q, reason);
        return;
      }
    }
  } finally {
    run.stop();
  }
}

function nulList(parts: string[]): Buffer {
  return Buffer.from(parts.map((p) => p + '\0').join(''), 'utf8');
}
