/** The option keys a hook reads from its arguments (static Perl reader, see static.ts). Pure. */
import type { PerlModule } from './module.js';

/**
 * The keys a sub reads from the hash it fills from its arguments (`my ($self, %opts) = @_;`, `my %o =
 * @_;`, a signature `($class, %opts)`): every `$opts{key}`, `$opts{'key'}` or `$opts{"key"}` in its
 * text, strings included, in order of appearance. Used to name a key nobody set when a hook's value
 * turns out undefined; never to decide what the hook returns (perl does that).
 */
export function hashKeysRead(mod: PerlModule, hook: string): Array<{ hash: string; key: string; handled: boolean }> {
  const sub = mod.subs.get(hook);
  if (!sub?.body) return [];
  const from = mod.toks[sub.body[0]]?.pos ?? 0;
  const to = mod.toks[sub.body[1]]?.pos ?? mod.source.length;
  const text = mod.source.slice(from, to);
  const hashes = new Set<string>();
  for (const m of text.matchAll(/\bmy\s*\(([^)]*)\)\s*=\s*@_/g))
    for (const h of m[1]!.matchAll(/%(\w+)/g)) hashes.add(h[1]!);
  for (const m of text.matchAll(/\bmy\s+%(\w+)\s*=\s*@_/g)) hashes.add(m[1]!);
  for (const h of (sub.params?.text ?? '').matchAll(/%(\w+)/g)) hashes.add(h[1]!);
  const out: Array<{ hash: string; key: string; handled: boolean }> = [];
  const seen = new Set<string>();
  for (const m of text.matchAll(/\$(\w+)\s*\{\s*(?:(-?[A-Za-z_]\w*)|'([^'\\]*)'|"([^"\\$@]*)")\s*\}/g)) {
    const hash = m[1]!;
    const key = (m[2] ?? m[3] ?? m[4])!;
    if (hashes.size > 0 && !hashes.has(hash)) continue;
    if (seen.has(`${hash}\0${key}`)) continue;
    seen.add(`${hash}\0${key}`);
    out.push({ hash, key, handled: false });
  }
  // A key tested or given a fallback somewhere (`exists`, `defined`, `//`, `||`, `?:`, `if`/`unless`)
  // is one the recipe handles when missing.
  for (const k of out) {
    const el = `\\$${k.hash}\\s*\\{\\s*(?:${escapeRe(k.key)}|'${escapeRe(k.key)}'|"${escapeRe(k.key)}")\\s*\\}`;
    const tested = new RegExp(
      `(?:\\b(?:exists|defined|if|unless)\\s*\\(?\\s*!?\\s*${el})|(?:${el}\\s*(?:\\/\\/|\\|\\||\\?|&&|\\bor\\b|\\band\\b))|(?:!\\s*${el})`,
    );
    k.handled = tested.test(text);
  }
  return out;
}

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
