import { statSync } from 'node:fs';
import { basename, dirname, relative, resolve, sep } from 'node:path';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { UserError } from '../errors.js';

/** A recipe file found in the workspace. */
export interface RecipeFile {
  abs: string;
  /** Workspace-relative, POSIX separators: what messages and the plan show. */
  rel: string;
  kind: 'perl' | 'twin';
}

export const DEFAULT_RECIPE_SOURCES = ['lib/Provisioner/Recipe', 'remote-files.yml'];

const TWIN = /\.(ya?ml|json)$/i;

/**
 * Expands the `recipes` input (files, folders, globs) into recipe files, sorted and de-duplicated.
 * A source the user named that matches nothing is an error; the built-in defaults may be absent.
 */
export function discoverRecipeFiles(sources: string[], workspace: string, isDefault: boolean): RecipeFile[] {
  const found = new Map<string, RecipeFile>();
  for (const source of sources) {
    const matches = expandSource(source, workspace);
    if (matches.length === 0 && !isDefault) {
      throw new UserError(
        `input \`recipes\`: "${source}" matches no recipe file (looked for *.pm, *.yml, *.yaml, *.json in ${resolve(workspace, source)})`,
      );
    }
    for (const abs of matches)
      found.set(abs, { abs, rel: toRel(workspace, abs), kind: abs.endsWith('.pm') ? 'perl' : 'twin' });
  }
  return [...found.values()].sort((a, b) => a.rel.localeCompare(b.rel));
}

function expandSource(source: string, workspace: string): string[] {
  if (isDynamicPattern(source)) {
    return globSync(source, { cwd: workspace, absolute: true, onlyFiles: true, dot: false })
      .filter((f) => f.endsWith('.pm') || TWIN.test(f))
      .map((f) => resolve(f));
  }
  const abs = resolve(workspace, source);
  const stat = statSync(abs, { throwIfNoEntry: false });
  if (!stat) return [];
  if (stat.isFile()) return [abs];
  return globSync(['**/*.pm', '**/*.yml', '**/*.yaml', '**/*.json'], { cwd: abs, absolute: true, onlyFiles: true }).map(
    (f) => resolve(f),
  );
}

function toRel(workspace: string, abs: string): string {
  return relative(workspace, abs).split(sep).join('/');
}

/** A Perl recipe's name is its module's last name part: Ubuntu/Redis.pm answers to "Redis". */
export function perlRecipeName(file: RecipeFile): string {
  return basename(file.abs, '.pm');
}

/** How deep a file sits below the shallowest file of the same name: a distro subfolder is deeper. */
export function folderOf(file: RecipeFile): string {
  return dirname(file.rel);
}
