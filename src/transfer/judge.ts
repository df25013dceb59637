import { safeText } from '../report/reporter.js';

/**
 * One rule for every mode: a missing entry follows `if-missing`, a denied one (or denied paths in it)
 * fails the run unless `allow-denied`. Only the wording differs by mode (what "denied" means there,
 * and what became of the entry). Pure.
 */
export interface Judged {
  recipe: string;
  remote: string;
  missing: boolean;
  /** The entry as a whole could not be read (or written). */
  wholeDenied: boolean;
  /** Paths below it that could not be (a whole-denied entry may name its root here). */
  denied: string[];
}

/** An entry's outcome (backup, restore) or verify result as judgeEntries reads it. */
export function judged(o: { recipe: string; remote: string; status: string; denied: string[] }): Judged {
  return {
    recipe: o.recipe,
    remote: o.remote,
    missing: o.status === 'missing',
    wholeDenied: o.status === 'denied',
    denied: o.denied,
  };
}

export interface Wording {
  /** After "is missing", e.g. " on the server; the stored copy is kept". */
  missing: string;
  /** E.g. "not readable by", "not writable by". */
  denied: string;
  /** What became of a denied entry, e.g. "stored copy kept", "not restored". */
  consequence: string;
}

export interface JudgeOptions {
  ifMissing: 'warn' | 'error' | 'ignore';
  allowDenied: boolean;
  username: string;
}

export function judgeEntries(
  items: Judged[],
  opts: JudgeOptions,
  wording: Wording,
): { problems: string[]; warnings: string[] } {
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const e of items.filter((x) => x.missing)) {
    const msg = `${e.recipe}: ${safeText(e.remote)} is missing${wording.missing}`;
    if (opts.ifMissing === 'error') problems.push(msg);
    else if (opts.ifMissing === 'warn') warnings.push(msg);
  }
  for (const e of items.filter((x) => x.wholeDenied || x.denied.length > 0)) {
    const whole = wholly(e);
    const what = whole
      ? safeText(e.remote)
      : `${e.denied.length} path(s) in ${safeText(e.remote)} (${e.denied.slice(0, 5).map(safeText).join(', ')}${e.denied.length > 5 ? ', …' : ''})`;
    const msg = `${e.recipe}: ${what} ${wording.denied} ${safeText(opts.username)}; ${wording.consequence}. Use sudo: true or allow-denied: true`;
    if (opts.allowDenied) warnings.push(msg);
    else problems.push(msg);
  }
  return { problems, warnings };
}

/** Denied as a whole: nothing below it is named but (at most) the root itself. */
function wholly(e: Judged): boolean {
  return e.wholeDenied && (e.denied.length === 0 || (e.denied.length === 1 && e.denied[0] === e.remote));
}
