/**
 * The module scan of the static Perl reader (see static.ts): package, parents, pragmas, subs and
 * imports, in one pass over the tokens. Pure.
 */
import { constantList } from './evaluator.js';
import { isIdent, isOp, Lexer, lineIndex, PAIRS, type Tok, type TokOf } from './lexer.js';
import type { PerlModule, SubDef } from './module.js';

/** Modules known not to change strictness or enable signatures when imported. */
const PLAIN_MODULES = new Set([
  'warnings',
  'utf8',
  'lib',
  'constant',
  'integer',
  'bytes',
  'open',
  'overload',
  'Carp',
  'POSIX',
  'Cwd',
  'English',
  'Exporter',
  'File::Spec',
  'File::Spec::Functions',
  'File::Basename',
  'File::Path',
  'File::Temp',
  'File::Copy',
  'File::Find',
  'Data::Dumper',
  'Scalar::Util',
  'List::Util',
  'JSON::PP',
  'Storable',
  'Time::Local',
  'Encode',
  'Getopt::Long',
  'IO::File',
  'IO::Handle',
  'Sys::Hostname',
  'FindBin',
]);

/** The hooks the framework calls, in the order they are read. */
export const HOOKS = [
  'remote_files',
  'datadirs',
  'remote_skip',
  'remote_prepare',
  'restores',
  'before_restore',
  'after_restore',
] as const;
const HOOK_NAMES = new Set<string>(HOOKS);

/** Tokenizes and scans a module. Never throws: what it cannot read is recorded in `stopped`. */
export function parsePerlModule(source: string): PerlModule {
  const lexer = new Lexer(source, lineIndex(source));
  lexer.run();
  const mod: PerlModule = {
    source,
    toks: lexer.toks,
    pkg: null,
    parents: [],
    parentsLine: 0,
    subs: new Map(),
    runtimeSubs: null,
    imports: new Map(),
    stopped: lexer.stopped,
    decls: [],
    pragmas: [],
  };
  new Scanner(mod, source).run();
  return mod;
}

/** One pass over the tokens collecting what the evaluator and the caller need to know. */
class Scanner {
  private depth = 0;
  private packages: Array<{ depth: number; name: string }> = [];
  private usedParents: string[] = [];
  private isaAssigned: string[] | null = null;
  private isaUnknown = false;
  private subs: Array<SubDef & { pkg: string }> = [];

  constructor(
    private readonly mod: PerlModule,
    private readonly source: string,
  ) {}

  run(): void {
    const toks = this.mod.toks;
    for (let i = 0; i < toks.length; i++) {
      const t = toks[i]!;
      const prev = toks[i - 1];
      const statementStart = !prev || isOp(prev, ';') || isOp(prev, '{') || isOp(prev, '}');
      if (isOp(t, '{')) this.depth++;
      else if (isOp(t, '}')) this.closeBlock();
      else if (t.k === 'ident') this.ident(i, t, statementStart);
      else if (t.k === 'var' && (t.name === 'ISA' || t.name.endsWith('::ISA')) && t.sigil === '@') this.isa(i);
      else if ((t.k === 'var' && t.sigil === '*' && isOp(toks[i + 1], '=')) || (t.k === 'cast' && t.sigil === '*')) {
        this.runtime(t.line, 'a glob assignment');
      }
    }
    this.finish();
  }

  private closeBlock(): void {
    this.depth--;
    while (this.packages.length > 0 && this.packages.at(-1)!.depth > this.depth) this.packages.pop();
  }

  private ident(i: number, t: TokOf<'ident'>, statementStart: boolean): void {
    const toks = this.mod.toks;
    if (statementStart && t.v === 'package' && toks[i + 1]?.k === 'ident') this.packageStatement(i);
    else if (statementStart && (t.v === 'use' || t.v === 'no')) this.useStatement(i);
    else if (statementStart && (t.v === 'extends' || t.v === 'with')) this.classBuilder(t);
    else if (t.v === 'sub' && toks[i + 1]?.k === 'ident' && !isOp(toks[i + 2], '=>')) this.subDefinition(i);
    else if (t.v === 'my' || t.v === 'our' || t.v === 'state') this.declaration(i);
    else if (t.v === 'eval' && !isOp(toks[i + 1], '{') && !isOp(toks[i + 1], '=>'))
      this.runtime(t.line, 'a string eval');
  }

  /** Moose/Moo-style `extends 'Parent'` and `with 'Role'` set up inheritance when the module runs. */
  private classBuilder(t: TokOf<'ident'>): void {
    this.mod.parentsLine ||= t.line;
    this.isaUnknown = true;
  }

  private runtime(line: number, construct: string): void {
    this.mod.runtimeSubs ??= { line, construct };
  }

  private packageStatement(i: number): void {
    const name = (this.mod.toks[i + 1] as TokOf<'ident'>).v;
    let j = i + 2;
    if (this.mod.toks[j]?.k === 'num' || this.mod.toks[j]?.k === 'vstr') j++;
    if (isOp(this.mod.toks[j], '{')) this.packages.push({ depth: this.depth + 1, name });
    else {
      while (this.packages.length > 0 && this.packages.at(-1)!.depth >= this.depth) this.packages.pop();
      this.packages.push({ depth: this.depth, name });
    }
    this.mod.pkg ??= { name, line: this.mod.toks[i]!.line };
  }

  private currentPackage(): string {
    return this.packages.at(-1)?.name ?? 'main';
  }

  private statementEnd(from: number): number {
    const toks = this.mod.toks;
    let depth = 0;
    for (let j = from; j < toks.length; j++) {
      if (isOp(toks[j], '{') || isOp(toks[j], '(') || isOp(toks[j], '[')) depth++;
      else if (isOp(toks[j], '}') || isOp(toks[j], ')') || isOp(toks[j], ']')) depth--;
      else if (depth === 0 && isOp(toks[j], ';')) return j;
    }
    return toks.length;
  }

  private useStatement(i: number): void {
    const toks = this.mod.toks;
    const use = (toks[i] as TokOf<'ident'>).v === 'use';
    const end = this.statementEnd(i + 1);
    const first = toks[i + 1];
    if (first?.k === 'num' || first?.k === 'vstr') {
      if (use) this.versionPragma(i, first.text);
      return;
    }
    if (first?.k !== 'ident') return;
    let from = i + 2;
    if (toks[from]?.k === 'num' || toks[from]?.k === 'vstr') from++;
    const module = first.v;
    if (module === 'strict') this.strictPragma(i, use, from, end);
    else if (module === 'feature' || module === 'experimental') this.featurePragma(i, use, from, end);
    else if (module === 'parent' || module === 'base') this.parentPragma(i, from, end);
    else if (module === 'vars') this.varsPragma(i, from, end);
    else if (!PLAIN_MODULES.has(module)) this.otherModule(i, module, from, end);
  }

  private list(from: number, end: number): string[] | null {
    return constantList(this.mod, this.currentPackage(), from, end);
  }

  private versionPragma(i: number, text: string): void {
    const minor = perlMinor(text);
    if (minor === null || this.depth > 0) return;
    this.mod.pragmas.push({ at: i, ...(minor >= 11 && { strict: 'on' }), signatures: minor >= 36 ? 'on' : 'off' });
  }

  private strictPragma(i: number, use: boolean, from: number, end: number): void {
    const list = this.list(from, end);
    if (this.depth > 0 || (list && list.length > 0 && !list.includes('vars'))) return;
    this.mod.pragmas.push({ at: i, strict: list === null ? 'maybe' : use ? 'on' : 'off' });
  }

  private featurePragma(i: number, use: boolean, from: number, end: number): void {
    const list = this.list(from, end);
    if (this.depth > 0) return;
    const bundle = list?.map((f) => /^:5\.(\d+)/.exec(f)).find(Boolean);
    if (list === null) this.mod.pragmas.push({ at: i, signatures: 'maybe' });
    else if (list.includes('signatures') || list.includes(':all'))
      this.mod.pragmas.push({ at: i, signatures: use ? 'on' : 'off' });
    else if (bundle && use) this.mod.pragmas.push({ at: i, signatures: Number(bundle[1]) >= 36 ? 'on' : 'off' });
  }

  /** `use parent`/`use base` push onto @ISA when the module is compiled. */
  private parentPragma(i: number, from: number, end: number): void {
    const list = this.list(from, end);
    this.mod.parentsLine ||= this.mod.toks[i]!.line;
    if (list === null) this.isaUnknown = true;
    else this.usedParents.push(...list.filter((p) => p !== '-norequire'));
  }

  private varsPragma(i: number, from: number, end: number): void {
    for (const name of this.list(from, end) ?? []) this.mod.decls.push({ name, at: i });
  }

  private otherModule(i: number, module: string, from: number, end: number): void {
    const line = this.mod.toks[i]!.line;
    // It may turn on strict or signatures for the code that follows (Moose, Mojo::Base, Modern::Perl...).
    if (this.depth === 0) this.mod.pragmas.push({ at: i, strict: 'maybe', signatures: 'maybe' });
    const list = from < end ? this.list(from, end) : [];
    if (list === null) return this.runtime(line, `the imports of ${module}`);
    for (const name of list) if (HOOK_NAMES.has(name)) this.mod.imports.set(name, { line, from: module });
  }

  /** `our @ISA = (...)` runs after every `use parent`, so it decides; anything else is not followed. */
  private isa(i: number): void {
    const toks = this.mod.toks;
    this.mod.parentsLine ||= toks[i]!.line;
    if (isOp(toks[i + 1], '=')) {
      const list = this.list(i + 2, this.statementEnd(i + 2));
      if (list === null) this.isaUnknown = true;
      else this.isaAssigned = list;
    } else if (!(isOp(toks[i + 1], ';') && isIdent(toks[i - 1], 'our'))) this.isaUnknown = true;
  }

  private declaration(i: number): void {
    const toks = this.mod.toks;
    const t = toks[i + 1];
    if (t?.k === 'var') this.mod.decls.push({ name: t.sigil + t.name, at: i });
    if (!isOp(t, '(')) return;
    for (let j = i + 2; j < toks.length && !isOp(toks[j], ')'); j++) {
      const v = toks[j]!;
      if (v.k === 'var') this.mod.decls.push({ name: v.sigil + v.name, at: i });
    }
  }

  private subDefinition(i: number): void {
    const toks = this.mod.toks;
    const nameTok = toks[i + 1] as TokOf<'ident'>;
    let j = i + 2;
    let params: SubDef['params'] = null;
    if (isOp(toks[j], '(')) {
      const close = matching(toks, j);
      if (close < 0) return this.addSub(i, nameTok, null, null);
      params = { range: [j + 1, close], text: this.source.slice(toks[j]!.pos + 1, toks[close]!.pos) };
      j = close + 1;
    }
    while (isOp(toks[j], ':')) {
      j += toks[j + 1]?.k === 'ident' ? 2 : 1;
      if (isOp(toks[j], '(')) j = matching(toks, j) + 1;
      if (j <= 0) return;
    }
    if (!isOp(toks[j], '{')) return;
    const close = matching(toks, j);
    this.addSub(i, nameTok, params, close < 0 ? null : [j + 1, close]);
  }

  private addSub(i: number, nameTok: TokOf<'ident'>, params: SubDef['params'], body: SubDef['body']): void {
    const full = nameTok.v;
    const cut = full.lastIndexOf('::');
    const name = cut < 0 ? full : full.slice(cut + 2);
    if (name === 'AUTOLOAD') this.runtime(nameTok.line, 'an AUTOLOAD sub');
    this.subs.push({
      name,
      line: nameTok.line,
      at: i,
      params,
      body,
      pkg: cut < 0 ? this.currentPackage() : full.slice(0, cut),
    });
  }

  private finish(): void {
    const own = this.mod.pkg?.name;
    for (const sub of this.subs) if (sub.pkg === own) this.mod.subs.set(sub.name, sub);
    this.mod.parents = this.isaUnknown ? null : (this.isaAssigned ?? this.usedParents);
  }
}

/** Index of the bracket closing the one at `open`, or -1. Strings are tokens, so counting suffices. */
function matching(toks: Tok[], open: number): number {
  const o = (toks[open] as TokOf<'op'>).v;
  const c = PAIRS[o]!;
  let depth = 0;
  for (let j = open; j < toks.length; j++) {
    if (isOp(toks[j], o)) depth++;
    else if (isOp(toks[j], c) && --depth === 0) return j;
  }
  return -1;
}

/** The minor version a `use VERSION` asks for: 5.041 -> 41, v5.36 -> 36, 5.36.0 -> 36. */
function perlMinor(text: string): number | null {
  const parts = text.replace(/^v/, '').replace(/_/g, '').split('.');
  if (parts[0] !== '5') return null;
  if (text.startsWith('v') || parts.length > 2) return Number(parts[1] ?? 0);
  const fraction = parts[1] ?? '';
  return Number(fraction.padEnd(Math.ceil(fraction.length / 3) * 3 || 3, '0').slice(0, 3));
}
