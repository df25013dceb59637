// Summarises V8 CPU profiles of our runs (npm run bench -- --cpu-prof DIR): self time per source file of
// the bundle (esbuild marks each with a `// path` comment, which is how a bundle line maps back to
// src/… or node_modules/…) and per function.
//
//   node --import tsx scripts/bench/profile-summary.ts DIR-or-FILE... [--top N]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** For a bundle file: line number → source file named by the nearest `// path` comment above it. */
const sectionCache = new Map<string, Array<{ line: number; source: string }>>();
function sectionsOf(file: string): Array<{ line: number; source: string }> {
  let s = sectionCache.get(file);
  if (!s) {
    s = [];
    try {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((text, i) => {
          const m = /^\/\/ ((?:src|node_modules)\/\S+)$/.exec(text);
          if (m) s!.push({ line: i, source: m[1]! });
        });
    } catch {
      // Not a readable file (node:internal, etc.).
    }
    sectionCache.set(file, s);
  }
  return s;
}

function sourceOf(url: string, line: number): string {
  if (!url) return '(native / GC / idle)';
  if (url.startsWith('node:')) return url;
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const sections = sectionsOf(file);
  let found = file.replace(/^.*\/dist\//, 'dist/');
  for (const s of sections) {
    if (s.line > line) break;
    found = s.source;
  }
  // Group node_modules by package.
  const pkg = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(found);
  return pkg ? `node_modules/${pkg[1]}` : found;
}

export function summarise(file: string, top: number): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const bySource = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const { url, lineNumber, functionName } = n.callFrame;
    total += us;
    const src =
      functionName === '(idle)'
        ? '(idle: waiting for I/O)'
        : functionName === '(garbage collector)'
          ? '(garbage collector)'
          : sourceOf(url, lineNumber);
    bySource.set(src, (bySource.get(src) ?? 0) + us);
    const fn = `${functionName || '(anonymous)'} [${src}]`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  }
  const rows = (m: Map<string, number>): string =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(
        ([k, us]) => `  ${(us / 1000).toFixed(0).padStart(6)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`,
      )
      .join('\n');
  return `${file}: ${(total / 1000).toFixed(0)} ms sampled\n by source:\n${rows(bySource)}\n by function:\n${rows(byFunction)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const t = args.indexOf('--top');
  const top = t >= 0 ? Number(args.splice(t, 2)[1]) : 15;
  for (const a of args) {
    const files = statSync(a).isDirectory()
      ? readdirSync(a)
          .filter((f) => f.endsWith('.cpuprofile'))
          .map((f) => join(a, f))
      : [a];
    for (const f of files.sort()) console.log(summarise(f, top) + '\n');
  }
}
