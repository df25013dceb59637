/**
 * "Did you mean": the known name closest to what someone typed, by edit distance (Levenshtein), for
 * inputs and flags carried over from other actions (`proxy_host`, `--stor`). Pure.
 */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * The nearest of `known` to `name` (case, `_` and `-` ignored), or undefined when nothing is near:
 * at most a third of the name's length away (at least 2 edits), or one containing the other.
 */
export function nearestName(name: string, known: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/_/g, '-');
  const n = norm(name);
  let best: { name: string; d: number } | undefined;
  for (const k of known) {
    const d = editDistance(n, norm(k));
    if (!best || d < best.d) best = { name: k, d };
  }
  if (!best) return undefined;
  const near = best.d <= Math.max(2, Math.floor(n.length / 3));
  if (near) return best.name;
  const containing = known.filter((k) => n.length >= 3 && (norm(k).includes(n) || n.includes(norm(k))));
  return containing.length === 1 ? containing[0] : undefined;
}
