/**
 * Reads one hook of a module with the evaluator (evaluator.ts): finds its sub, applies the pragmas in
 * effect there (strict, signatures), binds the parameters and reports the outcome. Pure.
 */
import { Evaluator, Fault, str, Unfollowable } from './evaluator.js';
import type { PerlModule, SubDef, Tri } from './module.js';
import type { StaticOutcome } from './values.js';

/** A parameter list that is a valid prototype when signatures are off. */
const PROTOTYPE = /^[\s$@%&*;\\[\]+_]*$/;

/**
 * Reads hook `hook` of `mod` called as a method: `invocant` is the class name, `args` the arguments.
 * 'absent' means the module itself does not define it (inheritance is the caller's business).
 */
export function evalHook(mod: PerlModule, hook: string, invocant: string, args: string[]): StaticOutcome {
  const sub = mod.subs.get(hook);
  if (!sub) return absentHook(mod, hook);
  if (!sub.body)
    return {
      kind: 'dynamic',
      line: mod.stopped?.line ?? sub.line,
      construct: mod.stopped?.construct ?? 'an unterminated sub',
    };
  const state = pragmasAt(mod, sub.at);
  const ev = new Evaluator(mod, { pkg: mod.pkg!.name, strict: state.strict }, sub.body[0], sub.body[1], [
    str(invocant),
    ...args.map(str),
  ]);
  try {
    if (sub.params) bindParams(ev, sub, state.signatures);
    const values = ev.run();
    return { kind: 'list', line: ev.resultLine, values };
  } catch (e) {
    if (e instanceof Unfollowable) return { kind: 'dynamic', line: e.line, construct: e.construct };
    if (e instanceof Fault) return { kind: 'error', line: e.line, detail: e.detail };
    throw e;
  }
}

/** The effect of the pragmas before token `at`. */
function pragmasAt(mod: PerlModule, at: number): { strict: Tri; signatures: Tri } {
  const state: { strict: Tri; signatures: Tri } = { strict: 'off', signatures: 'off' };
  const apply = (was: Tri, now: Tri | undefined): Tri =>
    now === 'maybe' ? (was === 'on' ? 'on' : 'maybe') : (now ?? was);
  for (const p of mod.pragmas) {
    if (p.at >= at) break;
    state.strict = apply(state.strict, p.strict);
    state.signatures = apply(state.signatures, p.signatures);
  }
  return state;
}

/** `sub f (...)` is a signature or a prototype depending on the signatures feature at that point. */
function bindParams(ev: Evaluator, sub: SubDef, signatures: Tri): void {
  const prototype = PROTOTYPE.test(sub.params!.text);
  if (signatures === 'on') return ev.bindSignature(sub);
  if (signatures === 'off' && prototype) return;
  throw new Unfollowable(
    sub.line,
    signatures === 'maybe'
      ? 'a parameter list (signature or prototype? the signatures feature cannot be confirmed)'
      : 'a parameter list while the signatures feature is off',
  );
}

function absentHook(mod: PerlModule, hook: string): StaticOutcome {
  if (mod.stopped)
    return {
      kind: 'dynamic',
      line: mod.stopped.line,
      construct: `${mod.stopped.construct}, past which the reader cannot see`,
    };
  if (mod.runtimeSubs)
    return {
      kind: 'dynamic',
      line: mod.runtimeSubs.line,
      construct: `${mod.runtimeSubs.construct}, which may define ${hook}`,
    };
  const imported = mod.imports.get(hook);
  if (imported) return { kind: 'dynamic', line: imported.line, construct: `${hook} imported from ${imported.from}` };
  return { kind: 'absent' };
}
