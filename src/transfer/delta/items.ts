// What the delta transfer's parts share: the files it is asked for, what it answers, the plan of a file
// whose digests were read, and how a file is sent to the whole-file fetch.
import type { FileHandle } from 'node:fs/promises';
import { safeText } from '../../report/reporter.js';
import { ContentMismatch, type Patch } from '../local/tree.js';
import type { LocalDigests } from './local.js';
import type { BlockHeader, FileSum, Run } from './plan.js';

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
  /** Told of each file as it is renamed into place (the backup records it at once: see storedBy). */
  onStored?: (item: DeltaItem, written: { sha256: string; size: number }) => void;
}

/**
 * A file renamed into place by delta: noted, and the backup told at once, so that a run cut off later
 * (the connection lost in the next batch) still writes a manifest that vouches for its new content.
 */
export function storedBy(result: DeltaResult, item: DeltaItem, written: { sha256: string; size: number }): void {
  result.done.set(item.remote, written);
  result.onStored?.(item, written);
}

/**
 * The stored copy, open; its temp copy, being made (undefined when it could not be: see
 * LocalTree.patchFile); and its block digests, begun at once where blocks are likely to be compared.
 */
export interface Copy {
  fh: FileHandle;
  patch: Promise<Patch | undefined>;
  local?: LocalDigests;
}

/** A file whose digests were read: its changed runs, asked for as they were found. */
export interface FilePlan extends Copy {
  item: DeltaItem;
  header: BlockHeader;
  /** Known once the file's digests are all in. */
  sum?: FileSum;
  runs: Run[];
  /** Bytes the changed blocks hold. */
  moving: number;
}

export type Log = (line: string) => void;

export function fetchWhole(item: DeltaItem, result: DeltaResult, log: Log, reason: string): void {
  log(`delta: ${safeText(item.path)}: ${reason}; fetched whole`);
  result.whole.push(item.remote);
}

/** Why a file that was put together could not be stored. */
export function wrongResult(err: unknown): string {
  return err instanceof ContentMismatch
    ? "the file put together does not have the server's SHA-256 (changed meanwhile, or its digests are wrong)"
    : `it could not be put together (${safeText((err as Error).message)})`;
}

/** Why a file's answer does not describe the listed file, or undefined when it does. */
export function changedSince(item: DeltaItem, at: { size: number; mtime: number }, sum: FileSum): string | undefined {
  if (at.size !== item.size || at.mtime !== item.mtime) return 'it changed on the server since it was listed';
  if (sum.size !== at.size || sum.mtime !== at.mtime) return 'it changed on the server while its blocks were read';
  return undefined;
}

/** Closes what a plan holds; its temp copy goes unless it was stored. */
export async function release(copy: Copy | undefined): Promise<void> {
  if (!copy) return;
  await (await copy.patch)?.drop();
  await copy.fh.close().catch(() => undefined);
}
