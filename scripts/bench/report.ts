// Tables of the benchmark: the same markdown goes to the console and into bench-results.md.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export interface MachineInfo {
  cpu: string;
  cores: number;
  memory: string;
  kernel: string;
  openssh: string;
  rsync: string;
  node: string;
  rssSource: string;
  loadBefore: string;
  loadAfter: string;
  date: string;
  runs: number;
  warmup: number;
  sshCipher?: string;
  oursCipher?: string;
  proxy?: string;
  /** The shaping proxies of P7–P11. */
  links?: string;
  bundle?: string;
  variants?: string[];
}

export interface ToolResult {
  name: string;
  ours: boolean;
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  peakRssBytes: number | undefined;
  phases: { startup: number; connect: number; transfer: number; finish: number } | undefined;
}

export interface TargetResult {
  label: string;
  kind: 'ratio' | 'rss' | 'bytes0' | 'wire';
  limit: number;
  /** ratio (median of the per-round ratios), peak RSS in bytes, or the largest `bytes` output. */
  value: number;
  pass: boolean;
  detail: string;
  oursMs?: number;
  baseMs?: number;
  ratios?: number[];
  /** What the value is made of (wire: both medians in MB). */
  note?: string;
}

export interface ScenarioResult {
  id: string;
  title: string;
  tools: ToolResult[];
  targets: TargetResult[];
  errors: string[];
}

const s = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '–');
const mb = (bytes: number | undefined): string => (bytes === undefined ? '–' : (bytes / 1_000_000).toFixed(0));
const x = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(2)}×` : '–');

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

export function targetsTable(results: ScenarioResult[]): string {
  const rows = results.flatMap((r) =>
    r.targets.map((t) => {
      if (t.kind === 'ratio') {
        return [
          t.label,
          s(t.oursMs ?? NaN),
          s(t.baseMs ?? NaN),
          `${x(t.value)} (${(t.ratios ?? []).map((v) => v.toFixed(2)).join(', ')})`,
          `≤ ${t.limit.toFixed(2)}×`,
          verdict(t),
        ];
      }
      if (t.kind === 'rss') return [t.label, '', '', `${mb(t.value)} MB peak RSS`, `≤ ${mb(t.limit)} MB`, verdict(t)];
      if (t.kind === 'wire')
        return [
          t.label,
          '',
          '',
          `${t.note ?? ''} on the wire (medians): ${x(t.value)}`,
          `≤ ${t.limit.toFixed(2)}×`,
          verdict(t),
        ];
      return [t.label, '', '', `max bytes output ${Number.isFinite(t.value) ? t.value : '–'}`, '0', verdict(t)];
    }),
  );
  return table(
    ['target', 'ours median s', 'baseline median s', 'paired ratio, median (per round)', 'limit', 'result'],
    rows,
  );
}

function verdict(t: TargetResult): string {
  return `**${t.pass ? 'PASS' : 'FAIL'}**${t.detail ? ` (${t.detail})` : ''}`;
}

export function timesTable(results: ScenarioResult[]): string {
  const rows = results.flatMap((r) =>
    r.tools.map((t) => [
      r.id,
      t.ours ? `**${t.name}**` : t.name,
      String(t.runs),
      s(t.medianMs),
      s(t.minMs),
      s(t.maxMs),
      mb(t.peakRssBytes),
    ]),
  );
  return table(['scenario', 'tool', 'ok runs', 'median s', 'min s', 'max s', 'peak RSS MB'], rows);
}

export function phasesTable(results: ScenarioResult[]): string {
  const rows = results.flatMap((r) =>
    r.tools
      .filter((t) => t.phases)
      .map((t) => {
        const p = t.phases!;
        return [r.id, t.name, s(p.startup), s(p.connect), s(p.transfer), s(p.finish), s(t.medianMs)];
      }),
  );
  return table(
    [
      'scenario',
      'tool',
      'startup s (spawn → first log line)',
      'connect s (→ "Connected to")',
      'transfer s (→ end of Salvage/Restore)',
      'finish s (→ exit)',
      'total median s',
    ],
    rows,
  );
}

export function machineLines(m: MachineInfo): string[] {
  return [
    `- CPU: ${m.cpu}, ${m.cores} cores, ${m.memory} RAM; ${m.kernel}`,
    `- OpenSSH: ${m.openssh} (server and clients); ${m.rsync}`,
    `- Node: ${m.node}`,
    `- Bundle: ${m.bundle ?? '?'}`,
    ...(m.variants ?? []).map((v) => `- Variant ${v}`),
    `- Ciphers: OpenSSH clients negotiate ${m.sshCipher ?? '?'} (their default order); the bundle offers ${m.oursCipher ?? '?'}`,
    `- Peak RSS from ${m.rssSource}; MB = 10^6 bytes`,
    ...(m.proxy ? [`- P5 delay proxy: ${m.proxy}`] : []),
    ...(m.links ? [`- P7–P11 shaped links: ${m.links}`] : []),
    `- ${m.runs} timed round(s) per scenario after ${m.warmup} warm-up round(s); tools alternate within each round (each round starts with the next tool); ratios are per round (ours ÷ baseline), then the median`,
    `- Load average before ${m.loadBefore}, after ${m.loadAfter}; ${m.date}`,
  ];
}

export function markdownReport(m: MachineInfo, results: ScenarioResult[], quick: boolean): string {
  const errors = results.flatMap((r) => r.errors);
  return [
    `## Results${quick ? ' (quick run)' : ''}`,
    '',
    ...machineLines(m),
    '',
    '### Targets',
    '',
    targetsTable(results),
    '',
    '### Times',
    '',
    timesTable(results),
    '',
    '### Where our time goes (medians; phases from the timestamps of our log lines)',
    '',
    phasesTable(results),
    ...(errors.length ? ['', '### Failed runs', '', ...errors.map((e) => `- ${e.replace(/\n/g, ' ⏎ ')}`)] : []),
    '',
  ].join('\n');
}

export function printReport(m: MachineInfo, results: ScenarioResult[]): void {
  console.log('');
  console.log(machineLines(m).join('\n'));
  console.log('');
  console.log(targetsTable(results));
  console.log('');
  console.log(timesTable(results));
  console.log('');
  console.log(phasesTable(results));
}

/** Replaces the generated part of the report (between the markers), keeping what was written around it. */
export function writeReport(file: string, generated: string): void {
  const BEGIN = '<!-- bench:begin (generated by npm run bench; edits inside are overwritten) -->';
  const END = '<!-- bench:end -->';
  const block = `${BEGIN}\n${generated.trim()}\n${END}`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : `# remote-files benchmark\n\n${block}\n`;
  const a = text.indexOf(BEGIN.slice(0, 16));
  const b = text.indexOf(END);
  if (a >= 0 && b > a) text = text.slice(0, a) + block + text.slice(b + END.length);
  else if (!text.includes(block)) text = `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, text);
}
