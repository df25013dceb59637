// An appended file (a mailbox, a log): the server found the stored copy's SHA-256 as its prefix and sends
// only the tail, inside the digests command's answer (see DIGESTS_SCRIPT).
import { pipeline } from 'node:stream/promises';
import { safeText } from '../../report/reporter.js';
import { decoder } from '../compression.js';
import { BlockFeed } from './local.js';
import {
  changedSince,
  fetchWhole,
  release,
  storedBy,
  wrongResult,
  type Copy,
  type DeltaItem,
  type DeltaResult,
  type Log,
} from './items.js';
import { parseSum, type AppendHeader, type Tool } from './plan.js';
import { ProtocolError, type FrameReader } from './frames.js';

/**
 * An appended file: its tail (`D` pieces to `E`, one compressed stream when `codec` is not none) goes
 * after the stored copy's first `stored.size` bytes, then `S` says the whole file's SHA-256. The
 * answer is read to its end whatever happens to the file, so the next file's can be read; a tail
 * longer than the file grew, or one that does not decompress, breaks the answer (ProtocolError).
 */
export async function appendPass(
  item: DeltaItem,
  header: AppendHeader,
  reader: FrameReader,
  asked: string,
  pending: Promise<Copy | undefined>,
  tool: Tool,
  result: DeltaResult,
  log: Log,
): Promise<void> {
  const from = item.stored.size;
  const tail = header.size - from;
  // The copy is released however the answer ends, a refused one included (its temp file must not stay).
  const copy = await pending;
  try {
    if (header.codec !== 'none' && header.codec !== asked)
      throw new ProtocolError(`a tail in ${header.codec}, which was not asked for`);
    if (tail <= 0) throw new ProtocolError('an appended answer for a file that did not grow');
    const patch = await copy?.patch;
    // An answer about another file than the one listed is read to its end, and nothing of it is written.
    let failed: string | undefined =
      header.size !== item.size || header.mtime !== item.mtime
        ? 'it changed on the server since it was listed'
        : patch
          ? undefined
          : 'its stored copy could not be read';
    let got = 0;
    const feed = new BlockFeed(reader);
    feed.begin();
    const pieces = feed.rest();
    const sink = async function (source: AsyncIterable<Buffer>): Promise<void> {
      for await (const piece of source) {
        if (got + piece.length > tail) throw new ProtocolError('an appended tail longer than the file grew');
        if (!failed)
          await patch!.put(from + got, piece).catch((err: Error) => {
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
      storedBy(result, item, await patch!.store(header.size, sum.sha256, item.mode, item.mtime));
      log(`delta: ${safeText(item.path)}: appended to, ${tail} of ${header.size} bytes fetched (${tool})`);
    } catch (err) {
      fetchWhole(item, result, log, wrongResult(err));
    }
  } finally {
    await release(copy);
  }
}
