// Running a scenario: its tools in alternating order round after round, each run prepared, synced,
// timed and checked; then the medians and the targets judged round by round (paired ratios).
import { spawnSync } from 'node:child_process';
import { measure, median, type Measured } from './measure.js';
import type { ScenarioResult, TargetResult, ToolResult } from './report.js';
import { outputsOf } from './tools.js';
import type { Scenario, Target, Tool, World } from './world.js';

interface Sample {
  ms: number;
  rssKiB: number | undefined;
  outputs: Record<string, string>;
  phases: Phases | undefined;
}

export interface Phases {
  /** spawn → first line of output (Node start, bundle load, inputs). */
  startup: number;
  /** → "Connected to …" (plan, TCP, key exchange, login, transport probe). */
  connect: number;
  /** → end of the Salvage/Restore group (listing, decisions, transfer, writing). */
  transfer: number;
  /** → exit (report, outputs, summary, teardown). */
  finish: number;
}

function phasesOf(m: Measured): Phases | undefined {
  const first = m.lines[0]?.t;
  const connected = m.lines.find((l) => l.line.startsWith('Connected to '))?.t;
  const groupAt = m.lines.findIndex((l) => /^::group::(Salvage|Restore)/.test(l.line));
  const groupEnd = groupAt >= 0 ? m.lines.slice(groupAt).find((l) => l.line === '::endgroup::')?.t : undefined;
  if (first === undefined || connected === undefined || groupEnd === undefined) return undefined;
  return { startup: first, connect: connected - first, transfer: groupEnd - connected, finish: m.ms - groupEnd };
}

export async function runScenario(w: World, sc: Scenario): Promise<ScenarioResult> {
  console.log(`\n${sc.title}`);
  await sc.setup(w);
  const tools = withVariants(w, sc.tools(w)).filter((t) => !w.opts.tools || w.opts.tools.test(t.name));
  const samples = new Map<string, Array<Sample | undefined>>(tools.map((t) => [t.name, []]));
  const errors: string[] = [];
  for (let round = -w.opts.warmup; round < w.opts.runs; round++) {
    // Alternate: each round starts with the next tool, so no tool always runs first (or right after another).
    const start = ((round % tools.length) + tools.length) % tools.length;
    const order = [...tools.slice(start), ...tools.slice(0, start)];
    process.stdout.write(`  ${round < 0 ? 'warm-up' : `round ${round + 1}`}:`);
    for (const tool of order) {
      if (round < 0 && tool.slow) continue;
      await tool.prepare?.();
      // Flush what earlier runs and the preparation wrote or deleted (ext4 journal, discards): file
      // creation otherwise stalls at random behind another run's writeback.
      spawnSync('sync');
      const cmd = tool.command();
      const m = await measure(cmd, w.tmp);
      const outputs = tool.ours ? outputsOf(cmd) : {};
      const problem = tool.check?.(m, outputs);
      if (problem) errors.push(`${sc.id} ${tool.name} round ${round + 1}: ${problem}`);
      const sample: Sample = { ms: m.ms, rssKiB: m.rssKiB, outputs, phases: tool.ours ? phasesOf(m) : undefined };
      if (round >= 0) samples.get(tool.name)![round] = problem ? undefined : sample;
      process.stdout.write(` ${tool.name} ${(m.ms / 1000).toFixed(2)}s${problem ? ' (FAILED)' : ''} |`);
      if (w.opts.trace && tool.ours && sample.phases) {
        const p = sample.phases;
        process.stdout.write(
          m.lines
            .filter((l) => !l.line.startsWith('::add-mask::'))
            .map((l) => `\n        ${l.t.toFixed(0).padStart(6)} ms ${l.line.slice(0, 160)}`)
            .join('') +
            `\n      (${tool.name}: startup ${p.startup.toFixed(0)} ms, connect ${p.connect.toFixed(0)} ms, transfer ${p.transfer.toFixed(0)} ms, finish ${p.finish.toFixed(0)} ms; outputs ${JSON.stringify({ files: outputs.files, bytes: outputs.bytes, unchanged: outputs.unchanged })})\n     `,
        );
      }
    }
    process.stdout.write('\n');
  }
  for (const e of errors) console.log(`  ! ${e}`);

  const toolResults: ToolResult[] = tools.map((t) => {
    const ok = samples.get(t.name)!.filter((s): s is Sample => s !== undefined);
    const rss = ok.map((s) => s.rssKiB).filter((x): x is number => x !== undefined);
    const ph = ok.map((s) => s.phases).filter((p): p is Phases => p !== undefined);
    return {
      name: t.name,
      ours: t.ours,
      runs: ok.length,
      medianMs: median(ok.map((s) => s.ms)),
      minMs: Math.min(...ok.map((s) => s.ms)),
      maxMs: Math.max(...ok.map((s) => s.ms)),
      peakRssBytes: rss.length ? Math.max(...rss) * 1024 : undefined,
      phases: ph.length
        ? {
            startup: median(ph.map((p) => p.startup)),
            connect: median(ph.map((p) => p.connect)),
            transfer: median(ph.map((p) => p.transfer)),
            finish: median(ph.map((p) => p.finish)),
          }
        : undefined,
    };
  });
  const targets: TargetResult[] = sc.targets.map((tg) => judge(tg, samples, w.opts.runs));
  return { id: sc.id, title: sc.title, tools: toolResults, targets, errors };
}

/** Each of our tools once more per variant bundle: the same run with the variant's index.js. */
function withVariants(w: World, tools: Tool[]): Tool[] {
  return tools.flatMap((t) =>
    !t.ours
      ? [t]
      : [
          t,
          ...w.variantEntries.map((v): Tool => ({
            ...t,
            name: `${t.name} [${v.name}]`,
            command: () => {
              const c = t.command();
              return { ...c, argv: c.argv.map((a) => (a === w.entry ? v.entry : a)) };
            },
          })),
        ],
  );
}

function judge(tg: Target, samples: Map<string, Array<Sample | undefined>>, runs: number): TargetResult {
  const ours = samples.get(tg.ours) ?? [];
  const okOurs = ours.filter((s): s is Sample => s !== undefined);
  const base: TargetResult = { label: tg.label, kind: tg.kind, limit: tg.limit, value: NaN, pass: false, detail: '' };
  if (okOurs.length < runs) base.detail = `${runs - okOurs.length} of ${runs} runs failed`;
  if (tg.kind === 'rss') {
    const rss = okOurs.map((s) => s.rssKiB).filter((x): x is number => x !== undefined);
    if (rss.length === 0) return { ...base, detail: 'RSS not measured' };
    const peak = Math.max(...rss) * 1024;
    return { ...base, value: peak, pass: peak <= tg.limit && okOurs.length === runs };
  }
  if (tg.kind === 'bytes0') {
    const bytes = okOurs.map((s) => Number(s.outputs.bytes));
    const worst = bytes.length ? Math.max(...bytes) : NaN;
    return { ...base, value: worst, pass: okOurs.length === runs && worst === 0 };
  }
  if (tg.kind === 'wire') {
    // Bytes through the shaping proxy per run (see delta-scenarios.ts), medians of ours and the baseline.
    const wire = (name: string) =>
      median((samples.get(name) ?? []).flatMap((x) => (x?.outputs.wire ? [Number(x.outputs.wire)] : [])));
    const [a, b] = [wire(tg.ours), wire(tg.base!)];
    const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
    const note = `ours ${mb(a)}, ${tg.base} ${mb(b)}`;
    return { ...base, value: a / b, pass: okOurs.length === runs && a / b <= tg.limit, note };
  }
  const bases = (tg.bases ?? [tg.base!]).map((b) => samples.get(b) ?? []);
  // Per round, the fastest baseline of that round (every one of them must have succeeded).
  const other = Array.from({ length: runs }, (_, r): Sample | undefined =>
    bases.every((b) => b[r]) ? bases.map((b) => b[r]!).reduce((x, y) => (y.ms < x.ms ? y : x)) : undefined,
  );
  const ratios: number[] = [];
  for (let r = 0; r < runs; r++) {
    const a = ours[r];
    const b = other[r];
    if (a && b) ratios.push(a.ms / b.ms);
  }
  const okBase = other.filter((s): s is Sample => s !== undefined);
  const value = median(ratios);
  return {
    ...base,
    value,
    oursMs: median(okOurs.map((s) => s.ms)),
    baseMs: median(okBase.map((s) => s.ms)),
    ratios,
    pass: ratios.length === runs && value <= tg.limit,
  };
}
