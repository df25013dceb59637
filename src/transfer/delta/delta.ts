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
import type { LocalTree } from '../local/tree.js';
import { safeText } from '../../report/reporter.js';
import { appendPass } from './append.js';
import {
  changedSince,
  fetchWhole,
  release,
  storedBy,
  wrongResult,
  type Copy,
  type DeltaItem,
  type DeltaResult,
  type FilePlan,
  type Log,
} from './items.js';
import { LocalDigests, openStored } from './local.js';
import {
  askEarly,
  blockSizeFor,
  EARLY_AFTER,
  digestWidth,
  fromHexLines,
  MAX_BLOCKS,
  MIN_BLOCK,
  parseAppend,
  parseHeader,
  parseSum,
  parseTool,
  RunFinder,
  runBytes,
  storedSpec,
  WHOLE_SHARE,
  type Tool,
} from './plan.js';
import { ProtocolError, type FrameReader } from './frames.js';
import type { DeltaSource } from './remote.js';
import { BlockReceiver } from './receiver.js';

export { DELTA_MIN } from './plan.js';
export type { DeltaSource } from './remote.js';

export type { DeltaItem, DeltaResult } from './items.js';

/** Digests held at once across a batch (the runs of a batch are kept until its blocks arrive). */
const BATCH_BLOCKS = 1 << 19;
const BATCH_FILES = 256;

/** Why the server has no delta transfer, said once per run. */
const NO_TOOLS =
  'delta transfer unavailable: the server has none of perl (Digest::SHA), python3 (hashlib) or coreutils (split --filter, sha1sum, sha256sum); changed files are fetched whole';

export async function fetchByDelta(
  items: DeltaItem[],
  source: DeltaSource,
  tree: LocalTree,
  log: Log,
  onStored?: DeltaResult['onStored'],
): Promise<DeltaResult> {
  const result: DeltaResult = { done: new Map(), whole: [], ...(onStored && { onStored }) };
  let toolless = false;
  for (const batch of batches(items)) {
    if (toolless) {
      result.whole.push(...batch.map((i) => i.remote));
      continue;
    }
    if ((await batchPass(batch, source, tree, result, log)) === 'none') {
      log(NO_TOOLS);
      toolless = true;
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

/**
 * The stored copy, open (undefined when it cannot be), its temp copy begun, and the work the server's
 * answer will most likely need begun too: for a file that grew, its first bytes hashed (if the server
 * finds it appended to, only its tail is left to hash); for any other, its block digests, for the
 * block size the server chooses for the listed size.
 */
async function openCopy(item: DeltaItem, tree: LocalTree, tool: Tool): Promise<Copy | undefined> {
  const fh = await openStored(tree.resolve(item.path)).catch(() => undefined);
  if (!fh) return undefined;
  const grew = item.size > item.stored.size && item.stored.sha256 !== undefined;
  const patch = tree.patchFile(item.path, fh).then(
    (p) => {
      if (grew) p.prefix(item.stored.size);
      return p;
    },
    () => undefined,
  );
  const bs = blockSizeFor(item.size, tool);
  return { fh, patch, ...(!grew && { local: new LocalDigests(fh, bs, Math.ceil(item.size / bs)) }) };
}

/**
 * One batch: the digests command, read file by file, and the blocks command beside it (started at the
 * first changed block). An appended file is stored from its tail at once; for one with block digests,
 * the changed blocks are asked for as they are found, while the server still reads the file (unless
 * too many differ: see askEarly), and the file is stored once they are in. Returns the server's tool
 * (undefined: its answer was refused before it named one).
 */
async function batchPass(
  batch: DeltaItem[],
  source: DeltaSource,
  tree: LocalTree,
  result: DeltaResult,
  log: Log,
): Promise<Tool | 'none' | undefined> {
  const run = await source.digests(
    nulList(batch.flatMap((i) => [i.remote, storedSpec(i.stored.size, i.stored.sha256)])),
    batch.map((i) => i.remote),
  );
  const reader = run.reader;
  let next = 0;
  let named: Tool | undefined;
  let receiver: BlockReceiver | undefined;
  /** The file being read, until the receiver or the append has it (released if the answer breaks). */
  let pending: Promise<Copy | undefined> | undefined;
  /** The plan being read, once some of its blocks were asked for (settled as refused if the answer breaks). */
  let asking: FilePlan | undefined;
  try {
    const tool = parseTool((await reader.line()) ?? '');
    if (tool === null) throw new ProtocolError('its first line names no tool');
    if (tool === 'none') {
      result.whole.push(...batch.map((i) => i.remote));
      return tool;
    }
    named = tool;
    receiver = new BlockReceiver(
      source,
      tool,
      batch.map((i) => i.remote),
      (plan, why) => storePlan(plan, why, tool, result, log),
    );
    for (; next < batch.length; next++) {
      const item = batch[next]!;
      // The copy is made (in the kernel) while the server reads the file.
      pending = openCopy(item, tree, tool);
      const first = await reader.line();
      if (first === null) throw new ProtocolError('the answer ends early');
      if (first === 'X') {
        await release(await pending);
        pending = undefined;
        fetchWhole(item, result, log, 'the server could not read it for its digests');
        continue;
      }
      const appended = parseAppend(first);
      if (appended) {
        const copy = pending;
        pending = undefined;
        await appendPass(item, appended, reader, run.codec, copy, tool, result, log);
        continue;
      }
      const header = parseHeader(first);
      if (!header) throw new ProtocolError(`a block header that does not hold together ("${safeText(first)}")`);
      const copy = await pending;
      if (!copy) {
        // Read to its end (the next file's answer follows), and fetched whole.
        await reader.exact(header.count * digestWidth(tool));
        if (!parseSum((await reader.line()) ?? ''))
          throw new ProtocolError('a checksum line that does not hold together');
        pending = undefined;
        fetchWhole(item, result, log, 'its stored copy could not be read');
        continue;
      }
      const plan: FilePlan = { ...copy, item, header, runs: [], moving: 0 };
      // Digests begun for another block size, or none begun (it grew, yet was not found appended to).
      if (header.blockSize !== blockSizeFor(item.size, tool)) delete plan.local;
      else plan.local ??= new LocalDigests(copy.fh, header.blockSize, header.count);
      pending = undefined;
      asking = plan;
      await compare(plan, tool, reader, receiver, result, log);
      asking = undefined;
    }
    return tool;
  } catch (err) {
    await release(await pending);
    if (asking) receiver?.settle(asking, "the server's digests were refused");
    if (run.lost()) {
      await receiver?.close().catch(() => undefined);
      throw run.lost()!;
    }
    run.stop();
    // Whatever else broke (the answer, this side's reading of the stored copy), the rest moves whole.
    const stderr = run.stderr();
    const said = stderr ? ` (the server said: ${safeText(stderr.split('\n')[0] ?? '')})` : '';
    const left = batch.length - next - (asking ? 1 : 0);
    log(
      `delta: the server's digests were refused: ${safeText((err as Error).message)}${said}; ${left} file(s) fetched whole`,
    );
    result.whole.push(...batch.slice(next + (asking ? 1 : 0)).map((i) => i.remote));
    return named;
  } finally {
    run.stop();
    await receiver?.close();
  }
}

/**
 * Reads one file's digests and compares them with the stored copy's as both come, asking the receiver
 * for the changed blocks found so far while few differ; at the file's `S` line, decides: the rest of
 * its blocks, or the whole-file fetch.
 */
async function compare(
  plan: FilePlan,
  tool: Tool,
  reader: FrameReader,
  receiver: BlockReceiver,
  result: DeltaResult,
  log: Log,
): Promise<void> {
  // The digests are computed for the block size the server chooses for the listed size; a header with
  // another (the file changed since it was listed) is read and fetched whole.
  const { item, header, local } = plan;
  const width = digestWidth(tool);
  const raw = Buffer.alloc(header.count * width);
  const remote = tool === 'coreutils' ? Buffer.alloc(header.count * 8) : raw;
  const finder = new RunFinder();
  let got = 0;
  let converted = 0;
  let asked = 0;
  let early = local !== undefined && header.size === item.size && header.mtime === item.mtime;
  for await (const piece of reader.take(raw.length)) {
    piece.copy(raw, got);
    got += piece.length;
    const known = Math.floor(got / width);
    if (tool === 'coreutils') {
      const hex = fromHexLines(raw.subarray(converted * width, known * width), known - converted);
      if (!hex) throw new ProtocolError('digests that do not hold together');
      hex.copy(remote, converted * 8);
      converted = known;
    }
    if (!early) continue;
    const mine = local!.now(header.count);
    finder.feed(mine.digests, remote, Math.min(known, mine.upTo));
    if (finder.seen < EARLY_AFTER) continue;
    if (!askEarly(finder.seen, finder.changed)) early = false;
    else if (finder.closed > asked) {
      receiver.ask(plan, finder.runs.slice(asked, finder.closed));
      asked = finder.closed;
    }
  }
  const sum = parseSum((await reader.line()) ?? '');
  if (!sum) throw new ProtocolError('digests or a checksum line that do not hold together');
  plan.sum = sum;
  const mine = local ? await local.result.catch(() => undefined) : undefined;
  if (mine) finder.feed(mine, remote, header.count);
  // The digests are done with: a plan waiting for its blocks holds only its runs.
  delete plan.local;
  plan.runs = finder.runs;
  plan.moving = finder.runs.reduce((n, r) => n + runBytes(r, header.blockSize, header.size), 0);
  const why = !mine
    ? local
      ? 'its stored copy could not be read'
      : 'it changed on the server since it was listed'
    : (changedSince(item, header, sum) ??
      (plan.moving > WHOLE_SHARE * header.size
        ? `${Math.round((100 * plan.moving) / header.size)}% of its blocks differ (data shifted, or rewritten)`
        : undefined));
  if (!why) receiver.ask(plan, finder.runs.slice(asked));
  else if (asked === 0) {
    // Nothing was asked for: the receiver need not wait for it.
    await release(plan);
    return fetchWhole(item, result, log, why);
  }
  receiver.settle(plan, why);
}

/** Stores a plan whose blocks are in, or sends it to the whole-file fetch; either way releases it. */
async function storePlan(
  plan: FilePlan,
  why: string | undefined,
  tool: Tool,
  result: DeltaResult,
  log: Log,
): Promise<void> {
  const { item, header } = plan;
  try {
    if (why) return fetchWhole(item, result, log, why);
    const patch = await plan.patch;
    if (!patch) return fetchWhole(item, result, log, 'its stored copy could not be copied');
    storedBy(result, item, await patch.store(header.size, plan.sum!.sha256, item.mode, item.mtime));
    const changed = plan.runs.reduce((n, r) => n + r.count, 0);
    log(
      `delta: ${safeText(item.path)}: ${changed} of ${header.count} blocks of ${header.blockSize} bytes changed, ${plan.moving} of ${header.size} bytes fetched (${tool})`,
    );
  } catch (err) {
    fetchWhole(item, result, log, wrongResult(err));
  } finally {
    await release(plan);
  }
}

function nulList(parts: string[]): Buffer {
  return Buffer.from(parts.map((p) => p + '\0').join(''), 'utf8');
}
