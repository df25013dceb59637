/**
 * rsync's exclude rules, as recipes' `remote_skip` and the `exclude` input use them (rsync 3's
 * exclude.c `rule_matches` and wildmatch.c, followed step by step, so a pattern selects what
 * `rsync -a --exclude=PATTERN` would; __tests__/unit/excludes-rsync.test.ts compares with rsync):
 * - a trailing `/` matches folders only (it is then dropped from the pattern);
 * - no slash and no `**`: matches the last name, at any depth;
 * - a slash or `**`: matches the whole path from its end, at a name boundary (`a/b` matches `x/a/b`),
 *   unless it starts with `/`, which anchors it at the top of the transfer (not the filesystem root);
 * - `*` matches within a name, `**` across folders, `?` one character (not `/`), `[...]` a class
 *   (`[!a]` and `[^a]` negate, never `/`), `\` escapes the next character;
 * - `dir/***` matches `dir` itself and everything below it; `dir/**` only what is below it.
 * An excluded folder's contents are not transferred: rsync does not descend into it (applyExcludes).
 */
export type ExcludeTest = (rel: string, isDir: boolean) => boolean;

interface Rule {
  pattern: string;
  dirOnly: boolean;
  anchored: boolean;
  /** Holds `*`, `?` or `[`: matched with wildmatch, else compared literally. */
  wild: boolean;
  /** Holds `**`. */
  wild2: boolean;
  /** Starts with `**`. */
  wild2Prefix: boolean;
  /** Ends with `***`. */
  wild3Suffix: boolean;
  /** Slashes in the pattern (the leading one of an anchored pattern included, as rsync counts). */
  slashes: number;
}

function parseRule(raw: string): Rule {
  let pattern = bytes(raw);
  let dirOnly = false;
  if (pattern.length > 1 && pattern.endsWith('/')) {
    pattern = pattern.slice(0, -1);
    dirOnly = true;
  }
  const firstWild = pattern.search(/[*?[]/);
  const wild = firstWild >= 0;
  const star2 = wild ? pattern.indexOf('**', firstWild) : -1;
  const wild2 = star2 >= 0;
  return {
    pattern,
    dirOnly,
    anchored: pattern.startsWith('/'),
    wild,
    wild2,
    wild2Prefix: star2 === 0,
    wild3Suffix: wild2 && pattern.endsWith('***'),
    slashes: [...pattern].filter((c) => c === '/').length,
  };
}

export function makeExcludeTest(patterns: string[]): ExcludeTest {
  const rules = patterns.map(parseRule);
  // rsync compares bytes: a name or pattern beyond ASCII is matched as its UTF-8 bytes.
  return (rel, isDir) => {
    const text = bytes(rel);
    return rules.some((r) => ruleMatches(r, text, isDir));
  };
}

/** A string as its UTF-8 bytes, one character per byte (ASCII unchanged). */
function bytes(s: string): string {
  return /^[\x00-\x7f]*$/.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1');
}

/** rsync's rule_matches for an exclude rule and a path relative to the transfer's top. */
function ruleMatches(r: Rule, rel: string, isDir: boolean): boolean {
  if (rel === '') return false;
  let name = rel;
  let text = rel;
  if (r.slashes === 0 && !r.wild2) name = text = rel.slice(rel.lastIndexOf('/') + 1);
  else if (r.wild2Prefix) text = '/' + text; // lets "**/x" match x at the top
  if (isDir) {
    if (r.wild3Suffix) text += '/'; // lets "dir/***" match dir itself
  } else if (r.dirOnly) return false;
  const pattern = r.anchored ? r.pattern.slice(1) : r.pattern;
  // Unanchored with a slash but no `**`: the last slashes+1 names; with `**` (not leading): after any slash.
  const where =
    !r.anchored && r.slashes > 0 && !r.wild2 ? r.slashes + 1 : !r.anchored && !r.wild2Prefix && r.wild2 ? -1 : 0;
  // Only a wildcard pattern gets the extra "/" above, so a literal is one string, compared as written
  // (a backslash in a pattern without wildcards is a backslash).
  if (r.wild) return wildmatchArray(pattern, text, where);
  if (r.anchored) return name === pattern;
  // A literal: the path ends with it, at a name boundary.
  return name === pattern || (name.endsWith(pattern) && name[name.length - pattern.length - 1] === '/');
}

/**
 * wildmatch_array on one string: `where` 0 matches at the start only, -1 also after any slash, N
 * only against the last N names (never when there are fewer).
 */
function wildmatchArray(pattern: string, text: string, where: number): boolean {
  if (where > 0) {
    let count = where;
    for (let at = text.length - 1; at >= 0; at--) {
      if (text[at] === '/' && --count === 0) return dowild(pattern, 0, text.slice(at + 1), 0) === TRUE;
    }
    return count === 1 && dowild(pattern, 0, text, 0) === TRUE;
  }
  let matched = dowild(pattern, 0, text, 0);
  if (matched !== TRUE && where < 0 && matched !== ABORT_ALL) {
    for (let i = 0; i < text.length; i++) {
      if (text[i] !== '/') continue;
      matched = dowild(pattern, 0, text, i + 1);
      if (matched !== FALSE && matched !== ABORT_TO_STARSTAR) break;
    }
  }
  return matched === TRUE;
}

const FALSE = 0;
const TRUE = 1;
const ABORT_ALL = -1;
const ABORT_TO_STARSTAR = -2;
type Result = typeof FALSE | typeof TRUE | typeof ABORT_ALL | typeof ABORT_TO_STARSTAR;

/** rsync's dowild (wildmatch.c), on one string. */
function dowild(p: string, pi: number, text: string, ti: number): Result {
  for (; pi < p.length; pi++, ti++) {
    let pc = p[pi]!;
    if (ti >= text.length && pc !== '*') return ABORT_ALL;
    const tc = text[ti]!;
    switch (pc) {
      case '\\':
        pc = p[++pi]!; // the next character, literally (a trailing backslash never matches)
        if (tc !== pc) return FALSE;
        continue;
      case '?':
        if (tc === '/') return FALSE;
        continue;
      case '*': {
        let special = false;
        if (p[pi + 1] === '*') {
          while (p[pi + 1] === '*') pi++;
          special = true;
        }
        pi++;
        if (pi >= p.length) {
          // Trailing "**" matches everything; a trailing "*" only when no slash follows.
          return special || !text.includes('/', ti) ? TRUE : FALSE;
        }
        for (; ti < text.length; ti++) {
          const m = dowild(p, pi, text, ti);
          if (m !== FALSE) {
            if (!special || m !== ABORT_TO_STARSTAR) return m;
          } else if (!special && text[ti] === '/') return ABORT_TO_STARSTAR;
        }
        return ABORT_ALL;
      }
      case '[': {
        let k = pi + 1;
        let negate = false;
        if (p[k] === '!' || p[k] === '^') {
          negate = true;
          k++;
        }
        let matched = false;
        let prev = '';
        let first = true;
        for (; first || p[k] !== ']'; first = false, k++) {
          const c = p[k];
          if (c === undefined) return ABORT_ALL;
          if (c === '\\') {
            const e = p[++k];
            if (e === undefined) return ABORT_ALL;
            if (tc === e) matched = true;
            prev = e;
            continue;
          }
          if (c === '-' && prev !== '' && p[k + 1] !== undefined && p[k + 1] !== ']') {
            let hi = p[++k]!;
            if (hi === '\\') {
              hi = p[++k]!;
              if (hi === undefined) return ABORT_ALL;
            }
            if (tc <= hi && tc >= prev) matched = true;
            prev = '';
            continue;
          }
          if (c === '[' && p[k + 1] === ':') {
            const close = p.indexOf(']', k + 2);
            if (close < 0) return ABORT_ALL;
            if (close - (k + 2) - 1 < 0 || p[close - 1] !== ':') {
              // No ":]" before the first "]": a literal "[" in the set.
              if (tc === '[') matched = true;
              prev = c;
              continue;
            }
            const cls = CLASSES[p.slice(k + 2, close - 1)];
            if (!cls) return ABORT_ALL;
            if (cls.test(tc)) matched = true;
            k = close;
            prev = '';
            continue;
          }
          if (tc === c) matched = true;
          prev = c;
        }
        pi = k;
        if (matched === negate || tc === '/') return FALSE;
        continue;
      }
      default:
        if (tc !== pc) return FALSE;
    }
  }
  return ti >= text.length ? TRUE : FALSE;
}

const CLASSES: Record<string, RegExp> = {
  alnum: /[A-Za-z0-9]/,
  alpha: /[A-Za-z]/,
  blank: /[ \t]/,
  cntrl: /[\x00-\x1f\x7f]/,
  digit: /[0-9]/,
  graph: /[\x21-\x7e]/,
  lower: /[a-z]/,
  print: /[\x20-\x7e]/,
  punct: /[!-/:-@[-`{-~]/,
  space: /[ \t\n\r\f\v]/,
  upper: /[A-Z]/,
  xdigit: /[0-9A-Fa-f]/,
};

/**
 * Drops excluded paths and everything below an excluded folder. `rel`s are relative to the
 * transfer's top; for a single-file entry the top is its parent, so its rel is its own name.
 * Linear in the listing: a path is below an excluded folder when one of its own parents is one (a walk
 * up its few parents), never a scan of every excluded folder (40,000 excluded folders in a listing of
 * as many cost 15.7 s that way).
 */
export function applyExcludes<T extends { rel: string; type: string }>(
  files: T[],
  test: ExcludeTest,
  relOf: (f: T) => string = (f) => f.rel,
): T[] {
  const excludedDirs = new Set<string>();
  const kept: T[] = [];
  for (const f of files) {
    const rel = relOf(f);
    if (rel === '') {
      kept.push(f);
      continue;
    }
    if (excludedDirs.size > 0 && belowOneOf(rel, excludedDirs)) continue;
    if (test(rel, f.type === 'dir')) {
      if (f.type === 'dir') excludedDirs.add(rel);
      continue;
    }
    kept.push(f);
  }
  return kept;
}

/** Is a folder above `rel` in `dirs`? */
function belowOneOf(rel: string, dirs: ReadonlySet<string>): boolean {
  for (let i = rel.lastIndexOf('/'); i > 0; i = rel.lastIndexOf('/', i - 1)) if (dirs.has(rel.slice(0, i))) return true;
  return false;
}
