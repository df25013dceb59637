import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { UserError } from '../errors.js';
import { discoverRecipeFiles, folderOf, perlRecipeName, type RecipeFile } from './discover.js';
import { readPerlRecipes } from './perl/perl.js';
import { readTwinRecipes } from './twin.js';
import type { HookContext, RawRecipe } from './types.js';

export interface RecipeSelection {
  sources: string[];
  sourcesAreDefault: boolean;
  workspace: string;
  /** The data folder (workspace-relative): never searched for recipes, it holds salvaged files. */
  dataDir: string;
  /** Distro subfolder to prefer (e.g. "Ubuntu"); empty: the one specialisation there is. */
  distro: string;
  only: string[];
}

/** Finds, reads and selects the recipes the run uses. Every problem is one error naming file or input. */
export async function loadRecipes(sel: RecipeSelection, ctx: HookContext): Promise<RawRecipe[]> {
  const files = discoverRecipeFiles(sel.sources, sel.workspace, sel.sourcesAreDefault, sel.dataDir);
  const perlFiles = pickPerlFiles(
    files.filter((f) => f.kind === 'perl'),
    sel.distro,
  );
  const perl = await readPerlRecipes(
    perlFiles.map((f) => ({ abs: f.abs, rel: f.rel, name: perlRecipeName(f) })),
    ctx,
    { perl: findOnPath('perl') },
  );
  const twins = files
    .filter((f) => f.kind === 'twin')
    .flatMap((f) => readTwinRecipes(readFileSync(f.abs, 'utf8'), f.rel));
  const all = [...perl, ...twins];
  rejectDuplicateNames(all);
  return selectRecipes(all, sel.only);
}

/**
 * One Perl file per recipe name. A file in a distro subfolder (Ubuntu/Redis.pm) is more specific than
 * the generic Redis.pm and wins; with `distro` set, other distros' files are ignored.
 */
export function pickPerlFiles(files: RecipeFile[], distro: string): RecipeFile[] {
  const byName = new Map<string, RecipeFile[]>();
  for (const f of files) byName.set(perlRecipeName(f), [...(byName.get(perlRecipeName(f)) ?? []), f]);
  const picked: RecipeFile[] = [];
  for (const [name, candidates] of byName) {
    const depth = (f: RecipeFile) => folderOf(f).split('/').length;
    const shallowest = Math.min(...candidates.map(depth));
    const generic = candidates.filter((f) => depth(f) === shallowest);
    let specific = candidates.filter((f) => depth(f) > shallowest);
    if (distro)
      specific = specific.filter((f) => folderOf(f).split('/').at(-1)!.toLowerCase() === distro.toLowerCase());
    const pool = specific.length > 0 ? specific : generic;
    if (pool.length > 1) {
      throw new UserError(
        `recipe "${name}" is defined by ${pool.map((f) => f.rel).join(' and ')}; set the \`distro\` input to choose a distro subfolder, or narrow \`recipes\``,
      );
    }
    picked.push(pool[0]!);
  }
  return picked;
}

function rejectDuplicateNames(recipes: RawRecipe[]): void {
  const seen = new Map<string, string>();
  for (const r of recipes) {
    const other = seen.get(r.name);
    if (other !== undefined) throw new UserError(`recipe "${r.name}" is defined twice: in ${other} and in ${r.file}`);
    seen.set(r.name, r.file);
  }
}

/** `only` names recipes to use; without it, every recipe that declares remote files. */
export function selectRecipes(recipes: RawRecipe[], only: string[]): RawRecipe[] {
  if (only.length === 0) return recipes.filter((r) => r.remoteFiles !== null && r.remoteFiles.length > 0);
  const known = new Map(recipes.map((r) => [r.name, r]));
  const unknown = only.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new UserError(
      `input \`only\`: no recipe named ${unknown.map((n) => `"${n}"`).join(', ')} (found: ${[...known.keys()].sort().join(', ') || 'none'})`,
    );
  }
  return only.map((n) => known.get(n)!);
}

export function findOnPath(command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return null;
}
