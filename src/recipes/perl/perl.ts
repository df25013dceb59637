/**
 * Reads Perl provisioner recipes as Perl would evaluate them: the static reader for hooks that are plain
 * data, the runner's perl for the rest (and to compile every module), one shared normalisation.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { RecipeError } from '../../errors.js';
import { perlLine, runPerl, type PerlAnswer, type PerlJob } from './perl-eval.js';
import {
  evalHook,
  hashKeysRead,
  HOOKS,
  parsePerlModule,
  type PerlModule,
  type PerlValue,
  type StaticOutcome,
} from './static.js';
import type { HookContext, RawRecipe, RestoreSpec } from '../types.js';

export interface PerlFile {
  abs: string;
  /** Workspace-relative path, for messages. */
  rel: string;
  /** Recipe name: the file's basename without `.pm`. */
  name: string;
}

export interface PerlOptions {
  /** A perl binary, or null when the runner has none. */
  perl: string | null;
  /** Tests only: have perl evaluate every hook, including those the static reader follows. */
  forcePerl?: boolean;
  /** Tests only: how long perl may run (default 30 s). */
  timeoutMs?: number;
}

type Hook = (typeof HOOKS)[number];

/** Where the framework finds modules: the folder holding `Provisioner/Recipe/...`. */
interface Lib {
  abs: string;
  rel: string;
}

interface Loaded {
  file: PerlFile;
  mod: PerlModule;
  pkg: string;
  lib: Lib | null;
  /** The name `require` knows it by. */
  key: string;
}

/** A static outcome and the file it was read from (a parent's file for an inherited hook). */
interface Located {
  outcome: StaticOutcome;
  rel: string;
  /** The module that defines the hook (a parent's for an inherited one). */
  mod: PerlModule;
}

/** A hook's final value, with what error messages need. */
type Resolved =
  | { kind: 'absent' }
  | {
      kind: 'list';
      values: PerlValue[];
      hook: Hook;
      rel: string;
      via: string | undefined;
      line: number | undefined;
      /** `restores` only: what names a key the hook reads that nobody set, should a value be undefined. */
      unset?: UnsetKeys;
    };

/** Keys of `%opts` a `restores` reads that the configuration does not hold. */
interface UnsetKeys {
  recipe: string;
  keys: Array<{ hash: string; key: string }>;
  given: string[];
}

/** One RawRecipe per file, in input order. Any problem is a RecipeError naming the file and line. */
export async function readPerlRecipes(files: PerlFile[], ctx: HookContext, opts: PerlOptions): Promise<RawRecipe[]> {
  if (files.length === 0) return [];
  const loaded = files.map((f, i) => load(f, i));
  rejectSharedPackages(loaded);
  const libs = uniqueLibs(loaded);
  const parents = new ParentFinder(libs, loaded);
  const args = hookArgs(ctx);
  const given = optsList(ctx).map(([k]) => k);
  const statics = loaded.map((m) => new Map(HOOKS.map((h) => [h, staticHook(m, h, args[h], parents)] as const)));
  const answers = opts.perl ? await askPerl(opts.perl, loaded, libs, statics, args, opts) : null;
  return loaded.map((m, i) => {
    const get = (h: Hook): Resolved => resolve(m, h, statics[i]!.get(h)!, answers?.[i]!.get(h), given);
    return toRecipe(m.file, get);
  });
}

function load(file: PerlFile, index: number): Loaded {
  const mod = parsePerlModule(readSource(file.abs, file.rel));
  if (!mod.pkg) {
    const where = mod.stopped ? ` (the reader stopped at line ${mod.stopped.line}: ${mod.stopped.construct})` : '';
    throw new RecipeError(
      file.rel,
      undefined,
      `no \`package\` statement: the framework calls hooks on the module's package${where}`,
    );
  }
  const slashed = file.abs.split('\\').join('/');
  const cut = slashed.lastIndexOf('/Provisioner/Recipe/');
  if (cut < 0)
    return { file, mod, pkg: mod.pkg.name, lib: null, key: `RemoteFiles/Given${index}/${basename(file.abs)}` };
  const key = slashed.slice(cut + 1);
  const relLib = file.rel.endsWith(`/${key}`)
    ? file.rel.slice(0, -key.length - 1)
    : file.rel === key
      ? '.'
      : slashed.slice(0, cut);
  return { file, mod, pkg: mod.pkg.name, lib: { abs: slashed.slice(0, cut), rel: relLib }, key };
}

/** Perl holds one package once: a second file declaring it would silently replace the first one's subs. */
function rejectSharedPackages(loaded: Loaded[]): void {
  const seen = new Map<string, Loaded>();
  for (const m of loaded) {
    const other = seen.get(m.pkg);
    if (other)
      throw new RecipeError(
        m.file.rel,
        m.mod.pkg!.line,
        `declares package ${m.pkg}, which ${other.file.rel} declares too`,
      );
    seen.set(m.pkg, m);
  }
}

function readSource(abs: string, rel: string): string {
  try {
    return readFileSync(abs, 'utf8');
  } catch (e) {
    throw new RecipeError(rel, undefined, `cannot read: ${(e as Error).message}`);
  }
}

function uniqueLibs(loaded: Loaded[]): Lib[] {
  const byAbs = new Map<string, Lib>();
  for (const m of loaded) if (m.lib && !byAbs.has(m.lib.abs)) byAbs.set(m.lib.abs, m.lib);
  return [...byAbs.values()];
}

/** Arguments after the invocant, as the framework passes them. */
function hookArgs(ctx: HookContext): Record<Hook, string[]> {
  return {
    remote_files: [ctx.installDir, ctx.domain],
    datadirs: [],
    remote_skip: [],
    before_restore: [ctx.installDir, ctx.domain],
    after_restore: [ctx.installDir, ctx.domain],
    remote_prepare: [ctx.installDir, ctx.domain],
    restores: optsList(ctx).flat(),
  };
}

/**
 * `restores(%opts)` gets the whole configuration, as the framework passes its own: every `vars` entry
 * (admin_user, user, admin_email, ...), then install_dir and domain, which a `vars` entry of the same
 * name does not replace (as for placeholders, see templateValues). Sorted: a hash has no order anyway.
 */
function optsList(ctx: HookContext): Array<[string, string]> {
  const vars = [...(ctx.vars ?? new Map<string, string>())]
    .filter(([k]) => k !== 'install_dir' && k !== 'domain')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return [...vars, ['install_dir', ctx.installDir], ['domain', ctx.domain]];
}

/**
 * Finds the modules a class inherits from the way perl would with the repository's lib/ first: the
 * framework's base class and missing `Provisioner::Recipe::*` modules are stubs that define no hooks.
 */
class ParentFinder {
  private readonly cache = new Map<string, { mod: PerlModule; rel: string }>();

  constructor(
    private readonly libs: Lib[],
    loaded: Loaded[],
  ) {
    for (const m of loaded) this.cache.set(m.file.abs.split('\\').join('/'), { mod: m.mod, rel: m.file.rel });
  }

  find(pkg: string): { mod: PerlModule; rel: string } | 'stub' | 'unknown' {
    if (pkg === 'Provisioner::Recipe') return 'stub';
    const tail = `${pkg.split('::').join('/')}.pm`;
    for (const lib of this.libs) {
      const abs = `${lib.abs}/${tail}`;
      const hit = this.cache.get(abs);
      if (hit) return hit;
      if (!existsSync(abs)) continue;
      const rel = `${lib.rel}/${tail}`;
      const parsed = { mod: parsePerlModule(readSource(abs, rel)), rel };
      this.cache.set(abs, parsed);
      return parsed;
    }
    return pkg.startsWith('Provisioner::Recipe::') ? 'stub' : 'unknown';
  }
}

function staticHook(m: Loaded, hook: Hook, args: string[], parents: ParentFinder): Located {
  return lookupHook(m.mod, m.file.rel, hook, m.pkg, args, parents, new Set([m.pkg]));
}

/** The hook as Perl's method resolution finds it: the class itself, then its parents depth first. */
function lookupHook(
  mod: PerlModule,
  rel: string,
  hook: Hook,
  invocant: string,
  args: string[],
  parents: ParentFinder,
  seen: Set<string>,
): Located {
  const own = evalHook(mod, hook, invocant, args);
  if (own.kind !== 'absent') return { outcome: own, rel, mod };
  if (mod.parents === null)
    return {
      outcome: { kind: 'dynamic', line: mod.parentsLine, construct: '@ISA set up in a way the reader cannot follow' },
      rel,
      mod,
    };
  for (const parent of mod.parents) {
    if (seen.has(parent)) continue;
    seen.add(parent);
    const found = parents.find(parent);
    if (found === 'stub') continue;
    if (found === 'unknown') {
      return {
        outcome: {
          kind: 'dynamic',
          line: mod.parentsLine,
          construct: `the parent class ${parent}, which is not in the repository`,
        },
        rel,
        mod,
      };
    }
    const inherited = lookupHook(found.mod, found.rel, hook, invocant, args, parents, seen);
    if (inherited.outcome.kind !== 'absent') return inherited;
  }
  return { outcome: { kind: 'absent' }, rel, mod };
}

/** Perl compiles every module, and evaluates each hook the static reader did not read to a value. */
async function askPerl(
  perl: string,
  loaded: Loaded[],
  libs: Lib[],
  statics: Array<Map<Hook, Located>>,
  args: Record<Hook, string[]>,
  opts: PerlOptions,
): Promise<Array<Map<string, PerlAnswer>>> {
  const job: PerlJob = {
    modules: loaded.map((m, i) => ({
      key: m.key,
      abs: m.file.abs,
      rel: m.file.rel,
      pkg: m.pkg,
      hooks: HOOKS.filter((h) => opts.forcePerl || statics[i]!.get(h)!.outcome.kind !== 'list'),
    })),
    libs,
    args,
  };
  return runPerl(perl, job, opts.timeoutMs);
}

function resolve(m: Loaded, hook: Hook, located: Located, answer: PerlAnswer | undefined, given: string[]): Resolved {
  const rel = m.file.rel;
  const subLine = m.mod.subs.get(hook)?.line;
  const unset = hook === 'restores' ? unsetKeys(m.file.name, located.mod, given) : undefined;
  if (answer?.kind === 'absent') return { kind: 'absent' };
  if (answer?.kind === 'list')
    return { kind: 'list', values: answer.values, hook, rel, via: undefined, line: subLine, ...(unset && { unset }) };
  if (answer?.kind === 'died') {
    const line = perlLine(answer.message, rel) ?? subLine;
    // Perl names the element it found undefined: `$opts{"admin_user"}`.
    const undefKey = /^Use of uninitialized value \$(\w+)\{"([^"]*)"\}/.exec(answer.message);
    if (hook === 'restores' && undefKey && !given.includes(undefKey[2]!)) {
      throw missingKeys(
        rel,
        line,
        { recipe: m.file.name, keys: [{ hash: undefKey[1]!, key: undefKey[2]! }], given },
        hook,
      );
    }
    // Undefined through a lexical (`my $owner = $opts{user} // $opts{admin_user};`): the keys it reads
    // that nobody set (admin_user here: user has a fallback).
    if (unset && /^Use of uninitialized value/.test(answer.message)) throw missingKeys(rel, line, unset, hook);
    throw new RecipeError(rel, line, `${hook} died: ${answer.message}`);
  }
  const { outcome } = located;
  const via = located.rel === rel ? undefined : rel;
  const label = via ? `${hook} (inherited by ${via})` : hook;
  switch (outcome.kind) {
    case 'absent':
      return outcome;
    case 'list':
      return {
        kind: 'list',
        values: outcome.values,
        hook,
        rel: located.rel,
        via,
        line: outcome.line,
        ...(unset && { unset }),
      };
    case 'error':
      throw new RecipeError(located.rel, outcome.line, `${label}: ${outcome.detail}`);
    case 'dynamic':
      throw new RecipeError(
        located.rel,
        outcome.line,
        `${label}: ${outcome.construct} cannot be read without running the code; this requires perl to evaluate (not found on PATH)`,
      );
  }
}

/** Keys the hook reads from its `%opts` that the configuration does not hold; undefined when none. */
function unsetKeys(recipe: string, mod: PerlModule, given: string[]): UnsetKeys | undefined {
  const read = hashKeysRead(mod, 'restores').filter((k) => !given.includes(k.key));
  // The keys read without a fallback are the ones to name; if the recipe seems to handle each, all of them.
  const bare = read.filter((k) => !k.handled);
  const keys = (bare.length > 0 ? bare : read).map(({ hash, key }) => ({ hash, key }));
  return keys.length > 0 ? { recipe, keys, given } : undefined;
}

/**
 * A `restores` that needs a configuration key nobody set: named with the recipe, the key and the
 * `vars` input. Only when the hook's value shows it (undefined where a string is needed, or Perl's
 * "uninitialized" while building a string): a recipe that handles the missing key itself
 * (`$opts{user} // $opts{admin_user}`, `exists`, `defined`, `||`) works as it does in Perl.
 */
function missingKeys(rel: string, line: number | undefined, u: UnsetKeys, hook: string): RecipeError {
  const named = u.keys.map((k) => `$${k.hash}{${k.key}}`).join(', ');
  const first = u.keys[0]!;
  const set = u.given.filter((k) => k !== 'install_dir' && k !== 'domain');
  return new RecipeError(
    rel,
    line,
    `recipe ${u.recipe}: ${hook} reads ${named}, which ${u.keys.length > 1 ? 'are' : 'is'} not set. ` +
      `restores(%opts) gets install_dir, domain and every entry of the \`vars\` input (${set.length > 0 ? `set: ${set.join(', ')}` : 'none set'}): ` +
      `add ${u.keys.map((k) => `${k.key}=VALUE`).join(' and ')} to \`vars\`, or let the recipe handle a missing key ($${first.hash}{${first.key}} // 'root')`,
  );
}

function hasUndef(v: PerlValue): boolean {
  return v.t === 'undef' || (v.t === 'hash' && v.pairs.some(([, x]) => hasUndef(x)));
}

// ---------------------------------------------------------------------------------------------------
// Normalisation: the same for values read statically and values perl returned.

function toRecipe(file: PerlFile, get: (h: Hook) => Resolved): RawRecipe {
  return {
    name: file.name,
    file: file.rel,
    remoteFiles: remoteFiles(get('remote_files')),
    datadirs: strings(get('datadirs')),
    skip: strings(get('remote_skip')),
    prepare: strings(get('remote_prepare')),
    ...optionalStrings('beforeRestore', get('before_restore')),
    ...optionalStrings('afterRestore', get('after_restore')),
    restores: restores(get('restores')),
  };
}

type ListResolved = Extract<Resolved, { kind: 'list' }>;

/** The optional command hooks (before_restore, after_restore): a key only when they return commands. */
function optionalStrings(key: 'beforeRestore' | 'afterRestore', r: Resolved): Partial<RawRecipe> {
  const values = strings(r);
  return values.length ? { [key]: values } : {};
}

function fail(r: ListResolved, detail: string): RecipeError {
  return new RecipeError(r.rel, r.line, `${r.hook}${r.via ? ` (inherited by ${r.via})` : ''}: ${detail}`);
}

function asString(r: ListResolved, v: PerlValue, what: string): string {
  if (v.t === 'str') return v.v;
  if (v.t === 'num') return v.s;
  if (v.t === 'undef') throw fail(r, `${what} is undef`);
  throw fail(r, `${what} is a reference (${v.t === 'hash' ? 'HASH' : v.kind}), not a string`);
}

function strings(r: Resolved): string[] {
  if (r.kind === 'absent') return [];
  return r.values.map((v, k) => {
    if (r.hook === 'remote_skip' && v.t === 'ref' && v.kind === 'Regexp') {
      throw fail(
        r,
        `element ${k + 1} is a qr{} regular expression, which rsync cannot take: remote_skip returns rsync exclude patterns as strings ('*.log', '/cache/', 'tmp/**')`,
      );
    }
    return asString(r, v, `element ${k + 1}`);
  });
}

/** A flat list read as a hash: declaration order, a repeated key keeps its last value at its first place. */
function pairs(r: ListResolved, values: PerlValue[], what: string): Map<string, PerlValue> {
  if (values.length % 2 !== 0) {
    throw fail(r, `returns an odd number of elements (${values.length}): it must be ${what} pairs`);
  }
  const out = new Map<string, PerlValue>();
  for (let k = 0; k < values.length; k += 2) out.set(asString(r, values[k]!, `key ${k / 2 + 1}`), values[k + 1]!);
  return out;
}

function remoteFiles(r: Resolved): Array<[string, string]> | null {
  if (r.kind === 'absent') return null;
  return [...pairs(r, r.values, 'remote => local')].map(([remote, local]) => [
    remote,
    asString(r, local, `the local path for "${remote}"`),
  ]);
}

const RESTORE_KEYS = new Set(['from', 'owner', 'mode']);
/** user or user:group; a `[% name %]` placeholder is filled (and the result checked) by the plan. */
const OWNER =
  /^(?:[A-Za-z0-9_.-]|\[%\s*[A-Za-z_][A-Za-z0-9_]*\s*%\])+(:(?:[A-Za-z0-9_.-]|\[%\s*[A-Za-z_][A-Za-z0-9_]*\s*%\])+)?$/;

/**
 * `restores` returns a flat list or one hashref. A hash has no order in Perl (it changes from run to
 * run), so the hashref form is sorted by destination.
 */
function restores(r: Resolved): RestoreSpec[] {
  if (r.kind === 'absent') return [];
  if (r.unset && r.values.some(hasUndef)) throw missingKeys(r.rel, r.line, r.unset, r.hook);
  const only = r.values.length === 1 ? r.values[0]! : null;
  const entries =
    only?.t === 'hash'
      ? [...new Map(only.pairs)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      : [...pairs(r, r.values, 'destination => { from => ... }')];
  return entries.map(([to, spec]) => restoreSpec(r, to, spec));
}

function restoreSpec(r: ListResolved, to: string, spec: PerlValue): RestoreSpec {
  if (spec.t !== 'hash')
    throw fail(r, `the value for "${to}" must be a hash reference { from => ..., owner => ..., mode => ... }`);
  const fields = new Map(spec.pairs);
  for (const key of fields.keys())
    if (!RESTORE_KEYS.has(key)) throw fail(r, `"${to}" has an unknown key "${key}" (expected from, owner, mode)`);
  const from = fields.get('from');
  if (from === undefined) throw fail(r, `"${to}" has no from (where its salvage was placed)`);
  const owner = fields.get('owner');
  const ownerText = owner === undefined ? undefined : asString(r, owner, `the owner of "${to}"`);
  if (ownerText !== undefined && !OWNER.test(ownerText))
    throw fail(r, `the owner of "${to}" must be user or user:group, got "${ownerText}"`);
  const mode = fields.get('mode');
  return {
    to,
    from: asString(r, from, `the from of "${to}"`),
    ...(ownerText !== undefined && { owner: ownerText }),
    ...(mode !== undefined && { mode: octalMode(r, to, mode) }),
  };
}

/**
 * '0750' and '750' are octal digits. A number is what Perl holds: the literal 0750 is 488, i.e. rwxr-x---.
 * A number above 0777 is almost always decimal 750 meant as octal (Perl would chmod 01356), so it is
 * refused; special bits must be written as a string ('2750').
 */
function octalMode(r: ListResolved, to: string, mode: PerlValue): string {
  if (mode.t === 'str') {
    const m = /^0?([0-7]{3,4})$/.exec(mode.v);
    if (m) return m[1]!.padStart(4, '0');
    throw fail(r, `the mode of "${to}" must be octal digits like '0750', got '${mode.v}'`);
  }
  if (mode.t === 'num' && Number.isInteger(mode.v) && mode.v >= 0 && mode.v <= 0o777)
    return mode.v.toString(8).padStart(4, '0');
  if (mode.t === 'num') {
    throw fail(
      r,
      `the mode of "${to}" is the number ${mode.s} (${Number.isInteger(mode.v) && mode.v >= 0 ? `0${mode.v.toString(8)} in octal` : 'not a mode'}); write it as a string '0750' or an octal literal 0750`,
    );
  }
  throw fail(r, `the mode of "${to}" must be a string like '0750' or an octal literal like 0750`);
}
