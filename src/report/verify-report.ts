import type { VerifyEntry, VerifyResult } from '../model/verify-result.js';
import { md } from './plan-report.js';
import { safeText } from './reporter.js';

// Every path in a VerifyResult comes from the server (or a manifest a server once filled): each one
// goes through safeText (md for Markdown) before it is printed.

const ICON: Record<VerifyEntry['status'], string> = {
  same: '✅ same',
  drift: '⚠️ drift',
  missing: '⚠️ missing',
  denied: '⛔ denied',
};

/** Log lines: one per entry, then its first `limit` paths of each kind (+ added, - removed, ~ changed, ! denied). */
export function verifyLogLines(r: VerifyResult, limit = 20): string[] {
  const lines: string[] = [];
  for (const e of r.entries) {
    lines.push(`${e.status.padEnd(7)} ${safeText(e.remote)} -> ${safeText(e.local)}${counts(e)}`);
    for (const [mark, paths] of kinds(e)) {
      for (const p of paths.slice(0, limit)) lines.push(`  ${mark} ${safeText(p)}`);
      if (paths.length > limit) lines.push(`  ${mark} …and ${paths.length - limit} more`);
    }
    for (const n of e.notes) lines.push(`  note: ${safeText(n)}`);
  }
  lines.push(totalLine(r));
  return lines;
}

/** The step summary: a table of entries, then per drifted or denied entry its first `limit` paths of each kind. */
export function verifyMarkdown(title: string, r: VerifyResult, limit = 10): string {
  const out = [
    `### ${title}`,
    '',
    '| Recipe | Server path | Stored at | Result | Added | Removed | Changed | Notes |',
    '| --- | --- | --- | --- | ---: | ---: | ---: | --- |',
  ];
  for (const e of r.entries) {
    const notes = [...(e.denied.length ? [`${e.denied.length} not readable`] : []), ...e.notes.map(md)];
    out.push(
      `| ${md(e.recipe)} | \`${md(e.remote)}\` | \`${md(e.local)}\` | ${ICON[e.status]} | ${e.added.length} | ${e.removed.length} | ${e.changed.length} | ${notes.join('<br>')} |`,
    );
  }
  out.push('', totalLine(r).replace(/^(\w+)/, '**$1**'));
  for (const e of r.entries.filter((x) => kinds(x).length > 0)) {
    out.push('', `<details><summary><code>${html(e.remote)}</code>${html(counts(e))}</summary>`, '');
    for (const [mark, paths] of kinds(e)) {
      out.push(`${NAMES[mark]}:`, '');
      for (const p of paths.slice(0, limit)) out.push(`- \`${md(p)}\``);
      if (paths.length > limit) out.push(`- …and ${paths.length - limit} more`);
      out.push('');
    }
    out.push('</details>');
  }
  return out.concat('').join('\n');
}

/**
 * The step outputs of a verify: `drift` as true/false, the three path lists as JSON arrays of server
 * paths (a name may hold a newline, so no line-per-path format is safe; fromJSON reads these).
 */
export function verifyOutputs(r: VerifyResult): {
  drift: string;
  added: string;
  removed: string;
  'changed-files': string;
} {
  const all = (k: 'added' | 'removed' | 'changed') => JSON.stringify(r.entries.flatMap((e) => e[k]));
  return { drift: String(r.drift), added: all('added'), removed: all('removed'), 'changed-files': all('changed') };
}

type Mark = '+' | '-' | '~' | '!';
const NAMES: Record<Mark, string> = {
  '+': 'Added on the server',
  '-': 'Removed from the server',
  '~': 'Changed',
  '!': 'Not readable, not compared',
};

function kinds(e: VerifyEntry): Array<[Mark, string[]]> {
  const all: Array<[Mark, string[]]> = [
    ['+', e.added],
    ['-', e.removed],
    ['~', e.changed],
    ['!', e.denied],
  ];
  return all.filter(([, paths]) => paths.length > 0);
}

function counts(e: VerifyEntry): string {
  const parts = [
    e.added.length && `${e.added.length} added`,
    e.removed.length && `${e.removed.length} removed`,
    e.changed.length && `${e.changed.length} changed`,
    e.denied.length && `${e.denied.length} not readable`,
  ].filter(Boolean);
  return parts.length ? `: ${parts.join(', ')}` : '';
}

function totalLine(r: VerifyResult): string {
  const n = (s: VerifyEntry['status']) => r.entries.filter((e) => e.status === s).length;
  const head = r.drift ? 'Drift' : 'No drift';
  return `${head}: ${r.counts.added} added, ${r.counts.removed} removed, ${r.counts.changed} changed; ${n('same')} of ${r.entries.length} entries the same, ${n('missing')} missing, ${n('denied')} denied.`;
}

function html(text: string): string {
  return safeText(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
