import { posix } from 'node:path';
import { RecipeError, UserError } from '../errors.js';
import { resolveCommand, resolveTemplate, type TemplateValues } from '../recipes/template.js';
import type { RawRecipe } from '../recipes/types.js';
import { checkLocalPath, checkRemotePath, isWithin } from './paths.js';

/** One salvaged entry: `remote` on the server, stored at `path` (= <dataDir>/<domain>/<local>). */
export interface PlanFile {
  remote: string;
  local: string;
  path: string;
}

/** A `restores` entry: copy the salvage of `local` (named `from` on the server) to `to`. */
export interface PlanRestore {
  to: string;
  from: string;
  owner: string | null;
  mode: string | null;
  local: string;
}

export interface PlanRecipe {
  name: string;
  file: string;
  files: PlanFile[];
  datadirs: string[];
  skip: string[];
  prepare: string[];
  restores: PlanRestore[];
  /** Shell commands around a restore (placeholders filled and quoted as in `prepare`); absent: none. */
  beforeRestore?: string[];
  afterRestore?: string[];
}

export interface Plan {
  domain: string;
  installDir: string;
  dataDir: string;
  recipes: PlanRecipe[];
}

export interface PlanSettings {
  domain: string;
  installDir: string;
  dataDir: string;
  values: TemplateValues;
  /** Recipe files whose strings may use `${name}` placeholders (the YAML/JSON twins). */
  dollarBraces: (file: string) => boolean;
}

/** Turns read recipes into the plan every mode works from. Pure: no I/O. */
export function buildPlan(recipes: RawRecipe[], s: PlanSettings): Plan {
  const planned = recipes.map((r) => planRecipe(r, s));
  rejectOverlaps(planned);
  oneSpecPerDestination(planned);
  return { domain: s.domain, installDir: s.installDir, dataDir: s.dataDir, recipes: planned };
}

function planRecipe(r: RawRecipe, s: PlanSettings): PlanRecipe {
  const fill = (text: string) => resolveTemplate(text, s.values, r.file, s.dollarBraces(r.file));
  const local = (text: string, what: string) => {
    const checked = checkLocalPath(fill(text));
    if (!checked.ok) throw new RecipeError(r.file, undefined, `recipe ${r.name}: ${what} "${text}" ${checked.why}`);
    return checked.path;
  };
  const remote = (text: string, what: string) => {
    const checked = checkRemotePath(fill(text));
    if (!checked.ok) throw new RecipeError(r.file, undefined, `recipe ${r.name}: ${what} "${text}" ${checked.why}`);
    return checked.path;
  };
  const salvageRoot = posix.join(s.installDir, s.domain);
  return {
    name: r.name,
    file: r.file,
    files: (r.remoteFiles ?? []).map(([rem, loc]) => {
      const l = local(loc, 'local path');
      return { remote: remote(rem, 'remote path'), local: l, path: posix.join(s.dataDir, s.domain, l) };
    }),
    datadirs: r.datadirs.map((d) => local(d, 'datadir')),
    skip: r.skip.map(fill),
    // Commands: placeholder values are quoted for the shell, or refused where quoting cannot work.
    prepare: r.prepare.map((c) => resolveCommand(c, s.values, r.file, s.dollarBraces(r.file), r.name)),
    ...(r.beforeRestore?.length && {
      beforeRestore: r.beforeRestore.map((c) => resolveCommand(c, s.values, r.file, s.dollarBraces(r.file), r.name)),
    }),
    ...(r.afterRestore?.length && {
      afterRestore: r.afterRestore.map((c) => resolveCommand(c, s.values, r.file, s.dollarBraces(r.file), r.name)),
    }),
    restores: r.restores.map((spec) => {
      const from = remote(spec.from, 'restores "from"');
      if (!isWithin(salvageRoot, from) || from === salvageRoot) {
        throw new RecipeError(
          r.file,
          undefined,
          `recipe ${r.name}: restores "from" ${from} is not below ${salvageRoot}/ (where the framework places a salvage), so it names nothing we stored`,
        );
      }
      return {
        to: remote(spec.to, 'restores destination'),
        from,
        owner: spec.owner === undefined ? null : restoreOwner(r, spec.owner, fill),
        mode: spec.mode ?? null,
        local: local(from.slice(salvageRoot.length + 1), 'restores "from"'),
      };
    }),
  };
}

const OWNER = /^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/;

/** A `restores` owner with its placeholders (`[% admin_user %]`, a twin's `${user}`) filled: user or user:group. */
function restoreOwner(r: RawRecipe, owner: string, fill: (text: string) => string): string {
  let filled: string;
  try {
    filled = fill(owner);
  } catch (e) {
    if (e instanceof RecipeError)
      throw new RecipeError(
        r.file,
        undefined,
        `recipe ${r.name}: restores owner "${owner}": ${e.message.slice(e.message.indexOf(': ') + 2)}`,
      );
    throw e;
  }
  if (!OWNER.test(filled))
    throw new RecipeError(
      r.file,
      undefined,
      `recipe ${r.name}: restores owner "${owner}" must be user or user:group, got "${filled}"`,
    );
  return filled;
}

/**
 * The framework refuses two recipes that give one destination different specs; the same spec twice is
 * one restore (kept with the first recipe that names it).
 */
function oneSpecPerDestination(recipes: PlanRecipe[]): void {
  const seen = new Map<string, { recipe: PlanRecipe; spec: PlanRestore }>();
  for (const recipe of recipes) {
    recipe.restores = recipe.restores.filter((spec) => {
      const other = seen.get(spec.to);
      if (!other) {
        seen.set(spec.to, { recipe, spec });
        return true;
      }
      const same = other.spec.from === spec.from && other.spec.owner === spec.owner && other.spec.mode === spec.mode;
      if (same) return false;
      const show = (x: { recipe: PlanRecipe; spec: PlanRestore }) =>
        `recipe ${x.recipe.name} (${x.recipe.file}) gives { from => ${x.spec.from}, owner => ${x.spec.owner ?? 'unset'}, mode => ${x.spec.mode ?? 'unset'} }`;
      throw new UserError(
        `restores: two recipes give ${spec.to} different specs: ${show(other)}; ${show({ recipe, spec })}. Make them agree, or drop one`,
      );
    });
  }
}

/**
 * Two entries storing into the same or nested local paths would overwrite (or, with deletions
 * mirrored, delete) each other's salvage; refuse the plan instead. Entries that agree (two recipes
 * naming the same path, or a folder and a path inside it mapped to the same place) are fine; what the
 * server lists for them must agree too, which the backup checks (refuseInconsistentNesting, transfer/nesting.ts).
 */
function rejectOverlaps(recipes: PlanRecipe[]): void {
  const entries = recipes.flatMap((r) => r.files.map((f) => ({ recipe: r, file: f })));
  for (let i = 0; i < entries.length; i++) {
    for (let j = i + 1; j < entries.length; j++) {
      const a = entries[i]!;
      const b = entries[j]!;
      if (
        !consistent(a.file, b.file) &&
        !consistent(b.file, a.file) &&
        (isWithin(a.file.local, b.file.local) || isWithin(b.file.local, a.file.local))
      ) {
        const where = (e: typeof a) =>
          `"${e.file.local}" (recipe ${e.recipe.name}, ${e.recipe.file}, from ${e.file.remote})`;
        throw new UserError(`local paths overlap: ${where(a)} and ${where(b)}; each entry needs its own local folder`);
      }
    }
  }
}

/** `inner` lies inside `outer` on both sides, by the same relative path. */
function consistent(outer: PlanFile, inner: PlanFile): boolean {
  if (!isWithin(outer.local, inner.local)) return false;
  const suffix = inner.local.slice(outer.local.length);
  return inner.remote === (outer.remote === '/' ? '' : outer.remote) + suffix;
}
