import type { Plan } from '../plan/plan.js';
import { safeText } from './reporter.js';

/** The plan as plain-text lines for the log: one block per recipe, one line per entry. */
export function planLogLines(plan: Plan): string[] {
  const lines = [
    `Plan for ${plan.domain} (install dir ${plan.installDir}, stored under ${plan.dataDir}/${plan.domain}/)`,
  ];
  for (const r of plan.recipes) {
    lines.push(`${r.name} (${r.file})`);
    const width = Math.max(0, ...r.files.map((f) => f.remote.length));
    for (const f of r.files) lines.push(`  ${safeText(f.remote.padEnd(width))}  ->  ${safeText(f.path)}`);
    if (r.skip.length) lines.push(`  skip: ${r.skip.map(safeText).join(', ')}`);
    if (r.prepare.length) lines.push(`  prepare: ${r.prepare.map(safeText).join(' ; ')}`);
    if (r.beforeRestore?.length) lines.push(`  before_restore: ${r.beforeRestore.map(safeText).join(' ; ')}`);
    if (r.afterRestore?.length) lines.push(`  after_restore: ${r.afterRestore.map(safeText).join(' ; ')}`);
    if (r.datadirs.length) lines.push(`  datadirs: ${r.datadirs.map(safeText).join(', ')}`);
    for (const x of r.restores)
      lines.push(
        `  restores ${safeText(x.to)} from ${safeText(x.from)}${x.owner ? ` owner ${x.owner}` : ''}${x.mode ? ` mode ${x.mode}` : ''}`,
      );
  }
  if (plan.recipes.length === 0) lines.push('No recipe declares remote files.');
  return lines;
}

/** The plan as a Markdown table for the step summary. */
export function planMarkdown(plan: Plan): string {
  const out = [`### remote-files plan for \`${md(plan.domain)}\``, ''];
  if (plan.recipes.length === 0) return out.concat('No recipe declares remote files.', '').join('\n');
  out.push('| Recipe | Server path | Stored at | Skip | Prepare |', '| --- | --- | --- | --- | --- |');
  for (const r of plan.recipes) {
    for (const f of r.files) {
      out.push(
        `| ${md(r.name)} | \`${md(f.remote)}\` | \`${md(f.path)}\` | ${r.skip.map((s) => `\`${md(s)}\``).join(' ')} | ${r.prepare.length} |`,
      );
    }
  }
  const restores = plan.recipes.flatMap((r) => r.restores.map((x) => ({ r, x })));
  if (restores.length) {
    out.push('', '| Recipe | Restore to | From | Owner | Mode |', '| --- | --- | --- | --- | --- |');
    for (const { r, x } of restores)
      out.push(`| ${md(r.name)} | \`${md(x.to)}\` | \`${md(x.from)}\` | ${md(x.owner ?? '')} | ${x.mode ?? ''} |`);
  }
  return out.concat('').join('\n');
}

/** Escapes what would break a Markdown table cell. */
export function md(text: string): string {
  return safeText(text).replace(/\|/g, '\\|').replace(/`/g, "'");
}
