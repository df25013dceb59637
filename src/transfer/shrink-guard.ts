import { UserError } from '../errors.js';

/**
 * The shrink guard, as rsync's `--max-delete`: a backup that would delete or empty too many of an
 * entry's stored files is refused before it writes anything. A server rebuilt before its backup (a
 * fresh, empty database; sessions gone) looks exactly like that, and a backup would otherwise replace
 * the good copy with the empty one. Pure: the counts come from the backup's plan.
 */
export type MaxDelete = { kind: 'percent'; value: number } | { kind: 'count'; value: number };

export const DEFAULT_MAX_DELETE: MaxDelete = { kind: 'percent', value: 50 };

/** `50%` (of each entry's stored files) or `100` (files per entry); `100%` turns the guard off; `0` allows none. */
export function parseMaxDelete(raw: string): MaxDelete {
  const v = raw.trim();
  if (v === '') return DEFAULT_MAX_DELETE;
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(v);
  if (pct && Number(pct[1]) <= 100) return { kind: 'percent', value: Number(pct[1]) };
  if (/^\d+$/.test(v) && Number.isSafeInteger(Number(v))) return { kind: 'count', value: Number(v) };
  throw new UserError(
    `input \`max-delete\`: "${v}" is not a percentage from 0% to 100% or a whole number of files (e.g. 50% or 100; 100% turns the guard off)`,
  );
}

export function describeMaxDelete(m: MaxDelete): string {
  return m.kind === 'percent' ? `${m.value}%` : String(m.value);
}

/** One entry's stored files before the backup, and what the backup would do to them. */
export interface ShrinkCounts {
  /** How the entry is named in the message, e.g. `recipe Shop (/srv/shop => shop)`. */
  entry: string;
  /** Regular files the stored copy holds for the entry. */
  stored: number;
  /** Of those, how many the backup would delete. */
  deleted: number;
  /** Of those, how many had content and would be stored empty (size 0). */
  emptied: number;
  /** Files with content the entry would hold afterwards. */
  left: number;
  /** Bytes of the stored files. */
  storedBytes: number;
  /** Of those, how many would go: a deleted file's size, or what a changed file would shrink by. */
  lostBytes: number;
}

/**
 * The entries the guard refuses, one message each: more deleted or emptied than `max-delete` allows,
 * or (the guard on) an entry that had files with content left with none.
 */
export function shrinkProblems(counts: ShrinkCounts[], limit: MaxDelete): string[] {
  if (limit.kind === 'percent' && limit.value >= 100) return [];
  const problems: string[] = [];
  for (const c of counts) {
    const affected = c.deleted + c.emptied;
    if (c.stored === 0 || affected === 0) continue;
    const over = limit.kind === 'percent' ? affected * 100 > c.stored * limit.value : affected > limit.value;
    const noneLeft = c.left === 0;
    if (!over && !noneLeft) continue;
    const what = [c.deleted > 0 && `delete ${c.deleted}`, c.emptied > 0 && `empty ${c.emptied}`]
      .filter(Boolean)
      .join(' and ');
    problems.push(
      `${c.entry}: the backup would ${what} of its ${c.stored} stored file(s)${noneLeft ? ', leaving none with content' : ''} (max-delete: ${describeMaxDelete(limit)})`,
    );
  }
  return problems;
}

/**
 * The whole backup's bytes: one that would lose more than `max-delete`'s share of the stored bytes (50%
 * when it is a count) is refused, though no file is deleted. A rebuilt server's fresh database replaces
 * the salvaged one in place: a changed file, not a deletion, and only its size shows what is lost.
 */
export function byteShrinkProblem(counts: ShrinkCounts[], limit: MaxDelete): string | undefined {
  const share = limit.kind === 'percent' ? limit.value : 50;
  if (share >= 100) return undefined;
  const stored = counts.reduce((n, c) => n + c.storedBytes, 0);
  const lost = counts.reduce((n, c) => n + c.lostBytes, 0);
  if (stored === 0 || lost * 100 <= stored * share) return undefined;
  return `the backup would shrink the stored files from ${stored} to ${stored - lost} bytes, losing ${((lost * 100) / stored).toFixed(0)}% (more than ${share}%; max-delete: ${describeMaxDelete(limit)}${limit.kind === 'count' ? ', a count of files, which leaves the bytes at 50%: 100% lifts it' : ''})`;
}

/** The error for refused entries: what, why, and how to go on when the server really lost the files. */
export function shrinkError(problems: string[]): UserError {
  return new UserError(
    `refusing the backup, nothing was written and the stored copy is untouched: ${problems.join('; ')}. ` +
      'A rebuilt or emptied server looks like this; back up before the rebuild, or restore. If the files are really gone, raise `max-delete` (100% turns the guard off)',
  );
}
