import type { EntryOutcome, RunTotals } from '../model/outcome.js';
import { md } from './plan-report.js';
import { safeText } from './reporter.js';

const ICON: Record<EntryOutcome['status'], string> = {
  changed: '✅ changed',
  unchanged: '⏸️ unchanged',
  missing: '⚠️ missing',
  denied: '⛔ denied',
  partial: '⛔ partly denied',
};

/** One log line per entry outcome. */
export function outcomeLine(o: EntryOutcome): string {
  const parts = [`${o.status.padEnd(9)} ${safeText(o.remote)} -> ${safeText(o.local)}`];
  if (o.files) parts.push(`${o.files} file(s), ${formatBytes(o.bytes)}`);
  if (o.unchanged) parts.push(`${o.unchanged} unchanged`);
  if (o.deleted) parts.push(`${o.deleted} deleted`);
  if (o.denied.length) parts.push(`${o.denied.length} denied`);
  return parts.join(', ');
}

export function outcomesMarkdown(title: string, outcomes: EntryOutcome[], t: RunTotals, extra: string[]): string {
  const out = [
    `### ${title}`,
    '',
    '| Recipe | Server path | Stored at | Outcome | Files | Bytes | Unchanged | Deleted | Notes |',
    '| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const o of outcomes) {
    const notes = [...o.denied.slice(0, 5).map((d) => `denied: \`${md(d)}\``), ...o.notes.map(md)];
    if (o.denied.length > 5) notes.push(`…and ${o.denied.length - 5} more denied`);
    out.push(
      `| ${md(o.recipe)} | \`${md(o.remote)}\` | \`${md(o.local)}\` | ${ICON[o.status]} | ${o.files} | ${formatBytes(o.bytes)} | ${o.unchanged} | ${o.deleted} | ${notes.join('<br>')} |`,
    );
  }
  out.push(
    '',
    `**${t.files}** file(s), **${formatBytes(t.bytes)}** moved; ${t.unchanged} unchanged, ${t.missing} missing, ${t.denied} denied; stored copy ${t.changed ? 'changed' : 'unchanged'}.`,
  );
  return out.concat(extra.map(md), '').join('\n');
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(1)} ${units[u]}`;
}
